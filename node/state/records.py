"""The records the state machine reads and writes (immutable values)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType

from wallet.types import (
    Address,
    Certificate,
    Domain,
    Epoch,
    Hash32,
    Sequence,
    Signature,
    SignedOrder,
)


@dataclass(frozen=True, slots=True)
class Lock:
    """The order this node voted for at ``sequence`` of an account, and its vote. Kept
    until a certificate for that sequence is applied; never replaced by another order."""

    sequence: Sequence
    order_digest: Hash32
    signed: SignedOrder
    epoch: Epoch
    vote_signature: Signature


def frozen_balances(balances: Mapping[Address, int]) -> Mapping[Address, int]:
    return MappingProxyType(dict(balances))


@dataclass(frozen=True, slots=True)
class AccountRecord:
    """One account: its next sequence, its balance per token (negative only transiently,
    on a node that has not yet applied a credit others have) and its current lock."""

    next_sequence: Sequence = Sequence(0)  # noqa: RUF009 (a NewType, free at runtime)
    balances: Mapping[Address, int] = field(default_factory=lambda: frozen_balances({}))
    lock: Lock | None = None

    def balance(self, token: Address) -> int:
        return self.balances.get(token, 0)

    def with_balance(self, token: Address, delta: int) -> AccountRecord:
        balances = dict(self.balances)
        balances[token] = balances.get(token, 0) + delta
        if balances[token] == 0:
            del balances[token]
        return replace(self, balances=frozen_balances(balances))

    def with_lock(self, lock: Lock | None) -> AccountRecord:
        return replace(self, lock=lock)


@dataclass(frozen=True, slots=True)
class Committee:
    """The committee of one epoch, as registered in the Vault."""

    epoch: Epoch
    members: tuple[Address, ...]
    quorum: int

    def __post_init__(self) -> None:
        if not 0 < self.quorum <= len(self.members):
            raise ValueError(f"quorum {self.quorum} of {len(self.members)} members")
        if len(set(self.members)) != len(self.members):
            raise ValueError("committee members must be distinct")


@dataclass(frozen=True, slots=True)
class NodeContext:
    """What the state machine needs to know about this node and the deployment: the
    EIP-712 domain, the registered tokens, the current epoch, this node's address and a
    deterministic signer of vote digests (RFC 6979, so the same digest gives the same
    signature). ``withdraw_only`` are the tokens the Vault deregistered (their balances
    can still leave by withdrawal); ``member`` is whether this node belongs to the
    committee of ``current_epoch`` (a node that does not votes for nothing). The chain
    follower moves them through the writer (``ContractReceive*`` changes)."""

    domain: Domain
    node: Address
    tokens: frozenset[Address]
    current_epoch: Epoch
    sign: Callable[[Hash32], Signature]
    withdraw_only: frozenset[Address] = frozenset()
    member: bool = True


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One entry appended to the node's log: its leaf bytes (docs/protocol.md, "Log
    entries") and, for an order, the certificate that was applied."""

    leaf: bytes
    certificate: Certificate | None = None
