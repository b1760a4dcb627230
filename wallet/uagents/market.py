"""Selling and buying a metered service between two agents (docs/protocol.md 6.7).

The shells around :mod:`.sessions`: :class:`Seller` answers quote requests from a price
list, checks every payment on the ledger and serves each paid request with a signed
delivery receipt; :class:`Buyer` asks for a quote, accepts it and pays per request::

    seller = Seller(seller_agent, seller_wallet, seller_key, {"echo": offer}, serve)
    buyer = Buyer(buyer_agent, buyer_wallet, seller_agent.address)
    await buyer.request_quote("echo", units=100, max_unit_price=1000, token=usdf)
    await buyer.accept()
    delivered = await buyer.request("hello")  # pay, commit, request, check the receipt

One request, metered: the buyer pays ``unit_price`` with the quote hash as the
Transfer's reference (``pay_final``, milliseconds) and sends ``CommitPayment`` naming the
certificate's digest (sync); the seller fetches that certificate from the nodes, verifies
it (:func:`~.sessions.payment_verified`) and answers ``CompletePayment``. The buyer then
sends ``ServiceRequest`` (sync); the seller runs its handler, sends the content as a
:class:`ServiceResult` and answers the :class:`~.negotiation.DeliveryReceipt` over it.
Every message, sent or received, goes through :func:`~.sessions.transition` on both
sides; the seller's refusals (an unpaid request, a payment that does not match, a
payment already used) reach the buyer as :class:`~wallet.errors.ErrorReply` naming the
reason (``not_paid: ...``). Either side may close the session (:meth:`Buyer.close`,
:meth:`Seller.close_session`).

``(sync)`` above is the default, for Farthing sellers. A uAgents seller answers each
message with a message of its own (uagents leaves sync replies unsigned), so a buyer of
one passes ``sync=False`` and its :class:`~.agent.Agent` must be reachable by the seller.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from wallet.codec import address_hex, parse_address
from wallet.eip712 import order_digest
from wallet.errors import (
    ErrorReply,
    InvalidReceipt,
    MessageRefused,
    PaymentMismatch,
    SessionRefused,
    WalletError,
)
from wallet.signing import PrivateKey
from wallet.types import Address, Certificate, Hash32
from wallet.uagents.agent import Agent
from wallet.uagents.context import Context
from wallet.uagents.models import Model, protocol_digest
from wallet.uagents.negotiation import (
    PAYMENT_METHOD,
    AcceptQuote,
    CloseSession,
    CounterOffer,
    DeclineRequest,
    DeliveryReceipt,
    Quote,
    QuoteRequest,
    RejectQuote,
    ServiceRequest,
    hex32,
    negotiation_protocol_digest,
    quote_amount,
    quote_hash,
    sign_delivery,
    verify_delivery,
)
from wallet.uagents.payment import (
    CancelPayment,
    CommitPayment,
    CompletePayment,
    Funds,
    RequestPayment,
    payment_protocol_digest,
)
from wallet.uagents.protocol import Protocol
from wallet.uagents.sessions import (
    TERMINAL,
    Message,
    Phase,
    Role,
    Serve,
    Session,
    Transition,
    VerifyPayment,
    new_session,
    payment_verified,
    transition,
)

if TYPE_CHECKING:
    from wallet.agent import FarthingWallet

__all__ = ["Buyer", "Delivered", "Offer", "Seller", "ServiceResult"]

MARKET_PROTOCOL_NAME: Final = "farthing-market-delivery"
log = logging.getLogger("wallet.uagents.market")


# Comments, not docstrings: a docstring would change the digest.
# The seller's delivered content for the request paid by ``transaction_id``; the
# DeliveryReceipt that answers the ServiceRequest signs its SHA-256 (UTF-8 bytes).
class ServiceResult(Model):
    quote_hash: str
    transaction_id: str
    content: str


@dataclass(frozen=True, slots=True)
class Offer:
    """One line of the seller's price list: up to ``units`` requests of the service at
    ``unit_price`` base units of ``token`` (``0x`` hex) each, quotes valid ``ttl`` s. A
    counter offer at ``min_unit_price`` or more (default: ``unit_price``, no discount)
    is quoted back at the buyer's price; a lower one is declined. ``cost(body)`` is how
    many units a request costs (default 1): a payment buys whole units, and a request
    that costs more than its payment bought is refused before the payment is spent."""

    token: str
    unit_price: int
    units: int = 1000
    terms: str = "metered, one payment per request"
    ttl: int = 600
    min_unit_price: int | None = None
    cost: Callable[[str], int] = lambda body: 1

    def quote(self, service: str, units: int, unit_price: int, payee: str, now: int) -> Quote:
        return Quote(
            # Random: a payment binds the quote's hash (its reference), so a quote must
            # never repeat, not even after a restart of the seller, which forgets its
            # sessions and the payments they used.
            quote_id=secrets.token_hex(16),
            service=service,
            units=units,
            unit_price=str(unit_price),
            token=self.token,
            payee=payee,
            expires=now + self.ttl,
            terms=self.terms,
            metered=True,
        )


@dataclass(frozen=True, slots=True)
class Delivered:
    """A served request: the content, the seller's checked receipt and the payment."""

    content: str
    receipt: DeliveryReceipt
    certificate: Certificate


#: ``async def serve(body) -> content``: the seller's service.
ServeFn = Callable[[str], Awaitable[str]]


class Seller:
    """Sells metered services on ``agent`` (its protocols are added to the agent) and is
    paid on ``wallet``'s account; ``key`` (that account's key) signs delivery receipts.
    At most ``max_sessions`` sessions are kept (ended ones are forgotten first)."""

    def __init__(
        self,
        agent: Agent,
        wallet: FarthingWallet,
        key: PrivateKey,
        offers: Mapping[str, Offer],
        serve: ServeFn,
        *,
        clock: Callable[[], float] = time.time,
        fetch_timeout: float = 5.0,
        max_sessions: int = 10_000,
    ) -> None:
        if key.address != wallet.address:
            raise ValueError("the receipt key must be the key of the wallet's account")
        self.agent = agent
        self.wallet = wallet
        self.offers = dict(offers)
        self._payee = address_hex(wallet.address)
        self.sessions: dict[tuple[str, uuid.UUID], Session] = {}
        self._key = key
        self._serve = serve
        self._clock = clock
        self._fetch_timeout = fetch_timeout
        self._max_sessions = max_sessions
        self._used: set[str] = set()  # transaction ids spent, across all sessions
        self._units: dict[str, int] = {}  # units each completed payment bought
        agent.include(self._negotiation())
        agent.include(self._payment())

    async def close_session(
        self, buyer: str, session: uuid.UUID, reason: str | None = None
    ) -> None:
        """Ends the session ``session`` with ``buyer`` (CloseSession to the buyer): later
        requests in it are refused. Raises OutOfTurn unless it is accepted or open."""
        key = (buyer, session)
        message = CloseSession(reason=reason)
        state = self.sessions.get(key, new_session(Role.SELLER))
        self.sessions[key] = transition(state, message, Role.SELLER, int(self._clock())).state
        await self.agent.send(buyer, message, session=session, protocol_digest=_NEGOTIATION_DIGEST)

    def _make_room(self) -> None:
        """Bounds the sessions kept: at ``max_sessions``, the ended ones are forgotten; if
        none has ended, a new session is refused (a peer cannot fill the memory)."""
        if len(self.sessions) < self._max_sessions:
            return
        for key in [k for k, state in self.sessions.items() if state.phase in TERMINAL]:
            del self.sessions[key]
        if len(self.sessions) >= self._max_sessions:
            raise MessageRefused(f"the seller has {len(self.sessions)} open sessions already")

    def _check_cost(self, ctx: Context, request: ServiceRequest) -> None:
        """Refuses, before it spends the payment, a request that costs more units (by its
        offer's ``cost``) than the payment it names bought."""
        state = self.sessions.get((ctx.sender, ctx.session))
        bought = self._units.get(request.transaction_id)
        if state is None or state.quote is None or bought is None:
            return  # the session machine refuses it
        cost = self.offers[state.quote.service].cost(request.body)
        if cost > bought:
            raise PaymentMismatch(
                "ServiceRequest",
                state.phase,
                f"the request costs {cost} units; its payment bought {bought}",
            )

    def _step(self, ctx: Context, message: Message, sender: Role) -> Transition:
        """Applies ``message`` to the session of (peer, envelope session) and stores the
        new state (unchanged if refused)."""
        key = (ctx.sender, ctx.session)
        state = self.sessions.get(key, new_session(Role.SELLER))
        step = transition(state, message, sender, int(self._clock()))
        self.sessions[key] = step.state
        return step

    def _negotiation(self) -> Protocol:
        proto = Protocol("farthing-negotiation", "0.1.0")

        @proto.on_message(QuoteRequest, replies={Quote, DeclineRequest})
        async def on_quote_request(ctx: Context, sender: str, msg: QuoteRequest) -> None:
            self.sessions.pop((sender, ctx.session), None)  # a new request starts over
            self._make_room()
            self._step(ctx, msg, Role.BUYER)
            offer = self.offers.get(msg.service)
            answer: Quote | DeclineRequest
            if offer is None:
                answer = DeclineRequest(reason=f"no service {msg.service!r}")
            elif offer.token.lower() != msg.token.lower():
                answer = DeclineRequest(reason=f"{msg.service} is sold for {offer.token}")
            elif offer.unit_price > int(msg.max_unit_price) or msg.units > offer.units:
                answer = DeclineRequest(reason="the price or the number of units")
            else:
                answer = offer.quote(
                    msg.service, msg.units, offer.unit_price, self._payee, int(self._clock())
                )
            self._step(ctx, answer, Role.SELLER)
            await ctx.reply(answer)

        @proto.on_message(CounterOffer, replies={Quote, DeclineRequest})
        async def on_counter(ctx: Context, sender: str, msg: CounterOffer) -> None:
            state = self._step(ctx, msg, Role.BUYER).state
            assert state.quote is not None
            offer = self.offers[state.quote.service]
            floor = offer.unit_price if offer.min_unit_price is None else offer.min_unit_price
            answer: Quote | DeclineRequest
            if int(msg.unit_price) < floor or msg.units > offer.units:
                answer = DeclineRequest(reason="the counter offer's price or number of units")
            else:
                answer = offer.quote(
                    state.quote.service,
                    msg.units,
                    int(msg.unit_price),
                    self._payee,
                    int(self._clock()),
                )
            self._step(ctx, answer, Role.SELLER)
            await ctx.reply(answer)

        @proto.on_message(RejectQuote)
        async def on_reject(ctx: Context, sender: str, msg: RejectQuote) -> None:
            self._step(ctx, msg, Role.BUYER)

        @proto.on_message(AcceptQuote)
        async def on_accept(ctx: Context, sender: str, msg: AcceptQuote) -> None:
            state = self._step(ctx, msg, Role.BUYER).state
            assert state.quote is not None
            quote = state.quote
            request = RequestPayment(
                accepted_funds=[
                    Funds(
                        amount=str(quote_amount(quote)),
                        currency=quote.token,
                        payment_method=PAYMENT_METHOD,
                    )
                ],
                recipient=quote.payee,
                deadline_seconds=max(quote.expires - int(self._clock()), 1),
                reference=msg.quote_hash,
            )
            self._step(ctx, request, Role.SELLER)
            await ctx.request_payment(request)

        @proto.on_message(ServiceRequest, replies={DeliveryReceipt})
        async def on_service_request(ctx: Context, sender: str, msg: ServiceRequest) -> None:
            self._check_cost(ctx, msg)
            state, events = self._step(ctx, msg, Role.BUYER)  # NotPaid unless paid
            (serve,) = [e for e in events if isinstance(e, Serve)]
            assert state.accepted is not None
            content = await self._serve(serve.body)
            result = ServiceResult(
                quote_hash=msg.quote_hash, transaction_id=msg.transaction_id, content=content
            )
            await ctx.send(sender, result, protocol_digest=_MARKET_DIGEST)
            receipt = sign_delivery(
                self._key, state.accepted, serve.transaction_id, content.encode()
            )
            await ctx.reply(receipt)
            self._units.pop(msg.transaction_id, None)
            log.info("served request %d of %s paid by %s", state.served, sender, msg.transaction_id)

        @proto.on_message(CloseSession)
        async def on_close(ctx: Context, sender: str, msg: CloseSession) -> None:
            self._step(ctx, msg, Role.BUYER)

        return proto

    def _payment(self) -> Protocol:
        proto = Protocol("AgentPaymentProtocol", "0.1.0")

        @proto.on_message(CommitPayment, replies={CompletePayment, CancelPayment})
        async def on_commit(ctx: Context, sender: str, msg: CommitPayment) -> None:
            if msg.transaction_id in self._used:
                raise PaymentMismatch("CommitPayment", Phase.OPEN, "a payment used before")
            _, events = self._step(ctx, msg, Role.BUYER)  # funds, recipient, reference
            (check,) = [e for e in events if isinstance(e, VerifyPayment)]
            # The payer delivered it to a quorum before committing, so some node has it
            # unless the buyer lies.
            certificate = await self.wallet.certificate(
                check.transaction_id, timeout=self._fetch_timeout
            )
            try:
                if certificate is None:
                    raise InvalidReceipt("no node has the certificate")
                network = self.wallet.network
                verified = payment_verified(certificate, network.committees, network.domain)
                self._step(ctx, verified, Role.SELLER)  # amount, token, payee, reference
            except (InvalidReceipt, SessionRefused) as refused:
                cancel = CancelPayment(transaction_id=msg.transaction_id, reason=str(refused))
                self._step(ctx, cancel, Role.SELLER)
                await ctx.reply(cancel)
                return
            self._used.add(msg.transaction_id)
            quote = self.sessions[(sender, ctx.session)].quote
            assert quote is not None
            self._units[msg.transaction_id] = int(msg.funds.amount) // quote_amount(quote)
            complete = CompletePayment(transaction_id=msg.transaction_id)
            self._step(ctx, complete, Role.SELLER)
            await ctx.reply(complete)
            log.info(
                "completed payment %s of %s from %s", msg.transaction_id, msg.funds.amount, sender
            )

        return proto


_MARKET_DIGEST: Final = protocol_digest({ServiceResult: frozenset()})


class Buyer:
    """Buys from the seller agent ``seller`` (its ``agent1...`` address) on ``agent``
    (a protocol receiving RequestPayment, ServiceResult and CloseSession is added to it,
    so one Agent hosts a Buyer or a Seller, not both), paying from ``wallet``. One
    session at a time.

    ``sync=True`` suits a Farthing seller: each answer comes back in the HTTP response,
    and the seller need not reach the buyer except for the content. With a uAgents
    seller, pass ``sync=False``: uagents leaves sync replies unsigned, so every answer is
    awaited as a message to ``agent``'s endpoint (``reply_timeout`` seconds at most)."""

    def __init__(
        self,
        agent: Agent,
        wallet: FarthingWallet,
        seller: str,
        *,
        sync: bool = True,
        reply_timeout: float = 10.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.agent = agent
        self.wallet = wallet
        self.seller = seller
        self.sync = sync
        self.session_id = uuid.uuid4()
        self.state = new_session(Role.BUYER)
        self._reply_timeout = reply_timeout
        self._clock = clock
        self._results: dict[str, asyncio.Future[ServiceResult]] = {}
        agent.include(self._protocol())

    @property
    def quote(self) -> Quote:
        if self.state.quote is None:
            raise RuntimeError("no quote yet: call request_quote first")
        return self.state.quote

    def _step(self, message: Message, sender: Role) -> None:
        self.state, _ = transition(self.state, message, sender, int(self._clock()))

    def _protocol(self) -> Protocol:
        proto = Protocol(MARKET_PROTOCOL_NAME, "0.1.0")

        @proto.on_message(RequestPayment)
        async def on_request_payment(ctx: Context, sender: str, msg: RequestPayment) -> None:
            # In sync mode the seller's RequestPayment arrives here, during the accept.
            if sender != self.seller or ctx.session != self.session_id:
                raise MessageRefused("a payment request from another seller or session")
            self._step(msg, Role.SELLER)

        @proto.on_message(CloseSession)
        async def on_close(ctx: Context, sender: str, msg: CloseSession) -> None:
            if sender != self.seller or ctx.session != self.session_id:
                raise MessageRefused("a CloseSession from another seller or session")
            self._step(msg, Role.SELLER)
            log.info("%s closed the session: %s", sender, msg.reason)

        @proto.on_message(ServiceResult)
        async def on_result(ctx: Context, sender: str, msg: ServiceResult) -> None:
            pending = self._results.get(msg.transaction_id)
            if sender != self.seller or ctx.session != self.session_id or pending is None:
                raise MessageRefused("a result for no request of this buyer's session")
            if not pending.done():
                pending.set_result(msg)

        return proto

    async def _ask(self, message: Model, replies: set[type[Model]], digest: str) -> Model | None:
        return await self.agent.ask(
            self.seller,
            message,
            replies=replies,
            session=self.session_id,
            protocol_digest=digest,
            sync=self.sync,
            timeout=self._reply_timeout,
        )

    async def request_quote(
        self, service: str, *, units: int, max_unit_price: int, token: str
    ) -> Quote:
        """Asks for ``units`` requests of ``service``; the quote (checked), or
        :class:`~wallet.errors.WalletError` if the seller declines."""
        self.session_id, self.state = uuid.uuid4(), new_session(Role.BUYER)
        request = QuoteRequest(
            service=service, units=units, max_unit_price=str(max_unit_price), token=token
        )
        self._step(request, Role.BUYER)
        return await self._quote_or_decline(request)

    async def _quote_or_decline(self, message: QuoteRequest | CounterOffer) -> Quote:
        answer = await self._ask(message, {Quote, DeclineRequest}, _NEGOTIATION_DIGEST)
        if not isinstance(answer, Quote | DeclineRequest):
            raise WalletError(f"the seller did not answer the {type(message).__name__}")
        self._step(answer, Role.SELLER)
        if isinstance(answer, DeclineRequest):
            raise WalletError(f"the seller declined: {answer.reason}")
        return answer

    async def counter(self, unit_price: int, *, units: int | None = None) -> Quote:
        """Proposes ``unit_price`` (and ``units``, by default the quote's) for the current
        quote; the seller's new quote (checked), or WalletError if it declines."""
        message = CounterOffer(
            quote_id=self.quote.quote_id,
            units=self.quote.units if units is None else units,
            unit_price=str(unit_price),
        )
        self._step(message, Role.BUYER)
        return await self._quote_or_decline(message)

    async def reject(self, reason: str | None = None) -> None:
        """Refuses the current quote; the session ends."""
        message = RejectQuote(quote_id=self.quote.quote_id, reason=reason)
        self._step(message, Role.BUYER)
        await self.agent.send(
            self.seller, message, session=self.session_id, protocol_digest=_NEGOTIATION_DIGEST
        )

    async def accept(self) -> Hash32:
        """Accepts the quote; its hash. The seller's RequestPayment arrives meanwhile."""
        digest = quote_hash(self.quote)
        accept = AcceptQuote(quote_id=self.quote.quote_id, quote_hash=hex32(digest))
        self._step(accept, Role.BUYER)
        if self.sync:
            await self._ask(accept, set(), _NEGOTIATION_DIGEST)  # RequestPayment meanwhile
        else:
            request = await self._ask(accept, {RequestPayment}, _NEGOTIATION_DIGEST)
            if isinstance(request, RequestPayment):
                self._step(request, Role.SELLER)
        if self.state.phase is not Phase.PAYMENT_REQUESTED:
            raise WalletError("the seller did not request the payment")
        return digest

    async def request(self, body: str, *, units: int = 1) -> Delivered:
        """Pays ``units`` units for one request (what the seller's terms say ``body``
        costs), sends it and checks the delivery receipt over the content."""
        quote = self.quote
        state = self.state
        if state.phase not in (Phase.PAYMENT_REQUESTED, Phase.OPEN):
            raise WalletError(f"no payment can be made in phase {state.phase}")
        if units < 1 or state.paid + units > quote.units:
            left = quote.units - state.paid
            raise WalletError(f"{units} units: {left} of the quote's {quote.units} are left")
        accepted = quote_hash(quote)
        token = self.wallet.tokens.by_address(quote.token)
        amount = quote_amount(quote) * units
        certificate = await self.wallet.pay_final(
            quote.payee, amount, token, reference=hex32(accepted)
        )
        tx = hex32(order_digest(self.wallet.network.domain, certificate.order))
        commit = CommitPayment(
            funds=Funds(amount=str(amount), currency=quote.token, payment_method=PAYMENT_METHOD),
            recipient=quote.payee,
            transaction_id=tx,
            reference=hex32(accepted),
        )
        self._step(commit, Role.BUYER)
        answer = await self._ask(commit, {CompletePayment, CancelPayment}, _PAYMENT_DIGEST)
        if not isinstance(answer, CompletePayment | CancelPayment):
            raise WalletError("the seller did not answer the payment")
        self._step(answer, Role.SELLER)
        if isinstance(answer, CancelPayment):
            raise WalletError(f"the seller cancelled the payment: {answer.reason}")
        request = ServiceRequest(quote_hash=hex32(accepted), transaction_id=tx, body=body)
        paid = self.state
        self._step(request, Role.BUYER)
        pending = self._results[tx] = asyncio.get_running_loop().create_future()
        try:
            receipt = await self._ask(request, {DeliveryReceipt}, _NEGOTIATION_DIGEST)
            # The seller sends the content before it answers with the receipt.
            result = await asyncio.wait_for(pending, self._reply_timeout)
        except ErrorReply:
            self.state = paid  # refused: the payment is still unspent on both sides
            raise
        except TimeoutError:
            raise InvalidReceipt("the seller sent a receipt but not the content") from None
        finally:
            del self._results[tx]
        if not isinstance(receipt, DeliveryReceipt):
            raise InvalidReceipt("the seller did not answer with a delivery receipt")
        seller: Address = parse_address(quote.payee, field="payee")
        verify_delivery(
            receipt,
            seller=seller,
            quote=accepted,
            transaction_id=Hash32(bytes.fromhex(tx[2:])),
            content=result.content.encode(),
        )
        log.info(
            "paid %d for request %d of %s (payment %s completed, receipt verified)",
            amount,
            self.state.served,
            self.seller,
            tx,
        )
        return Delivered(result.content, receipt, certificate)

    async def close(self, reason: str | None = None) -> None:
        """Ends the session (CloseSession to the seller)."""
        message = CloseSession(reason=reason)
        self._step(message, Role.BUYER)
        await self.agent.send(
            self.seller, message, session=self.session_id, protocol_digest=_NEGOTIATION_DIGEST
        )


_NEGOTIATION_DIGEST: Final = negotiation_protocol_digest()
_PAYMENT_DIGEST: Final = payment_protocol_digest()
