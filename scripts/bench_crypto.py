"""Micro-benchmark of the protocol's hot path: the wallet's hand-written EIP-712 encoder
and secp256k1 signing/recovery, against eth-account doing the same work.

    .venv/bin/python scripts/bench_crypto.py [--number N] [--repeat R]

Prints, per operation, the median over R runs of the mean time of N calls, in µs, and
for each pair the ratio eth-account / wallet.
"""

from __future__ import annotations

import argparse
import statistics
import timeit
from collections.abc import Callable
from typing import Any

from eth_account import Account
from eth_account.messages import _hash_eip191_message, encode_typed_data

from scripts.gen_eip712_vectors import FIELDS
from wallet.codec import address_hex
from wallet.eip712 import order_digest, vote_digest
from wallet.keccak import IMPLEMENTATION, keccak256
from wallet.signing import PrivateKey, recover, sign_order
from wallet.types import Address, Amount, Domain, Epoch, Hash32, Sequence, Transfer

SECRET = bytes.fromhex("4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318")


def full_message(domain: Domain, t: Transfer) -> dict[str, Any]:
    return {
        "types": {
            name: [{"name": n, "type": t} for n, t in FIELDS[name]]
            for name in ("EIP712Domain", "Transfer")
        },
        "primaryType": "Transfer",
        "domain": {
            "name": "Farthing",
            "version": "1",
            "chainId": domain.chain_id,
            "verifyingContract": address_hex(domain.vault),
        },
        "message": {
            "payer": address_hex(t.payer),
            "payee": address_hex(t.payee),
            "token": address_hex(t.token),
            "amount": t.amount,
            "sequence": t.sequence,
            "reference": t.reference,
        },
    }


def timings_us(fn: Callable[[], object], number: int, repeat: int) -> tuple[float, float]:
    """(median, min) over ``repeat`` runs of the mean time of ``number`` calls, in µs."""
    fn()  # warm up (caches, first-call imports)
    runs = [t / number * 1e6 for t in timeit.repeat(fn, number=number, repeat=repeat)]
    return statistics.median(runs), min(runs)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--number", type=int, default=2000, help="calls per run")
    parser.add_argument("--repeat", type=int, default=7, help="runs (the median is printed)")
    args = parser.parse_args(argv)

    key = PrivateKey(SECRET)
    domain = Domain(31337, Address(bytes.fromhex("5fbdb2315678afecb367f032d93f642f64180aa3")))
    transfer = Transfer(
        key.address,
        Address(b"\xbb" * 20),
        Address(b"\x70" * 20),
        Amount(1_500_000),
        Sequence(7),
        Hash32(b"\x42" * 32),
    )
    message = full_message(domain, transfer)
    digest = order_digest(domain, transfer)
    signature = key.unsafe_sign_digest(digest)
    assert bytes(_hash_eip191_message(encode_typed_data(full_message=message))) == digest
    assert bytes(Account.sign_typed_data(SECRET, full_message=message).signature) == signature

    def eth_digest() -> bytes:
        return bytes(_hash_eip191_message(encode_typed_data(full_message=message)))

    def eth_digest_recover() -> str:
        return str(Account._recover_hash(eth_digest(), signature=signature))

    block = bytes(224)
    cases: list[tuple[str, Callable[[], object]]] = [
        ("wallet keccak256 (224 bytes)", lambda: keccak256(block)),
        ("wallet order_digest (Transfer)", lambda: order_digest(domain, transfer)),
        ("eth-account encode_typed_data + hash", eth_digest),
        ("wallet vote_digest", lambda: vote_digest(domain, digest, Epoch(1))),
        ("wallet unsafe_sign_digest", lambda: key.unsafe_sign_digest(digest)),
        ("wallet recover", lambda: recover(digest, signature)),
        (
            "wallet order_digest + recover",
            lambda: recover(order_digest(domain, transfer), signature),
        ),
        ("eth-account encode + _recover_hash", eth_digest_recover),
        ("wallet sign_order (digest + sign)", lambda: sign_order(key, domain, transfer)),
        (
            "eth-account sign_typed_data",
            lambda: Account.sign_typed_data(SECRET, full_message=message),
        ),
    ]
    results: dict[str, float] = {}
    print(f"{args.repeat} runs x {args.number} calls, µs per call: median (min)")
    print(f"keccak: {IMPLEMENTATION}")
    for name, fn in cases:
        results[name], fastest = timings_us(fn, args.number, args.repeat)
        print(f"  {name:<40} {results[name]:8.1f} ({fastest:.1f})")
    print("eth-account / wallet, medians")
    for eth, ours in (
        ("eth-account encode_typed_data + hash", "wallet order_digest (Transfer)"),
        ("eth-account encode + _recover_hash", "wallet order_digest + recover"),
        ("eth-account sign_typed_data", "wallet sign_order (digest + sign)"),
    ):
        print(f"  {eth} / {ours}: {results[eth] / results[ours]:.1f}x")


if __name__ == "__main__":
    main()
