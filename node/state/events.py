"""Outputs of the state machine, performed by the shell after the batch is committed:
``Send*`` (a reply or gossip), ``Request*`` (ask peers), ``Event*`` (log and count)."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from wallet.types import Address, Certificate, Epoch, Hash32, Sequence, Vote


class RefusalCode(enum.StrEnum):
    """Why an input was refused. The value is the machine-readable ``code`` of the API's
    JSON error; every refusal changes nothing."""

    BAD_SIGNATURE = "bad_signature"
    UNKNOWN_TOKEN = "unknown_token"  # noqa: S105 (a refusal code, not a secret)
    ZERO_AMOUNT = "zero_amount"
    ZERO_RECIPIENT = "zero_recipient"
    SEQUENCE_USED = "sequence_used"
    SEQUENCE_AHEAD = "sequence_ahead"
    CONFLICTING_ORDER = "conflicting_order"
    INSUFFICIENT_BALANCE = "insufficient_balance"
    UNKNOWN_EPOCH = "unknown_epoch"
    NOT_A_MEMBER = "not_a_member"
    DUPLICATE_VOTER = "duplicate_voter"
    INSUFFICIENT_QUORUM = "insufficient_quorum"
    BAD_VOTE = "bad_vote"
    CONFLICTING_CERTIFICATE = "conflicting_certificate"
    DEPOSIT_GAP = "deposit_gap"
    NOT_VOTING = "not_voting"
    COMMITTEE_CONFLICT = "committee_conflict"


@dataclass(frozen=True, slots=True)
class EventRefused:
    """An input was refused; nothing changed. ``conflicting`` names the digest of the
    order that holds the lock (or was applied) when that is the reason."""

    code: RefusalCode
    message: str
    conflicting: Hash32 | None = None


@dataclass(frozen=True, slots=True)
class SendVote:
    """Reply to the client with this node's vote (its lock is committed first)."""

    vote: Vote


@dataclass(frozen=True, slots=True)
class EventCertificateApplied:
    """A certificate was applied and appended to the log at ``log_index``."""

    digest: Hash32
    owner: Address
    sequence: Sequence
    log_index: int


@dataclass(frozen=True, slots=True)
class SendCertificateToPeers:
    """Push a newly applied certificate to every peer (``digest``: its order's, which the
    peers are asked about first)."""

    certificate: Certificate
    digest: Hash32


@dataclass(frozen=True, slots=True)
class EventCertificateDuplicate:
    """A certificate already applied arrived again: nothing to do."""

    digest: Hash32


@dataclass(frozen=True, slots=True)
class EventCertificatePending:
    """A valid certificate ahead of its account's sequence is kept until the missing
    ones arrive."""

    digest: Hash32
    owner: Address
    sequence: Sequence


@dataclass(frozen=True, slots=True)
class RequestMissingCertificates:
    """Ask peers for the certificates of ``account`` at sequences ``first``..``last``."""

    account: Address
    first: Sequence
    last: Sequence


@dataclass(frozen=True, slots=True)
class EventDepositCredited:
    deposit_id: int
    beneficiary: Address
    log_index: int


@dataclass(frozen=True, slots=True)
class EventDepositDuplicate:
    deposit_id: int


@dataclass(frozen=True, slots=True)
class EventEpochChanged:
    """The node's current epoch moved to ``epoch``; ``member``: whether this node is in
    its committee (if not, it refuses to vote from now on and keeps serving reads)."""

    epoch: Epoch
    member: bool


@dataclass(frozen=True, slots=True)
class EventCommitteeStored:
    """The committee of ``epoch`` is now known: certificates of that epoch are checked
    against it."""

    epoch: Epoch


@dataclass(frozen=True, slots=True)
class EventTokensChanged:
    """The Vault registered (``registered``) or deregistered ``token``."""

    token: Address
    registered: bool


Event = (
    EventRefused
    | SendVote
    | EventCertificateApplied
    | SendCertificateToPeers
    | EventCertificateDuplicate
    | EventCertificatePending
    | RequestMissingCertificates
    | EventDepositCredited
    | EventDepositDuplicate
    | EventEpochChanged
    | EventCommitteeStored
    | EventTokensChanged
)
