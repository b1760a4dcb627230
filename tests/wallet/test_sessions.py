"""Negotiation and payment sessions (wallet.uagents.negotiation, wallet.uagents.sessions)."""

from __future__ import annotations

import hashlib
import os
import random
import subprocess
import sys
import typing
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import v1 as pydantic_v1
from uagents_core.models import Model as UaModel
from uagents_core.protocol import ProtocolSpecification

from wallet.client.network import Committee
from wallet.codec import address_hex
from wallet.eip712 import order_digest
from wallet.errors import (
    InvalidReceipt,
    NotPaid,
    OutOfTurn,
    PaymentMismatch,
    PaymentNotVerified,
    QuoteExpired,
    QuoteMismatch,
    SessionRefused,
    WalletError,
)
from wallet.signing import PrivateKey, sign_order, sign_vote
from wallet.types import Address, Amount, Certificate, Domain, Epoch, Hash32, Sequence, Transfer
from wallet.uagents import negotiation as neg
from wallet.uagents.models import decode_payload, encode_payload, model_digest
from wallet.uagents.payment import (
    CancelPayment,
    CommitPayment,
    CompletePayment,
    Funds,
    RejectPayment,
    RequestPayment,
)
from wallet.uagents.sessions import (
    EXPECTED,
    TERMINAL,
    Message,
    PaymentCompleted,
    PaymentVerified,
    Phase,
    Role,
    Serve,
    Session,
    VerifyPayment,
    expected,
    new_session,
    payment_verified,
    transition,
)

B, S = Role.BUYER, Role.SELLER
NOW = 1_800_000_000
SELLER_KEY = PrivateKey(bytes([0] * 31 + [0x51]))
BUYER_KEY = PrivateKey(bytes([0] * 31 + [0xB1]))
TOKEN = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
PAYEE = address_hex(SELLER_KEY.address)
DOMAIN = Domain(31337, Address(bytes.fromhex("cf7ed3acca5a467e9e704c703e8d87f634fb0fc9")))


def make_request() -> neg.QuoteRequest:
    return neg.QuoteRequest(service="translate", units=3, max_unit_price="1000", token=TOKEN)


def make_quote(quote_id: str = "q1", *, metered: bool = False, **kw: Any) -> neg.Quote:
    fields: dict[str, Any] = {
        "quote_id": quote_id,
        "service": "translate",
        "units": 3,
        "unit_price": "900",
        "token": TOKEN,
        "payee": PAYEE,
        "expires": NOW + 60,
        "terms": "best effort",
        "metered": metered,
    }
    return neg.Quote(**(fields | kw))


def qhash(quote: neg.Quote) -> str:
    return neg.hex32(neg.quote_hash(quote))


def accept(quote: neg.Quote) -> neg.AcceptQuote:
    return neg.AcceptQuote(quote_id=quote.quote_id, quote_hash=qhash(quote))


def funds(quote: neg.Quote, **kw: Any) -> Funds:
    fields = {
        "amount": str(neg.quote_amount(quote)),
        "currency": TOKEN,
        "payment_method": "farthing",
    }
    return Funds(**(fields | kw))


def request_payment(quote: neg.Quote) -> RequestPayment:
    return RequestPayment(
        accepted_funds=[funds(quote)], recipient=PAYEE, deadline_seconds=60, reference=qhash(quote)
    )


def tx(i: int) -> str:
    return "0x" + hashlib.sha256(i.to_bytes(4, "big")).hexdigest()


def commit(quote: neg.Quote, i: int, **kw: Any) -> CommitPayment:
    fields: dict[str, Any] = {
        "funds": funds(quote),
        "recipient": PAYEE,
        "transaction_id": tx(i),
        "reference": qhash(quote),
    }
    return CommitPayment(**(fields | kw))


def transfer(quote: neg.Quote, **kw: Any) -> Transfer:
    fields: dict[str, Any] = {
        "payer": BUYER_KEY.address,
        "payee": SELLER_KEY.address,
        "token": Address(bytes.fromhex(TOKEN[2:])),
        "amount": Amount(neg.quote_amount(quote)),
        "sequence": Sequence(0),
        "reference": neg.quote_hash(quote),
    }
    return Transfer(**(fields | kw))


def verified(quote: neg.Quote, i: int, **kw: Any) -> PaymentVerified:
    return PaymentVerified(Hash32(bytes.fromhex(tx(i)[2:])), transfer(quote, **kw))


def complete(i: int) -> CompletePayment:
    return CompletePayment(transaction_id=tx(i))


def service(quote: neg.Quote, i: int) -> neg.ServiceRequest:
    return neg.ServiceRequest(quote_hash=qhash(quote), transaction_id=tx(i), body=f"req {i}")


Step = tuple[Message, Role]


def run(me: Role, steps: list[Step], now: int = NOW) -> Session:
    state = new_session(me)
    for message, sender in steps:
        state = transition(state, message, sender, now).state
    return state


Q = make_quote()
QM = make_quote("m1", metered=True, units=100, unit_price="7")


def to_accepted(q: neg.Quote = Q) -> list[Step]:
    return [(make_request(), B), (q, S), (accept(q), B)]


def to_committed(q: neg.Quote = Q, i: int = 1) -> list[Step]:
    return [*to_accepted(q), (request_payment(q), S), (commit(q, i), B)]


def paid(me: Role, q: neg.Quote, i: int) -> list[Step]:
    """Commit (unless it is the first payment), verify (seller) and complete payment i."""
    steps: list[Step] = [(verified(q, i), S)] if me is S else []
    return [*steps, (complete(i), S)]


# ---------------------------------------------------------------- models and hashes


def test_protocol_digest_is_stable() -> None:
    digest = neg.negotiation_protocol_digest()
    assert digest == neg.negotiation_protocol_digest()
    assert digest == "proto:990e52dab057272e1643c8ec264788e4fb1e710a97c0319627e612da73b1b716"
    seller, buyer = (
        neg.negotiation_protocol_digest("seller"),
        neg.negotiation_protocol_digest("buyer"),
    )
    assert len({digest, seller, buyer}) == 3


def test_protocol_digest_is_the_same_in_another_process() -> None:
    code = "from wallet.uagents.negotiation import negotiation_protocol_digest as d; print(d())"
    for seed in ("1", "2"):
        out = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONHASHSEED": seed},
        ).stdout.strip()
        assert out == neg.negotiation_protocol_digest()


def _uagents_twin(cls: type[neg.Model]) -> type[UaModel]:
    """The same model declared on uagents-core's Model (same name, fields, defaults)."""
    hints = {k: v for k, v in typing.get_type_hints(cls).items() if k in cls.__fields__}
    namespace: dict[str, Any] = {"__annotations__": hints}
    for name, field in cls.__fields__.items():
        if not field.required:
            namespace[name] = field.default
    return type(cls.__name__, (UaModel,), namespace)


def test_digests_agree_with_uagents_core() -> None:
    twins = {model: _uagents_twin(model) for model in neg.NEGOTIATION_INTERACTIONS}
    for model, twin in twins.items():
        assert model_digest(model) == UaModel.build_schema_digest(twin)
    spec = ProtocolSpecification(
        name=neg.NEGOTIATION_PROTOCOL_NAME,
        version=neg.NEGOTIATION_PROTOCOL_VERSION,
        interactions={
            twins[k]: {twins[m] for m in v} for k, v in neg.NEGOTIATION_INTERACTIONS.items()
        },
        roles={role: {twins[m] for m in v} for role, v in neg.NEGOTIATION_ROLES.items()},
    )
    assert spec.digest == neg.negotiation_protocol_digest()
    for role in ("seller", "buyer"):
        assert spec.manifest(role)["metadata"]["digest"] == neg.negotiation_protocol_digest(role)


def test_model_digests_are_stable_and_payloads_round_trip() -> None:
    assert model_digest(neg.Quote) == model_digest(make_quote())
    assert model_digest(neg.Quote).startswith("model:")
    q = make_quote()
    assert decode_payload(encode_payload(q), neg.Quote) == q


@pytest.mark.parametrize(
    ("model", "field", "value"),
    [
        (neg.Quote, "unit_price", "01"),
        (neg.Quote, "unit_price", "-1"),
        (neg.Quote, "unit_price", str(2**256)),
        (neg.Quote, "units", 0),
        (neg.Quote, "token", "0x1234"),
        (neg.Quote, "payee", "5FbDB2315678afecb367f032d93F642f64180aa3"),
        (neg.Quote, "quote_id", ""),
        (neg.Quote, "expires", -1),
        (neg.QuoteRequest, "max_unit_price", "1e3"),
        (neg.AcceptQuote, "quote_hash", "0x" + "AB" * 32),
    ],
)
def test_models_refuse_non_canonical_fields(model: type[neg.Model], field: str, value: Any) -> None:
    base: dict[type[neg.Model], dict[str, Any]] = {
        neg.Quote: make_quote().dict(),
        neg.QuoteRequest: make_request().dict(),
        neg.AcceptQuote: accept(Q).dict(),
    }
    with pytest.raises(pydantic_v1.ValidationError):
        model(**(base[model] | {field: value}))


def test_quote_hash_vector_and_binding() -> None:
    assert neg.canonical_quote(Q) == (
        b'{"expires":1800000060,"metered":false,'
        b'"payee":"' + PAYEE.lower().encode() + b'","quote_id":"q1","service":"translate",'
        b'"terms":"best effort","token":"0x5fbdb2315678afecb367f032d93f642f64180aa3",'
        b'"unit_price":"900","units":3}'
    )
    expected_hash = hashlib.sha256(b"farthing-quote-v1\x00" + neg.canonical_quote(Q)).digest()
    assert neg.quote_hash(Q) == expected_hash
    # Address case does not matter; every field does.
    assert neg.quote_hash(make_quote(token=TOKEN.lower())) == neg.quote_hash(Q)
    changes: dict[str, Any] = {
        "quote_id": "q2",
        "service": "summarise",
        "units": 4,
        "unit_price": "901",
        "token": "0x" + "11" * 20,
        "payee": "0x" + "22" * 20,
        "expires": NOW + 61,
        "terms": "other",
        "metered": True,
    }
    hashes = {neg.quote_hash(make_quote(**{k: v})) for k, v in changes.items()}
    assert len(hashes | {neg.quote_hash(Q)}) == len(changes) + 1


# ---------------------------------------------------------------- legal paths


@pytest.mark.parametrize("me", [B, S])
def test_single_payment_path_with_counter_offer(me: Role) -> None:
    q2 = make_quote("q2", unit_price="800")
    counter = neg.CounterOffer(quote_id="q1", units=3, unit_price="700")
    steps: list[Step] = [
        (make_request(), B),
        (Q, S),
        (counter, B),
        (q2, S),
        (accept(q2), B),
        (request_payment(q2), S),
        (commit(q2, 1), B),
        *paid(me, q2, 1),
    ]
    state = new_session(me)
    events = []
    for message, sender in steps:
        result = transition(state, message, sender, NOW)
        state, events = result.state, [*events, *result.events]
    assert state.phase is Phase.COMPLETED
    assert state.accepted == neg.quote_hash(q2)
    assert PaymentCompleted(Hash32(bytes.fromhex(tx(1)[2:]))) in events
    verify_events = [e for e in events if isinstance(e, VerifyPayment)]
    if me is S:
        assert verify_events == [
            VerifyPayment(
                Hash32(bytes.fromhex(tx(1)[2:])),
                SELLER_KEY.address,
                Address(bytes.fromhex(TOKEN[2:])),
                2400,
                neg.quote_hash(q2),
            )
        ]
    else:
        assert verify_events == []


@pytest.mark.parametrize("me", [B, S])
@pytest.mark.parametrize(
    ("steps", "end"),
    [
        ([(make_request(), B), (neg.DeclineRequest(reason="busy"), S)], Phase.DECLINED),
        ([(make_request(), B), (Q, S), (neg.RejectQuote(quote_id="q1"), B)], Phase.REJECTED),
        (
            [
                (make_request(), B),
                (Q, S),
                (neg.CounterOffer(quote_id="q1", units=3, unit_price="1"), B),
                (neg.DeclineRequest(), S),
            ],
            Phase.DECLINED,
        ),
        ([*to_accepted(), (neg.CloseSession(), B)], Phase.CLOSED),
        ([*to_accepted(), (neg.CloseSession(), S)], Phase.CLOSED),
        ([*to_accepted(), (request_payment(Q), S), (RejectPayment(), B)], Phase.PAYMENT_REJECTED),
        ([*to_committed(), (CancelPayment(reason="no"), S)], Phase.CANCELLED),
        ([*to_committed(), (CancelPayment(transaction_id=tx(1)), S)], Phase.CANCELLED),
    ],
)
def test_ending_paths(me: Role, steps: list[Step], end: Phase) -> None:
    assert run(me, steps).phase is end


def test_seller_cancels_after_verification() -> None:
    state = run(S, [*to_committed(), (verified(Q, 1), S), (CancelPayment(), S)])
    assert state.phase is Phase.CANCELLED


# ---------------------------------------------------------------- out of turn, table-driven

SAMPLES: dict[type[object], Message] = {
    neg.QuoteRequest: make_request(),
    neg.Quote: make_quote("q9"),
    neg.CounterOffer: neg.CounterOffer(quote_id="q1", units=1, unit_price="1"),
    neg.AcceptQuote: accept(Q),
    neg.RejectQuote: neg.RejectQuote(quote_id="q1"),
    neg.DeclineRequest: neg.DeclineRequest(),
    RequestPayment: request_payment(Q),
    CommitPayment: commit(Q, 2),
    RejectPayment: RejectPayment(),
    CancelPayment: CancelPayment(),
    CompletePayment: complete(1),
    PaymentVerified: verified(Q, 1),
    neg.ServiceRequest: service(Q, 1),
    neg.CloseSession: neg.CloseSession(),
}

QM_OPEN: list[Step] = [*to_committed(QM), (verified(QM, 1), S), (complete(1), S)]
QM_OPEN_BUYER: list[Step] = [*to_committed(QM), (complete(1), S)]

REACH: dict[tuple[Role, Phase], list[Step]] = {}
for _me in (B, S):
    REACH |= {
        (_me, Phase.START): [],
        (_me, Phase.REQUESTED): [(make_request(), B)],
        (_me, Phase.QUOTED): [(make_request(), B), (Q, S)],
        (_me, Phase.COUNTERED): [(make_request(), B), (Q, S), (SAMPLES[neg.CounterOffer], B)],
        (_me, Phase.ACCEPTED): to_accepted(),
        (_me, Phase.PAYMENT_REQUESTED): [*to_accepted(), (request_payment(Q), S)],
        (_me, Phase.COMMITTED): to_committed(),
        (_me, Phase.OPEN): QM_OPEN if _me is S else QM_OPEN_BUYER,
        (_me, Phase.COMPLETED): [*to_committed(), *paid(_me, Q, 1)],
        (_me, Phase.DECLINED): [(make_request(), B), (neg.DeclineRequest(), S)],
        (_me, Phase.REJECTED): [(make_request(), B), (Q, S), (SAMPLES[neg.RejectQuote], B)],
        (_me, Phase.PAYMENT_REJECTED): [
            *to_accepted(),
            (request_payment(Q), S),
            (RejectPayment(), B),
        ],
        (_me, Phase.CANCELLED): [*to_committed(), (CancelPayment(), S)],
        (_me, Phase.CLOSED): [*to_accepted(), (neg.CloseSession(), B)],
    }
REACH[S, Phase.VERIFIED] = [*to_committed(), (verified(Q, 1), S)]

OUT_OF_TURN = [
    (me, phase, kind, sender)
    for (me, phase) in REACH
    for kind in SAMPLES
    for sender in (B, S)
    if f"{sender}:{kind.__name__}" not in expected(run(me, REACH[me, phase]))
]


def test_every_phase_is_reached_and_table_is_complete() -> None:
    for (me, phase), steps in REACH.items():
        assert run(me, steps).phase is phase
    assert set(EXPECTED) == set(Phase)
    assert {phase for (_, phase) in REACH} == set(Phase)
    assert len(OUT_OF_TURN) > 300


@pytest.mark.parametrize(("me", "phase", "kind", "sender"), OUT_OF_TURN)
def test_out_of_turn_messages_are_refused(
    me: Role, phase: Phase, kind: type[object], sender: Role
) -> None:
    state = run(me, REACH[me, phase])
    with pytest.raises(SessionRefused) as info:
        transition(state, SAMPLES[kind], sender, NOW)
    error = info.value
    assert isinstance(error, WalletError)
    assert isinstance(error, ValueError)
    assert error.message == kind.__name__
    assert error.phase == phase
    if isinstance(error, PaymentNotVerified):
        assert (me, phase, kind, sender) == (S, Phase.COMMITTED, CompletePayment, S)
    else:
        assert isinstance(error, OutOfTurn)
        assert error.sender == sender
        assert error.expected == expected(state)
        assert f"phase {phase}" in str(error)
        assert kind.__name__ in str(error)


def test_seller_may_not_complete_before_verification() -> None:
    state = run(S, to_committed())
    with pytest.raises(PaymentNotVerified, match="not verified"):
        transition(state, complete(1), S, NOW)
    # The buyer's machine cannot feed a verification.
    with pytest.raises(OutOfTurn):
        transition(run(B, to_committed()), verified(Q, 1), S, NOW)


# ---------------------------------------------------------------- expiry and mismatches


def test_quote_expiry() -> None:
    requested = run(S, [(make_request(), B)])
    with pytest.raises(QuoteExpired):
        transition(requested, make_quote(expires=NOW), S, NOW)
    quoted = transition(requested, Q, S, NOW).state
    assert transition(quoted, accept(Q), B, Q.expires - 1).state.phase is Phase.ACCEPTED
    with pytest.raises(QuoteExpired, match="expired"):
        transition(quoted, accept(Q), B, Q.expires)
    # An expired quote can still be countered, and a fresh quote accepted.
    countered = transition(quoted, SAMPLES[neg.CounterOffer], B, Q.expires + 10).state
    fresh = make_quote("q2", expires=Q.expires + 100)
    again = transition(countered, fresh, S, Q.expires + 10).state
    assert transition(again, accept(fresh), B, Q.expires + 10).state.phase is Phase.ACCEPTED


@pytest.mark.parametrize(
    "message",
    [
        make_quote(service="other"),
        make_quote(token="0x" + "11" * 20),
    ],
)
def test_quote_must_answer_the_request(message: neg.Quote) -> None:
    with pytest.raises(QuoteMismatch):
        transition(run(S, [(make_request(), B)]), message, S, NOW)


def test_requote_needs_new_id() -> None:
    countered = run(S, REACH[S, Phase.COUNTERED])
    with pytest.raises(QuoteMismatch, match="new quote_id"):
        transition(countered, Q, S, NOW)


@pytest.mark.parametrize(
    "message",
    [
        neg.AcceptQuote(quote_id="q2", quote_hash=qhash(Q)),
        neg.AcceptQuote(quote_id="q1", quote_hash=qhash(make_quote(unit_price="1"))),
        neg.CounterOffer(quote_id="q2", units=1, unit_price="1"),
        neg.RejectQuote(quote_id="q2"),
    ],
)
def test_messages_naming_another_quote(message: Message) -> None:
    with pytest.raises(QuoteMismatch):
        transition(run(B, REACH[B, Phase.QUOTED]), message, B, NOW)


@pytest.mark.parametrize(
    "message",
    [
        commit(Q, 2, funds=funds(Q, amount="2699")),
        commit(Q, 2, funds=funds(Q, amount="900")),
        commit(Q, 2, funds=funds(Q, currency="0x" + "11" * 20)),
        commit(Q, 2, funds=funds(Q, payment_method="fet_direct")),
        commit(Q, 2, recipient="0x" + "22" * 20),
        commit(Q, 2, reference=qhash(make_quote("q2"))),
        commit(Q, 2, reference=None),
        commit(Q, 2, transaction_id="0x1234"),
        commit(Q, 2, transaction_id=tx(2).upper().replace("0X", "0x")),
        commit(Q, 2, transaction_id="0x" + "zz" * 32),
    ],
)
def test_commit_payment_mismatch_is_refused(message: CommitPayment) -> None:
    for me in (B, S):
        state = run(me, REACH[me, Phase.PAYMENT_REQUESTED])
        with pytest.raises(PaymentMismatch):
            transition(state, message, B, NOW)


@pytest.mark.parametrize(
    "message",
    [
        RequestPayment(
            accepted_funds=[funds(Q, amount="1")],
            recipient=PAYEE,
            deadline_seconds=9,
            reference=qhash(Q),
        ),
        RequestPayment(accepted_funds=[], recipient=PAYEE, deadline_seconds=9, reference=qhash(Q)),
        RequestPayment(
            accepted_funds=[funds(Q)],
            recipient="0x" + "22" * 20,
            deadline_seconds=9,
            reference=qhash(Q),
        ),
        RequestPayment(accepted_funds=[funds(Q)], recipient=PAYEE, deadline_seconds=9),
    ],
)
def test_request_payment_mismatch_is_refused(message: RequestPayment) -> None:
    with pytest.raises(PaymentMismatch):
        transition(run(B, to_accepted()), message, S, NOW)


@pytest.mark.parametrize(
    "message",
    [
        verified(Q, 2),
        verified(Q, 1, amount=Amount(1)),
        verified(Q, 1, reference=Hash32(bytes(32))),
        verified(Q, 1, payee=BUYER_KEY.address),
        verified(Q, 1, token=Address(bytes(20))),
    ],
)
def test_verification_of_another_payment_is_refused(message: PaymentVerified) -> None:
    state = run(S, to_committed())
    with pytest.raises(PaymentMismatch):
        transition(state, message, S, NOW)


@pytest.mark.parametrize("me", [B, S])
def test_complete_or_cancel_of_another_payment_is_refused(me: Role) -> None:
    steps = to_committed() + ([(verified(Q, 1), S)] if me is S else [])
    state = run(me, steps)
    for message in (complete(2), CompletePayment(), CancelPayment(transaction_id=tx(2))):
        with pytest.raises(PaymentMismatch):
            transition(state, message, S, NOW)


# ---------------------------------------------------------------- metered


def test_a_metered_payment_buys_whole_units() -> None:
    """Metered: a payment of k x unit_price buys k units (never more than the quote's in
    all); the certificate must then order exactly the committed amount; a non-metered
    quote's payment is the quote's amount and nothing else."""
    three = commit(QM, 1, funds=funds(QM, amount="21"))  # 3 units of 7
    state = run(S, [*to_accepted(QM), (request_payment(QM), S)])
    committed = transition(state, three, B, NOW)
    assert (committed.state.paid, committed.state.pending_amount) == (3, 21)
    (check,) = committed.events
    assert isinstance(check, VerifyPayment) and check.amount == 21
    with pytest.raises(PaymentMismatch, match="not the committed one"):
        transition(committed.state, verified(QM, 1), S, NOW)  # a 7 transfer for a 21 commit
    done = transition(committed.state, verified(QM, 1, amount=Amount(21)), S, NOW).state
    assert transition(done, complete(1), S, NOW).state.credits == {Hash32(bytes.fromhex(tx(1)[2:]))}
    for amount in ("20", "0", "-7", "7.0", "07x", "007", "7" * 78):
        with pytest.raises(PaymentMismatch, match="no whole number of units"):
            transition(state, commit(QM, 1, funds=funds(QM, amount=amount)), B, NOW)
    with pytest.raises(PaymentMismatch, match=r"101 units would exceed the quote's 100"):
        transition(state, commit(QM, 1, funds=funds(QM, amount=str(7 * 101))), B, NOW)
    whole = run(B, [*to_accepted(Q), (request_payment(Q), S)])
    with pytest.raises(PaymentMismatch, match="is not the quote's 2700"):
        transition(whole, commit(Q, 1, funds=funds(Q, amount="5400")), B, NOW)
    assert transition(whole, commit(Q, 1), B, NOW).state.paid == Q.units


@pytest.mark.parametrize("me", [B, S])
def test_metered_hundred_paid_requests_then_close(me: Role) -> None:
    state = run(me, [*to_committed(QM), *paid(me, QM, 1)])
    served = []
    for i in range(1, 101):
        if i > 1:
            state = transition(state, commit(QM, i), B, NOW).state
            for message, sender in paid(me, QM, i):
                state = transition(state, message, sender, NOW).state
        assert state.phase is Phase.OPEN
        result = transition(state, service(QM, i), B, NOW)
        state = result.state
        served += [e for e in result.events if isinstance(e, Serve)]
    assert state.served == 100
    assert [s.body for s in served] == [f"req {i}" for i in range(1, 101)]
    # All units are paid: one more payment is refused, and so is an unpaid request.
    with pytest.raises(PaymentMismatch, match=r"would exceed the quote.s 100 \(0 left\)"):
        transition(state, commit(QM, 101), B, NOW)
    with pytest.raises(NotPaid):
        transition(state, service(QM, 101), B, NOW)
    for closer in (B, S):
        assert transition(state, neg.CloseSession(), closer, NOW).state.phase is Phase.CLOSED


@pytest.mark.parametrize("me", [B, S])
def test_metered_unpaid_requests_are_refused(me: Role) -> None:
    state = run(me, REACH[me, Phase.OPEN])
    with pytest.raises(NotPaid):  # never committed
        transition(state, service(QM, 2), B, NOW)
    with pytest.raises(NotPaid):  # paid under another quote
        transition(
            state, neg.ServiceRequest(quote_hash=qhash(Q), transaction_id=tx(1), body=""), B, NOW
        )
    state = transition(state, service(QM, 1), B, NOW).state
    with pytest.raises(NotPaid):  # already spent
        transition(state, service(QM, 1), B, NOW)
    with pytest.raises(PaymentMismatch, match="committed before"):  # reused id
        transition(state, commit(QM, 1), B, NOW)
    # Committed but not completed: still unpaid, and out of turn until completed.
    committed = transition(state, commit(QM, 2), B, NOW).state
    with pytest.raises(OutOfTurn):
        transition(committed, service(QM, 2), B, NOW)
    # Either side closes an open session.
    for closer in (B, S):
        assert transition(state, neg.CloseSession(), closer, NOW).state.phase is Phase.CLOSED


# ---------------------------------------------------------------- random sequences

POOL: list[Message] = [
    make_request(),
    Q,
    make_quote("q2"),
    QM,
    make_quote(expires=NOW),
    neg.CounterOffer(quote_id="q1", units=1, unit_price="1"),
    accept(Q),
    accept(QM),
    accept(make_quote("q2")),
    neg.RejectQuote(quote_id="q1"),
    neg.DeclineRequest(),
    request_payment(Q),
    request_payment(QM),
    RejectPayment(),
    CancelPayment(),
    neg.CloseSession(),
    *(commit(q, i) for q in (Q, QM) for i in (1, 2)),
    *(verified(q, i) for q in (Q, QM) for i in (1, 2)),
    verified(Q, 1, amount=Amount(5)),
    *(complete(i) for i in (1, 2)),
    *(service(q, i) for q in (Q, QM) for i in (1, 2)),
]


@settings(max_examples=300, deadline=None)
@given(
    me=st.sampled_from([B, S]),
    steps=st.lists(st.tuples(st.integers(0, len(POOL) - 1), st.sampled_from([B, S])), max_size=40),
)
def test_random_sequences_never_break_invariants(me: Role, steps: list[tuple[int, Role]]) -> None:
    state = new_session(me)
    verified_ids: set[Hash32] = set()
    for index, sender in steps:
        message = POOL[index]
        try:
            result = transition(state, message, sender, NOW)
        except SessionRefused:
            continue
        new = result.state
        if isinstance(message, PaymentVerified):
            verified_ids.add(message.transaction_id)
        for event in result.events:
            if isinstance(event, PaymentCompleted) and me is S:
                assert event.transaction_id in verified_ids  # never completes unverified
            if isinstance(event, Serve):
                assert event.transaction_id in state.credits  # never serves unpaid
        assert new.phase in EXPECTED
        if state.phase in TERMINAL:
            raise AssertionError("a terminal session accepted a message")
        if new.phase in {Phase.ACCEPTED, Phase.OPEN, Phase.COMPLETED, Phase.COMMITTED}:
            assert new.quote is not None
            assert new.accepted == neg.quote_hash(new.quote)
        if me is B:
            assert new.phase is not Phase.VERIFIED
        assert new.quote is None or new.served + len(new.credits) <= new.quote.units
        state = new


@settings(max_examples=200, deadline=None)
@given(me=st.sampled_from([B, S]), data=st.data())
def test_guided_random_sequences(me: Role, data: st.DataObject) -> None:
    """Mostly messages whose (sender, type) the phase allows, so that deep phases are
    reached; every accepted message keeps the invariants."""
    state = new_session(me)
    verified_ids: set[Hash32] = set()
    for _ in range(data.draw(st.integers(0, 40))):
        allowed = expected(state)
        legal = [(m, r) for m in POOL for r in (B, S) if f"{r}:{type(m).__name__}" in allowed]
        everything = [(m, r) for m in POOL for r in (B, S)]
        pool = legal if legal and data.draw(st.integers(0, 9)) else everything
        message, sender = data.draw(st.sampled_from(pool))
        try:
            result = transition(state, message, sender, NOW)
        except SessionRefused as error:
            assert error.phase == state.phase
            continue
        if isinstance(message, PaymentVerified):
            verified_ids.add(message.transaction_id)
        for event in result.events:
            if isinstance(event, PaymentCompleted) and me is S:
                assert event.transaction_id in verified_ids
            if isinstance(event, Serve):
                assert event.transaction_id in state.credits
        assert state.phase not in TERMINAL
        state = result.state
        quote = state.quote
        assert quote is None or state.served + len(state.credits) <= quote.units
        if state.phase in {Phase.COMPLETED, Phase.OPEN}:
            assert state.accepted is not None


def test_guided_walk_reaches_deep_phases() -> None:
    """A plain random walk over legal messages reaches completion and metered service."""
    rng = random.Random(5)
    reached: set[Phase] = set()
    served = 0
    for _ in range(2000):
        me = rng.choice([B, S])
        state = new_session(me)
        for _ in range(30):
            allowed = expected(state)
            legal = [(m, r) for m in POOL for r in (B, S) if f"{r}:{type(m).__name__}" in allowed]
            if not legal:
                break
            message, sender = rng.choice(legal)
            try:
                state = transition(state, message, sender, NOW).state
            except SessionRefused:
                continue
            reached.add(state.phase)
        served = max(served, state.served)
    assert {Phase.COMPLETED, Phase.OPEN, Phase.VERIFIED, Phase.CANCELLED} <= reached
    assert served >= 1


# ---------------------------------------------------------------- certificates and receipts


def _certificate(order: Transfer, voters: int = 3) -> tuple[Certificate, Committee]:
    keys = [PrivateKey(bytes([0] * 31 + [i + 1])) for i in range(4)]
    committee = Committee(Epoch(1), 3, tuple(k.address for k in keys))
    digest = order_digest(DOMAIN, order)
    votes = tuple(
        sorted((k.address, sign_vote(k, DOMAIN, digest, Epoch(1)).signature) for k in keys[:voters])
    )
    return Certificate(sign_order(BUYER_KEY, DOMAIN, order), Epoch(1), votes), committee


def test_payment_verified_checks_the_certificate_and_drives_the_seller() -> None:
    order = transfer(Q)
    certificate, committee = _certificate(order)
    digest = order_digest(DOMAIN, order)
    result = payment_verified(certificate, committee, DOMAIN)
    assert result == PaymentVerified(digest, order)
    steps: list[Step] = [
        *to_accepted(),
        (request_payment(Q), S),
        (commit(Q, 1, transaction_id=neg.hex32(digest)), B),
        (result, S),
        (CompletePayment(transaction_id=neg.hex32(digest)), S),
    ]
    assert run(S, steps).phase is Phase.COMPLETED
    new_state, events = transition(run(S, steps[:-1]), steps[-1][0], S, NOW)
    assert (new_state.phase, events) == (Phase.COMPLETED, (PaymentCompleted(digest),))
    short, _ = _certificate(order, voters=2)
    with pytest.raises(InvalidReceipt, match="quorum"):
        payment_verified(short, committee, DOMAIN)


def test_delivery_receipt_verifies_and_every_tampered_field_fails() -> None:
    quote, payment, content = neg.quote_hash(Q), Hash32(bytes(range(32))), b"the translation"
    receipt = neg.sign_delivery(SELLER_KEY, quote, payment, content)
    kwargs: dict[str, Any] = {
        "seller": SELLER_KEY.address,
        "quote": quote,
        "transaction_id": payment,
    }
    neg.verify_delivery(receipt, content=content, **kwargs)
    neg.verify_delivery(receipt, **kwargs)
    # The receipt is a Model: it travels as a payload.
    assert decode_payload(encode_payload(receipt), neg.DeliveryReceipt) == receipt
    other = "0x" + "ee" * 32
    tampered = {
        "quote_hash": other,
        "transaction_id": other,
        "content_hash": other,
        "seller": address_hex(BUYER_KEY.address),
        "signature": "0x"
        + ("00" if receipt.signature[2:4] != "00" else "01")
        + receipt.signature[4:],
    }
    for name, value in tampered.items():
        bad = receipt.copy(update={name: value})
        with pytest.raises(InvalidReceipt):
            neg.verify_delivery(bad, content=content, **kwargs)
    # Each bound value, changed on the verifier's side, fails too.
    with pytest.raises(InvalidReceipt, match="other content"):
        neg.verify_delivery(receipt, content=b"something else", **kwargs)
    for key, value in [
        ("quote", Hash32(bytes(32))),
        ("transaction_id", Hash32(bytes(32))),
        ("seller", BUYER_KEY.address),
    ]:
        with pytest.raises(InvalidReceipt):
            neg.verify_delivery(receipt, **(kwargs | {key: value}))
    # Signed by another key, but naming the seller: refused.
    forged = neg.sign_delivery(BUYER_KEY, quote, payment, content).copy(
        update={"seller": address_hex(SELLER_KEY.address)}
    )
    with pytest.raises(InvalidReceipt, match="not signed by the seller"):
        neg.verify_delivery(forged, **kwargs)
    # A signature that is not 65 bytes of hex.
    with pytest.raises(InvalidReceipt, match="130 hex"):
        neg.verify_delivery(receipt.copy(update={"signature": "0x00"}), **kwargs)
