"""Latency of single payments against offered load, with the CPU each payment costs.

    .venv/bin/python scripts/bench_latency.py [--rates 50,100,250] [--seconds 6]
        [--wallets 20]

A 4-node devnet comes up; ``wallets`` fresh ledger accounts are funded; then, for each
rate, the benchmark's open-loop single-payment run (:func:`bench.farthing.latency`: one
payment per call, the wallet library's vote collection and delivery) at that offered
rate. Prints, per rate, the achieved rate, p50 / p99 (from signing to the certificate
delivered to a quorum) and the CPU microseconds per payment of each node and of this
client process. The devnet goes down at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import os

import aiohttp

from bench import farthing
from bench.cpu import CpuMeter
from bench.ledger import USDF, Ledger, deposit, fund, wait_for_balance
from devnet import Devnet, DevnetConfig
from wallet.client.network import Network
from wallet.client.transport import HttpTransport
from wallet.signing import PrivateKey


async def main_async(devnet: Devnet, rates: list[float], seconds: float, wallets: int) -> None:
    m = devnet.manifest
    ledger = Ledger.of(m)
    network = Network.from_manifest(devnet.state_dir / "manifest.json")
    funder = PrivateKey.from_hex(m.agents[0].private_key)  # a PUBLIC devnet test key
    keys = [PrivateKey.generate() for _ in range(wallets)]
    merchant = PrivateKey.generate()
    await asyncio.to_thread(deposit, m, 0, 5_000 * USDF)
    pids = {p.name: p.pid for p in devnet.processes() if p.name.startswith("node-")}
    async with (
        aiohttp.ClientSession() as session,
        HttpTransport(timeout=10.0, connections=128) as transport,
    ):
        await wait_for_balance(session, ledger.nodes, m.agents[0].address)
        sequence = await fund(session, ledger, funder, [k.address for k in keys], 10 * USDF)
        for rate in rates:
            meter = CpuMeter({**pids, "client": os.getpid()})
            lat = await farthing.latency(
                transport, network, ledger, keys, merchant.address, rate, seconds, 1
            )
            cpu = meter.per_payment_us(lat.confirmed)
            nodes = [us for name, us in cpu.items() if name.startswith("node-")]
            print(
                f"{rate:g}/s offered: {lat.achieved_per_s:.0f}/s achieved, "
                f"p50 {lat.p50_ms:.1f} ms, p99 {lat.p99_ms:.1f} ms, {lat.failed} failed; "
                f"CPU per payment: nodes {', '.join(f'{us:.0f}' for us in nodes)} us, "
                f"client {cpu.get('client', 0.0):.0f} us",
                flush=True,
            )
            # The wallets' sequences moved on: the next rate starts from fresh keys.
            keys = [PrivateKey.generate() for _ in range(wallets)]
            sequence = await fund(
                session, ledger, funder, [k.address for k in keys], 10 * USDF, sequence
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", default="50,100,250", help="offered payments/s, comma-separated")
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--wallets", type=int, default=20)
    args = parser.parse_args()
    rates = [float(r) for r in args.rates.split(",")]
    with Devnet.up(DevnetConfig(start_nodes=True, agents=1)) as devnet:
        asyncio.run(main_async(devnet, rates, args.seconds, args.wallets))


if __name__ == "__main__":
    main()
