"""The state machine's entry point: ``transition(view, context, change) -> Transition``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import assert_never

from node.state.changes import (
    ActionSubmitOrder,
    ContractReceiveDeposit,
    ContractReceiveNewEpoch,
    ContractReceiveTokenRegistration,
    ReceiveCertificate,
    StateChange,
)
from node.state.events import Event
from node.state.records import AccountRecord, Committee, LogEntry, NodeContext
from node.state.view import LedgerView
from wallet.types import Address, Certificate, Epoch, Hash32, Sequence


@dataclass(frozen=True, slots=True)
class Transition:
    """What one state change did: the records to write in one atomic batch, and the
    events to perform after that batch is committed. A refusal writes nothing.
    ``context``, when set, is the node's new context (a new epoch, a token
    (de)registered): the writer uses it for every later change."""

    events: tuple[Event, ...] = ()
    accounts: dict[Address, AccountRecord] = field(default_factory=dict)
    applied: dict[tuple[Address, Sequence], Hash32] = field(default_factory=dict)
    pending_added: dict[tuple[Address, Sequence], Certificate] = field(default_factory=dict)
    pending_removed: frozenset[tuple[Address, Sequence]] = frozenset()
    next_deposit_id: int | None = None
    log: tuple[LogEntry, ...] = ()
    committees: tuple[Committee, ...] = ()
    deposit_block: int | None = None
    deposit_block_hash: Hash32 | None = None  # with deposit_block, when known
    context: NodeContext | None = None

    @property
    def writes_nothing(self) -> bool:
        return not (
            self.accounts
            or self.applied
            or self.pending_added
            or self.pending_removed
            or self.next_deposit_id is not None
            or self.log
            or self.committees
            or self.deposit_block is not None
        )


class Scratch:
    """The writes of one transition being built, read through to the view: a second read
    of an account sees the first write (a transfer to oneself, a chain of pending
    certificates). Local to one call of :func:`transition`."""

    def __init__(self, view: LedgerView) -> None:
        self.view = view
        self.events: list[Event] = []
        self.accounts: dict[Address, AccountRecord] = {}
        self.applied: dict[tuple[Address, Sequence], Hash32] = {}
        self.pending_added: dict[tuple[Address, Sequence], Certificate] = {}
        self.pending_removed: set[tuple[Address, Sequence]] = set()
        self.next_deposit_id: int | None = None
        self.log: list[LogEntry] = []
        self.committees: dict[Epoch, Committee] = {}
        self.deposit_block: int | None = None
        self.deposit_block_hash: Hash32 | None = None
        self.context: NodeContext | None = None

    def account(self, address: Address) -> AccountRecord:
        found = self.accounts.get(address)
        return found if found is not None else self.view.account(address)

    def applied_digest(self, owner: Address, sequence: Sequence) -> Hash32 | None:
        key = (owner, sequence)
        return self.applied[key] if key in self.applied else self.view.applied(owner, sequence)

    def pending(self, owner: Address, sequence: Sequence) -> Certificate | None:
        key = (owner, sequence)
        if key in self.pending_removed:
            return None
        return self.pending_added.get(key) or self.view.pending(owner, sequence)

    def committee(self, epoch: Epoch) -> Committee | None:
        found = self.committees.get(epoch)
        return found if found is not None else self.view.committee(epoch)

    def log_index(self) -> int:
        """The index the next appended entry gets."""
        return self.view.log_size() + len(self.log)

    def deposit_cursor(self) -> int:
        cursor = self.next_deposit_id
        return cursor if cursor is not None else self.view.next_deposit_id()

    def done(self) -> Transition:
        return Transition(
            events=tuple(self.events),
            accounts=self.accounts,
            applied=self.applied,
            pending_added=self.pending_added,
            pending_removed=frozenset(self.pending_removed),
            next_deposit_id=self.next_deposit_id,
            log=tuple(self.log),
            committees=tuple(self.committees.values()),
            deposit_block=self.deposit_block,
            deposit_block_hash=self.deposit_block_hash,
            context=self.context,
        )


def transition(view: LedgerView, context: NodeContext, change: StateChange) -> Transition:
    """Apply one state change to the state ``view`` shows; pure and deterministic."""
    from node.state import certificates, deposits, epochs, orders

    scratch = Scratch(view)
    match change:
        case ActionSubmitOrder():
            orders.handle_submit_order(scratch, context, change)
        case ReceiveCertificate():
            certificates.handle_certificate(scratch, context, change.certificate)
        case ContractReceiveDeposit():
            deposits.handle_deposit(scratch, change)
        case ContractReceiveNewEpoch():
            epochs.handle_new_epoch(scratch, context, change)
        case ContractReceiveTokenRegistration():
            epochs.handle_token_registration(scratch, context, change)
        case _:
            assert_never(change)
    return scratch.done()
