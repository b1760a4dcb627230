"""Bech32 (BIP-173): the BIP's own test vectors, typed in, the lengths uAgents needs beyond
its 90-character limit, and round trips of random data."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wallet.bech32 import (
    BIP173_MAX_LENGTH,
    CHARSET,
    bech32_decode,
    bech32_encode,
    convert_bits,
    decode_words,
    encode_words,
)
from wallet.errors import EncodingError, WalletError

# BIP-173, "Test vectors": valid bech32 strings, with their HRP and 5-bit data words.
VALID = [
    ("A12UEL5L", "a", []),
    ("a12uel5l", "a", []),
    (
        "an83characterlonghumanreadablepartthatcontainsthenumber1andtheexcludedcharactersbio1tt5tgs",
        "an83characterlonghumanreadablepartthatcontainsthenumber1andtheexcludedcharactersbio",
        [],
    ),
    ("abcdef1qpzry9x8gf2tvdw0s3jn54khce6mua7lmqqqxw", "abcdef", list(range(32))),
    (
        "11qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqc8247j",
        "1",
        [0] * 82,
    ),
    (
        "split1checkupstagehandshakeupstreamerranterredcaperred2y9e3w",
        "split",
        list(
            bytes.fromhex(
                "18171918161c01100b1d0819171d130d10171d16191c01100b03191d1b1903031d130b19"
                "0303190d181d01190303190d"
            )
        ),
    ),
    ("?1ezyfcl", "?", []),
]

# BIP-173's invalid strings, with the reason the BIP gives and the problem we report.
INVALID = [
    ("\x201nwldj5", "HRP character out of range", "not US-ASCII"),
    ("\x7f1axkwrx", "HRP character out of range", "not US-ASCII"),
    ("\x801eym55h", "HRP character out of range", "not US-ASCII"),
    (
        "an84characterslonghumanreadablepartthatcontainsthenumber1andtheexcludedcharactersbio1569pvx",
        "overall max length exceeded (here: the HRP is 84 characters)",
        "prefix is longer than 83",
    ),
    ("pzry9x0s0muk", "no separator character", "no separator"),
    ("1pzry9x0s0muk", "empty HRP", "empty prefix"),
    ("x1b4n0q5v", "invalid data character", "not in the bech32 alphabet"),
    ("li1dgmt3", "too short checksum", "shorter than the 6-character checksum"),
    ("de1lg7wt\xff", "invalid character in checksum", "not US-ASCII"),
    ("A1G7SGD8", "checksum calculated with uppercase form of HRP", "checksum"),
    ("10a06t8", "empty HRP", "empty prefix"),
    ("1qzzfhee", "empty HRP", "empty prefix"),
    ("a12UEL5L", "mixed case", "mixes upper and lower case"),
]

# BIP-350's valid bech32m strings: a bech32 (not bech32m) reader must refuse them.
BECH32M = [
    "A1LQFN3A",
    "a1lqfn3a",
    "abcdef1l7aum6echk45nj3s0wdvt2fg8x9yrzpqzd3ryx",
    "split1checkupstagehandshakeupstreamerranterredcaperredlc445v",
    "?1v759aa",
]

lower_hrps = st.text(
    alphabet=st.characters(min_codepoint=33, max_codepoint=126).filter(lambda c: not c.isupper()),
    min_size=1,
    max_size=83,
)


@pytest.mark.parametrize(("text", "hrp", "words"), VALID, ids=[v[0][:16] for v in VALID])
def test_bip173_valid_strings_decode_and_reencode(text: str, hrp: str, words: list[int]) -> None:
    assert decode_words(text) == (hrp, words)
    assert encode_words(hrp, words) == text.lower()


@pytest.mark.parametrize(("text", "reason", "problem"), INVALID, ids=[v[1] for v in INVALID])
def test_bip173_invalid_strings_are_refused(text: str, reason: str, problem: str) -> None:
    with pytest.raises(EncodingError, match=problem) as caught:
        decode_words(text)
    assert isinstance(caught.value, WalletError)
    assert isinstance(caught.value, ValueError)
    assert caught.value.field == "bech32"


@pytest.mark.parametrize("text", BECH32M)
def test_bech32m_checksums_are_refused(text: str) -> None:
    with pytest.raises(EncodingError, match="checksum"):
        decode_words(text)


def test_there_is_no_90_character_limit_unless_asked() -> None:
    signature = bytes(range(64))  # a uAgents signature: 64 bytes under "sig"
    text = bech32_encode("sig", signature)
    assert len(text) == 113
    assert bech32_decode(text, hrp="sig") == ("sig", signature)
    with pytest.raises(EncodingError, match="longer than 90"):
        bech32_decode(text, max_length=BIP173_MAX_LENGTH)
    ninety = VALID[4][0]
    assert len(ninety) == 90
    assert decode_words(ninety, max_length=BIP173_MAX_LENGTH)[0] == "1"
    long = bytes(range(256)) * 4
    assert bech32_decode(bech32_encode("x", long)) == ("x", long)


def test_upper_case_text_decodes_to_the_same_bytes() -> None:
    text = bech32_encode("agent", b"\x02" + bytes(range(32)))
    assert bech32_decode(text.upper()) == bech32_decode(text)


def test_the_expected_prefix_is_enforced() -> None:
    text = bech32_encode("user", b"\x01" * 32)
    with pytest.raises(EncodingError, match="expected the prefix 'agent'") as caught:
        bech32_decode(text, hrp="agent", field="sender")
    assert caught.value.field == "sender"


def test_padding_must_be_short_and_zero() -> None:
    excess = encode_words("a", [0])  # 5 bits: no whole byte, 5 bits of padding
    with pytest.raises(EncodingError, match="invalid padding"):
        bech32_decode(excess)
    nonzero = encode_words("a", [0, 1])  # 10 bits: one byte and 2 padding bits "01"
    with pytest.raises(EncodingError, match="invalid padding"):
        bech32_decode(nonzero)
    assert bech32_decode(encode_words("a", [0, 0])) == ("a", b"\x00")


def test_convert_bits_refuses_values_out_of_range() -> None:
    with pytest.raises(EncodingError):
        convert_bits([256], 8, 5, pad=True)
    assert convert_bits([0xFF], 8, 5, pad=True) == [31, 28]


def test_encoder_refuses_what_it_cannot_write() -> None:
    with pytest.raises(EncodingError, match="lower case"):
        encode_words("Agent", [])
    with pytest.raises(EncodingError, match="1 to 83"):
        encode_words("", [])
    with pytest.raises(EncodingError, match="1 to 83"):
        encode_words("a" * 84, [])
    with pytest.raises(EncodingError, match="5-bit"):
        encode_words("a", [32])
    with pytest.raises(EncodingError, match="expected bytes"):
        bech32_encode("a", "text")  # type: ignore[arg-type]
    with pytest.raises(EncodingError, match="expected text"):
        decode_words(b"a12uel5l")  # type: ignore[arg-type]


def test_errors_never_echo_the_text() -> None:
    text = "secretword1" + "q" * 20  # bad checksum
    with pytest.raises(EncodingError) as caught:
        decode_words(text)
    assert "secretword" not in str(caught.value)


@settings(max_examples=200, deadline=None)
@given(hrp=lower_hrps, data=st.binary(max_size=200))
def test_round_trip_of_random_bytes(hrp: str, data: bytes) -> None:
    text = bech32_encode(hrp, data)
    assert text == text.lower()
    assert bech32_decode(text) == (hrp, data)


@settings(max_examples=200, deadline=None)
@given(
    data=st.binary(min_size=1, max_size=48),
    position=st.integers(min_value=0),
    replacement=st.sampled_from(CHARSET),
)
def test_one_changed_character_is_detected(data: bytes, position: int, replacement: str) -> None:
    text = bech32_encode("agent", data)  # at most 89 characters: every 1-error is caught
    index = len("agent1") + position % (len(text) - len("agent1"))
    if text[index] == replacement:
        return
    mutated = text[:index] + replacement + text[index + 1 :]
    with pytest.raises(EncodingError, match="checksum"):
        decode_words(mutated)
