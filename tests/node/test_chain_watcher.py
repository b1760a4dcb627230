"""The deposit watcher's loop against a fake chain: order, restarts, failures, hangs and
lost logs; it never stops on its own and leaves nothing running."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable

import pytest

from node.chain.watcher import DepositWatcher, WatcherConfig
from node.state.changes import ContractReceiveDeposit
from tests.node.chain_fakes import FakeChain, FakeSource, deposit

FAST = WatcherConfig(confirmations=2, poll_interval=0.01, max_span=3, step_timeout=0.2)


class Clock:
    """A fake ``sleep`` that records the delays and runs a hook (e.g. mine a block)."""

    def __init__(self, on_sleep: Callable[[], None] = lambda: None) -> None:
        self.delays: list[float] = []
        self.on_sleep = on_sleep

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)
        self.on_sleep()
        await asyncio.sleep(0)


async def take(changes: AsyncIterator[ContractReceiveDeposit], n: int) -> list[int]:
    got = []
    async with asyncio.timeout(2):
        for _ in range(n):
            got.append((await anext(changes)).deposit_id)
    return got


def chain_with(*blocks: list[int]) -> FakeChain:
    chain = FakeChain()
    for block in blocks:
        chain.mine([deposit(n) for n in block])
    return chain


@pytest.mark.asyncio
async def test_deposits_arrive_in_id_order_once_deep_enough() -> None:
    chain = chain_with([1, 2], [], [3], [4, 5, 6], [7])  # blocks 1..5
    clock = Clock(on_sleep=chain.mine)
    watcher = DepositWatcher(FakeSource(chain), next_id=1, from_block=0, config=FAST, sleep=clock)
    changes = watcher.deposits()
    try:
        assert await take(changes, 6) == [1, 2, 3, 4, 5, 6]  # 7 is in the head block
        assert clock.delays == []  # several ranges (max_span 3), no sleeping in between
        assert await take(changes, 1) == [7]  # after one more block
        assert clock.delays == [FAST.poll_interval]
    finally:
        await changes.aclose()
    assert watcher.cursor.next_id == 8


@pytest.mark.asyncio
async def test_a_restart_resumes_at_the_stores_next_id_without_rescanning() -> None:
    chain = chain_with([1, 2, 3], [4], [], [])
    watcher = DepositWatcher(FakeSource(chain), next_id=5, from_block=0, config=FAST)
    batch = await watcher.step()
    assert batch.deposits == ()
    assert batch.caught_up
    assert chain.calls.get("deposit_logs", 0) == 0  # the Vault's count said: nothing new
    chain.mine([deposit(9)])
    chain.mine()
    watcher2 = DepositWatcher(FakeSource(chain), next_id=4, from_block=0, config=FAST)
    got = []
    while not (batch := await watcher2.step()).caught_up:
        got.extend(batch.deposits)
    got.extend(batch.deposits)
    assert [c.deposit_id for c in got] == [4, 5]


@pytest.mark.asyncio
async def test_rpc_failures_are_logged_and_retried_with_back_off(
    caplog: pytest.LogCaptureFixture,
) -> None:
    chain = chain_with([1], [2], [])
    chain.failures = 4
    clock = Clock()
    watcher = DepositWatcher(FakeSource(chain), next_id=1, from_block=0, config=FAST, sleep=clock)
    changes = watcher.deposits()
    with caplog.at_level(logging.WARNING, logger="node.chain.watcher"):
        try:
            assert await take(changes, 2) == [1, 2]
        finally:
            await changes.aclose()
    assert clock.delays == [0.01, 0.02, 0.04, 0.08]
    assert sum("injected failure" in r.getMessage() for r in caplog.records) == 4


@pytest.mark.asyncio
async def test_back_off_is_capped() -> None:
    chain = chain_with([1], [])
    chain.failures = 8
    clock = Clock()
    config = WatcherConfig(confirmations=1, poll_interval=0.01, max_backoff=0.05)
    watcher = DepositWatcher(FakeSource(chain), 1, 0, config=config, sleep=clock)
    changes = watcher.deposits()
    try:
        assert await take(changes, 1) == [1]
    finally:
        await changes.aclose()
    assert max(clock.delays) == 0.05


@pytest.mark.asyncio
async def test_a_hanging_rpc_times_out_and_an_unexpected_error_does_not_stop_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    chain = chain_with([1], [])
    released = asyncio.Event()
    chain.hang = released
    source = FakeSource(chain)
    calls = 0
    original = source.head

    async def head() -> int:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise RuntimeError("a bug in a dependency")
        if calls == 3:
            released.set()  # the RPC answers again
        return await original()

    source.head = head  # type: ignore[method-assign]
    clock = Clock()
    config = WatcherConfig(confirmations=1, poll_interval=0.01, step_timeout=0.05)
    watcher = DepositWatcher(source, 1, 0, config=config, sleep=clock)
    changes = watcher.deposits()
    with caplog.at_level(logging.WARNING, logger="node.chain.watcher"):
        try:
            assert await take(changes, 1) == [1]
        finally:
            await changes.aclose()
    messages = [r.getMessage() for r in caplog.records]
    assert any("timed out" in m for m in messages)
    assert any("unexpected error" in m for m in messages)


@pytest.mark.asyncio
async def test_a_lost_log_is_noticed_and_scanned_again(caplog: pytest.LogCaptureFixture) -> None:
    chain = chain_with([1], [2], [3], [], [])
    chain.lose_log_ids = {2}
    clock = Clock()
    config = WatcherConfig(confirmations=1, poll_interval=0.01, max_span=100)
    watcher = DepositWatcher(FakeSource(chain), 1, 0, config=config, sleep=clock)
    changes = watcher.deposits()
    with caplog.at_level(logging.ERROR, logger="node.chain.watcher"):
        try:
            assert await take(changes, 3) == [1, 2, 3]
        finally:
            await changes.aclose()
    assert any("deposit 2 is not in the logs" in r.getMessage() for r in caplog.records)


@pytest.mark.asyncio
async def test_a_reorg_deeper_than_the_confirmations_is_reported_not_credited(
    caplog: pytest.LogCaptureFixture,
) -> None:
    chain = chain_with([1], [2], [], [])
    watcher = DepositWatcher(FakeSource(chain), 1, 0, config=FAST)
    assert [c.deposit_id for c in (await watcher.step()).deposits] == [1, 2]
    chain.reorg(4, [[], [], [], [], []])  # deeper than 2: deposits 1 and 2 vanish
    batch = await watcher.step()
    assert batch.deposits == ()
    assert batch.problem is not None
    # The credited deposit's block changed hash (the anchor check comes first).
    assert "held deposit 2 when this node credited it" in batch.problem
    assert "deeper than 2 confirmations" in batch.problem
    assert watcher.cursor.next_id == 3  # nothing handed over, nothing taken back
    clock = Clock()
    watcher2 = DepositWatcher(FakeSource(chain), 3, 0, config=FAST, sleep=clock)
    changes = watcher2.deposits()
    with caplog.at_level(logging.ERROR, logger="node.chain.watcher"):
        try:
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.2):
                    await anext(changes)
        finally:
            await changes.aclose()
    assert any("deeper than 2 confirmations" in r.getMessage() for r in caplog.records)
    assert clock.delays[:3] == [0.01, 0.02, 0.04]  # reported with back-off, not every poll


def test_config_is_checked() -> None:
    with pytest.raises(ValueError, match="confirmations"):
        WatcherConfig(confirmations=0)
    with pytest.raises(ValueError, match="max_span"):
        WatcherConfig(max_span=0)
    with pytest.raises(ValueError, match="poll_interval"):
        WatcherConfig(poll_interval=60, max_backoff=30)
