"""Latency of one paid, metered request between two Farthing agents on a 4-node devnet.

    .venv/bin/python scripts/bench_market.py [--requests 50]

A devnet comes up; agent 0 deposits USDF and buys from agent 1 (wallet.uagents.market)
``requests`` requests, one after another, first with ``Buyer(sync=True)`` (each answer in
the HTTP response) and then ``sync=False`` (each answer a message of its own, as with a
uAgents seller). One request is: ``pay_final`` (sign, a quorum of votes, the certificate
delivered to a quorum), ``CommitPayment`` (the seller fetches and verifies the
certificate, ``CompletePayment``), ``ServiceRequest`` (the content and the signed
delivery receipt, checked). Prints the median and 90th percentile per request, and the
median of the payment alone. The devnet goes down at the end.
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
from wallet.signing import PrivateKey
from wallet.types import Amount
from wallet.uagents.agent import Agent
from wallet.uagents.market import Buyer, Offer, Seller
from wallet.uagents.resolver import StaticResolver

PRICE = 1000  # 0.001 USDF


def summary(name: str, seconds: list[float]) -> str:
    ms = sorted(s * 1000 for s in seconds)
    p90 = ms[min(len(ms) - 1, int(len(ms) * 0.9))]
    return f"{name:<34} median {statistics.median(ms):7.1f} ms   p90 {p90:7.1f} ms"


async def echo(body: str) -> str:
    return body


async def run(devnet: Devnet, requests: int) -> None:
    m = devnet.manifest
    buyer_key = PrivateKey.from_hex(m.agents[0].private_key)  # PUBLIC test keys
    seller_key = PrivateKey.from_hex(m.agents[1].private_key)
    manifest = devnet.state_dir / "manifest.json"
    usdf = m.contracts.stable
    with tempfile.TemporaryDirectory() as data:
        async with (
            connect(manifest=manifest, key=buyer_key, data_dir=Path(data) / "b") as bw,
            connect(manifest=manifest, key=seller_key, data_dir=Path(data) / "s") as sw,
        ):
            await bw.deposit("10 USDF")
            for sync in (True, False):
                resolver = StaticResolver()
                seller_agent = Agent(seller_key, name="seller", resolver=resolver)
                buyer_agent = Agent(buyer_key, name="buyer", resolver=resolver)
                Seller(seller_agent, sw, seller_key, {"echo": Offer(usdf, PRICE)}, echo)
                buyer = Buyer(buyer_agent, bw, seller_agent.address, sync=sync)
                async with seller_agent, buyer_agent:
                    resolver.add(seller_agent.address, seller_agent.endpoint)
                    resolver.add(buyer_agent.address, buyer_agent.endpoint)
                    await buyer.request_quote(
                        "echo", units=requests + 1, max_unit_price=PRICE, token=usdf
                    )
                    await buyer.accept()
                    await buyer.request("warm-up")
                    whole: list[float] = []
                    for i in range(requests):
                        t0 = time.perf_counter()
                        await buyer.request(f"request {i}")
                        whole.append(time.perf_counter() - t0)
                    await buyer.close()
                mode = "sync" if sync else "async"
                print(summary(f"paid request ({mode} replies)", whole))
            token = bw.tokens.by_symbol("USDF").address
            payee = sw.address
            alone: list[float] = []
            for _ in range(requests):
                t0 = time.perf_counter()
                await bw.client.pay_final(payee, Amount(PRICE), token)
                alone.append(time.perf_counter() - t0)
            print(summary("the payment alone (pay_final)", alone))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=50)
    args = parser.parse_args()
    with Devnet.up(DevnetConfig(start_nodes=True, agents=2)) as devnet:
        asyncio.run(run(devnet, args.requests))


if __name__ == "__main__":
    main()
