"""The reverse of test_uagents_interop.py: a real ``uagents`` Agent, run in a subprocess
and kept offline (tests/wallet/uagents_buyer.py: a static resolver, no Almanac, loopback
only), BUYS a metered service from a Farthing seller (wallet.uagents.market.Seller, in
this process) on a devnet: it asks for a quote, accepts it, pays 3 requests with the
Farthing wallet library, verifies each delivery receipt and closes the session.

The buyer's Farthing account is the one of its uagents key (from a public test seed): the
test funds that account with a ledger transfer from a devnet agent, so no private key is
handed to the subprocess (an environment variable would do, but the agent paying from
its own identity is what a real uAgents buyer does, like the uagents seller's payee).

Only uagents-core is imported here (the script imports ``uagents``, whose import may warn,
and pytest turns warnings into errors)."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest
from aiohttp import web
from uagents_core.identity import Identity

from devnet import Devnet, DevnetConfig
from devnet.ports import free_port
from tests.support.processes import stop
from wallet.agent import connect
from wallet.codec import address_hex
from wallet.signing import PrivateKey
from wallet.uagents.agent import SYNC_HEADER, Agent
from wallet.uagents.market import Offer, Seller
from wallet.uagents.resolver import StaticResolver
from wallet.uagents.sessions import Phase

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).resolve().parent / "uagents_buyer.py"
SEED = "farthing interop test buyer (a public test seed)"
USDF = 10**6
PRICE = USDF // 1000  # 0.001 USDF per request
REQUESTS = 3
FUNDS = 10 * PRICE  # what the test gives the uagents buyer's account
DONE_TIMEOUT = 90.0  # the uagents import alone takes seconds on a busy 2-core machine
MARKET_LOGGER = "wallet.uagents.market"
TX = r"0x[0-9a-f]{64}"


@pytest.fixture(scope="module")
def devnet() -> Iterator[Devnet]:
    with Devnet.up(DevnetConfig(start_nodes=True, agents=2)) as net:
        yield net


async def shout(body: str) -> str:
    return body.upper()


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@pytest.mark.integration
@pytest.mark.timeout(240)
def test_a_uagents_buyer_pays_a_farthing_seller(
    devnet: Devnet, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=MARKET_LOGGER)
    m = devnet.manifest
    manifest = devnet.state_dir / "manifest.json"
    usdf = m.contracts.stable
    seller_key = PrivateKey.from_hex(m.agents[0].private_key)  # public devnet test keys
    funder_key = PrivateKey.from_hex(m.agents[1].private_key)
    identity = Identity.from_seed(SEED, 0)
    buyer_address = identity.address
    buyer_account = PrivateKey.from_hex(identity.private_key).address
    seller_port, buyer_port = free_port(), free_port()
    log = tmp_path / "buyer-output.log"
    headers: list[str | None] = []  # the sync header of every envelope the seller got

    @web.middleware
    async def record_sync_header(request: web.Request, handler: Handler) -> web.StreamResponse:
        headers.append(request.headers.get(SYNC_HEADER))
        return await handler(request)

    def output() -> str:
        return log.read_text(encoding="utf-8", errors="replace") if log.exists() else ""

    async def scenario() -> tuple[Seller, str]:
        async with (
            connect(manifest=manifest, key=seller_key, data_dir=tmp_path / "seller") as sw,
            connect(manifest=manifest, key=funder_key, data_dir=tmp_path / "funder") as fw,
            connect(manifest=manifest, key=PrivateKey.from_hex(identity.private_key),
                    data_dir=tmp_path / "buyer-reader") as reader,  # read-only
        ):  # fmt: skip
            # Fund the uagents buyer's account on the ledger.
            await fw.deposit("1 USDF", timeout=30)
            await fw.pay_final(buyer_account, FUNDS, "USDF")
            buyer_before = (await reader.balance("USDF")).units
            assert buyer_before >= FUNDS
            seller_before = (await sw.balance("USDF")).units

            resolver = StaticResolver({buyer_address: f"http://127.0.0.1:{buyer_port}/submit"})
            agent = Agent(seller_key, name="seller", port=seller_port, resolver=resolver)
            agent.app.middlewares.append(record_sync_header)
            seller = Seller(agent, sw, seller_key, {"shout": Offer(usdf, PRICE, units=10)}, shout)
            async with agent:
                command = [
                    sys.executable, str(SCRIPT), "--port", str(buyer_port), "--seed", SEED,
                    "--seller", f"{agent.address}={agent.endpoint}",
                    "--manifest", str(manifest), "--data-dir", str(tmp_path / "buyer"),
                    "--token", usdf, "--max-price", str(PRICE), "--requests", str(REQUESTS),
                    "--probe-unpaid",
                ]  # fmt: skip
                env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
                workdir = tmp_path / "uagents"  # uagents writes a store in its cwd
                workdir.mkdir()
                with log.open("wb") as sink:
                    process = subprocess.Popen(
                        command, cwd=workdir, env=env, stdout=sink, stderr=subprocess.STDOUT
                    )
                try:
                    deadline = time.monotonic() + DONE_TIMEOUT
                    pattern = r"DONE served (\d+) in session ([0-9a-f-]{36})|FAILED .*"
                    while (found := re.search(pattern, output())) is None:
                        if process.poll() is not None:
                            pytest.fail(f"the uagents buyer exited ({process.returncode}):\n"
                                        f"{output()}")  # fmt: skip
                        if time.monotonic() > deadline:
                            pytest.fail(f"no DONE from the uagents buyer in {DONE_TIMEOUT} s:\n"
                                        f"{output()}")  # fmt: skip
                        await asyncio.sleep(0.05)  # the seller serves meanwhile
                    assert found[1] == str(REQUESTS), output()
                    session = found[2]
                finally:
                    stop(process)

            # The seller's balance rose by exactly 3 x the unit price, the buyer's fell so.
            total = REQUESTS * PRICE
            assert (await sw.balance("USDF")).units == seller_before + total
            assert (await reader.balance("USDF")).units == buyer_before - total
            return seller, session

    seller, session = asyncio.run(scenario())
    text = output()

    # The uagents side: every step in one session, 3 receipts verified, the unpaid
    # request refused by the Farthing seller with an ErrorMessage it handled.
    assert "Traceback" not in text
    assert "ERROR" not in text  # e.g. uagents: a handler sent no valid reply
    assert "FAILED" not in text
    assert "private_key" not in text
    verified = re.findall(rf"receipt verified for ({TX})", text)
    assert len(verified) == len(set(verified)) == REQUESTS, text
    assert re.search(r"refused as expected: out_of_turn: ServiceRequest refused", text), text
    sessions = set(re.findall(r"in session ([0-9a-f-]{36})", text))
    assert sessions == {session}, text

    # The Farthing side: one session with that buyer, closed after 3 served requests; its
    # replies went as messages of their own (no request asked for a sync reply).
    mine = {key: state for key, state in seller.sessions.items() if key[0] == identity.address}
    assert [str(key[1]) for key in mine] == [session]
    (state,) = mine.values()
    assert (state.phase, state.served, state.credits) == (Phase.CLOSED, REQUESTS, frozenset())
    # QuoteRequest, AcceptQuote, the unpaid probe, 3 x (CommitPayment, ServiceRequest),
    # CloseSession.
    assert headers == [None] * (3 + 2 * REQUESTS + 1)

    lines = [r.getMessage() for r in caplog.records if r.name == MARKET_LOGGER]
    completed = [line for line in lines if line.startswith("completed payment")]
    assert completed == [
        f"completed payment {tx} of {PRICE} from {buyer_address}" for tx in verified
    ], lines
    assert address_hex(buyer_account).lower() in text.lower()  # READY names the payer
