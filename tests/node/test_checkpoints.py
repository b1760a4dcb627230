"""Signed checkpoints: when they fall due, what they sign, that they persist and chain."""

from __future__ import annotations

from pathlib import Path

import pytest

from node.checkpoints import Checkpointer, CheckpointPolicy, due
from node.state import ContractReceiveDeposit, transition
from node.store import LedgerStore
from tests.node.factories import ALICE, COMMITTEE, DOMAIN, MEMBERS, USDF, Node
from wallet.merkle import verify_consistency
from wallet.signing import verify_checkpoint
from wallet.types import Amount, Checkpoint, Hash32

POLICY = CheckpointPolicy(every_entries=10, every_ms=1_000)


def at(size: int, timestamp: int) -> Checkpoint:
    return Checkpoint(MEMBERS[0].address, size, Hash32(bytes(32)), timestamp)


@pytest.mark.parametrize(
    ("last", "size", "now", "expected"),
    [
        (None, 0, 5_000, False),  # nothing to sign
        (None, 1, 0, True),  # the first entry
        (at(5, 0), 5, 99_999, False),  # no growth, however long
        (at(5, 0), 9, 999, False),  # a little growth, little time
        (at(5, 0), 15, 1, True),  # every_entries reached
        (at(5, 0), 6, 1_000, True),  # every_ms passed
    ],
)
def test_due(last: Checkpoint | None, size: int, now: int, expected: bool) -> None:
    assert due(POLICY, last, size, now) is expected


def deposit(store: LedgerStore, n: int) -> None:
    context = Node().context
    for _ in range(n):
        deposit_id = store.next_deposit_id()
        change = ContractReceiveDeposit(deposit_id, ALICE.address, USDF, Amount(1))
        store.commit(transition(store, context, change))


def test_checkpoints_sign_the_log_persist_and_stay_consistent(tmp_path: Path) -> None:
    store = LedgerStore(tmp_path, DOMAIN, sync=False)
    store.put_committee(COMMITTEE)
    checkpointer = Checkpointer(store, MEMBERS[0], DOMAIN, POLICY)
    assert checkpointer.maybe_sign(1_000) is None and checkpointer.latest is None

    deposit(store, 3)
    first, signature = checkpointer.maybe_sign(1_000) or pytest.fail("not signed")
    assert (first.tree_size, first.root, first.timestamp) == (3, store.root(), 1_000)
    assert verify_checkpoint(DOMAIN, first, signature)
    assert checkpointer.maybe_sign(1_500) is None  # not due yet

    deposit(store, 12)
    second, _ = checkpointer.maybe_sign(900) or pytest.fail("not signed")  # the clock stepped back
    assert second.tree_size == 15 and second.timestamp == 1_001
    proof = store.consistency_proof(first.tree_size, second.tree_size)
    verify_consistency(first.tree_size, second.tree_size, proof, first.root, second.root)
    store.close()

    reopened = LedgerStore(tmp_path, DOMAIN)
    assert Checkpointer(reopened, MEMBERS[0], DOMAIN, POLICY).latest == (second, _)
    assert reopened.root_at(3) == first.root
    reopened.close()
