"""Text forms at the edges: EIP-55 against eth-utils and the EIP's own examples, strict
parsing, round trips, and errors that never echo their input."""

from __future__ import annotations

from typing import Any

import pytest
from eth_utils import to_checksum_address
from hypothesis import assume, given
from hypothesis import strategies as st

from tests.wallet.reference import addresses, hashes, key_secrets
from wallet.codec import (
    address_hex,
    hash_hex,
    parse_address,
    parse_hash32,
    parse_signature,
    signature_hex,
)
from wallet.errors import EncodingError, InvalidSignature
from wallet.signing import PrivateKey
from wallet.types import Address, Hash32, Signature

#: The examples of EIP-55 itself (all caps, all lower, normal).
EIP55_EXAMPLES = [
    "0x52908400098527886E0F7030069857D2E4169EE7",
    "0x8617E340B3D01FA5F11F306F4090FD50E238070D",
    "0xde709f2102306220921060314715629080e2fb77",
    "0x27b1fdb04752bbc536007a920d24acb045561c26",
    "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
    "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
    "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB",
    "0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb",
]


@pytest.mark.parametrize("text", EIP55_EXAMPLES)
def test_eip55_examples(text: str) -> None:
    address = parse_address(text)
    assert address == bytes.fromhex(text[2:])
    assert address_hex(address) == text


@given(address=addresses)
def test_address_hex_is_eth_utils_checksum(address: Address) -> None:
    text = address_hex(address)
    assert text == to_checksum_address(address)
    assert parse_address(text) == address
    assert parse_address(text.lower()) == address
    assert parse_address("0x" + text[2:].upper()) == address
    assert parse_address(address) == address


@given(address=addresses, data=st.data())
def test_a_wrong_checksum_is_refused(address: Address, data: st.DataObject) -> None:
    text = address_hex(address)
    letters = [i for i, c in enumerate(text) if i >= 2 and c.isalpha()]
    assume(len(letters) >= 2)  # flipping one letter leaves the text in mixed case
    i = data.draw(st.sampled_from(letters))
    flipped = text[:i] + text[i].swapcase() + text[i + 1 :]
    assume(flipped[2:] not in (flipped[2:].lower(), flipped[2:].upper()))
    with pytest.raises(EncodingError, match="EIP-55"):
        parse_address(flipped)


@pytest.mark.parametrize(
    "value",
    [
        "52908400098527886E0F7030069857D2E4169EE7",
        "0X52908400098527886E0F7030069857D2E4169EE7",
        "0x52908400098527886E0F7030069857D2E4169EE",
        "0x52908400098527886E0F7030069857D2E4169EE70",
        "0x52908400098527886E0F7030069857D2E4169EEg",
        "0x 2908400098527886E0F7030069857D2E4169EE7",
        "",
        b"\x01" * 19,
        b"\x01" * 21,
        bytearray(20),
        None,
        20,
    ],
)
def test_malformed_address_is_refused(value: Any) -> None:
    with pytest.raises(EncodingError) as info:
        parse_address(value, field="payee")
    assert info.value.field == "payee"
    if isinstance(value, str) and value:
        assert value not in str(info.value)


@given(value=hashes)
def test_hash_round_trip(value: Hash32) -> None:
    text = hash_hex(value)
    assert text == "0x" + value.hex()
    assert parse_hash32(text) == value
    assert parse_hash32(text.upper().replace("0X", "0x")) == value
    assert parse_hash32(value) == value


@pytest.mark.parametrize(
    "value", ["0x" + "00" * 31, "0x" + "00" * 33, "00" * 32, "0x" + "0g" * 32, b"\x00" * 31, None]
)
def test_malformed_hash_is_refused(value: Any) -> None:
    with pytest.raises(EncodingError, match="hash"):
        parse_hash32(value)


def test_parsed_values_are_plain_bytes() -> None:
    class HexBytesLike(bytes):
        pass

    assert type(parse_address(HexBytesLike(20))) is bytes
    assert type(parse_hash32(HexBytesLike(32))) is bytes


@given(secret=key_secrets, digest=hashes)
def test_signature_round_trip(secret: bytes, digest: Hash32) -> None:
    signature = PrivateKey(secret).unsafe_sign_digest(digest)
    text = signature_hex(signature)
    assert len(text) == 132
    assert parse_signature(text) == signature
    assert parse_signature(signature) == signature


@pytest.mark.parametrize(
    "value",
    [
        "0x" + "11" * 64,
        "0x" + "11" * 64 + "1b00",
        "11" * 64 + "1b",
        "0x" + "11" * 64 + "00",
        "0x" + "11" * 32 + "ff" * 32 + "1b",  # s >= n
        "0x" + "11" * 32 + "7f" + "ff" * 31 + "1b",  # high s
        Signature(b"\x11" * 64),
        None,
    ],
)
def test_malformed_signature_text_is_refused(value: Any) -> None:
    with pytest.raises(InvalidSignature):
        parse_signature(value)
