"""Generate tests/wallet/vectors/wire.json: golden examples of the node API's JSON messages.

One or more examples per message type of docs/wire-format.md (order, signed order, vote,
certificate, checkpoint, signed checkpoint), with boundary values. Every value comes from
the reference implementations, never from ``wallet``: the JSON is written here by hand
(addresses through eth-utils' EIP-55, amounts as decimal strings), the digests from
eth-account's ``encode_typed_data`` and the signatures from eth-account, checked against
eth-keys (the helpers of scripts/gen_eip712_vectors.py, whose actors and public test
keys these examples share). So every signature in the file is real: a test can check that
decoding a message yields values whose digests and signers are the expected ones.

A vector has ``name``, ``type`` (the message type), ``json`` (the canonical form: what
``*_to_json`` emits, key order included) and, where relevant, ``digest`` (the EIP-712
digest of its order, vote or checkpoint). Vectors with an ``input`` show an accepted but
non-canonical form (lower- or upper-case addresses, upper-case hex, unsorted votes) that
must decode to the same value as ``json``.

    .venv/bin/python scripts/gen_wire_vectors.py           # rewrite the file
    .venv/bin/python scripts/gen_wire_vectors.py --check   # exit 1 if it is stale

The keys are PUBLIC TEST KEYS: never use them for anything else.
"""

from __future__ import annotations

import copy
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_account.messages import _hash_eip191_message
from eth_utils import to_checksum_address

from scripts import gen_eip712_vectors as E  # noqa: N812 (short: used on every line)
from scripts.vector_files import vector_main

SCRIPTS = Path(__file__).resolve().parent
VECTORS_PATH = SCRIPTS.parent / "tests" / "wallet" / "vectors" / "wire.json"


U64_MAX = 2**64 - 1
U256_MAX = 2**256 - 1
SECRETS: list[bytes] = E.signing_keys()
KEYS = [to_checksum_address(Account.from_key(s).address) for s in SECRETS]
OWNER = 2  # the account that signs the orders
NODE = 1  # the node that signs checkpoints
MEMBERS = [3, 4, 5]  # the committee


def _hex(value: bytes) -> str:
    return "0x" + value.hex()


def _digest(primary: str, message: dict[str, Any]) -> bytes:
    return bytes(_hash_eip191_message(E._signable(E.DEVNET, primary, message)))


def _sign(key: int, digest: bytes) -> str:
    return _hex(E.sign(SECRETS[key], digest))


# ---------------------------------------------------------------- messages (EIP-712 form)


def transfer(**changes: Any) -> dict[str, Any]:
    message: dict[str, Any] = {
        "payer": KEYS[OWNER],
        "payee": E.address("bob"),
        "token": E.address("usdf"),
        "amount": 1_500_000,
        "sequence": 7,
        "reference": E.fixed_bytes("reference", 32),
    }
    return message | changes


def withdrawal(**changes: Any) -> dict[str, Any]:
    message: dict[str, Any] = {
        "account": KEYS[OWNER],
        "recipient": E.address("carol"),
        "token": E.address("far"),
        "amount": 25 * 10**18,
        "sequence": 8,
    }
    return message | changes


def checkpoint(**changes: Any) -> dict[str, Any]:
    message: dict[str, Any] = {
        "node": KEYS[NODE],
        "treeSize": 1024,
        "root": E.fixed_bytes("root", 32),
        "timestamp": 1_767_225_600_000,
    }
    return message | changes


# ---------------------------------------------------------------- their JSON (by hand)


def order_json(primary: str, m: dict[str, Any]) -> dict[str, Any]:
    if primary == "Transfer":
        return {
            "kind": "transfer",
            "payer": to_checksum_address(m["payer"]),
            "payee": to_checksum_address(m["payee"]),
            "token": to_checksum_address(m["token"]),
            "amount": str(m["amount"]),
            "sequence": m["sequence"],
            "reference": _hex(m["reference"]),
        }
    return {
        "kind": "withdrawal",
        "account": to_checksum_address(m["account"]),
        "recipient": to_checksum_address(m["recipient"]),
        "token": to_checksum_address(m["token"]),
        "amount": str(m["amount"]),
        "sequence": m["sequence"],
    }


def checkpoint_json(m: dict[str, Any]) -> dict[str, Any]:
    return {
        "node": to_checksum_address(m["node"]),
        "tree_size": m["treeSize"],
        "root": _hex(m["root"]),
        "timestamp": m["timestamp"],
    }


def certificate(primary: str, m: dict[str, Any], epoch: int, members: list[int]) -> dict[str, Any]:
    digest = _digest(primary, m)
    vote = _digest("Vote", {"order": digest, "epoch": epoch})
    votes = sorted(
        ({"signer": KEYS[k], "signature": _sign(k, vote)} for k in members),
        key=lambda v: bytes.fromhex(v["signer"][2:]),
    )
    return {
        "order": order_json(primary, m),
        "signature": _sign(OWNER, digest),
        "epoch": epoch,
        "votes": votes,
    }


# ---------------------------------------------------------------- non-canonical inputs


def lower_addresses(obj: Any) -> Any:
    """``obj`` with every address in lower case (hashes and signatures unchanged)."""
    if isinstance(obj, dict):
        return {k: lower_addresses(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [lower_addresses(v) for v in obj]
    if isinstance(obj, str) and len(obj) == 42 and obj.startswith("0x"):
        return obj.lower()
    return obj


def upper_hex(obj: Any) -> Any:
    """``obj`` with every 0x string's digits in upper case (the prefix stays ``0x``)."""
    if isinstance(obj, dict):
        return {k: upper_hex(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [upper_hex(v) for v in obj]
    if isinstance(obj, str) and obj.startswith("0x"):
        return "0x" + obj[2:].upper()
    return obj


def vectors() -> list[dict[str, Any]]:
    t, w = transfer(), withdrawal()
    t_digest, w_digest = _digest("Transfer", t), _digest("Withdrawal", w)
    out: list[dict[str, Any]] = []

    def add(name: str, kind: str, json_value: dict[str, Any], **extra: Any) -> None:
        out.append({"name": name, "type": kind, "json": json_value, **extra})

    orders = [
        ("order-transfer", "Transfer", t),
        (
            "order-transfer-max",
            "Transfer",
            transfer(
                payer=E.FF_ADDRESS,
                payee=E.FF_ADDRESS,
                token=E.FF_ADDRESS,
                amount=U256_MAX,
                sequence=U64_MAX,
                reference=E.FF32,
            ),
        ),
        (
            "order-transfer-zero",
            "Transfer",
            transfer(
                payer=E.ZERO_ADDRESS,
                payee=E.ZERO_ADDRESS,
                token=E.ZERO_ADDRESS,
                amount=0,
                sequence=0,
                reference=E.ZERO32,
            ),
        ),
        ("order-withdrawal", "Withdrawal", w),
        ("order-withdrawal-max", "Withdrawal", withdrawal(amount=U256_MAX, sequence=U64_MAX)),
    ]
    for name, primary, m in orders:
        add(name, "order", order_json(primary, m), digest=_hex(_digest(primary, m)))
    canonical = order_json("Transfer", t)
    add(
        "order-transfer-lower-case-input",
        "order",
        canonical,
        digest=_hex(t_digest),
        input=lower_addresses(canonical),
    )
    add(
        "order-transfer-upper-case-input",
        "order",
        canonical,
        digest=_hex(t_digest),
        input=upper_hex(canonical),
    )

    for name, primary, m, digest in [
        ("signed-order-transfer", "Transfer", t, t_digest),
        ("signed-order-withdrawal", "Withdrawal", w, w_digest),
    ]:
        add(
            name,
            "signed_order",
            {"order": order_json(primary, m), "signature": _sign(OWNER, digest)},
            digest=_hex(digest),
        )

    for name, epoch in [("vote", 1), ("vote-epoch-0", 0), ("vote-epoch-max", U64_MAX)]:
        vote = _digest("Vote", {"order": t_digest, "epoch": epoch})
        member = MEMBERS[0]
        add(
            name,
            "vote",
            {
                "order": _hex(t_digest),
                "epoch": epoch,
                "signer": KEYS[member],
                "signature": _sign(member, vote),
            },
            digest=_hex(vote),
        )

    cert = certificate("Transfer", t, 1, MEMBERS)
    add("certificate-transfer", "certificate", cert, digest=_hex(t_digest))
    unsorted = copy.deepcopy(cert)
    unsorted["votes"].reverse()
    add(
        "certificate-transfer-unsorted-input",
        "certificate",
        cert,
        digest=_hex(t_digest),
        input=lower_addresses(unsorted),
    )
    add(
        "certificate-withdrawal-one-vote",
        "certificate",
        certificate("Withdrawal", w, 2, MEMBERS[1:2]),
        digest=_hex(w_digest),
    )
    add(
        "certificate-no-votes",
        "certificate",
        certificate("Transfer", t, U64_MAX, []),
        digest=_hex(t_digest),
    )

    checkpoints = [
        ("checkpoint", checkpoint()),
        ("checkpoint-empty-log", checkpoint(treeSize=0, root=hashlib.sha256().digest())),
        ("checkpoint-max", checkpoint(treeSize=U64_MAX, timestamp=U64_MAX, root=E.FF32)),
    ]
    for name, m in checkpoints:
        add(name, "checkpoint", checkpoint_json(m), digest=_hex(_digest("Checkpoint", m)))
    cp = checkpoint()
    cp_digest = _digest("Checkpoint", cp)
    add(
        "signed-checkpoint",
        "signed_checkpoint",
        checkpoint_json(cp) | {"signature": _sign(NODE, cp_digest)},
        digest=_hex(cp_digest),
    )
    return out


def generate() -> dict[str, Any]:
    """The whole vector file, as JSON-ready data."""
    return {
        "description": (
            "Farthing wire-format golden examples (docs/wire-format.md). Generated by "
            "scripts/gen_wire_vectors.py with eth-utils (EIP-55), eth-account (digests, "
            "signatures) and eth-keys (signatures, independently); do not edit by hand. "
            "'json' is the canonical form; 'input', when present, is an accepted "
            "non-canonical form of the same message. The keys are PUBLIC TEST KEYS."
        ),
        "domain": {
            "name": "Farthing",
            "version": "1",
            "chainId": str(E.DEVNET["chainId"]),
            "verifyingContract": E.DEVNET["verifyingContract"],
        },
        "keys": [{"privateKey": _hex(s), "address": a} for s, a in zip(SECRETS, KEYS, strict=True)],
        "roles": {"owner": OWNER, "node": NODE, "members": MEMBERS},
        "vectors": vectors(),
    }


def render(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=2) + "\n"


def main(argv: list[str] | None = None) -> int:
    return vector_main(
        __doc__.split("\n\n")[0],
        lambda: {VECTORS_PATH: render(generate())},
        "python -m scripts.gen_wire_vectors",
        argv,
    )


if __name__ == "__main__":
    sys.exit(main())
