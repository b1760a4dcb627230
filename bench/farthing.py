"""Farthing payments through the 4-node devnet: throughput at saturation, and the
latency of single payments under an open-loop offered load.

**Throughput** (:func:`throughput`, the approach of ``scripts/bench_payments.py``):
``accounts`` funded ledger accounts; each round every account pays the next one, the
whole round batched (:func:`bench.ledger.run_round`); ``lanes`` groups of accounts run
their rounds concurrently (pipelining). The client signs every order inside the timed
loop, on the same machine as the nodes. Payments confirmed per second = payments applied
by a quorum / wall time of all rounds.

**Latency** (:func:`latency`): ``wallets`` funded accounts pay one payee (the merchant)
one payment per call (:func:`bench.ledger.pay_one`: the wallet's vote collection and
delivery). Sends are scheduled open loop at ``rate`` per second for ``seconds`` seconds,
send ``i`` going to wallet ``i mod wallets``; a wallet makes its payments one after
another (one account's sequence), so a send whose wallet is still busy waits. Latency is
from the start of signing to the certificate delivered to a quorum (``pay_final``'s
return; the connections to the nodes are opened before the clock); the latency from the
scheduled time (queueing included) is reported too. The achieved rate is payments
confirmed / (last confirmation - first scheduled send).
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp

from bench.ledger import Ledger, pay_one, run_round
from bench.stats import percentile
from wallet.client.network import Network
from wallet.client.transport import Transport
from wallet.signing import PrivateKey, sign_order
from wallet.types import Address, Amount, Order, SignedOrder, Transfer
from wallet.types import Sequence as Seq


@dataclass(frozen=True, slots=True)
class Throughput:
    payments: int  # confirmed (applied by a quorum)
    seconds: float
    accounts: int
    rounds: int
    lanes: int
    median_round_ms: float

    @property
    def per_s(self) -> float:
        return self.payments / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True, slots=True)
class Latency:
    offered_per_s: float
    scheduled: int
    confirmed: int
    failed: int
    achieved_per_s: float
    p50_ms: float
    p99_ms: float
    p50_from_schedule_ms: float
    p99_from_schedule_ms: float
    max_ms: float


async def throughput(
    session: aiohttp.ClientSession,
    ledger: Ledger,
    keys: Sequence[PrivateKey],
    rounds: int,
    lanes: int,
    amount: int = 1,
) -> Throughput:
    """Round-robin payments among ``keys`` (funded, at sequence 0), batched per round."""
    n = len(keys)

    def payment(i: int, r: int) -> SignedOrder:
        payer, payee = keys[i], keys[(i + 1) % n]
        order = Transfer(payer.address, payee.address, ledger.token, Amount(amount), Seq(r))
        return sign_order(payer, ledger.domain, order)

    times: list[float] = []

    async def lane(members: list[int]) -> int:
        confirmed = 0
        for r in range(rounds):
            t0 = time.perf_counter()
            signed = [payment(i, r) for i in members]
            confirmed += await run_round(session, ledger.nodes, signed, ledger.quorum)
            times.append(time.perf_counter() - t0)
        return confirmed

    started = time.perf_counter()
    groups = [list(range(g, n, lanes)) for g in range(lanes)]
    confirmed = sum(await asyncio.gather(*(lane(g) for g in groups)))
    elapsed = time.perf_counter() - started
    return Throughput(
        confirmed, elapsed, n, rounds, lanes, statistics.median(times) * 1000 if times else 0.0
    )


async def latency(
    transport: Transport,
    network: Network,
    ledger: Ledger,
    wallets: Sequence[PrivateKey],
    payee: Address,
    rate: float,
    seconds: float,
    amount: int,
) -> Latency:
    """Open-loop single payments at ``rate`` per second for ``seconds`` (see the module)."""
    total = max(1, round(rate * seconds))
    queues: list[asyncio.Queue[float | None]] = [asyncio.Queue() for _ in wallets]
    latencies: list[float] = []
    from_schedule: list[float] = []
    finished: list[float] = []
    failures = 0
    background: set[asyncio.Future[Any]] = set()  # requests past the quorum, as a wallet's

    async def wallet(key: PrivateKey, queue: asyncio.Queue[float | None]) -> None:
        nonlocal failures
        sequence = 0
        while (scheduled := await queue.get()) is not None:
            started = time.perf_counter()
            order: Order = Transfer(key.address, payee, ledger.token, Amount(amount), Seq(sequence))
            try:
                signed = sign_order(key, ledger.domain, order)
                await pay_one(transport, network, signed, background=background)
            except Exception:  # counted, not raised: a miss is a measurement too
                failures += 1
                continue
            done = time.perf_counter()
            sequence += 1
            latencies.append(done - started)
            from_schedule.append(done - scheduled)
            finished.append(done)

    # Open the connections first (one per wallet and node), as wallets that already
    # talked to the nodes would have them: the handshakes are not what is measured.
    await asyncio.gather(
        *(transport.get_log_size(node) for node in network.endpoints for _ in wallets)
    )
    workers = [asyncio.ensure_future(wallet(k, q)) for k, q in zip(wallets, queues, strict=True)]
    t0 = time.perf_counter() + 0.05
    for i in range(total):
        scheduled = t0 + i / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        queues[i % len(queues)].put_nowait(scheduled)
    for q in queues:
        q.put_nowait(None)
    await asyncio.gather(*workers)
    span = (max(finished) - t0) if finished else 0.0
    ms = [x * 1000 for x in latencies] or [0.0]
    queued = [x * 1000 for x in from_schedule] or [0.0]
    return Latency(
        offered_per_s=rate,
        scheduled=total,
        confirmed=len(latencies),
        failed=failures,
        achieved_per_s=len(latencies) / span if span > 0 else 0.0,
        p50_ms=percentile(ms, 50),
        p99_ms=percentile(ms, 99),
        p50_from_schedule_ms=percentile(queued, 50),
        p99_from_schedule_ms=percentile(queued, 99),
        max_ms=max(ms),
    )
