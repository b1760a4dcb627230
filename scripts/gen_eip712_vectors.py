"""Generate tests/wallet/vectors/eip712.json: Farthing's EIP-712 test vectors.

Every expected value comes from the reference implementations, never from ``wallet``:
the domain separator, struct hash and digest from eth-account's ``encode_typed_data``,
the signatures from eth-account's ``unsafe_sign_hash``, each one checked against
eth-keys' pure-Python ECDSA (which shares no code with libsecp256k1, the library both
eth-account and ``wallet`` sign with here). The inputs are fixed (labels hashed with
SHA-256), so the output is byte-for-byte reproducible; ``tests/wallet/test_vectors.py``
regenerates it and fails if the committed file differs.

    .venv/bin/python scripts/gen_eip712_vectors.py           # rewrite the file
    .venv/bin/python scripts/gen_eip712_vectors.py --check   # exit 1 if it is stale

The keys are PUBLIC TEST KEYS: never use them for anything else.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_account.messages import _hash_eip191_message, encode_typed_data
from eth_keys import keys
from eth_keys.backends.native import NativeECCBackend
from eth_utils import to_checksum_address

from scripts.vector_files import vector_main

VECTORS_PATH = Path(__file__).resolve().parents[1] / "tests" / "wallet" / "vectors" / "eip712.json"

SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
U64_MAX = 2**64 - 1
U256_MAX = 2**256 - 1

FIELDS: dict[str, list[tuple[str, str]]] = {
    "EIP712Domain": [
        ("name", "string"),
        ("version", "string"),
        ("chainId", "uint256"),
        ("verifyingContract", "address"),
    ],
    "Transfer": [
        ("payer", "address"),
        ("payee", "address"),
        ("token", "address"),
        ("amount", "uint256"),
        ("sequence", "uint64"),
        ("reference", "bytes32"),
    ],
    "Withdrawal": [
        ("account", "address"),
        ("recipient", "address"),
        ("token", "address"),
        ("amount", "uint256"),
        ("sequence", "uint64"),
    ],
    "Vote": [("order", "bytes32"), ("epoch", "uint64")],
    "Checkpoint": [
        ("node", "address"),
        ("treeSize", "uint64"),
        ("root", "bytes32"),
        ("timestamp", "uint64"),
    ],
    "Cosignature": [
        ("witness", "address"),
        ("node", "address"),
        ("treeSize", "uint64"),
        ("root", "bytes32"),
        ("timestamp", "uint64"),
    ],
}


def fixed_bytes(label: str, size: int) -> bytes:
    """``size`` reproducible pseudo-random bytes named by ``label``."""
    out = b""
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(f"farthing/eip712-vectors/{label}/{counter}".encode()).digest()
        counter += 1
    return out[:size]


def address(label: str) -> str:
    return to_checksum_address(fixed_bytes(f"address/{label}", 20))


ZERO_ADDRESS = to_checksum_address(bytes(20))
FF_ADDRESS = to_checksum_address(b"\xff" * 20)
ZERO32 = bytes(32)
FF32 = b"\xff" * 32


def signing_keys() -> list[bytes]:
    """The signing keys: the smallest and largest valid scalars, and four from labels."""
    secrets = [(1).to_bytes(32, "big"), (SECP256K1_N - 1).to_bytes(32, "big")]
    for i in range(4):
        secret = fixed_bytes(f"key/{i}", 32)
        assert 0 < int.from_bytes(secret, "big") < SECP256K1_N
        secrets.append(secret)
    return secrets


def _domain(chain_id: int, vault: str) -> dict[str, Any]:
    return {"name": "Farthing", "version": "1", "chainId": chain_id, "verifyingContract": vault}


VAULT = address("vault")
DEVNET = _domain(31337, VAULT)


def _transfer(**changes: Any) -> dict[str, Any]:
    message: dict[str, Any] = {
        "payer": address("alice"),
        "payee": address("bob"),
        "token": address("usdf"),
        "amount": 1_500_000,
        "sequence": 7,
        "reference": fixed_bytes("reference", 32),
    }
    return message | changes


def _withdrawal(**changes: Any) -> dict[str, Any]:
    message: dict[str, Any] = {
        "account": address("alice"),
        "recipient": address("carol"),
        "token": address("far"),
        "amount": 25 * 10**18,
        "sequence": 8,
    }
    return message | changes


def _checkpoint(**changes: Any) -> dict[str, Any]:
    message: dict[str, Any] = {
        "node": address("node-0"),
        "treeSize": 1024,
        "root": fixed_bytes("root", 32),
        "timestamp": 1_767_225_600_000,
    }
    return message | changes


def _cosignature(**changes: Any) -> dict[str, Any]:
    message: dict[str, Any] = {
        "witness": address("node-1"),
        "node": address("node-0"),
        "treeSize": 1024,
        "root": fixed_bytes("root", 32),
        "timestamp": 1_767_225_601_500,
    }
    return message | changes


def reference_digest(domain: dict[str, Any], primary: str, message: dict[str, Any]) -> bytes:
    return bytes(_hash_eip191_message(_signable(domain, primary, message)))


def _signable(domain: dict[str, Any], primary: str, message: dict[str, Any]) -> Any:
    types = {
        name: [{"name": n, "type": t} for n, t in FIELDS[name]]
        for name in ("EIP712Domain", primary)
    }
    return encode_typed_data(
        full_message={"types": types, "primaryType": primary, "domain": domain, "message": message}
    )


def cases() -> list[tuple[str, dict[str, Any], str, dict[str, Any]]]:
    """(name, domain, primary type, message) of every vector, in file order."""
    t, w = _transfer(), _withdrawal()
    order_t = reference_digest(DEVNET, "Transfer", t)
    order_w = reference_digest(DEVNET, "Withdrawal", w)
    chains = {"1": 1, "2**64": 2**64, "2**256-1": U256_MAX}
    out: list[tuple[str, dict[str, Any], str, dict[str, Any]]] = [
        ("transfer", DEVNET, "Transfer", t),
        ("transfer-amount-0", DEVNET, "Transfer", _transfer(amount=0)),
        ("transfer-amount-1", DEVNET, "Transfer", _transfer(amount=1)),
        ("transfer-amount-2**256-1", DEVNET, "Transfer", _transfer(amount=U256_MAX)),
        ("transfer-sequence-0", DEVNET, "Transfer", _transfer(sequence=0)),
        ("transfer-sequence-2**64-1", DEVNET, "Transfer", _transfer(sequence=U64_MAX)),
        ("transfer-reference-zero", DEVNET, "Transfer", _transfer(reference=ZERO32)),
        ("transfer-reference-ff", DEVNET, "Transfer", _transfer(reference=FF32)),
        ("transfer-to-self", DEVNET, "Transfer", _transfer(payee=address("alice"))),
        (
            "transfer-zero-addresses",
            DEVNET,
            "Transfer",
            _transfer(payer=ZERO_ADDRESS, payee=ZERO_ADDRESS, token=ZERO_ADDRESS),
        ),
        (
            "transfer-ff-addresses",
            DEVNET,
            "Transfer",
            _transfer(payer=FF_ADDRESS, payee=FF_ADDRESS, token=FF_ADDRESS),
        ),
        (
            "transfer-all-max",
            _domain(U256_MAX, FF_ADDRESS),
            "Transfer",
            _transfer(
                payer=FF_ADDRESS,
                payee=FF_ADDRESS,
                token=FF_ADDRESS,
                amount=U256_MAX,
                sequence=U64_MAX,
                reference=FF32,
            ),
        ),
        (
            "transfer-all-zero",
            _domain(0, ZERO_ADDRESS),
            "Transfer",
            _transfer(
                payer=ZERO_ADDRESS,
                payee=ZERO_ADDRESS,
                token=ZERO_ADDRESS,
                amount=0,
                sequence=0,
                reference=ZERO32,
            ),
        ),
    ]
    out += [
        (f"transfer-chain-{label}", _domain(chain, VAULT), "Transfer", t)
        for label, chain in chains.items()
    ]
    out += [
        ("transfer-other-vault", _domain(31337, address("other-vault")), "Transfer", t),
        ("withdrawal", DEVNET, "Withdrawal", w),
        ("withdrawal-amount-0", DEVNET, "Withdrawal", _withdrawal(amount=0)),
        ("withdrawal-amount-1", DEVNET, "Withdrawal", _withdrawal(amount=1)),
        ("withdrawal-amount-2**256-1", DEVNET, "Withdrawal", _withdrawal(amount=U256_MAX)),
        ("withdrawal-sequence-0", DEVNET, "Withdrawal", _withdrawal(sequence=0)),
        ("withdrawal-sequence-2**64-1", DEVNET, "Withdrawal", _withdrawal(sequence=U64_MAX)),
        ("withdrawal-to-self", DEVNET, "Withdrawal", _withdrawal(recipient=address("alice"))),
        (
            "withdrawal-zero-addresses",
            DEVNET,
            "Withdrawal",
            _withdrawal(account=ZERO_ADDRESS, recipient=ZERO_ADDRESS, token=ZERO_ADDRESS),
        ),
    ]
    out += [
        (f"withdrawal-chain-{label}", _domain(chain, VAULT), "Withdrawal", w)
        for label, chain in chains.items()
    ]
    out += [
        ("vote-transfer-epoch-1", DEVNET, "Vote", {"order": order_t, "epoch": 1}),
        ("vote-withdrawal-epoch-1", DEVNET, "Vote", {"order": order_w, "epoch": 1}),
        ("vote-epoch-0", DEVNET, "Vote", {"order": order_t, "epoch": 0}),
        ("vote-epoch-2**64-1", DEVNET, "Vote", {"order": order_t, "epoch": U64_MAX}),
        ("vote-order-zero", DEVNET, "Vote", {"order": ZERO32, "epoch": 1}),
        ("vote-order-ff", DEVNET, "Vote", {"order": FF32, "epoch": 1}),
        ("vote-chain-1", _domain(1, VAULT), "Vote", {"order": order_t, "epoch": 1}),
        ("checkpoint", DEVNET, "Checkpoint", _checkpoint()),
        ("checkpoint-empty-log", DEVNET, "Checkpoint", _checkpoint(treeSize=0, root=ZERO32)),
        ("checkpoint-tree-size-1", DEVNET, "Checkpoint", _checkpoint(treeSize=1)),
        ("checkpoint-tree-size-2**64-1", DEVNET, "Checkpoint", _checkpoint(treeSize=U64_MAX)),
        ("checkpoint-timestamp-0", DEVNET, "Checkpoint", _checkpoint(timestamp=0)),
        ("checkpoint-timestamp-2**64-1", DEVNET, "Checkpoint", _checkpoint(timestamp=U64_MAX)),
        ("checkpoint-chain-1", _domain(1, VAULT), "Checkpoint", _checkpoint()),
        ("cosignature", DEVNET, "Cosignature", _cosignature()),
        ("cosignature-tree-size-1", DEVNET, "Cosignature", _cosignature(treeSize=1)),
        (
            "cosignature-tree-size-2**64-1",
            DEVNET,
            "Cosignature",
            _cosignature(treeSize=U64_MAX),
        ),
        ("cosignature-timestamp-0", DEVNET, "Cosignature", _cosignature(timestamp=0)),
        (
            "cosignature-timestamp-2**64-1",
            DEVNET,
            "Cosignature",
            _cosignature(timestamp=U64_MAX),
        ),
        (
            "cosignature-zero-addresses",
            DEVNET,
            "Cosignature",
            _cosignature(witness=ZERO_ADDRESS, node=ZERO_ADDRESS, root=ZERO32),
        ),
        (
            "cosignature-ff-addresses",
            DEVNET,
            "Cosignature",
            _cosignature(witness=FF_ADDRESS, node=FF_ADDRESS, root=FF32),
        ),
        ("cosignature-chain-1", _domain(1, VAULT), "Cosignature", _cosignature()),
    ]
    return out


def _json_value(kind: str, value: Any) -> str:
    """A field as JSON text: addresses EIP-55, bytes32 lower-case hex, integers in
    decimal strings (uint256 does not fit a JSON number in most languages)."""
    if kind == "address":
        return to_checksum_address(value)
    if kind == "bytes32":
        return "0x" + bytes(value).hex()
    return str(value)


def sign(secret: bytes, digest: bytes) -> bytes:
    """eth-account's signature of ``digest``, checked against eth-keys' pure-Python ECDSA."""
    reference = bytes(Account.unsafe_sign_hash(digest, secret).signature)
    independent = keys.PrivateKey(secret, backend=NativeECCBackend()).sign_msg_hash(digest)
    r, s, v = independent.r, independent.s, independent.v + 27
    assert reference == r.to_bytes(32, "big") + s.to_bytes(32, "big") + bytes((v,)), digest
    return reference


def generate() -> dict[str, Any]:
    """The whole vector file, as JSON-ready data."""
    secrets = signing_keys()
    vectors = []
    for i, (name, domain, primary, message) in enumerate(cases()):
        signable = _signable(domain, primary, message)
        digest = bytes(_hash_eip191_message(signable))
        key = i % len(secrets)
        vectors.append(
            {
                "name": name,
                "primaryType": primary,
                "domain": {
                    "chainId": str(domain["chainId"]),
                    "verifyingContract": to_checksum_address(domain["verifyingContract"]),
                },
                "message": {n: _json_value(t, message[n]) for n, t in FIELDS[primary]},
                "domainSeparator": "0x" + bytes(signable.header).hex(),
                "structHash": "0x" + bytes(signable.body).hex(),
                "digest": "0x" + digest.hex(),
                "key": key,
                "signature": "0x" + sign(secrets[key], digest).hex(),
            }
        )
    return {
        "description": (
            "Farthing EIP-712 test vectors (docs/protocol.md section 1). Generated by "
            "scripts/gen_eip712_vectors.py from eth-account (digests, signatures) and "
            "eth-keys (signatures, independently); do not edit by hand. Integers are "
            "decimal strings. The keys are PUBLIC TEST KEYS."
        ),
        "domain": {"name": "Farthing", "version": "1"},
        "types": {name: [f"{t} {n}" for n, t in fields] for name, fields in FIELDS.items()},
        "keys": [
            {"privateKey": "0x" + s.hex(), "address": Account.from_key(s).address} for s in secrets
        ],
        "vectors": vectors,
    }


def render(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=2) + "\n"


def main(argv: list[str] | None = None) -> int:
    return vector_main(
        __doc__.split("\n\n")[0],
        lambda: {VECTORS_PATH: render(generate())},
        "python -m scripts.gen_eip712_vectors",
        argv,
    )


if __name__ == "__main__":
    sys.exit(main())
