"""The committed EIP-712 vectors (expected values from eth-account and eth-keys, see
scripts/gen_eip712_vectors.py): the hand-written encoder and signer reproduce every one,
and the file is exactly what the generator produces today."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from scripts import gen_eip712_vectors
from wallet import eip712
from wallet.codec import parse_address, parse_hash32, parse_signature
from wallet.eip712 import (
    checkpoint_digest,
    cosignature_digest,
    domain_separator,
    order_digest,
    struct_hash,
)
from wallet.eip712 import vote_digest as wallet_vote_digest
from wallet.signing import PrivateKey, recover
from wallet.types import (
    Amount,
    Checkpoint,
    Cosignature,
    Domain,
    Epoch,
    Hash32,
    Sequence,
    Transfer,
    Vote,
    Withdrawal,
)

ROOT = Path(__file__).resolve().parents[2]
VECTORS = ROOT / "tests" / "wallet" / "vectors" / "eip712.json"


def generator() -> ModuleType:
    return gen_eip712_vectors


@cache
def vector_file() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(VECTORS.read_text())
    return data


def vectors() -> list[dict[str, Any]]:
    return list(vector_file()["vectors"])


Message = Transfer | Withdrawal | Vote | Checkpoint | Cosignature


def build(vector: dict[str, Any]) -> tuple[Domain, Message]:
    """The wallet's values for a vector (the Vote's signer and signature are placeholders:
    they are not part of the signed struct)."""
    d, m = vector["domain"], vector["message"]
    domain = Domain(int(d["chainId"]), parse_address(d["verifyingContract"]))
    match vector["primaryType"]:
        case "Transfer":
            return domain, Transfer(
                parse_address(m["payer"]),
                parse_address(m["payee"]),
                parse_address(m["token"]),
                Amount(int(m["amount"])),
                Sequence(int(m["sequence"])),
                parse_hash32(m["reference"]),
            )
        case "Withdrawal":
            return domain, Withdrawal(
                parse_address(m["account"]),
                parse_address(m["recipient"]),
                parse_address(m["token"]),
                Amount(int(m["amount"])),
                Sequence(int(m["sequence"])),
            )
        case "Vote":
            placeholder = parse_signature("0x" + "11" * 64 + "1b")
            return domain, Vote(
                parse_hash32(m["order"]), Epoch(int(m["epoch"])), domain.vault, placeholder
            )
        case "Checkpoint":
            return domain, Checkpoint(
                parse_address(m["node"]),
                int(m["treeSize"]),
                parse_hash32(m["root"]),
                int(m["timestamp"]),
            )
        case "Cosignature":
            return domain, Cosignature(
                parse_address(m["witness"]),
                parse_address(m["node"]),
                int(m["treeSize"]),
                parse_hash32(m["root"]),
                int(m["timestamp"]),
            )
    raise AssertionError(f"unknown primary type {vector['primaryType']}")


def digest_of(domain: Domain, message: Message) -> Hash32:
    if isinstance(message, Transfer | Withdrawal):
        return order_digest(domain, message)
    if isinstance(message, Vote):
        return wallet_vote_digest(domain, message.order, message.epoch)
    if isinstance(message, Cosignature):
        return cosignature_digest(domain, message)
    return checkpoint_digest(domain, message)


def test_vector_file_is_what_the_generator_produces() -> None:
    gen = generator()
    assert VECTORS.read_text() == gen.render(gen.generate()), (
        "tests/wallet/vectors/eip712.json is stale: run scripts/gen_eip712_vectors.py"
    )


def test_vectors_cover_the_boundaries() -> None:
    names = {v["name"] for v in vectors()}
    for kind in ("transfer", "withdrawal"):
        for edge in ("amount-0", "amount-1", "amount-2**256-1", "sequence-0", "sequence-2**64-1"):
            assert f"{kind}-{edge}" in names
        for chain in ("1", "2**64"):
            assert f"{kind}-chain-{chain}" in names
    assert {"transfer-reference-zero", "vote-epoch-2**64-1", "checkpoint-empty-log"} <= names
    assert {v["primaryType"] for v in vectors()} == {
        "Transfer",
        "Withdrawal",
        "Vote",
        "Checkpoint",
        "Cosignature",
    }
    assert {v["domain"]["chainId"] for v in vectors()} >= {"1", "31337", str(2**64)}
    assert len(vectors()) >= 30


def test_type_strings_match_the_reference_field_lists() -> None:
    types = vector_file()["types"]
    ours = {
        "EIP712Domain": eip712.DOMAIN_TYPE,
        "Transfer": eip712.TRANSFER_TYPE,
        "Withdrawal": eip712.WITHDRAWAL_TYPE,
        "Vote": eip712.VOTE_TYPE,
        "Checkpoint": eip712.CHECKPOINT_TYPE,
        "Cosignature": eip712.COSIGNATURE_TYPE,
    }
    assert {name: f"{name}({','.join(fields)})" for name, fields in types.items()} == ours


@pytest.mark.parametrize("vector", vectors(), ids=lambda v: v["name"])
def test_encoder_reproduces_vector(vector: dict[str, Any]) -> None:
    domain, message = build(vector)
    assert domain_separator(domain) == parse_hash32(vector["domainSeparator"])
    assert struct_hash(message) == parse_hash32(vector["structHash"])
    assert digest_of(domain, message) == parse_hash32(vector["digest"])


@pytest.mark.parametrize("vector", vectors(), ids=lambda v: v["name"])
def test_signer_reproduces_vector(vector: dict[str, Any]) -> None:
    entry = vector_file()["keys"][vector["key"]]
    key = PrivateKey.from_hex(entry["privateKey"])
    digest = parse_hash32(vector["digest"])
    signature = parse_signature(vector["signature"])
    assert key.address == parse_address(entry["address"])
    assert key.unsafe_sign_digest(digest) == signature
    assert recover(digest, signature) == key.address
