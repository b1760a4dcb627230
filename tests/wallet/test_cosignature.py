"""A witness's Cosignature (docs/protocol.md section 1): its EIP-712 digest against
eth-account, signing and verification, and its JSON (docs/wire-format.md)."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from hypothesis import given

from tests.wallet.reference import cosignatures, domains, key_secrets, ref_digest, ref_parts
from wallet import wire
from wallet.eip712 import cosignature_digest, domain_separator, struct_hash
from wallet.errors import EncodingError, InvalidKey
from wallet.signing import PrivateKey, recover, sign_cosignature, verify_cosignature
from wallet.types import Address, Cosignature, Domain, Hash32, Signature

DOMAIN = Domain(31337, Address(bytes.fromhex("cf7ed3acca5a467e9e704c703e8d87f634fb0fc9")))
WITNESS = PrivateKey((7).to_bytes(32, "big"))  # a TEST key
NODE = Address(b"\x42" * 20)
COSIGNATURE = Cosignature(WITNESS.address, NODE, 12, Hash32(b"\x11" * 32), 1_767_225_601_500)


@given(domain=domains, cosignature=cosignatures)
def test_digest_equals_eth_account(domain: Domain, cosignature: Cosignature) -> None:
    assert cosignature_digest(domain, cosignature) == ref_digest(domain, cosignature)
    assert (domain_separator(domain), struct_hash(cosignature)) == ref_parts(domain, cosignature)


@given(secret=key_secrets, cosignature=cosignatures)
def test_signed_cosignatures_verify(secret: bytes, cosignature: Cosignature) -> None:
    key = PrivateKey(secret)
    cosignature = dataclasses.replace(cosignature, witness=key.address)
    signature = sign_cosignature(key, DOMAIN, cosignature)
    assert verify_cosignature(DOMAIN, cosignature, signature)
    assert recover(cosignature_digest(DOMAIN, cosignature), signature) == key.address
    other = dataclasses.replace(cosignature, root=Hash32(bytes(a ^ 1 for a in cosignature.root)))
    assert not verify_cosignature(DOMAIN, other, signature)


def test_only_the_witness_can_sign_its_cosignature() -> None:
    with pytest.raises(InvalidKey, match="cosignature's witness"):
        sign_cosignature(WITNESS, DOMAIN, dataclasses.replace(COSIGNATURE, witness=NODE))


@pytest.mark.parametrize(
    ("field", "value", "name"),
    [("tree_size", 2**64, "treeSize"), ("timestamp", -1, "timestamp"), ("node", b"x", "node")],
)
def test_out_of_range_fields_are_refused(field: str, value: Any, name: str) -> None:
    with pytest.raises(EncodingError) as error:
        cosignature_digest(DOMAIN, dataclasses.replace(COSIGNATURE, **{field: value}))
    assert error.value.field == name


@given(cosignature=cosignatures)
def test_json_round_trips(cosignature: Cosignature) -> None:
    signature = Signature(b"\x1b" * 65)
    text = wire.signed_cosignature_to_json(cosignature, signature)
    assert list(text) == ["witness", "node", "tree_size", "root", "timestamp", "signature"]
    assert wire.signed_cosignature_from_json(text) == (cosignature, signature)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"signature": None}, "signature"),
        ({"tree_size": -1}, "tree_size"),
        ({"tree_size": 1.0}, "tree_size"),
        ({"witness": "0x1234"}, "witness"),
        ({"root": "0x" + "zz" * 32}, "root"),
        ({"extra": 1}, "extra"),
    ],
)
def test_malformed_json_is_refused_with_its_field(change: dict[str, Any], field: str) -> None:
    good = dict(wire.signed_cosignature_to_json(COSIGNATURE, Signature(b"\x1b" * 65)))
    with pytest.raises(EncodingError) as error:
        wire.signed_cosignature_from_json(good | change)
    assert error.value.field == field
    missing = {k: v for k, v in good.items() if k != "timestamp"}
    with pytest.raises(EncodingError, match="timestamp: missing"):
        wire.signed_cosignature_from_json(missing)
