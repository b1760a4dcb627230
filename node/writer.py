"""The node's one writer: applies state changes in arrival order, commits their records,
and only then hands each caller its transition (whose events the shell performs).

Group commit: changes that queue up while a batch is being written are applied together,
each reading the records the earlier ones wrote (:class:`Overlay`), and committed in one
LevelDB batch. So a vote never leaves the node before its lock is on disk, and a burst of
payments costs one disk sync, not one per payment.

Observers (metrics, the account streams) see every committed batch, whichever path its
changes came by (API, peers, chain), as a :class:`CommitReport`, in log order and before
the callers resume. They run inside the writer, so they must only count or queue.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from node.state import LedgerView, NodeContext, Transition, transition
from node.state.changes import StateChange
from node.state.records import AccountRecord, Committee
from node.store import LedgerStore
from wallet.types import Address, Certificate, Epoch, Hash32, Sequence


class Overlay:
    """A :class:`LedgerView` of ``base`` with not-yet-committed transitions on top."""

    def __init__(self, base: LedgerView) -> None:
        self.base = base
        self.accounts: dict[Address, AccountRecord] = {}
        self.applied_digests: dict[tuple[Address, Sequence], Hash32] = {}
        self.pending_certificates: dict[tuple[Address, Sequence], Certificate | None] = {}
        self.deposit_cursor: int | None = None
        self.committees: dict[Epoch, Committee] = {}
        self.appended = 0

    def add(self, t: Transition) -> None:
        self.accounts.update(t.accounts)
        self.applied_digests.update(t.applied)
        for key in t.pending_removed:
            self.pending_certificates[key] = None
        self.pending_certificates.update(t.pending_added)
        if t.next_deposit_id is not None:
            self.deposit_cursor = t.next_deposit_id
        self.committees.update((c.epoch, c) for c in t.committees)
        self.appended += len(t.log)

    def account(self, address: Address) -> AccountRecord:
        found = self.accounts.get(address)
        return found if found is not None else self.base.account(address)

    def applied(self, owner: Address, sequence: Sequence) -> Hash32 | None:
        found = self.applied_digests.get((owner, sequence))
        return found if found is not None else self.base.applied(owner, sequence)

    def pending(self, owner: Address, sequence: Sequence) -> Certificate | None:
        key = (owner, sequence)
        if key in self.pending_certificates:
            return self.pending_certificates[key]
        return self.base.pending(owner, sequence)

    def committee(self, epoch: Epoch) -> Committee | None:
        found = self.committees.get(epoch)
        return found if found is not None else self.base.committee(epoch)

    def next_deposit_id(self) -> int:
        cursor = self.deposit_cursor
        return cursor if cursor is not None else self.base.next_deposit_id()

    def log_size(self) -> int:
        return self.base.log_size() + self.appended


log = logging.getLogger("farthing.node.writer")


@dataclass(frozen=True, slots=True)
class CommitReport:
    """One group commit, as observers see it: the transitions written (refusals
    included), the log index of the first entry they appended (the others follow in
    order), the batch's size in requests and the seconds its store write took."""

    transitions: tuple[Transition, ...]
    first_log_index: int
    batch_size: int
    commit_seconds: float


#: Called by the writer after each commit; must not block or await (an exception is
#: logged, never raised into the writer).
CommitObserver = Callable[[CommitReport], None]


@dataclass
class _Request:
    change: StateChange
    done: asyncio.Future[Transition] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class Writer:
    """Owns the store's write side. ``run()`` is a long-lived task owned by the node's
    task group; ``apply()`` may be called from any coroutine."""

    def __init__(
        self,
        store: LedgerStore,
        context: NodeContext,
        *,
        max_batch: int = 256,
        observers: Iterable[CommitObserver] = (),
    ) -> None:
        self.store = store
        self.context = context
        self.max_batch = max_batch
        self.observers = list(observers)
        self._queue: asyncio.Queue[_Request] = asyncio.Queue()

    async def apply(self, change: StateChange) -> Transition:
        """Apply ``change``; returns once its records are committed."""
        request = _Request(change)
        self._queue.put_nowait(request)
        return await request.done

    async def run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self.max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            self._commit(batch)

    def _commit(self, batch: list[_Request]) -> None:
        first_log_index = self.store.log_size()
        overlay = Overlay(self.store)
        results: list[tuple[_Request, Transition | BaseException]] = []
        transitions: list[Transition] = []
        context = self.context  # a change may set a new one for the changes after it
        for request in batch:
            try:
                t = transition(overlay, context, request.change)
            except Exception as exc:  # a bug in a rule must not take the node down
                results.append((request, exc))
                continue
            overlay.add(t)
            transitions.append(t)
            results.append((request, t))
            if t.context is not None:
                context = t.context
        started = time.perf_counter()
        self.store.commit_all(transitions)
        self.context = context
        if self.observers:
            self._report(
                CommitReport(
                    tuple(transitions), first_log_index, len(batch), time.perf_counter() - started
                )
            )
        for request, result in results:
            if request.done.cancelled():
                continue
            if isinstance(result, BaseException):
                request.done.set_exception(result)
            else:
                request.done.set_result(result)

    def _report(self, report: CommitReport) -> None:
        for observer in self.observers:
            try:
                observer(report)
            except Exception:  # counting or streaming must never stop the ledger
                log.exception("commit observer %r failed", observer)
