"""One negotiation-and-payment session as a pure state machine (docs/protocol.md 6.7).

Rule 1: nothing here does I/O or reads a clock; time comes in as ``now`` (unix seconds).
Rule 2: the state is immutable; :func:`transition` returns a new state and the events
the shell must act on, or raises a :class:`~wallet.errors.SessionRefused` and the state
is unchanged.

Theory of operation: both sides run the same machine over the same conversation, each
with its own role (``Session.me``). Every message of the session, the ones a side sends
and the ones it receives, goes through :func:`transition` with the role of its
``sender``: a side checks its own messages before sending them and its peer's on
arrival. A message its sender may not send in the current phase is refused with
:class:`~wallet.errors.OutOfTurn` naming the message, the phase and what was expected
there (:data:`EXPECTED`). The one input that is not a message is :class:`PaymentVerified`,
which only the seller's machine takes: the seller's shell, told by the
:class:`VerifyPayment` event, fetches the certificate whose digest the buyer committed,
checks it (:func:`payment_verified`) and feeds the result back; until then the seller's
machine refuses its own :class:`~wallet.uagents.payment.CompletePayment`
(:class:`~wallet.errors.PaymentNotVerified`).

Phases, in order: start → requested → quoted (⇄ countered) → accepted →
payment_requested → committed → (verified, seller only) → completed (one payment) or
open (metered: commit, verify, complete and one ServiceRequest per payment, repeated).
Ends: declined, rejected, payment_rejected, cancelled, completed, closed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Final, NamedTuple, assert_never

from wallet.client.network import Committee
from wallet.client.receipts import verify_certificate
from wallet.codec import parse_address
from wallet.eip712 import order_digest
from wallet.errors import (
    InvalidReceipt,
    NotPaid,
    OutOfTurn,
    PaymentMismatch,
    PaymentNotVerified,
    QuoteExpired,
    QuoteMismatch,
)
from wallet.types import Address, Certificate, Domain, Epoch, Hash32, Transfer
from wallet.uagents.negotiation import (
    PAYMENT_METHOD,
    AcceptQuote,
    CloseSession,
    CounterOffer,
    DeclineRequest,
    Quote,
    QuoteRequest,
    RejectQuote,
    ServiceRequest,
    hex32,
    quote_amount,
    quote_hash,
)
from wallet.uagents.payment import (
    CancelPayment,
    CommitPayment,
    CompletePayment,
    Funds,
    RejectPayment,
    RequestPayment,
)


class Role(StrEnum):
    BUYER = "buyer"
    SELLER = "seller"


class Phase(StrEnum):
    START = "start"
    REQUESTED = "requested"
    QUOTED = "quoted"
    COUNTERED = "countered"
    ACCEPTED = "accepted"
    PAYMENT_REQUESTED = "payment_requested"
    COMMITTED = "committed"
    VERIFIED = "verified"
    OPEN = "open"
    COMPLETED = "completed"
    DECLINED = "declined"
    REJECTED = "rejected"
    PAYMENT_REJECTED = "payment_rejected"
    CANCELLED = "cancelled"
    CLOSED = "closed"


TERMINAL: Final = frozenset(
    {
        Phase.COMPLETED,
        Phase.DECLINED,
        Phase.REJECTED,
        Phase.PAYMENT_REJECTED,
        Phase.CANCELLED,
        Phase.CLOSED,
    }
)


@dataclass(frozen=True, slots=True)
class PaymentVerified:
    """Seller-local input: the certificate with digest ``transaction_id`` is final and
    orders ``transfer`` (build it with :func:`payment_verified`)."""

    transaction_id: Hash32
    transfer: Transfer


Message = (
    QuoteRequest
    | Quote
    | CounterOffer
    | AcceptQuote
    | RejectQuote
    | DeclineRequest
    | RequestPayment
    | CommitPayment
    | RejectPayment
    | CancelPayment
    | CompletePayment
    | PaymentVerified
    | ServiceRequest
    | CloseSession
)

_B, _S = Role.BUYER, Role.SELLER
#: Who may send what in each phase. PaymentVerified (committed) is the seller machine's
#: own input; CompletePayment in ``committed`` is accepted only by the buyer's machine
#: (the seller's goes through ``verified``).
EXPECTED: Final[Mapping[Phase, tuple[tuple[Role, type[object]], ...]]] = {
    Phase.START: ((_B, QuoteRequest),),
    Phase.REQUESTED: ((_S, Quote), (_S, DeclineRequest)),
    Phase.QUOTED: ((_B, AcceptQuote), (_B, CounterOffer), (_B, RejectQuote)),
    Phase.COUNTERED: ((_S, Quote), (_S, DeclineRequest)),
    Phase.ACCEPTED: ((_S, RequestPayment), (_B, CloseSession), (_S, CloseSession)),
    Phase.PAYMENT_REQUESTED: ((_B, CommitPayment), (_B, RejectPayment)),
    Phase.COMMITTED: ((_S, PaymentVerified), (_S, CompletePayment), (_S, CancelPayment)),
    Phase.VERIFIED: ((_S, CompletePayment), (_S, CancelPayment)),
    Phase.OPEN: ((_B, ServiceRequest), (_B, CommitPayment), (_B, CloseSession), (_S, CloseSession)),
} | {phase: () for phase in TERMINAL}


@dataclass(frozen=True, slots=True)
class Session:
    """One session as ``me`` sees it. ``quote`` is the latest quote; ``accepted`` its
    hash once accepted; ``pending`` the committed, not yet completed payment and
    ``pending_amount`` its amount; ``verified`` whether the seller verified it;
    ``credits`` the completed payments not yet spent on a request (metered); ``paid``
    the units committed in the session (metered: never more than the quote's);
    ``served`` the requests served; ``seen`` every transaction id committed in the
    session (none may be reused)."""

    me: Role
    phase: Phase = Phase.START
    request: QuoteRequest | None = None
    quote: Quote | None = None
    accepted: Hash32 | None = None
    pending: Hash32 | None = None
    pending_amount: int | None = None
    verified: bool = False
    credits: frozenset[Hash32] = frozenset()
    paid: int = 0
    served: int = 0
    seen: frozenset[Hash32] = frozenset()


# ---------------------------------------------------------------- events (the outcome)


@dataclass(frozen=True, slots=True)
class QuoteAccepted:
    """The buyer accepted; every payment is ``amount`` with reference ``quote_hash``."""

    quote_hash: Hash32
    amount: int


@dataclass(frozen=True, slots=True)
class VerifyPayment:
    """Seller: fetch and verify the certificate with digest ``transaction_id``; it must
    order ``amount`` of ``token`` to ``payee`` with ``reference``."""

    transaction_id: Hash32
    payee: Address
    token: Address
    amount: int
    reference: Hash32


@dataclass(frozen=True, slots=True)
class PaymentCompleted:
    transaction_id: Hash32


@dataclass(frozen=True, slots=True)
class Serve:
    """Seller: serve ``body``, paid by ``transaction_id`` (then sign a delivery receipt)."""

    transaction_id: Hash32
    body: str


@dataclass(frozen=True, slots=True)
class SessionEnded:
    phase: Phase
    reason: str | None


Event = QuoteAccepted | VerifyPayment | PaymentCompleted | Serve | SessionEnded


class Transition(NamedTuple):
    """The new state and the events the shell acts on; unpacks as ``(state, events)``."""

    state: Session
    events: tuple[Event, ...]


# ---------------------------------------------------------------- helpers


def new_session(me: Role) -> Session:
    return Session(me)


def expected(state: Session) -> tuple[str, ...]:
    """The messages allowed in ``state`` as ``"role:Model"`` (for errors and tests)."""
    out = []
    for role, kind in EXPECTED[state.phase]:
        if kind is PaymentVerified and state.me is not Role.SELLER:
            continue
        if kind is CompletePayment and state.phase is Phase.COMMITTED and state.me is Role.SELLER:
            continue
        out.append(f"{role}:{kind.__name__}")
    return tuple(out)


def _parse_tx(text: str | None, name: str, phase: Phase) -> Hash32:
    if text is None or len(text) != 66 or not text.startswith("0x"):
        raise PaymentMismatch(name, phase, "transaction_id is not 0x and 64 hex digits")
    try:
        return Hash32(bytes.fromhex(text[2:]))
    except ValueError:
        raise PaymentMismatch(name, phase, "transaction_id is not hex") from None


def _same_address(text: str, other: str) -> bool:
    return text.lower() == other.lower()


#: A positive amount in canonical decimal (no sign, no leading zero), below 2**256.
_UNITS: Final = re.compile(r"[1-9][0-9]{0,76}")


def _check_funds(
    funds: Funds, quote: Quote, name: str, phase: Phase, *, units: bool = False
) -> int:
    """The amount of ``funds``, which must be the quote's payment (its token, method
    and amount) or, with ``units`` in a metered session, any whole number of units."""
    if funds.payment_method != PAYMENT_METHOD:
        raise PaymentMismatch(name, phase, f"payment_method is not {PAYMENT_METHOD!r}")
    if not _same_address(funds.currency, quote.token):
        raise PaymentMismatch(name, phase, f"currency is not the quote's token {quote.token}")
    expected = quote_amount(quote)
    if units and quote.metered:
        if not _UNITS.fullmatch(funds.amount) or int(funds.amount) % expected:
            raise PaymentMismatch(
                name, phase, f"amount {funds.amount} is no whole number of units of {expected}"
            )
        return int(funds.amount)
    if funds.amount != str(expected):
        raise PaymentMismatch(name, phase, f"amount {funds.amount} is not the quote's {expected}")
    return expected


def _require_quote_id(quote: Quote, quote_id: str, name: str, phase: Phase) -> None:
    if quote_id != quote.quote_id:
        raise QuoteMismatch(name, phase, f"quote_id {quote_id!r} is not {quote.quote_id!r}")


def _end(state: Session, phase: Phase, reason: str | None) -> Transition:
    return Transition(replace(state, phase=phase), (SessionEnded(phase, reason),))


# ---------------------------------------------------------------- the transition


def transition(state: Session, message: Message, sender: Role, now: int) -> Transition:
    """Applies ``message`` sent by ``sender`` at time ``now`` to ``state``.

    Raises :class:`~wallet.errors.OutOfTurn` if ``sender`` may not send it in this phase,
    or another :class:`~wallet.errors.SessionRefused` if it does not match the session
    (an expired quote, another quote's id or hash, a payment of another amount, token,
    recipient or reference, a reused transaction id, a completion before verification,
    a metered request without a completed payment)."""
    name = type(message).__name__
    phase = state.phase
    allowed = expected(state)
    if f"{sender}:{name}" not in allowed:
        if (
            isinstance(message, CompletePayment)
            and phase is Phase.COMMITTED
            and state.me is Role.SELLER
            and sender is Role.SELLER
        ):
            raise PaymentNotVerified(name, phase, "the certificate is not verified yet")
        raise OutOfTurn(name, phase, str(sender), allowed)
    match message:
        case QuoteRequest():
            return Transition(replace(state, phase=Phase.REQUESTED, request=message), ())
        case Quote():
            return _on_quote(state, message, now)
        case DeclineRequest():
            return _end(state, Phase.DECLINED, message.reason)
        case CounterOffer():
            assert state.quote is not None
            _require_quote_id(state.quote, message.quote_id, name, phase)
            return Transition(replace(state, phase=Phase.COUNTERED), ())
        case RejectQuote():
            assert state.quote is not None
            _require_quote_id(state.quote, message.quote_id, name, phase)
            return _end(state, Phase.REJECTED, message.reason)
        case AcceptQuote():
            return _on_accept(state, message, now)
        case RequestPayment():
            return _on_request_payment(state, message)
        case CommitPayment():
            return _on_commit(state, message)
        case RejectPayment():
            return _end(state, Phase.PAYMENT_REJECTED, message.reason)
        case PaymentVerified():
            return _on_verified(state, message)
        case CompletePayment():
            return _on_complete(state, message)
        case CancelPayment():
            if message.transaction_id is not None:
                assert state.pending is not None
                if _parse_tx(message.transaction_id, name, phase) != state.pending:
                    raise PaymentMismatch(name, phase, "another transaction_id")
            return _end(state, Phase.CANCELLED, message.reason)
        case ServiceRequest():
            return _on_service_request(state, message)
        case CloseSession():
            return _end(state, Phase.CLOSED, message.reason)
    assert_never(message)


def _on_quote(state: Session, quote: Quote, now: int) -> Transition:
    name, phase = "Quote", state.phase
    request = state.request
    assert request is not None
    if quote.expires <= now:
        raise QuoteExpired(name, phase, f"expires {quote.expires} is not after {now}")
    if quote.service != request.service:
        raise QuoteMismatch(name, phase, f"service {quote.service!r} was not requested")
    if not _same_address(quote.token, request.token):
        raise QuoteMismatch(name, phase, f"token {quote.token} was not requested")
    if state.quote is not None and quote.quote_id == state.quote.quote_id:
        raise QuoteMismatch(name, phase, "a new quote needs a new quote_id")
    return Transition(replace(state, phase=Phase.QUOTED, quote=quote), ())


def _on_accept(state: Session, accept: AcceptQuote, now: int) -> Transition:
    name, phase, quote = "AcceptQuote", state.phase, state.quote
    assert quote is not None
    _require_quote_id(quote, accept.quote_id, name, phase)
    digest = quote_hash(quote)
    if accept.quote_hash != hex32(digest):
        raise QuoteMismatch(name, phase, f"quote_hash is not {hex32(digest)}")
    if now >= quote.expires:
        raise QuoteExpired(name, phase, f"the quote expired at {quote.expires}, now is {now}")
    events = (QuoteAccepted(digest, quote_amount(quote)),)
    return Transition(replace(state, phase=Phase.ACCEPTED, accepted=digest), events)


def _on_request_payment(state: Session, request: RequestPayment) -> Transition:
    name, phase, quote, accepted = "RequestPayment", state.phase, state.quote, state.accepted
    assert quote is not None
    assert accepted is not None
    if request.reference != hex32(accepted):
        raise PaymentMismatch(name, phase, "reference is not the accepted quote's hash")
    if not _same_address(request.recipient, quote.payee):
        raise PaymentMismatch(name, phase, f"recipient is not the quote's payee {quote.payee}")
    if len(request.accepted_funds) != 1:
        raise PaymentMismatch(name, phase, "accepted_funds must hold exactly the quote's")
    _check_funds(request.accepted_funds[0], quote, name, phase)
    return Transition(replace(state, phase=Phase.PAYMENT_REQUESTED), ())


def _on_commit(state: Session, commit: CommitPayment) -> Transition:
    name, phase, quote, accepted = "CommitPayment", state.phase, state.quote, state.accepted
    assert quote is not None
    assert accepted is not None
    if commit.reference != hex32(accepted):
        raise PaymentMismatch(name, phase, "reference is not the accepted quote's hash")
    if not _same_address(commit.recipient, quote.payee):
        raise PaymentMismatch(name, phase, f"recipient is not the quote's payee {quote.payee}")
    amount = _check_funds(commit.funds, quote, name, phase, units=True)
    tx = _parse_tx(commit.transaction_id, name, phase)
    if commit.transaction_id != hex32(tx):
        raise PaymentMismatch(name, phase, "transaction_id must be lower-case hex")
    if tx in state.seen:
        raise PaymentMismatch(name, phase, "transaction_id was committed before")
    units = amount // quote_amount(quote) if quote.metered else quote.units
    if state.paid + units > quote.units:
        left = quote.units - state.paid
        raise PaymentMismatch(
            name, phase, f"{units} units would exceed the quote's {quote.units} ({left} left)"
        )
    new = replace(
        state,
        phase=Phase.COMMITTED,
        pending=tx,
        pending_amount=amount,
        verified=False,
        paid=state.paid + units,
        seen=state.seen | {tx},
    )
    if state.me is not Role.SELLER:
        return Transition(new, ())
    payee = parse_address(quote.payee, field="payee")
    token = parse_address(quote.token, field="token")
    return Transition(new, (VerifyPayment(tx, payee, token, amount, accepted),))


def _on_verified(state: Session, verified: PaymentVerified) -> Transition:
    name, phase, quote, accepted = "PaymentVerified", state.phase, state.quote, state.accepted
    assert quote is not None
    assert accepted is not None
    transfer = verified.transfer
    if verified.transaction_id != state.pending:
        raise PaymentMismatch(name, phase, "the certificate is not the committed payment")
    if transfer.reference != accepted:
        raise PaymentMismatch(name, phase, "the transfer's reference is not the quote hash")
    if transfer.payee != parse_address(quote.payee, field="payee"):
        raise PaymentMismatch(name, phase, "the transfer's payee is not the quote's")
    if transfer.token != parse_address(quote.token, field="token"):
        raise PaymentMismatch(name, phase, "the transfer's token is not the quote's")
    if transfer.amount != state.pending_amount:
        raise PaymentMismatch(name, phase, "the transfer's amount is not the committed one")
    return Transition(replace(state, phase=Phase.VERIFIED, verified=True), ())


def _on_complete(state: Session, complete: CompletePayment) -> Transition:
    name, phase, quote, pending = "CompletePayment", state.phase, state.quote, state.pending
    assert quote is not None
    assert pending is not None
    if state.me is Role.SELLER and not state.verified:  # pragma: no cover (EXPECTED)
        raise PaymentNotVerified(name, phase, "the certificate is not verified yet")
    if _parse_tx(complete.transaction_id, name, phase) != pending:
        raise PaymentMismatch(name, phase, "transaction_id is not the committed payment")
    events = (PaymentCompleted(pending),)
    done = replace(state, pending=None, pending_amount=None, verified=False)
    if not quote.metered:
        return Transition(replace(done, phase=Phase.COMPLETED), events)
    return Transition(replace(done, phase=Phase.OPEN, credits=state.credits | {pending}), events)


def _on_service_request(state: Session, request: ServiceRequest) -> Transition:
    name, phase, accepted = "ServiceRequest", state.phase, state.accepted
    assert accepted is not None
    if request.quote_hash != hex32(accepted):
        raise NotPaid(name, phase, "quote_hash is not the accepted quote's")
    tx = _parse_tx(request.transaction_id, name, phase)
    if tx not in state.credits:
        raise NotPaid(name, phase, f"{request.transaction_id} is no completed, unused payment")
    new = replace(state, credits=state.credits - {tx}, served=state.served + 1)
    return Transition(new, (Serve(tx, request.body),))


# ---------------------------------------------------------------- the seller's check


def payment_verified(
    certificate: Certificate,
    committees: Committee | Iterable[Committee] | Mapping[Epoch, Committee],
    domain: Domain,
) -> PaymentVerified:
    """Verifies ``certificate`` (:func:`~wallet.client.receipts.verify_certificate`: the
    owner's signature and a quorum of votes) and returns the :class:`PaymentVerified`
    input naming its digest and transfer. Raises :class:`InvalidReceipt` if it is not a
    valid certificate of a Transfer."""
    verify_certificate(certificate, committees, domain)
    order = certificate.order
    if not isinstance(order, Transfer):
        raise InvalidReceipt("the certificate is of a withdrawal, not a transfer")
    return PaymentVerified(order_digest(domain, order), order)
