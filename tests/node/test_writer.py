"""The writer: concurrent callers, one writer, group commit that reads its own batch."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from node.state import (
    ActionSubmitOrder,
    ContractReceiveDeposit,
    EventRefused,
    MemoryLedger,
    ReceiveCertificate,
    SendVote,
    transition,
)
from node.state.changes import StateChange
from node.store import LedgerStore
from node.writer import Writer
from tests.node.factories import ALICE, BOB, COMMITTEE, DOMAIN, USDF, Node, certify, transfer
from wallet.types import Amount


def changes() -> list[StateChange]:
    out: list[StateChange] = [ContractReceiveDeposit(1, ALICE.address, USDF, Amount(1_000))]
    for sequence in range(20):
        signed = transfer(ALICE, BOB, 7, sequence)
        out += [ActionSubmitOrder(signed), ReceiveCertificate(certify(signed))]
    out.append(ActionSubmitOrder(transfer(ALICE, BOB, 7, 5)))  # a used sequence: refused
    return out


@pytest.mark.asyncio
async def test_group_commit_equals_one_by_one(tmp_path: Path) -> None:
    store = LedgerStore(tmp_path, DOMAIN, sync=False)
    store.put_committee(COMMITTEE)
    writer = Writer(store, Node().context, max_batch=8)
    async with asyncio.TaskGroup() as group:
        runner = group.create_task(writer.run())
        # All queued at once: the writer applies them in several batches of up to 8.
        results = await asyncio.gather(*(writer.apply(c) for c in changes()))
        runner.cancel()

    reference = MemoryLedger([COMMITTEE])
    context = Node().context
    expected = []
    for change in changes():
        t = transition(reference, context, change)
        reference.commit(t)
        expected.append(t.events)
    assert [r.events for r in results] == expected
    assert sum(isinstance(r.events[0], SendVote) for r in results) == 20
    assert isinstance(results[-1].events[0], EventRefused)
    for who in (ALICE, BOB):
        assert store.account(who.address) == reference.account(who.address)
    assert store.log_size() == len(reference.log) == 21
    store.close()


@pytest.mark.asyncio
async def test_a_failing_rule_fails_only_its_caller(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import node.writer as writer_module

    store = LedgerStore(tmp_path, DOMAIN, sync=False)
    store.put_committee(COMMITTEE)
    writer = Writer(store, Node().context)
    real = writer_module.transition

    def flaky(view, context, change):  # type: ignore[no-untyped-def]
        if isinstance(change, ContractReceiveDeposit) and change.deposit_id == 2:
            raise RuntimeError("boom")
        return real(view, context, change)

    monkeypatch.setattr(writer_module, "transition", flaky)
    async with asyncio.TaskGroup() as group:
        runner = group.create_task(writer.run())
        ok, boom = await asyncio.gather(
            writer.apply(ContractReceiveDeposit(1, ALICE.address, USDF, Amount(5))),
            writer.apply(ContractReceiveDeposit(2, ALICE.address, USDF, Amount(5))),
            return_exceptions=True,
        )
        runner.cancel()
    assert isinstance(boom, RuntimeError)
    assert not isinstance(ok, BaseException) and store.account(ALICE.address).balance(USDF) == 5
    store.close()


@pytest.mark.asyncio
async def test_the_disk_write_runs_off_the_loop_and_survives_a_cancel(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While a batch syncs (in a worker thread) the event loop runs and reads see the
    store as before the batch; a writer cancelled mid-write still finishes and publishes
    it, so memory and disk agree."""
    import threading
    import time as clock

    from node.store.ledger import PreparedCommit

    store = LedgerStore(tmp_path, DOMAIN, sync=True)
    store.put_committee(COMMITTEE)
    writer = Writer(store, Node().context)
    writing, real_write = threading.Event(), PreparedCommit.write

    def slow_write(self: PreparedCommit) -> None:
        writing.set()
        clock.sleep(0.3)
        real_write(self)

    monkeypatch.setattr(PreparedCommit, "write", slow_write)
    runner = asyncio.create_task(writer.run())
    applied = asyncio.create_task(
        writer.apply(ContractReceiveDeposit(1, ALICE.address, USDF, Amount(5)))
    )
    ticks = 0
    while not writing.is_set() or ticks < 5:  # the loop keeps turning during the write
        await asyncio.sleep(0.01)
        ticks += 1
    assert store.log_size() == 0 and store.account(ALICE.address).balance(USDF) == 0
    runner.cancel()
    with pytest.raises(asyncio.CancelledError):
        await runner
    assert store.log_size() == 1 and store.account(ALICE.address).balance(USDF) == 5
    applied.cancel()
    store.close()
    reopened = LedgerStore(tmp_path, DOMAIN, sync=False)
    assert reopened.log_size() == 1 and reopened.account(ALICE.address).balance(USDF) == 5
    reopened.close()
