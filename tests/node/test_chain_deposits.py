"""Which deposits are final and in what order (pure): examples, properties, and a
simulated chain with reorgs shallower than the confirmations driven through the planner."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from node.chain.deposits import (
    DepositAnchor,
    WatchCursor,
    anchor_problem,
    compute_final_deposits,
    is_final,
    last_final_block,
    plan_scan,
    take_final_deposits,
)
from node.state.changes import ContractReceiveDeposit
from tests.node.chain_fakes import FakeChain, deposit
from wallet.chain import BlockRange, DepositLog, LogPosition
from wallet.types import Address, Amount, Hash32


def log(deposit_id: int, block: int, amount: int = 1, fork: int = 0) -> DepositLog:
    return DepositLog(
        deposit_id,
        Address(b"\xaa" * 20),
        Address(b"\xbb" * 20),
        Amount(amount),
        Address(b"\xcc" * 20),
        LogPosition(block, Hash32(bytes([fork]) * 32), 0),
    )


def ids(changes: tuple[ContractReceiveDeposit, ...] | list[ContractReceiveDeposit]) -> list[int]:
    return [c.deposit_id for c in changes]


# ---------------------------------------------------------------- confirmations


def test_the_block_holding_a_log_is_its_first_confirmation() -> None:
    assert last_final_block(head=10, confirmations=1) == 10
    assert last_final_block(head=10, confirmations=2) == 9
    assert is_final(9, head=10, confirmations=2)
    assert not is_final(10, head=10, confirmations=2)
    assert last_final_block(head=0, confirmations=3) < 0
    with pytest.raises(ValueError, match="confirmations"):
        last_final_block(10, 0)


# ---------------------------------------------------------------- compute_final_deposits


def test_final_deposits_come_in_id_order_whatever_the_log_order() -> None:
    found = compute_final_deposits([log(3, 5), log(1, 2), log(2, 4), log(2, 4)], 10, 2, 1)
    assert ids(found.deposits) == [1, 2, 3]
    assert (found.next_id, found.missing_id, found.conflicting_id) == (4, None, None)


def test_a_log_not_deep_enough_waits_and_stops_the_ones_after_it() -> None:
    found = compute_final_deposits([log(1, 8), log(2, 9), log(3, 10)], 10, 2, 1)
    assert ids(found.deposits) == [1, 2]
    assert found.next_id == 3
    assert found.missing_id is None


def test_ids_below_the_cursor_are_ignored() -> None:
    found = compute_final_deposits([log(1, 1), log(2, 2), log(3, 3)], 10, 2, 3)
    assert ids(found.deposits) == [3]


def test_a_hole_is_reported_as_the_missing_id() -> None:
    found = compute_final_deposits([log(1, 1), log(3, 3), log(4, 3)], 10, 2, 1)
    assert ids(found.deposits) == [1]
    assert found.missing_id == 2
    assert found.next_id == 2


def test_two_different_final_logs_for_one_id_are_a_conflict() -> None:
    found = compute_final_deposits([log(1, 1), log(2, 2, amount=5), log(2, 2, amount=7)], 10, 2, 1)
    assert ids(found.deposits) == [1]
    assert found.conflicting_id == 2
    assert found.next_id == 2


@st.composite
def chains(draw: st.DrawFn) -> list[int]:
    """The block of each deposit id 1..n (non-decreasing: ids follow block order)."""
    gaps = draw(st.lists(st.integers(0, 3), max_size=30))
    blocks, block = [], draw(st.integers(0, 5))
    for gap in gaps:
        block += gap
        blocks.append(block)
    return blocks


@given(
    blocks=chains(),
    head=st.integers(0, 100),
    confirmations=st.integers(1, 6),
    next_id=st.integers(1, 32),
    lost=st.sets(st.integers(1, 31), max_size=4),
    data=st.data(),
)
def test_final_deposits_are_the_longest_final_run_from_the_cursor(
    blocks: list[int],
    head: int,
    confirmations: int,
    next_id: int,
    lost: set[int],
    data: st.DataObject,
) -> None:
    logs = [log(i, b) for i, b in enumerate(blocks, start=1) if i not in lost]
    logs = data.draw(st.permutations(logs + logs[:3]))  # any order, some duplicates
    found = compute_final_deposits(logs, head, confirmations, next_id)
    final_ids = [
        i for i, b in enumerate(blocks, start=1) if b <= head - confirmations + 1 and i >= next_id
    ]
    expected = []
    for i in final_ids:
        if i != next_id + len(expected) or i in lost:
            break
        expected.append(i)
    assert ids(found.deposits) == expected
    assert found.next_id == next_id + len(expected)
    assert found.conflicting_id is None
    seen_later = any(i > found.next_id and i not in lost for i in final_ids)
    assert (found.missing_id is not None) == seen_later
    if found.missing_id is not None:
        assert found.missing_id == found.next_id


# ---------------------------------------------------------------- planning


def test_nothing_new_skips_the_blocks_without_fetching() -> None:
    plan = plan_scan(
        WatchCursor.start(5, 0), head=1000, confirmations=2, vault_next_id=5, max_span=10
    )
    assert plan.fetch is None
    assert plan.cursor == WatchCursor(5, 1000, 0)
    assert plan.problem is None


def test_new_deposits_fetch_a_bounded_range() -> None:
    plan = plan_scan(
        WatchCursor.start(1, 3), head=1000, confirmations=2, vault_next_id=2, max_span=10
    )
    assert plan.fetch == BlockRange(3, 12)


def test_fewer_deposits_on_chain_than_credited_is_reported() -> None:
    plan = plan_scan(
        WatchCursor.start(5, 0), head=20, confirmations=2, vault_next_id=3, max_span=10
    )
    assert plan.fetch is None
    assert plan.problem is not None
    assert "deeper than 2 confirmations" in plan.problem


def test_logs_lost_at_the_end_of_the_final_blocks_send_the_cursor_back() -> None:
    cursor = WatchCursor(1, 10, 2)
    batch = take_final_deposits(
        cursor, BlockRange(10, 19), [], head=20, confirmations=2, vault_next_id=2
    )
    assert batch.deposits == ()
    assert batch.missing_id == 1
    assert batch.cursor == WatchCursor(1, 2, 2)
    assert batch.problem is not None


def test_logs_outside_the_fetched_range_or_count_are_ignored() -> None:
    batch = take_final_deposits(
        WatchCursor.start(1, 0),
        BlockRange(0, 9),
        [log(1, 3), log(2, 12), log(2, 4)],
        head=20,
        confirmations=2,
        vault_next_id=2,
    )
    assert ids(batch.deposits) == [1]
    assert batch.caught_up
    # The anchor is deposit 1's block, as found in the range (number and hash).
    assert batch.cursor == WatchCursor(2, 20, 0, DepositAnchor(1, 3, Hash32(bytes(32))))


def test_the_anchor_problem_names_the_block_and_the_deposit() -> None:
    anchor = DepositAnchor(7, 40, Hash32(b"\x01" * 32))
    assert anchor_problem(anchor, Hash32(b"\x01" * 32), 2) is None
    moved = anchor_problem(anchor, Hash32(b"\x02" * 32), 2)
    assert moved is not None and "block 40, which held deposit 7" in moved
    assert "is now 0x0202" in moved and "deeper than 2 confirmations" in moved
    gone = anchor_problem(anchor, None, 2)
    assert gone is not None and "is gone" in gone


# ---------------------------------------------------------------- a simulated chain


def drive(
    chain: FakeChain, cursor: WatchCursor, confirmations: int, max_span: int, lossy: set[int]
):
    """Poll the fake chain through the pure planner until caught up (bounded)."""
    delivered: list[ContractReceiveDeposit] = []
    for _ in range(200):
        head = chain.head
        final = last_final_block(head, confirmations)
        if final < cursor.scan_from:
            return cursor, delivered
        vault_next = 1 + sum(len(b) for b in chain.blocks[: final + 1])
        plan = plan_scan(cursor, head, confirmations, vault_next, max_span)
        cursor = plan.cursor
        if plan.fetch is None:
            return cursor, delivered
        logs = [entry for entry in chain._logs(plan.fetch) if entry.deposit_id not in lossy]
        lossy.clear()  # the RPC loses those logs once
        batch = take_final_deposits(cursor, plan.fetch, logs, head, confirmations, vault_next)
        cursor = batch.cursor
        delivered.extend(batch.deposits)
        if batch.caught_up:
            return cursor, delivered
    raise AssertionError("the planner did not catch up")


actions = st.one_of(
    st.tuples(st.just("mine"), st.lists(st.integers(0, 9), max_size=3)),
    st.tuples(
        st.just("reorg"),
        st.integers(1, 6),
        st.lists(st.lists(st.integers(0, 9), max_size=2), min_size=1, max_size=4),
    ),
    st.tuples(st.just("poll"), st.sets(st.integers(1, 40), max_size=2)),
)


@settings(max_examples=300, deadline=None)
@given(
    confirmations=st.integers(1, 5),
    max_span=st.integers(1, 8),
    steps=st.lists(actions, max_size=40),
)
def test_reorgs_shallower_than_the_confirmations_never_change_what_was_handed_over(
    confirmations: int, max_span: int, steps: list[tuple]
) -> None:
    chain = FakeChain()
    cursor = WatchCursor.start(1, 0)
    delivered: list[ContractReceiveDeposit] = []
    # The highest block that has ever been final: a reorg "shallower than the
    # confirmations" never replaces it, however many reorgs (that shorten the chain) follow
    # each other.
    final_floor = -1
    for step in steps:
        final_floor = max(final_floor, last_final_block(chain.head, confirmations))
        if step[0] == "mine":
            chain.mine([deposit(n, n, n + 1) for n in step[1]])
        elif step[0] == "reorg":
            depth = min(step[1], confirmations - 1, chain.head, chain.head - final_floor)
            if depth > 0:
                chain.reorg(depth, [[deposit(n, n, 100 + n) for n in b] for b in step[2]])
        else:
            cursor, more = drive(chain, cursor, confirmations, max_span, set(step[1]))
            delivered.extend(more)
        # What was handed over is a prefix of the final part of the current chain.
        assert delivered == chain.canonical()[: len(delivered)]
    for _ in range(confirmations):
        chain.mine()
    cursor, more = drive(chain, cursor, confirmations, max_span, set())
    delivered.extend(more)
    assert delivered == chain.canonical()
    assert ids(delivered) == list(range(1, len(delivered) + 1))
    assert cursor.next_id == len(delivered) + 1
