"""Latency of one payment through the wallet client on a 4-node devnet.

    .venv/bin/python scripts/bench_wallet.py [--payments 30]

A devnet comes up; agent 0 deposits USDF with a permit and pays agent 1 ``payments``
times, one after another, through :class:`wallet.client.Wallet`. Prints the median and
90th percentile of: the certificate (sign, a quorum of votes, delivery to a quorum:
``pay_final()``, when the payment is final) and the whole ``pay()`` (plus the receipt: an
inclusion proof under a signed checkpoint, which nodes sign every second or 100
entries). The devnet goes down at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from devnet import Devnet, DevnetConfig
from wallet.agent import connect
from wallet.codec import parse_address
from wallet.signing import PrivateKey
from wallet.types import Amount


def summary(name: str, seconds: list[float]) -> str:
    ms = sorted(s * 1000 for s in seconds)
    p90 = ms[min(len(ms) - 1, int(len(ms) * 0.9))]
    return f"{name:<28} median {statistics.median(ms):7.1f} ms   p90 {p90:7.1f} ms"


async def main_async(devnet: Devnet, payments: int) -> None:
    m = devnet.manifest
    key = PrivateKey.from_hex(m.agents[0].private_key)  # a PUBLIC test key
    payee = parse_address(m.agents[1].address)
    manifest = devnet.state_dir / "manifest.json"
    with tempfile.TemporaryDirectory() as data:
        async with connect(manifest=manifest, key=key, data_dir=Path(data)) as w:
            await w.deposit("10 USDF")
            token = w.tokens.by_symbol("USDF").address
            settle, whole = [], []
            for _ in range(payments):
                t0 = time.perf_counter()
                await w.client.pay_final(payee, Amount(1), token)
                settle.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                await w.client.pay(payee, Amount(1), token)
                whole.append(time.perf_counter() - t0)
    print(summary("certificate (final)", settle))
    print(summary("pay() with its receipt", whole))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--payments", type=int, default=30)
    args = parser.parse_args()
    with Devnet.up(DevnetConfig(start_nodes=True, agents=2)) as devnet:
        asyncio.run(main_async(devnet, args.payments))


if __name__ == "__main__":
    main()
