"""The agent directory's and mailbox's rules (docs/protocol.md section 7), pure: time
comes in as data, nothing here reads a clock or a store.

Rule 1: a record is accepted only if it is signed by the key behind its agent and payment
addresses, is valid now (``issued_at <= now + MAX_SKEW`` and ``now < expires_at``), and
replaces nothing newer (its sequence is greater than the kept record's; the very same
signed record again is ``unchanged``, not an error).
Rule 2: a record is served only while it is live; expired ones are filtered out when read
and purged later.
Rule 3: a mailbox fetch is accepted only if it names this node, its timestamp is within
``FETCH_WINDOW`` of now, it is signed by the agent's key and its nonce was not seen.
Rule 4 (gossip, docs/protocol.md 7.4): a record is forwarded to the peers only when it
was ``stored`` (new, or replacing an older one); an unchanged or refused record is not,
so a flood stops. A record pulled from a peer is checked only if it is news (a greater
sequence than the kept one), and is not forwarded.

Directory writes are not ledger state: they bypass the writer (node.store.directory
writes each record and its indexes in one batch).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from wallet.directory import (
    AgentRecord,
    FetchRequest,
    SignedRecord,
    verify_fetch,
    verify_record,
)
from wallet.errors import InvalidSignature
from wallet.types import Address, Signature

#: How far in the future a record's ``issued_at`` may be (clock skew), seconds.
MAX_SKEW: Final = 300
#: A fetch request's timestamp must be within this many seconds of the node's clock.
FETCH_WINDOW: Final = 120


class DirectoryRefusal(StrEnum):
    """Why a record or a mailbox request is refused (the API's ``code``)."""

    FORGED_RECORD = "forged_record"
    EXPIRED_RECORD = "expired_record"
    FUTURE_RECORD = "future_record"
    OLD_SEQUENCE = "old_sequence"
    FORGED_REQUEST = "forged_request"
    STALE_REQUEST = "stale_request"
    WRONG_NODE = "wrong_node"
    REPLAYED_REQUEST = "replayed_request"


#: Refusals that conflict with what the node keeps (HTTP 409); the others are 422.
CONFLICTS: Final = frozenset({DirectoryRefusal.OLD_SEQUENCE, DirectoryRefusal.REPLAYED_REQUEST})


@dataclass(frozen=True, slots=True)
class Refused:
    code: DirectoryRefusal
    message: str


def is_live(record: AgentRecord, now: int) -> bool:
    """Whether the record may be served at ``now``."""
    return record.issued_at <= now + MAX_SKEW and now < record.expires_at


def check_record(signed: SignedRecord, kept: SignedRecord | None, now: int) -> Refused | None:
    """Why ``signed`` may not replace ``kept`` (the agent's stored record, live or not)
    at ``now``, or None to accept it. The same signed record again is accepted (the
    caller sees that nothing changes)."""
    try:
        verify_record(signed)
    except InvalidSignature as exc:
        return Refused(DirectoryRefusal.FORGED_RECORD, str(exc))
    record = signed.record
    if now >= record.expires_at:
        return Refused(DirectoryRefusal.EXPIRED_RECORD, "the record has expired")
    if record.issued_at > now + MAX_SKEW:
        return Refused(
            DirectoryRefusal.FUTURE_RECORD,
            f"issued_at is more than {MAX_SKEW} seconds ahead of this node's clock",
        )
    if kept is not None and kept != signed and record.sequence <= kept.record.sequence:
        return Refused(
            DirectoryRefusal.OLD_SEQUENCE,
            f"this node keeps a record of this agent with sequence {kept.record.sequence}: "
            "a replacement needs a greater one",
        )
    return None


def is_news(offered: SignedRecord, kept: SignedRecord | None) -> bool:
    """Whether ``offered`` could replace ``kept`` (nothing kept, or a greater sequence):
    the cheap test before :func:`check_record` verifies a pulled record's signature."""
    return kept is None or offered.record.sequence > kept.record.sequence


def check_fetch(
    request: FetchRequest, signature: Signature, node: Address, now: int, seen: bool
) -> Refused | None:
    """Why a mailbox fetch is refused at ``now`` by ``node`` (``seen``: its nonce was
    already used by this agent), or None."""
    if request.node != node:
        return Refused(DirectoryRefusal.WRONG_NODE, "the request is addressed to another node")
    if abs(request.timestamp - now) > FETCH_WINDOW:
        return Refused(
            DirectoryRefusal.STALE_REQUEST,
            f"the timestamp is more than {FETCH_WINDOW} seconds from this node's clock",
        )
    try:
        verify_fetch(request, signature)
    except InvalidSignature as exc:
        return Refused(DirectoryRefusal.FORGED_REQUEST, str(exc))
    if seen:
        return Refused(DirectoryRefusal.REPLAYED_REQUEST, "this nonce was already used")
    return None
