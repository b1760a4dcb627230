"""Issue 5: two Farthing agents on the devnet (wallet.uagents.market). The buyer asks for
a quote, accepts it and makes 100 paid metered requests, each a 0.001 USDF micropayment
whose delivery receipt is verified; an unpaid request and a reused payment are refused;
the ledger balances move by exactly 100 × the quote; the session is closed."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devnet import Devnet, DevnetConfig
from tests.support.guide import run_example
from wallet.agent import connect
from wallet.eip712 import order_digest
from wallet.errors import ErrorReply, WalletError
from wallet.signing import PrivateKey
from wallet.uagents.agent import Agent
from wallet.uagents.market import Buyer, Offer, Seller
from wallet.uagents.negotiation import (
    AcceptQuote,
    DeliveryReceipt,
    Quote,
    QuoteRequest,
    ServiceRequest,
    hex32,
    quote_amount,
)
from wallet.uagents.payment import (
    CancelPayment,
    CommitPayment,
    CompletePayment,
    Funds,
    RequestPayment,
)
from wallet.uagents.resolver import StaticResolver
from wallet.uagents.sessions import Phase

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]
USDF = 10**6
PRICE = USDF // 1000  # 0.001 USDF per request
REQUESTS = 100
GUIDE = Path(__file__).resolve().parents[2] / "docs" / "agent-guide.md"
MANIFEST_LINE = 'MANIFEST = Path(".devnet/manifest.json")'


@pytest.fixture(scope="module")
def devnet() -> Iterator[Devnet]:
    with Devnet.up(DevnetConfig(start_nodes=True, agents=2)) as net:
        yield net


def wallet(devnet: Devnet, key: PrivateKey, data_dir: Path) -> Any:
    """A FarthingWallet on the devnet (``async with``)."""
    m = devnet.manifest
    return connect(rpc_url=m.rpc_url, vault=m.contracts.vault, key=key, data_dir=data_dir)


async def shout(body: str) -> str:
    return body.upper()


def test_quote_accept_100_paid_requests(devnet: Devnet, tmp_path: Path) -> None:
    m = devnet.manifest
    buyer_key = PrivateKey.from_hex(m.agents[0].private_key)  # public devnet test keys
    seller_key = PrivateKey.from_hex(m.agents[1].private_key)
    usdf = m.contracts.stable

    async def scenario() -> None:
        async with (
            wallet(devnet, buyer_key, tmp_path / "buyer") as bw,
            wallet(devnet, seller_key, tmp_path / "seller") as sw,
        ):
            await bw.deposit("1 USDF", timeout=30)
            buyer_before = (await bw.balance("USDF")).units
            seller_before = (await sw.balance("USDF")).units

            resolver = StaticResolver()
            seller_agent = Agent(seller_key, name="seller", resolver=resolver)
            buyer_agent = Agent(buyer_key, name="buyer", resolver=resolver)
            seller = Seller(
                seller_agent, sw, seller_key, {"shout": Offer(usdf, PRICE, units=500)}, shout
            )
            buyer = Buyer(buyer_agent, bw, seller_agent.address)
            async with seller_agent, buyer_agent:
                resolver.add(seller_agent.address, seller_agent.endpoint)
                resolver.add(buyer_agent.address, buyer_agent.endpoint)
                started = time.monotonic()

                quote = await buyer.request_quote(
                    "shout", units=REQUESTS, max_unit_price=PRICE, token=usdf
                )
                assert (quote.unit_price, quote.units, quote.metered) == (str(PRICE), 100, True)
                accepted = await buyer.accept()

                # Unpaid: a request before any payment is out of turn.
                unpaid = ServiceRequest(
                    quote_hash=hex32(accepted), transaction_id="0x" + "ab" * 32, body="free?"
                )
                with pytest.raises(ErrorReply, match="out_of_turn: ServiceRequest refused"):
                    await buyer_agent.ask(
                        seller_agent.address, unpaid, replies={DeliveryReceipt},
                        session=buyer.session_id,
                    )  # fmt: skip

                digests = set()
                for i in range(REQUESTS):
                    delivered = await buyer.request(f"request {i}")  # receipt verified inside
                    assert delivered.content == f"REQUEST {i}"
                    digests.add(delivered.receipt.transaction_id)
                assert len(digests) == REQUESTS
                elapsed = time.monotonic() - started

                # A paid request cannot be served twice.
                replay = ServiceRequest(
                    quote_hash=hex32(accepted), transaction_id=next(iter(digests)), body="again"
                )
                with pytest.raises(ErrorReply, match="not_paid: ServiceRequest refused"):
                    await buyer_agent.ask(
                        seller_agent.address, replay, replies={DeliveryReceipt},
                        session=buyer.session_id,
                    )  # fmt: skip

                state = seller.sessions[(buyer_agent.address, buyer.session_id)]
                assert (state.phase, state.served, state.credits) == (Phase.OPEN, 100, frozenset())
                # All 100 units are paid: the buyer's own machine refuses a 101st.
                with pytest.raises(WalletError):
                    await buyer.request("one too many")

                await buyer.close("done")
                assert buyer.state.phase is Phase.CLOSED
                assert seller.sessions[(buyer_agent.address, buyer.session_id)].phase is (
                    Phase.CLOSED
                )

            total = quote_amount(quote) * REQUESTS
            assert total == 100 * PRICE
            assert (await bw.balance("USDF")).units == buyer_before - total
            assert (await sw.balance("USDF")).units == seller_before + total
            print(f"{REQUESTS} paid requests in {elapsed:.1f} s")

            # Mismatched: a new session, a payment under another reference is cancelled.
            async with seller_agent, buyer_agent:
                quote = await buyer.request_quote(
                    "shout", units=1, max_unit_price=PRICE, token=usdf
                )
                accepted = await buyer.accept()
                wrong = await bw.pay_final(quote.payee, PRICE, "USDF", reference="0x" + "77" * 32)
                commit = CommitPayment(
                    funds=Funds(amount=str(PRICE), currency=usdf, payment_method="farthing"),
                    recipient=quote.payee,
                    transaction_id=hex32(order_digest(bw.network.domain, wrong.order)),
                    reference=hex32(accepted),
                )
                answer = await buyer_agent.ask(
                    seller_agent.address, commit, replies={CompletePayment, CancelPayment},
                    session=buyer.session_id,
                )  # fmt: skip
                assert isinstance(answer, CancelPayment)
                assert "reference" in (answer.reason or "")
                state = seller.sessions[(buyer_agent.address, buyer.session_id)]
                assert state.phase is Phase.CANCELLED

    asyncio.run(scenario())


def test_a_buyer_in_async_mode(devnet: Devnet, tmp_path: Path) -> None:
    """Buyer(sync=False), as used with uAgents sellers: every answer of the Farthing
    seller is a message of its own to the buyer's endpoint. Reject, counter offers,
    payments of several units for requests that cost several, an out-of-turn message
    refused with its reason; the seller closes the session."""
    m = devnet.manifest
    buyer_key = PrivateKey.from_hex(m.agents[0].private_key)  # public devnet test keys
    seller_key = PrivateKey.from_hex(m.agents[1].private_key)
    usdf = m.contracts.stable

    async def scenario() -> None:
        async with (
            wallet(devnet, buyer_key, tmp_path / "buyer") as bw,
            wallet(devnet, seller_key, tmp_path / "seller") as sw,
        ):
            await bw.deposit("0.1 USDF", timeout=30)
            seller_before = (await sw.balance("USDF")).units
            resolver = StaticResolver()
            seller_agent = Agent(seller_key, name="seller", resolver=resolver)
            buyer_agent = Agent(buyer_key, name="buyer", resolver=resolver)

            def words(body: str) -> int:  # a request costs a unit per word
                return len(body.split())

            offer = Offer(usdf, 2 * PRICE, min_unit_price=PRICE, cost=words)
            seller = Seller(seller_agent, sw, seller_key, {"shout": offer}, shout, max_sessions=2)
            buyer = Buyer(buyer_agent, bw, seller_agent.address, sync=False)
            async with seller_agent, buyer_agent:
                resolver.add(seller_agent.address, seller_agent.endpoint)
                resolver.add(buyer_agent.address, buyer_agent.endpoint)

                def seller_phase() -> Phase:
                    return seller.sessions[(buyer_agent.address, buyer.session_id)].phase

                # Negotiation: a quote rejected; a counter below the floor declined; a
                # counter at the floor quoted back at that price.
                await buyer.request_quote("shout", units=3, max_unit_price=PRICE * 2, token=usdf)
                await buyer.reject("too dear")
                assert buyer.state.phase is seller_phase() is Phase.REJECTED
                first = await buyer.request_quote(
                    "shout", units=3, max_unit_price=PRICE * 2, token=usdf
                )
                assert first.unit_price == str(2 * PRICE)
                with pytest.raises(WalletError, match="declined"):
                    await buyer.counter(PRICE - 1)
                assert buyer.state.phase is seller_phase() is Phase.DECLINED
                await buyer.request_quote("shout", units=8, max_unit_price=PRICE * 2, token=usdf)
                quote = await buyer.counter(PRICE)
                assert (quote.unit_price, quote.units) == (str(PRICE), 8)
                assert quote.quote_id != first.quote_id
                accepted = await buyer.accept()
                with pytest.raises(ErrorReply, match="out_of_turn: AcceptQuote refused"):
                    await buyer_agent.ask(
                        seller_agent.address,
                        AcceptQuote(quote_id=buyer.quote.quote_id, quote_hash=hex32(accepted)),
                        replies={RequestPayment},
                        session=buyer.session_id,
                        sync=False,
                    )
                for i in range(3):  # two words: two units each
                    delivered = await buyer.request(f"async {i}", units=2)
                    assert delivered.content == f"ASYNC {i}"
                    assert delivered.certificate.order.amount == 2 * PRICE
                # A request that costs more than its payment bought is refused; the
                # payment (2 units) stays unspent. The quote's 8 units are all paid.
                with pytest.raises(ErrorReply, match="costs 3 units; its payment bought 2"):
                    await buyer.request("one two three", units=2)
                assert len(buyer.state.credits) == 1  # unspent, as on the seller's side
                (credits,) = [s.credits for s in seller.sessions.values()]
                assert credits == buyer.state.credits
                with pytest.raises(WalletError, match="0 of the quote's 8 are left"):
                    await buyer.request("x")
                # Two sessions at most: the ended ones were forgotten; a third open one
                # is refused.
                assert len(seller.sessions) == 1
                another = QuoteRequest(service="shout", units=1, max_unit_price="2000", token=usdf)
                answer = await buyer_agent.ask(
                    seller_agent.address, another, replies={Quote}, sync=False
                )
                assert isinstance(answer, Quote)
                with pytest.raises(ErrorReply, match="2 open sessions already"):
                    await buyer_agent.ask(seller_agent.address, another, replies={Quote})
                # The seller closes the session: the buyer's machine follows.
                await seller.close_session(buyer_agent.address, buyer.session_id, "closing")
                assert buyer.state.phase is Phase.CLOSED
                with pytest.raises(WalletError, match="phase closed"):
                    await buyer.request("after the close")
            assert (await sw.balance("USDF")).units == seller_before + 8 * PRICE

    asyncio.run(scenario())


def test_the_guides_market_example_runs(devnet: Devnet, tmp_path: Path) -> None:
    """docs/agent-guide.md "Selling and buying a service" runs as written (only the
    manifest's path differs)."""
    manifest = devnet.state_dir / "manifest.json"
    done = run_example("## Selling and buying a service", manifest, tmp_path)
    assert "HELLO 9 for 1000 base units each" in done.stdout
    assert "seller's balance" in done.stdout
