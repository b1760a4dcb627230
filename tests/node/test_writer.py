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
