"""Issue acceptance: a real ``uagents`` Agent, run in a subprocess and kept offline
(tests/wallet/uagents_seller.py: a static resolver, no Almanac, loopback only), sells a
metered service to a Farthing agent (wallet.uagents.market.Buyer in async mode) on a
devnet and is paid; both sides log the completed exchange.

Only uagents-core is imported here (the script imports ``uagents``, whose import may warn,
and pytest turns warnings into errors); ``uagents.Model`` is uagents-core's ``Model``,
which the script asserts."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from uagents_core.contrib.protocols.payment import payment_protocol_spec
from uagents_core.identity import Identity
from uagents_core.models import Model as UaModel

from devnet import Devnet, DevnetConfig
from devnet.ports import free_port
from tests.support.processes import stop
from tests.wallet import uagents_seller
from wallet.agent import FarthingWallet, connect
from wallet.codec import address_hex
from wallet.eip712 import order_digest
from wallet.errors import ErrorReply
from wallet.keys import agent_address
from wallet.signing import PrivateKey
from wallet.types import Transfer
from wallet.uagents import market, negotiation, payment
from wallet.uagents.agent import Agent
from wallet.uagents.market import Buyer
from wallet.uagents.models import Model, model_digest
from wallet.uagents.negotiation import ServiceRequest, hex32, verify_delivery
from wallet.uagents.payment import CancelPayment, CommitPayment, CompletePayment, Funds
from wallet.uagents.protocol import ErrorMessage
from wallet.uagents.resolver import StaticResolver
from wallet.uagents.sessions import Phase

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(uagents_seller.__file__)
SEED = "farthing interop test seller (a public test seed)"
USDF = 10**6
PRICE = USDF // 1000  # 0.001 USDF per request
REQUESTS = 3
READY_TIMEOUT = 45.0  # the uagents import alone takes seconds on a busy 2-core machine
LOG_TIMEOUT = 10.0
BUYER_LOGGER = "wallet.uagents.market"

#: The Farthing model of each uagents model the seller script declares or imports.
FARTHING_MODELS: dict[str, type[Model]] = {
    "QuoteRequest": negotiation.QuoteRequest,
    "Quote": negotiation.Quote,
    "DeclineRequest": negotiation.DeclineRequest,
    "AcceptQuote": negotiation.AcceptQuote,
    "ServiceRequest": negotiation.ServiceRequest,
    "DeliveryReceipt": negotiation.DeliveryReceipt,
    "CloseSession": negotiation.CloseSession,
    "ServiceResult": market.ServiceResult,
    "Funds": payment.Funds,
    "RequestPayment": payment.RequestPayment,
    "CommitPayment": payment.CommitPayment,
    "RejectPayment": payment.RejectPayment,
    "CancelPayment": payment.CancelPayment,
    "CompletePayment": payment.CompletePayment,
    "ErrorMessage": ErrorMessage,
}


# ---------------------------------------------------------------- digests (no devnet)


def test_the_uagents_sellers_models_have_farthings_digests() -> None:
    assert set(uagents_seller.MODELS) == set(FARTHING_MODELS)
    for name, ua_model in uagents_seller.MODELS.items():
        assert issubclass(ua_model, UaModel)
        assert ua_model.__name__ == name
        assert UaModel.build_schema_digest(ua_model) == model_digest(FARTHING_MODELS[name]), name
    # The payment models are uagents-core's own, and so is the protocol they make.
    assert payment_protocol_spec.digest == payment.payment_protocol_digest()


# ---------------------------------------------------------------- the seller subprocess


@dataclass(frozen=True)
class SellerProcess:
    """The uagents seller subprocess, shared by the tests of this module; each test reads
    its own part of the output (from ``mark()``)."""

    process: subprocess.Popen[bytes]
    log: Path
    address: str  # agent1...
    payee: str  # its 0x account
    endpoint: str
    buyer_port: int  # where the Farthing buyer agent must listen (the seller's one route)

    def output(self, since: int = 0) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")[since:]

    def mark(self) -> int:
        return len(self.output())

    def search(self, pattern: str, since: int = 0) -> re.Match[str] | None:
        """``pattern`` in the output; fails the test if the seller has exited."""
        found = re.search(pattern, self.output(since))
        if found is None and self.process.poll() is not None:
            pytest.fail(f"the uagents seller exited ({self.process.returncode}):\n{self.output()}")
        return found

    def timed_out(self, pattern: str, timeout: float) -> None:
        pytest.fail(f"no {pattern!r} from the uagents seller in {timeout} s:\n{self.output()}")

    async def wait_for(
        self, pattern: str, since: int = 0, timeout: float = LOG_TIMEOUT
    ) -> re.Match[str]:
        """The first match of ``pattern`` in the output after ``since``, waiting for it."""
        deadline = time.monotonic() + timeout
        while (found := self.search(pattern, since)) is None:
            if time.monotonic() > deadline:
                self.timed_out(pattern, timeout)
            await asyncio.sleep(0.05)
        return found


@pytest.fixture(scope="module")
def devnet() -> Iterator[Devnet]:
    with Devnet.up(DevnetConfig(start_nodes=True, agents=1)) as net:
        yield net


@pytest.fixture(scope="module")
def seller(devnet: Devnet, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SellerProcess]:
    """The uagents seller on a free loopback port, serving (its ready line seen). Its one
    route is the Farthing buyer agent's URL: the devnet agent's address on a loopback port
    chosen here, where each test runs its buyer agent."""
    port, buyer_port = free_port(), free_port()
    buyer_key = PrivateKey.from_hex(devnet.manifest.agents[0].private_key)
    workdir = tmp_path_factory.mktemp("uagents-seller")  # uagents writes a store in its cwd
    log = workdir / "output.log"
    command = [
        sys.executable, str(SCRIPT), "--port", str(port), "--seed", SEED,
        "--buyer", f"{agent_address(buyer_key)}=http://127.0.0.1:{buyer_port}/submit",
        "--manifest", str(devnet.state_dir / "manifest.json"),
        "--data-dir", str(workdir / "wallet"),
        "--token", devnet.manifest.contracts.stable, "--price", str(PRICE),
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
    with log.open("wb") as sink:
        process = subprocess.Popen(
            command, cwd=workdir, env=env, stdout=sink, stderr=subprocess.STDOUT
        )
    try:
        endpoint = f"http://127.0.0.1:{port}/submit"
        starting = SellerProcess(process, log, "", "", endpoint, buyer_port)
        pattern = r"READY (agent1[0-9a-z]+) (0x[0-9a-fA-F]{40})"
        deadline = time.monotonic() + READY_TIMEOUT
        while (ready := starting.search(pattern)) is None:
            if time.monotonic() > deadline:
                starting.timed_out(pattern, READY_TIMEOUT)
            time.sleep(0.05)
        yield SellerProcess(process, log, ready[1], ready[2], endpoint, buyer_port)
    finally:
        stop(process)


@dataclass
class Farthing:
    wallet: FarthingWallet
    agent: Agent
    buyer: Buyer


@asynccontextmanager
async def farthing_buyer(
    tmp_path: Path, devnet: Devnet, seller: SellerProcess
) -> AsyncIterator[Farthing]:
    """The funded devnet agent (its keys are public test keys) as a running Farthing
    agent, where the seller sends to, with an async-mode Buyer of the uagents seller."""
    key = PrivateKey.from_hex(devnet.manifest.agents[0].private_key)
    async with connect(
        manifest=devnet.state_dir / "manifest.json", key=key, data_dir=tmp_path / "buyer"
    ) as wallet:
        resolver = StaticResolver({seller.address: seller.endpoint})
        agent = Agent(key, name="buyer", port=seller.buyer_port, resolver=resolver)
        buyer = Buyer(agent, wallet, seller.address, sync=False, reply_timeout=15.0)
        async with agent:
            yield Farthing(wallet, agent, buyer)


def _seller_key() -> PrivateKey:
    """The uagents seller's key (from the public test seed): its Farthing account."""
    return PrivateKey.from_hex(Identity.from_seed(SEED, 0).private_key)


@pytest.mark.integration
@pytest.mark.timeout(180)
def test_a_uagents_seller_is_paid_by_a_farthing_buyer(
    devnet: Devnet, seller: SellerProcess, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=BUYER_LOGGER)
    since = seller.mark()
    usdf = devnet.manifest.contracts.stable
    seller_key = _seller_key()

    async def scenario() -> None:
        async with (
            farthing_buyer(tmp_path, devnet, seller) as f,
            connect(
                manifest=devnet.state_dir / "manifest.json", key=seller_key,
                data_dir=tmp_path / "seller-reader",
            ) as reader,  # read-only: the seller's balance
        ):  # fmt: skip
            assert seller.address == Identity.from_seed(SEED, 0).address
            assert seller.payee == address_hex(seller_key.address)
            await f.wallet.deposit("1 USDF", timeout=30)
            buyer_before = (await f.wallet.balance("USDF")).units
            seller_before = (await reader.balance("USDF")).units

            quote = await f.buyer.request_quote(
                "shout", units=REQUESTS, max_unit_price=PRICE, token=usdf
            )
            assert (quote.unit_price, quote.units, quote.metered) == (str(PRICE), REQUESTS, True)
            assert quote.payee == seller.payee
            accepted = await f.buyer.accept()
            assert f.buyer.state.phase is Phase.PAYMENT_REQUESTED

            txs.clear()
            for i in range(REQUESTS):
                delivered = await f.buyer.request(f"hello {i}")  # the receipt is verified inside
                assert delivered.content == f"HELLO {i}"
                order = delivered.certificate.order
                assert isinstance(order, Transfer)
                assert (order.payee, order.amount, order.reference) == (
                    seller_key.address,
                    PRICE,
                    accepted,
                )
                tx = hex32(order_digest(f.wallet.network.domain, order))
                receipt = delivered.receipt
                assert (receipt.quote_hash, receipt.transaction_id) == (hex32(accepted), tx)
                assert receipt.seller.lower() == seller.payee.lower()
                verify_delivery(
                    receipt, seller=seller_key.address, quote=accepted,
                    transaction_id=order_digest(f.wallet.network.domain, order),
                    content=delivered.content.encode(),
                )  # fmt: skip
                txs.append(tx)
            assert len(set(txs)) == REQUESTS
            assert f.buyer.state.phase is Phase.OPEN
            assert f.buyer.state.served == REQUESTS

            await f.buyer.close("done")
            assert f.buyer.state.phase is Phase.CLOSED
            await seller.wait_for(r"closed by the buyer \(done\); served 3", since)

            # Each payment is on the ledger (a certificate any node shows) and the
            # balances moved by exactly 3 x the unit price.
            for tx in txs:
                certificate = await reader.certificate(tx, timeout=5)
                assert certificate is not None
            total = REQUESTS * PRICE
            assert (await reader.balance("USDF")).units == seller_before + total
            assert (await f.wallet.balance("USDF")).units == buyer_before - total

        output = seller.output(since)
        for tx in txs:
            assert f"completed payment {tx} for {PRICE}" in output
        assert len(re.findall(r"completed payment 0x[0-9a-f]{64} for ", output)) == REQUESTS
        assert "Traceback" not in output
        assert "ERROR" not in output  # e.g. uagents: a handler sent no valid reply
        assert "private_key" not in output

    txs: list[str] = []
    asyncio.run(scenario())

    buyer_lines = [r.getMessage() for r in caplog.records if r.name == BUYER_LOGGER]
    for i, tx in enumerate(txs, start=1):
        line = f"paid {PRICE} for request {i} of {seller.address} (payment {tx} completed"
        assert any(entry.startswith(line) for entry in buyer_lines), buyer_lines


@pytest.mark.integration
@pytest.mark.timeout(180)
def test_the_uagents_seller_refuses_what_is_not_paid(
    devnet: Devnet, seller: SellerProcess, tmp_path: Path
) -> None:
    usdf = devnet.manifest.contracts.stable
    since = seller.mark()

    async def scenario() -> None:
        async with farthing_buyer(tmp_path, devnet, seller) as f:
            await f.wallet.deposit("1 USDF", timeout=30)
            quote = await f.buyer.request_quote("shout", units=5, max_unit_price=PRICE, token=usdf)
            accepted = hex32(await f.buyer.accept())

            async def ask(message: Model, replies: set[type[Model]], digest: str) -> Model | None:
                return await f.agent.ask(
                    seller.address, message, replies=replies, session=f.buyer.session_id,
                    protocol_digest=digest, sync=False, timeout=15,
                )  # fmt: skip

            # An unpaid request: uagents' ErrorMessage, which the Farthing agent raises.
            unpaid = ServiceRequest(quote_hash=accepted, transaction_id="0x" + "ab" * 32, body="?")
            with pytest.raises(ErrorReply, match="no completed, unused payment"):
                await ask(
                    unpaid, {negotiation.DeliveryReceipt}, negotiation.negotiation_protocol_digest()
                )

            # A CommitPayment naming a certificate no node has: CancelPayment.
            funds = Funds(amount=str(PRICE), currency=usdf, payment_method="farthing")
            ghost = CommitPayment(
                funds=funds, recipient=quote.payee, transaction_id="0x" + "cd" * 32,
                reference=accepted,
            )  # fmt: skip
            answer = await ask(
                ghost, {CompletePayment, CancelPayment}, payment.payment_protocol_digest()
            )
            assert isinstance(answer, CancelPayment)
            assert answer.transaction_id == ghost.transaction_id
            assert answer.reason == "no node has the certificate"

            # A real certificate paying under another reference: CancelPayment.
            wrong = await f.wallet.pay_final(quote.payee, PRICE, "USDF", reference="0x" + "77" * 32)
            tx = hex32(order_digest(f.wallet.network.domain, wrong.order))
            commit = CommitPayment(
                funds=funds, recipient=quote.payee, transaction_id=tx, reference=accepted
            )
            answer = await ask(
                commit, {CompletePayment, CancelPayment}, payment.payment_protocol_digest()
            )
            assert isinstance(answer, CancelPayment)
            assert answer.reason == "the transfer's reference is not the quote hash"

        output = seller.output(since)
        assert "ServiceRequest refused: 0x" + "ab" * 32 in output
        assert f"cancelled payment 0x{'cd' * 32}: no node has the certificate" in output
        assert f"cancelled payment {tx}: the transfer's reference" in output
        assert "completed payment" not in output
        assert "Traceback" not in output
        assert "ERROR" not in output

    asyncio.run(scenario())
