"""Which Vault deposits are final, and in what order to credit them. Pure: no I/O.

Rule 1: a deposit is handed to the state machine only when its log is at least
``confirmations`` blocks deep: the block holding it counts as its first confirmation, so
with head ``h`` a log in block ``b`` has ``h - b + 1`` (:func:`last_final_block`). A reorg
replacing the last ``d < confirmations`` blocks never touches a block that deep, so what
was handed over is never taken back.

Rule 2: deposits are handed over in strict id order, each once, from the node's cursor
(``next_id``); a later id never jumps an earlier one that has not been seen.

Theory of operation
-------------------
The watcher keeps a :class:`WatchCursor`: the next id to hand over and the first block it
has not scanned yet. Each step it reads the head and the Vault's ``nextDepositId()`` *at
the last final block* (:func:`last_final_block`); :func:`plan_scan` compares that count
with the cursor:

* nothing new: the cursor skips to past the final block without fetching a single log
  (a restarted node costs one call, not a rescan of history);
* new deposits: fetch the logs of the next range of at most ``max_span`` final blocks;
  :func:`take_final_deposits` picks the ones that continue the cursor and moves it on.

Since the Vault numbers deposits 1, 2, 3… in execution order, ids grow with block order.
So when a range holds id ``k + 1`` but not ``k``, or when the final blocks are all scanned
and the Vault counts more deposits than the logs held, logs went missing (a lagging or
truncating RPC backend): the step reports the missing id and the cursor goes back to its
``origin`` (the from-block hint) to scan again. When the Vault counts *fewer* deposits at
a final block than the node has credited, or two different logs carry one final id, the
chain reorganised deeper than ``confirmations`` (or the RPC serves another chain): that is
reported loudly and nothing is handed over; no rule here can repair it.

A deep reorg can also leave the count unchanged: the credited deposit's block is
replaced by one holding *another* deposit with the same id. So the cursor keeps an
:class:`DepositAnchor`, the block (number and hash) of the last deposit handed over, and
the watcher checks every step that the block at that height still has that hash
(:func:`anchor_problem`); when it does not, deposits stop with a loud report, since the
ledger may now hold a deposit the Vault no longer has. The anchor is stored with the
deposit cursor (``LedgerStore.deposit_anchor``), so a node restarted after such a reorg
notices it too.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

from node.state.changes import ContractReceiveDeposit
from wallet.chain import BlockRange, DepositLog
from wallet.codec import hash_hex
from wallet.types import Hash32

#: Confirmations on the devnet (anvil never reorganises on its own).
DEVNET_CONFIRMATIONS = 2


def deposit_change(log: DepositLog) -> ContractReceiveDeposit:
    """The state machine's input for the deposit of ``log``."""
    return ContractReceiveDeposit(
        log.deposit_id,
        log.beneficiary,
        log.token,
        log.amount,
        log.block_number,
        log.position.block_hash,
    )


def last_final_block(head: int, confirmations: int) -> int:
    """The highest block with at least ``confirmations`` confirmations when ``head`` is
    the chain's latest block (negative when there is none yet)."""
    if confirmations < 1:
        raise ValueError(f"confirmations must be >= 1, got {confirmations}")
    return head - confirmations + 1


def is_final(block_number: int, head: int, confirmations: int) -> bool:
    """Whether a log in ``block_number`` is deep enough to credit."""
    return block_number <= last_final_block(head, confirmations)


@dataclass(frozen=True, slots=True)
class FinalDeposits:
    """What :func:`compute_final_deposits` found.

    ``deposits`` continue ``next_id`` without a hole, in id order. ``missing_id`` is set
    when a final log with a higher id was seen while this id was not (logs went missing).
    ``conflicting_id`` is set when two different final logs carry this id (a reorg deeper
    than the confirmations, or an RPC mixing two chains); nothing from it on is handed over.
    """

    deposits: tuple[ContractReceiveDeposit, ...]
    next_id: int
    missing_id: int | None = None
    conflicting_id: int | None = None


def compute_final_deposits(
    logs: Iterable[DepositLog], head: int, confirmations: int, next_id: int
) -> FinalDeposits:
    """The deposits of ``logs`` (any order, duplicates allowed) that are final at ``head``
    and continue ``next_id`` in id order."""
    by_id: dict[int, set[ContractReceiveDeposit]] = {}
    for log in logs:
        if log.deposit_id >= next_id and is_final(log.block_number, head, confirmations):
            by_id.setdefault(log.deposit_id, set()).add(deposit_change(log))
    deposits: list[ContractReceiveDeposit] = []
    cursor = next_id
    while cursor in by_id:
        versions = by_id[cursor]
        if len(versions) > 1:
            return FinalDeposits(tuple(deposits), cursor, conflicting_id=cursor)
        deposits.extend(versions)
        cursor += 1
    missing = cursor if any(i > cursor for i in by_id) else None
    return FinalDeposits(tuple(deposits), cursor, missing_id=missing)


@dataclass(frozen=True, slots=True)
class DepositAnchor:
    """Where the last deposit handed over is: its id and its block's number and hash."""

    deposit_id: int
    block_number: int
    block_hash: Hash32


@dataclass(frozen=True, slots=True)
class WatchCursor:
    """The watcher's position: the next deposit id to hand over, the first block not yet
    scanned, ``origin``, the block a rescan starts from (the from-block hint), and the
    ``anchor`` of the last deposit handed over (None before the first; after a restart,
    the one the store kept)."""

    next_id: int
    scan_from: int
    origin: int
    anchor: DepositAnchor | None = None

    def __post_init__(self) -> None:
        if self.next_id < 1:
            raise ValueError(f"deposit ids start at 1, got next_id {self.next_id}")
        if not 0 <= self.origin <= self.scan_from:
            raise ValueError(f"need 0 <= origin <= scan_from, got {self.origin}, {self.scan_from}")

    @classmethod
    def start(
        cls, next_id: int, from_block: int, anchor: DepositAnchor | None = None
    ) -> WatchCursor:
        return cls(next_id, from_block, from_block, anchor)

    def rescan(self) -> WatchCursor:
        return replace(self, scan_from=self.origin)


@dataclass(frozen=True, slots=True)
class ScanPlan:
    """What to do next: fetch the logs of ``fetch``, or nothing (``fetch is None``: the
    watcher is caught up with the final blocks). ``problem`` says what is wrong, if
    anything, for the shell to log."""

    cursor: WatchCursor
    fetch: BlockRange | None
    problem: str | None = None


def plan_scan(
    cursor: WatchCursor, head: int, confirmations: int, vault_next_id: int, max_span: int
) -> ScanPlan:
    """The next step, given the head and the Vault's ``nextDepositId()`` read at
    ``last_final_block(head, confirmations)`` (ignored when that block is below
    ``cursor.scan_from``: nothing there is final yet)."""
    final = last_final_block(head, confirmations)
    if final < cursor.scan_from:
        return ScanPlan(cursor, None)
    if vault_next_id < cursor.next_id:
        return ScanPlan(
            cursor,
            None,
            f"the Vault had made {vault_next_id - 1} deposits by final block {final}, but "
            f"this node already credited up to id {cursor.next_id - 1}: the chain "
            f"reorganised deeper than {confirmations} confirmations, or the RPC URL or the "
            "Vault address is not the one this node's store was built from",
        )
    if vault_next_id == cursor.next_id:
        return ScanPlan(replace(cursor, scan_from=final + 1), None)
    first = cursor.scan_from
    return ScanPlan(cursor, BlockRange(first, min(final, first + max_span - 1)))


@dataclass(frozen=True, slots=True)
class DepositBatch:
    """The result of one fetched range: the deposits to hand over (in id order), the new
    cursor, whether the final blocks are all scanned, and what went wrong, if anything."""

    cursor: WatchCursor
    deposits: tuple[ContractReceiveDeposit, ...]
    caught_up: bool
    missing_id: int | None = None
    conflicting_id: int | None = None
    problem: str | None = None


def take_final_deposits(
    cursor: WatchCursor,
    fetched: BlockRange,
    logs: Iterable[DepositLog],
    head: int,
    confirmations: int,
    vault_next_id: int,
) -> DepositBatch:
    """Hand over the deposits of ``logs`` (those of the ``fetched`` range, as planned by
    :func:`plan_scan` with the same head and count) that continue the cursor."""
    final = last_final_block(head, confirmations)
    candidates = [
        log for log in logs if log.block_number in fetched and log.deposit_id < vault_next_id
    ]
    found = compute_final_deposits(candidates, head, confirmations, cursor.next_id)
    moved = replace(cursor, next_id=found.next_id)
    if found.deposits:
        last = found.next_id - 1
        position = next(log.position for log in candidates if log.deposit_id == last)
        anchor = DepositAnchor(last, position.block_number, position.block_hash)
        moved = replace(moved, anchor=anchor)
    if found.conflicting_id is not None:
        return DepositBatch(
            moved.rescan(),
            found.deposits,
            caught_up=False,
            conflicting_id=found.conflicting_id,
            problem=f"two different Deposited logs carry id {found.conflicting_id} in "
            f"blocks {fetched.first}..{fetched.last}, which are final: the chain "
            f"reorganised deeper than {confirmations} confirmations or the RPC is "
            f"inconsistent; not crediting it, scanning again from block {cursor.origin}",
        )
    if found.missing_id is not None:
        return _missing(moved, found, found.missing_id, "later ids are in the logs")
    if found.next_id >= vault_next_id:
        return DepositBatch(replace(moved, scan_from=final + 1), found.deposits, caught_up=True)
    if fetched.last >= final:
        return _missing(
            moved,
            found,
            found.next_id,
            f"the Vault counts {vault_next_id - 1} deposits by block {final}",
        )
    return DepositBatch(replace(moved, scan_from=fetched.last + 1), found.deposits, False)


def anchor_problem(
    anchor: DepositAnchor, block_hash: Hash32 | None, confirmations: int
) -> str | None:
    """What is wrong when the block at ``anchor.block_number`` now has ``block_hash``
    (None: the chain no longer reaches that height), or None when it is still the block
    the anchored deposit was credited from."""
    if block_hash == anchor.block_hash:
        return None
    now = "is gone" if block_hash is None else f"is now {hash_hex(block_hash)}"
    return (
        f"block {anchor.block_number}, which held deposit {anchor.deposit_id} when this node "
        f"credited it (hash {hash_hex(anchor.block_hash)}), {now}: the chain reorganised "
        f"deeper than {confirmations} confirmations, so the ledger may hold deposits the "
        "Vault no longer has; not crediting any more deposits until an operator has "
        "checked the chain and this node's RPC URL"
    )


def _missing(cursor: WatchCursor, found: FinalDeposits, missing: int, why: str) -> DepositBatch:
    return DepositBatch(
        cursor.rescan(),
        found.deposits,
        caught_up=False,
        missing_id=missing,
        problem=f"deposit {missing} is not in the logs the RPC returned, yet {why}: "
        f"scanning again from block {cursor.origin} (if this repeats, the deposit is older "
        "than that block: start the watcher from the Vault's deploy block)",
    )
