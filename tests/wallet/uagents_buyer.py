"""A real uagents 0.26.1 ``Agent`` buying a metered service from a Farthing seller, offline.

Run as a subprocess by tests/wallet/test_uagents_buyer_interop.py (not collected by
pytest)::

    python tests/wallet/uagents_buyer.py --port 8124 --seed SEED --manifest manifest.json \
        --data-dir DIR --token 0x... --max-price 1000 --requests 3 \
        --seller agent1...=http://127.0.0.1:PORT/submit

The agent is the unmodified ``uagents.Agent``, kept off the network as in
tests/wallet/uagents_seller.py: it binds 127.0.0.1, builds no Almanac contract, posts no
status, reports no events, its Agentverse is a closed loopback port and its resolver is a
fixed map (the seller's address to its ``/submit`` URL). Its Farthing account is the one
of its own key (derived from ``--seed``): the test funds that account on the ledger
before it starts, so no key is handed to this process.

Flow, all in ONE envelope session: uagents gives each startup handler's context a new
session and each message handler's context the session of the message it handles, so the
first message (QuoteRequest) is sent from the startup context and every later one from
the handler of the seller's previous answer:

- QuoteRequest -> Quote (price, token, units, metered checked) -> AcceptQuote with the
  quote hash (wallet.uagents.negotiation.quote_hash);
- RequestPayment (one Funds by "farthing", the quote's payee, reference = the quote hash)
  -> with ``--probe-unpaid``, first a ServiceRequest naming no payment, which the seller
  must refuse with an ErrorMessage (``out_of_turn: ...``, printed as ``refused as
  expected: ...``); then ``pay_final`` of the unit price with the quote hash as the
  reference and CommitPayment naming the certificate's digest;
- CompletePayment -> ServiceRequest for that payment; ServiceResult -> the content kept;
- DeliveryReceipt -> verified (wallet.uagents.negotiation.verify_delivery):
  ``receipt verified for <tx>``; then the next payment, until ``--requests`` are served;
  then CloseSession and ``DONE served <n> in session <uuid>``.

Every step is printed (flushed); ``READY <agent address> <0x account>`` once it listens.
Anything unexpected is printed as ``FAILED <why>``. The keys are never printed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
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

# The same uagents declarations as the uagents seller's (their digests are Farthing's:
# test_uagents_interop.py checks them).
from tests.wallet.uagents_seller import (
    AcceptQuote,
    CloseSession,
    DeclineRequest,
    DeliveryReceipt,
    Quote,
    QuoteRequest,
    ServiceRequest,
    ServiceResult,
)

PAYMENT_METHOD = "farthing"
SERVICE = "shout"


@dataclass
class Purchase:
    """The one session of this buyer with the seller."""

    session: str | None = None  # the envelope session, fixed by the first send
    quote: Quote | None = None
    accepted: str | None = None  # 0x quote hash
    committed: list[str] = field(default_factory=list)  # transaction ids, in order
    contents: dict[str, str] = field(default_factory=dict)  # tx -> delivered content
    verified: int = 0
    probed: bool = False
    done: bool = False


def say(text: str) -> None:
    print(f"[uagents-buyer] {text}", flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--seed", required=True)
    parser.add_argument("--seller", required=True, help="agent1...=http://127.0.0.1:PORT/submit")
    parser.add_argument("--manifest", type=Path, required=True)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--max-price", type=int, required=True)
    parser.add_argument("--requests", type=int, default=3)
    parser.add_argument("--probe-unpaid", action="store_true")
    args = parser.parse_args(argv)
    seller, _, seller_url = args.seller.partition("=")

    import uagents
    from uagents import Context, Protocol

    from wallet.agent import FarthingWallet, connect
    from wallet.codec import address_hex, parse_address
    from wallet.eip712 import order_digest
    from wallet.errors import WalletError
    from wallet.signing import PrivateKey
    from wallet.types import Hash32
    from wallet.uagents import negotiation as farthing

    assert uagents.Model is Model
    agent = offline_agent("uagents-buyer", args.port, args.seed, {seller: seller_url})
    # The Farthing account of the agent's own key: the payer.
    key = PrivateKey.from_hex(agent._identity.private_key)
    payer = address_hex(key.address)
    purchase = Purchase()
    stack = contextlib.AsyncExitStack()
    background: set[asyncio.Task[None]] = set()
    wallet: FarthingWallet | None = None

    def fail(why: str) -> None:
        purchase.done = True
        say(f"FAILED {why}")

    def ours(ctx: Context, sender: str, what: str) -> bool:
        """Whether a message is from the seller in this buyer's session (else printed)."""
        if sender != seller:
            say(f"{what} from an unknown agent {sender} ignored")
            return False
        if str(ctx.session) != purchase.session:
            fail(f"{what} in session {ctx.session}, not {purchase.session}")
            return False
        if purchase.done:
            say(f"{what} after the end ignored")
            return False
        return True

    async def send(ctx: Context, message: Model) -> bool:
        """``message`` to the seller in the context's session; whether it was delivered."""
        if purchase.session is None:
            purchase.session = str(ctx.session)
        if str(ctx.session) != purchase.session:
            fail(f"{type(message).__name__} would go in session {ctx.session}")
            return False
        status = await ctx.send(seller, message)
        if status.status != "delivered":
            fail(f"{type(message).__name__} not delivered: {status.detail}")
            return False
        say(f"sent {type(message).__name__} in session {ctx.session}")
        return True

    async def pay_and_commit(ctx: Context) -> None:
        """Pays the next request (the unit price, the quote hash as the reference) and
        commits the payment."""
        assert wallet is not None and purchase.quote is not None and purchase.accepted
        quote = purchase.quote
        try:
            token = wallet.tokens.by_address(quote.token)
            certificate = await wallet.pay_final(
                quote.payee, int(quote.unit_price), token, reference=purchase.accepted
            )
        except WalletError as error:
            fail(f"the payment failed: {type(error).__name__}: {error}")
            return
        tx = "0x" + order_digest(wallet.network.domain, certificate.order).hex()
        purchase.committed.append(tx)
        say(f"paid {quote.unit_price} to {quote.payee} (payment {len(purchase.committed)}: {tx})")
        await send(
            ctx,
            CommitPayment(
                funds=Funds(
                    amount=quote.unit_price, currency=quote.token, payment_method=PAYMENT_METHOD
                ),
                recipient=quote.payee,
                transaction_id=tx,
                reference=purchase.accepted,
            ),
        )

    negotiation = Protocol(name="farthing-negotiation", version="0.1.0")

    @negotiation.on_message(Quote)
    async def on_quote(ctx: Context, sender: str, msg: Quote) -> None:
        if not ours(ctx, sender, "Quote"):
            return
        say(f"Quote {msg.quote_id}: {msg.units} x {msg.service} at {msg.unit_price}")
        if purchase.quote is not None:
            fail("a second quote")
            return
        if msg.service != SERVICE or msg.token.lower() != args.token.lower():
            fail("the quote is for another service or token")
            return
        if int(msg.unit_price) > args.max_price or msg.units < args.requests or not msg.metered:
            fail("the quote's price, units or metering")
            return
        purchase.quote = msg
        purchase.accepted = "0x" + farthing.quote_hash(farthing.Quote(**msg.dict())).hex()
        say(f"accepting quote {msg.quote_id}, hash {purchase.accepted}")
        await send(ctx, AcceptQuote(quote_id=msg.quote_id, quote_hash=purchase.accepted))

    @negotiation.on_message(DeclineRequest)
    async def on_decline(ctx: Context, sender: str, msg: DeclineRequest) -> None:
        if ours(ctx, sender, "DeclineRequest"):
            fail(f"the seller declined: {msg.reason}")

    @negotiation.on_message(ServiceResult)
    async def on_result(ctx: Context, sender: str, msg: ServiceResult) -> None:
        if not ours(ctx, sender, "ServiceResult"):
            return
        if msg.transaction_id not in purchase.committed or msg.quote_hash != purchase.accepted:
            fail(f"a result for no request of this session: {msg.transaction_id}")
            return
        purchase.contents[msg.transaction_id] = msg.content
        say(f"ServiceResult for {msg.transaction_id}: {msg.content!r}")

    @negotiation.on_message(DeliveryReceipt)
    async def on_receipt(ctx: Context, sender: str, msg: DeliveryReceipt) -> None:
        if not ours(ctx, sender, "DeliveryReceipt"):
            return
        assert purchase.quote is not None and purchase.accepted is not None
        tx = msg.transaction_id
        content = purchase.contents.get(tx)
        if content is None:
            fail(f"a receipt for {tx} without its content")
            return
        try:
            farthing.verify_delivery(
                farthing.DeliveryReceipt(**msg.dict()),
                seller=parse_address(purchase.quote.payee, field="payee"),
                quote=Hash32(bytes.fromhex(purchase.accepted[2:])),
                transaction_id=Hash32(bytes.fromhex(tx[2:])),
                content=content.encode(),
            )
        except WalletError as error:
            fail(f"the receipt for {tx} is not valid: {error}")
            return
        purchase.verified += 1
        say(f"receipt verified for {tx}")
        if purchase.verified < args.requests:
            await pay_and_commit(ctx)
            return
        if await send(ctx, CloseSession(reason="done")):
            purchase.done = True
            say(f"DONE served {purchase.verified} in session {ctx.session}")

    @negotiation.on_message(CloseSession)
    async def on_close(ctx: Context, sender: str, msg: CloseSession) -> None:
        if ours(ctx, sender, "CloseSession"):
            fail(f"the seller closed the session: {msg.reason}")

    payment = Protocol(spec=payment_protocol_spec, role="buyer")

    @payment.on_message(RequestPayment)
    async def on_request_payment(ctx: Context, sender: str, msg: RequestPayment) -> None:
        if not ours(ctx, sender, "RequestPayment"):
            await ctx.send(sender, RejectPayment(reason="no such session"))
            return
        quote = purchase.quote
        assert quote is not None
        say(f"RequestPayment: {[f.dict() for f in msg.accepted_funds]} to {msg.recipient}")
        expected = Funds(
            amount=quote.unit_price, currency=quote.token, payment_method=PAYMENT_METHOD
        )
        problem = None
        if len(msg.accepted_funds) != 1:
            problem = "not one Funds"
        else:
            funds = msg.accepted_funds[0]
            if (funds.amount, funds.currency.lower(), funds.payment_method) != (
                expected.amount,
                expected.currency.lower(),
                expected.payment_method,
            ):
                problem = f"the funds are not {quote.unit_price} of the quote's token"
        if problem is None and msg.recipient.lower() != quote.payee.lower():
            problem = "the recipient is not the quote's payee"
        if problem is None and msg.reference != purchase.accepted:
            problem = "the reference is not the quote hash"
        if problem is not None:
            fail(problem)
            await send(ctx, RejectPayment(reason=problem))
            return
        if args.probe_unpaid:
            purchase.probed = True
            probe = ServiceRequest(
                quote_hash=purchase.accepted, transaction_id="0x" + "ab" * 32, body="free?"
            )
            say("probing: a ServiceRequest before paying")
            await send(ctx, probe)
        await pay_and_commit(ctx)

    @payment.on_message(CompletePayment)
    async def on_complete(ctx: Context, sender: str, msg: CompletePayment) -> None:
        if not ours(ctx, sender, "CompletePayment"):
            return
        tx = msg.transaction_id
        if not purchase.committed or tx != purchase.committed[-1]:
            fail(f"CompletePayment for {tx}, not the last committed payment")
            return
        say(f"completed payment {tx}")
        number = len(purchase.committed)
        await send(
            ctx,
            ServiceRequest(
                quote_hash=purchase.accepted or "", transaction_id=tx, body=f"hello {number}"
            ),
        )

    @payment.on_message(CancelPayment)
    async def on_cancel(ctx: Context, sender: str, msg: CancelPayment) -> None:
        if ours(ctx, sender, "CancelPayment"):
            fail(f"the seller cancelled payment {msg.transaction_id}: {msg.reason}")

    # Replaces uagents' default ErrorMessage handler (which only logs a warning).
    @agent.on_message(ErrorMessage)
    async def on_error(ctx: Context, sender: str, msg: ErrorMessage) -> None:
        if purchase.probed and msg.error.startswith("out_of_turn: ServiceRequest"):
            purchase.probed = False
            say(f"refused as expected: {msg.error}")
        else:
            fail(f"ErrorMessage from {sender} in session {ctx.session}: {msg.error}")

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
        # The first message must wait for the server (it starts after the startup
        # handlers): the seller's answer comes to this agent's endpoint.
        background.add(asyncio.get_running_loop().create_task(begin(ctx)))

    async def begin(ctx: Context) -> None:
        while True:
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", args.port)
            except OSError:
                await asyncio.sleep(0.05)
                continue
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
            break
        say(f"READY {agent.address} {payer}")
        request = QuoteRequest(
            service=SERVICE, units=args.requests, max_unit_price=str(args.max_price),
            token=args.token,
        )  # fmt: skip
        await send(ctx, request)

    @agent.on_event("shutdown")
    async def shutdown(ctx: Context) -> None:
        await stack.aclose()
        say("stopped")

    agent.run()


if __name__ == "__main__":
    main()
