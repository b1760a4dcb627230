"""A real uagents 0.26.1 ``Agent`` selling a metered service to a Farthing buyer, offline.

Run as a subprocess by tests/wallet/test_uagents_interop.py (not collected by pytest)::

    python tests/wallet/uagents_seller.py --port 8123 --seed SEED --manifest manifest.json \
        --data-dir DIR --token 0x... --price 1000 --buyer agent1...=http://127.0.0.1:PORT/submit

The agent is the unmodified ``uagents.Agent``, kept off the network: it binds 127.0.0.1,
builds no Almanac contract, posts no status, reports no events, its Agentverse is a
closed loopback port and its resolver is a fixed map (the buyer's address to its
``/submit`` URL).

Flow, one envelope session per buyer session; every answer is a separate message to the
buyer's endpoint (the Farthing Buyer in async mode, ``Buyer(..., sync=False)``):

- QuoteRequest -> Quote (metered; payee = the 0x account of this agent's own key) or
  DeclineRequest;
- AcceptQuote (quote id and hash checked) -> RequestPayment (one Funds, method
  "farthing", reference = the quote hash);
- CommitPayment -> the certificate fetched from the Farthing nodes and verified
  (``payment_verified``: payer's signature, quorum) and checked against the quote
  (amount, token, payee, reference) -> CompletePayment, else CancelPayment with the reason;
- ServiceRequest naming a completed, unused payment -> ServiceResult, then the signed
  DeliveryReceipt; otherwise an ErrorMessage (uagents' own error model);
- CloseSession -> logged.

Every step is printed (flushed); each completed payment as
``completed payment <tx> for <amount>``; ``READY <agent address> <payee>`` once it serves.
The keys are never printed.

The message models are declared here on uagents' ``Model`` (``uagents.Model`` is
``uagents_core.models.Model``; this module imports only uagents-core at the top so that a
test can import it to compare the digests with Farthing's), with the class names and
fields of wallet.uagents.negotiation and wallet.uagents.market and no docstrings: a
docstring would change the digest.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from uagents_core.contrib.protocols.payment import (
    CancelPayment,
    CommitPayment,
    CompletePayment,
    Funds,
    RejectPayment,
    RequestPayment,
    payment_protocol_spec,
)
from uagents_core.models import ErrorMessage, Model

from tests.wallet.uagents_offline import offline_agent

PAYMENT_METHOD = "farthing"
SERVICE = "shout"


# ---------------------------------------------------------------- the models (no docstrings)


class QuoteRequest(Model):
    service: str
    units: int
    max_unit_price: str
    token: str


class Quote(Model):
    quote_id: str
    service: str
    units: int
    unit_price: str
    token: str
    payee: str
    expires: int
    terms: str
    metered: bool


class DeclineRequest(Model):
    reason: str | None = None


class AcceptQuote(Model):
    quote_id: str
    quote_hash: str


class ServiceRequest(Model):
    quote_hash: str
    transaction_id: str
    body: str


class DeliveryReceipt(Model):
    quote_hash: str
    transaction_id: str
    content_hash: str
    seller: str
    signature: str


class CloseSession(Model):
    reason: str | None = None


class ServiceResult(Model):
    quote_hash: str
    transaction_id: str
    content: str


#: Every model this agent sends or receives, by class name (the test compares digests).
MODELS: dict[str, type[Model]] = {
    model.__name__: model
    for model in (
        QuoteRequest,
        Quote,
        DeclineRequest,
        AcceptQuote,
        ServiceRequest,
        DeliveryReceipt,
        CloseSession,
        ServiceResult,
        Funds,
        RequestPayment,
        CommitPayment,
        RejectPayment,
        CancelPayment,
        CompletePayment,
        ErrorMessage,
    )
}


# ---------------------------------------------------------------- the seller's sessions


@dataclass
class Deal:
    """One buyer session as this seller sees it."""

    quote: Quote | None = None
    accepted: str | None = None  # 0x quote hash, once accepted
    pending: set[str] = field(default_factory=set)  # committed, being verified
    unused: set[str] = field(default_factory=set)  # completed, not yet served
    served: int = 0
    closed: bool = False


def say(text: str) -> None:
    print(f"[uagents-seller] {text}", flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--seed", required=True)
    parser.add_argument("--buyer", required=True, help="agent1...=http://127.0.0.1:PORT/submit")
    parser.add_argument("--manifest", type=Path, required=True)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--price", type=int, required=True)
    parser.add_argument("--units", type=int, default=1000)
    parser.add_argument("--ttl", type=int, default=600)
    parser.add_argument("--fetch-timeout", type=float, default=5.0)
    args = parser.parse_args(argv)
    buyer_address, _, buyer_url = args.buyer.partition("=")

    import uagents
    from uagents import Context, Protocol

    from wallet.agent import FarthingWallet, connect
    from wallet.codec import address_hex
    from wallet.errors import InvalidReceipt
    from wallet.signing import PrivateKey
    from wallet.types import Hash32
    from wallet.uagents import negotiation as farthing
    from wallet.uagents.sessions import payment_verified

    assert uagents.Model is Model
    agent = offline_agent("uagents-seller", args.port, args.seed, {buyer_address: buyer_url})
    # The Farthing account of the agent's own key: the quotes' payee, the receipts' signer.
    key = PrivateKey.from_hex(agent._identity.private_key)
    payee = address_hex(key.address)
    deals: dict[tuple[str, str], Deal] = {}
    used: set[str] = set()  # transaction ids completed, across all sessions
    quotes = 0
    stack = contextlib.AsyncExitStack()
    background: set[asyncio.Task[None]] = set()
    wallet: FarthingWallet | None = None

    def deal_of(ctx: Context, sender: str) -> Deal:
        return deals.setdefault((sender, str(ctx.session)), Deal())

    def farthing_quote(quote: Quote) -> farthing.Quote:
        return farthing.Quote(**quote.dict())

    negotiation = Protocol(name="farthing-negotiation", version="0.1.0")

    @negotiation.on_message(QuoteRequest, replies={Quote, DeclineRequest})
    async def on_quote_request(ctx: Context, sender: str, msg: QuoteRequest) -> None:
        nonlocal quotes
        say(f"QuoteRequest from {sender} in session {ctx.session}: {msg.units} x {msg.service}")
        deals[(sender, str(ctx.session))] = deal = Deal()
        answer: Quote | DeclineRequest
        if msg.service != SERVICE:
            answer = DeclineRequest(reason=f"no service {msg.service!r}")
        elif msg.token.lower() != args.token.lower():
            answer = DeclineRequest(reason=f"{SERVICE} is sold for {args.token}")
        elif args.price > int(msg.max_unit_price) or msg.units > args.units:
            answer = DeclineRequest(reason="the price or the number of units")
        else:
            quotes += 1
            deal.quote = answer = Quote(
                quote_id=f"uq{quotes}",
                service=msg.service,
                units=msg.units,
                unit_price=str(args.price),
                token=args.token,
                payee=payee,
                expires=_now() + args.ttl,
                terms="metered, one payment per request",
                metered=True,
            )
        say(f"answering {type(answer).__name__}")
        await ctx.send(sender, answer)

    @negotiation.on_message(AcceptQuote, replies={RequestPayment})
    async def on_accept(ctx: Context, sender: str, msg: AcceptQuote) -> None:
        deal = deal_of(ctx, sender)
        quote = deal.quote
        if quote is None or deal.accepted is not None or msg.quote_id != quote.quote_id:
            say(f"AcceptQuote refused: no such open quote {msg.quote_id!r}")
            return
        digest = "0x" + farthing.quote_hash(farthing_quote(quote)).hex()
        if msg.quote_hash != digest:
            say(f"AcceptQuote refused: quote_hash {msg.quote_hash} is not {digest}")
            return
        if _now() >= quote.expires:
            say("AcceptQuote refused: the quote expired")
            return
        deal.accepted = digest
        say(f"quote {quote.quote_id} accepted, hash {digest}; requesting payment")
        await ctx.send(
            sender,
            RequestPayment(
                accepted_funds=[
                    Funds(amount=quote.unit_price, currency=quote.token, payment_method="farthing")
                ],
                recipient=quote.payee,
                deadline_seconds=max(quote.expires - _now(), 1),
                reference=digest,
                description=f"{quote.unit_price} base units per {quote.service} request",
            ),
        )

    @negotiation.on_message(ServiceRequest, replies={ServiceResult, DeliveryReceipt})
    async def on_service_request(ctx: Context, sender: str, msg: ServiceRequest) -> None:
        deal = deal_of(ctx, sender)
        say(f"ServiceRequest paid by {msg.transaction_id}")
        if deal.accepted is None or msg.quote_hash != deal.accepted:
            problem = "quote_hash is not the accepted quote's"
        elif msg.transaction_id not in deal.unused:
            problem = f"{msg.transaction_id} is no completed, unused payment"
        else:
            problem = None
        if problem is not None:
            say(f"ServiceRequest refused: {problem}")
            await ctx.send(sender, ErrorMessage(error=f"not_paid: {problem}"))
            return
        deal.unused.discard(msg.transaction_id)
        deal.served += 1
        content = msg.body.upper()
        await ctx.send(
            sender,
            ServiceResult(
                quote_hash=msg.quote_hash, transaction_id=msg.transaction_id, content=content
            ),
        )
        receipt = farthing.sign_delivery(
            key,
            Hash32(bytes.fromhex(msg.quote_hash[2:])),
            Hash32(bytes.fromhex(msg.transaction_id[2:])),
            content.encode(),
        )
        await ctx.send(sender, DeliveryReceipt(**receipt.dict()))
        say(f"served request {deal.served} ({hashlib.sha256(content.encode()).hexdigest()[:16]})")

    @negotiation.on_message(CloseSession)
    async def on_close(ctx: Context, sender: str, msg: CloseSession) -> None:
        deal = deal_of(ctx, sender)
        deal.closed = True
        say(f"session {ctx.session} closed by the buyer ({msg.reason}); served {deal.served}")

    payment = Protocol(spec=payment_protocol_spec, role="seller")

    @payment.on_message(CommitPayment)
    async def on_commit(ctx: Context, sender: str, msg: CommitPayment) -> None:
        deal = deal_of(ctx, sender)
        tx = msg.transaction_id
        say(f"CommitPayment {tx} for {msg.funds.amount}")
        try:
            reason = await check_commit(deal, msg)
        except Exception as error:  # a seller never crashes on a bad payment
            reason = f"{type(error).__name__}: {error}"
        if reason is not None:
            deal.pending.discard(tx)
            say(f"cancelled payment {tx}: {reason}")
            await ctx.send(sender, CancelPayment(transaction_id=tx, reason=reason))
            return
        deal.pending.discard(tx)
        deal.unused.add(tx)
        say(f"completed payment {tx} for {msg.funds.amount}")
        await ctx.send(sender, CompletePayment(transaction_id=tx))

    async def check_commit(deal: Deal, msg: CommitPayment) -> str | None:
        """None if ``msg`` pays the accepted quote with a verified certificate, else why
        not."""
        quote, tx = deal.quote, msg.transaction_id
        if quote is None or deal.accepted is None or deal.closed:
            return "no accepted quote in this session"
        if msg.reference != deal.accepted:
            return "reference is not the accepted quote's hash"
        if msg.recipient.lower() != quote.payee.lower():
            return f"recipient is not the quote's payee {quote.payee}"
        funds = msg.funds
        if funds.payment_method != PAYMENT_METHOD or funds.amount != quote.unit_price:
            return f"the funds are not {quote.unit_price} by {PAYMENT_METHOD}"
        if funds.currency.lower() != quote.token.lower():
            return f"currency is not the quote's token {quote.token}"
        if tx in deal.pending or tx in deal.unused or tx in used:
            return "transaction_id was committed before"
        if deal.served + len(deal.unused) + len(deal.pending) >= quote.units:
            return f"all {quote.units} units are paid"
        deal.pending.add(tx)
        assert wallet is not None
        certificate = await wallet.certificate(tx, timeout=args.fetch_timeout)
        if certificate is None:
            return "no node has the certificate"
        network = wallet.network
        try:
            verified = payment_verified(certificate, network.committees, network.domain)
        except InvalidReceipt as error:
            return f"invalid certificate: {error}"
        transfer = verified.transfer
        if "0x" + verified.transaction_id.hex() != tx:
            return "the certificate is not the committed payment"
        if "0x" + transfer.reference.hex() != deal.accepted:
            return "the transfer's reference is not the quote hash"
        if address_hex(transfer.payee).lower() != quote.payee.lower():
            return "the transfer's payee is not the quote's"
        if address_hex(transfer.token).lower() != quote.token.lower():
            return "the transfer's token is not the quote's"
        if transfer.amount != int(quote.unit_price):
            return "the transfer's amount is not the quote's"
        used.add(tx)
        return None

    @payment.on_message(RejectPayment)
    async def on_reject(ctx: Context, sender: str, msg: RejectPayment) -> None:
        say(f"the buyer rejected the payment request: {msg.reason}")

    agent.include(negotiation)
    agent.include(payment)

    @agent.on_event("startup")
    async def startup(ctx: Context) -> None:
        nonlocal wallet
        try:
            wallet = await stack.enter_async_context(
                connect(manifest=args.manifest, key=key, data_dir=args.data_dir)
            )
        except Exception as error:  # any failure: no READY line, exit at once
            say(f"cannot open the wallet: {error}")
            os._exit(2)  # uagents would only log a startup handler's exception
        background.add(asyncio.get_running_loop().create_task(announce()))

    async def announce() -> None:
        while True:  # the server starts after the startup handlers: wait until it listens
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", args.port)
            except OSError:
                await asyncio.sleep(0.05)
                continue
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
            break
        say(f"READY {agent.address} {payee}")

    @agent.on_event("shutdown")
    async def shutdown(ctx: Context) -> None:
        await stack.aclose()
        say("stopped")

    agent.run()


def _now() -> int:
    return int(time.time())


if __name__ == "__main__":
    main()
