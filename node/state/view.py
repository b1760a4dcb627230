"""How the state machine reads state: a :class:`LedgerView` snapshot, and
:class:`MemoryLedger`, the in-memory store used by tests and as the reference the
LevelDB store is checked against."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from node.state.records import AccountRecord, Committee, LogEntry
from wallet.types import Address, Certificate, Epoch, Hash32, Sequence

if TYPE_CHECKING:
    from node.state.transition import Transition


class LedgerView(Protocol):
    """A consistent snapshot of the node's state, read by key."""

    def account(self, address: Address) -> AccountRecord: ...

    def applied(self, owner: Address, sequence: Sequence) -> Hash32 | None:
        """The digest of the certificate applied at (owner, sequence), if any."""
        ...

    def pending(self, owner: Address, sequence: Sequence) -> Certificate | None:
        """A verified certificate waiting for its account to reach ``sequence``."""
        ...

    def committee(self, epoch: Epoch) -> Committee | None: ...

    def next_deposit_id(self) -> int: ...

    def log_size(self) -> int: ...


class MemoryLedger:
    """A :class:`LedgerView` held in dicts, with :meth:`commit` to apply a transition."""

    def __init__(self, committees: list[Committee] | None = None) -> None:
        self.accounts: dict[Address, AccountRecord] = {}
        self.applied_digests: dict[tuple[Address, Sequence], Hash32] = {}
        self.pending_certificates: dict[tuple[Address, Sequence], Certificate] = {}
        self.committees: dict[Epoch, Committee] = {c.epoch: c for c in committees or []}
        self.deposit_cursor = 1
        self.deposit_block: int | None = None
        self.log: list[LogEntry] = []

    def account(self, address: Address) -> AccountRecord:
        return self.accounts.get(address, AccountRecord())

    def applied(self, owner: Address, sequence: Sequence) -> Hash32 | None:
        return self.applied_digests.get((owner, sequence))

    def pending(self, owner: Address, sequence: Sequence) -> Certificate | None:
        return self.pending_certificates.get((owner, sequence))

    def committee(self, epoch: Epoch) -> Committee | None:
        return self.committees.get(epoch)

    def next_deposit_id(self) -> int:
        return self.deposit_cursor

    def log_size(self) -> int:
        return len(self.log)

    def commit(self, t: Transition) -> None:
        """Apply everything ``t`` writes, as the shell does in one write batch."""
        self.accounts.update(t.accounts)
        self.applied_digests.update(t.applied)
        for key in t.pending_removed:
            self.pending_certificates.pop(key, None)
        self.pending_certificates.update(t.pending_added)
        if t.next_deposit_id is not None:
            self.deposit_cursor = t.next_deposit_id
        if t.deposit_block is not None:
            self.deposit_block = t.deposit_block
        self.committees.update((c.epoch, c) for c in t.committees)
        self.log.extend(t.log)
