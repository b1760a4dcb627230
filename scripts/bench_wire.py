"""Micro-benchmark of the wire format's hot path: decoding a certificate with 3 votes.

    .venv/bin/python scripts/bench_wire.py [--number N] [--repeat R]

Prints the median over R runs of the mean time per call, in µs, of:

- ``certificate_from_json`` on the golden example ``certificate-transfer``
  (tests/wallet/vectors/wire.json), warm: the addresses' EIP-55 checksums are remembered,
  the steady state of a node that sees the same committee members and tokens in every
  certificate;
- the same on N certificates whose six addresses (payer, payee, token, three signers)
  are all distinct and never seen before, cold: six keccak256 per certificate, the worst
  case;
- ``json.loads`` + decode of the golden example's text, warm.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import statistics
import timeit
from pathlib import Path
from typing import Any

from wallet import wire
from wallet.codec import address_hex
from wallet.types import Address

VECTORS = Path(__file__).resolve().parents[1] / "tests" / "wallet" / "vectors" / "wire.json"


def fresh_addresses(obj: dict[str, Any], seed: int) -> dict[str, Any]:
    """``obj`` with its six addresses replaced by new EIP-55 ones derived from ``seed``."""
    out = copy.deepcopy(obj)

    def new(i: int) -> str:
        return address_hex(Address(hashlib.sha256(f"bench/{seed}/{i}".encode()).digest()[:20]))

    for i, key in enumerate(("payer", "payee", "token")):
        out["order"][key] = new(i)
    for i, vote in enumerate(out["votes"]):
        vote["signer"] = new(3 + i)
    return out


def median_us(call: Any, number: int, repeat: int) -> float:
    return statistics.median(timeit.repeat(call, number=number, repeat=repeat)) / number * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--number", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    n, r = args.number, args.repeat
    vectors = json.loads(VECTORS.read_text())["vectors"]
    obj = next(v["json"] for v in vectors if v["name"] == "certificate-transfer")
    text = json.dumps(obj)
    decode = wire.certificate_from_json
    # 6 * n distinct addresses cycle through a cache of ADDRESS_CACHE_SIZE: every one misses.
    assert 6 * n > wire.ADDRESS_CACHE_SIZE
    distinct = [fresh_addresses(obj, seed) for seed in range(n)]

    def cold() -> None:
        for item in distinct:
            decode(item)

    print(f"certificate_from_json, warm           {median_us(lambda: decode(obj), n, r):6.1f} µs")
    print(f"certificate_from_json, cold           {median_us(cold, 1, r) / n:6.1f} µs")
    warm_text = median_us(lambda: decode(json.loads(text)), n, r)
    print(f"json.loads + certificate_from_json    {warm_text:6.1f} µs")


if __name__ == "__main__":
    main()
