"""A soak: single payments (one per call, the wallet library's vote collection and
delivery) at half the machine's saturation for single payments, on a 4-node devnet, in
windows of equal length, each with fresh funded wallets. No payment may fail, no node's
memory may grow, and the latency must stay stable. Prints, per window, the achieved rate
and p50 / p99, and each node's RSS at the start and the end.

By default a bounded form for CI (3 windows of 6 s); ``FARTHING_LONG=1`` runs the full
soak: 10 windows of 60 s (10 minutes). ``FARTHING_SOAK_RATE`` overrides the offered
rate (payments per second; default 60, half of the about 120-140/s single payments
saturate at on this 2-core machine with everything on it: docs/performance.md).
"""

from __future__ import annotations

import asyncio
import os
import statistics
from collections.abc import Iterator

import aiohttp
import pytest

from bench import farthing
from bench.ledger import USDF, Ledger, deposit, fund, wait_for_balance
from bench.node_resources import node_rss_mb
from devnet import Devnet, DevnetConfig
from tests.support.long_runs import LONG
from wallet.client.network import Network
from wallet.client.transport import HttpTransport
from wallet.signing import PrivateKey

pytestmark = pytest.mark.integration

WINDOWS, WINDOW_SECONDS = (10, 60.0) if LONG else (3, 6.0)
RATE = float(os.environ.get("FARTHING_SOAK_RATE", "60"))
WALLETS = 20


@pytest.fixture(scope="module")
def devnet() -> Iterator[Devnet]:
    with Devnet.up(DevnetConfig(start_nodes=True, agents=1)) as net:
        yield net


async def _soak(
    devnet: Devnet,
) -> tuple[list[farthing.Latency], dict[str, float], dict[str, float]]:
    m = devnet.manifest
    ledger = Ledger.of(m)
    network = Network.from_manifest(devnet.state_dir / "manifest.json")
    funder = PrivateKey.from_hex(m.agents[0].private_key)  # a PUBLIC devnet test key
    merchant = PrivateKey.generate()
    per_window = int(RATE * WINDOW_SECONDS / WALLETS) + 2  # payments of 1 base unit each
    await asyncio.to_thread(deposit, m, 0, 1_000 * USDF)
    windows: list[farthing.Latency] = []
    async with (
        aiohttp.ClientSession() as session,
        HttpTransport(timeout=10.0, connections=128) as transport,
    ):
        await wait_for_balance(session, ledger.nodes, m.agents[0].address)
        sequence = 0
        start_rss: dict[str, float] = {}
        for window in range(WINDOWS + 1):  # window 0 warms up (not judged)
            keys = [PrivateKey.generate() for _ in range(WALLETS)]
            sequence = await fund(
                session, ledger, funder, [k.address for k in keys], per_window, sequence
            )
            result = await farthing.latency(
                transport, network, ledger, keys, merchant.address, RATE, WINDOW_SECONDS, 1
            )
            if window == 0:
                start_rss = node_rss_mb(m)
                continue
            windows.append(result)
            print(
                f"soak window {window}: {result.confirmed} payments, {result.failed} failed, "
                f"{result.achieved_per_s:.0f}/s, p50 {result.p50_ms:.1f} ms, "
                f"p99 {result.p99_ms:.1f} ms",
                flush=True,
            )
    return windows, start_rss, node_rss_mb(m)


@pytest.mark.timeout(1_200 if LONG else 300)
def test_soak_at_half_saturation(devnet: Devnet) -> None:
    windows, start, end = asyncio.run(_soak(devnet))
    for name in sorted(start):
        print(
            f"soak {name}: RSS {start[name]:.1f} MiB after warm-up, {end[name]:.1f} MiB at the end"
        )
    assert all(w.failed == 0 for w in windows)
    assert all(w.confirmed == w.scheduled for w in windows)
    # Memory flat: a node may settle a little (allocator, caches filling to their bound),
    # not grow with the payments.
    for name in start:
        assert end[name] <= start[name] * 1.2 + 8, (name, start[name], end[name])
    # Latency stable: no window's median drifts far from the run's (a shared machine:
    # generous, but a leak or a growing queue would blow through it).
    overall = statistics.median(w.p50_ms for w in windows)
    assert all(w.p50_ms <= 3 * overall + 5 for w in windows), [w.p50_ms for w in windows]
