"""The agent runtime (wallet.uagents.agent), in process over loopback: two Farthing agents
in async and sync mode, a uagents-core-signed envelope, and each refusal followed by a
valid message that is still handled."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace

import aiohttp
import pytest
import pytest_asyncio
from uagents_core.envelope import Envelope as UaEnvelope
from uagents_core.identity import Identity
from uagents_core.models import ERROR_MESSAGE_DIGEST
from uagents_core.models import Model as UaModel

from wallet.errors import DeliveryFailed, ErrorReply, MessageRefused, NoReply
from wallet.keys import agent_address
from wallet.signing import PrivateKey
from wallet.uagents.agent import Agent
from wallet.uagents.context import Context
from wallet.uagents.envelope import (
    Envelope,
    envelope_from_json,
    envelope_to_bytes,
    make_envelope,
    sign_envelope,
    verify_envelope,
)
from wallet.uagents.models import Model, decode_payload, encode_payload, model_digest
from wallet.uagents.protocol import ErrorMessage, Protocol
from wallet.uagents.resolver import StaticResolver

pytestmark = pytest.mark.timeout(30)


class Ping(Model):
    text: str


class Pong(Model):
    text: str


class Other(Model):
    n: int


class UaPing(UaModel):  # the same declaration on uagents-core's Model
    text: str


UaPing.__name__ = "Ping"

SELLER_KEY = PrivateKey(bytes(31) + b"\x11")
BUYER_KEY = PrivateKey(bytes(31) + b"\x12")


def seller_protocol(seen: list[str]) -> Protocol:
    proto = Protocol("ping", "0.1.0")

    @proto.on_message(Ping, replies={Pong})
    async def on_ping(ctx: Context, sender: str, msg: Ping) -> None:
        seen.append(msg.text)
        if msg.text == "wrong reply":
            await ctx.reply(Other(n=1))  # not in replies: ReplyNotAllowed
        if msg.text == "refuse":
            raise MessageRefused("pings must not say refuse")
        if msg.text == "silence":
            return
        await ctx.reply(Pong(text=msg.text.upper()))

    return proto


def buyer_protocol(pongs: asyncio.Queue[tuple[str, uuid.UUID, str]]) -> Protocol:
    proto = Protocol("ping-replies", "0.1.0")

    @proto.on_message(Pong)
    async def on_pong(ctx: Context, sender: str, msg: Pong) -> None:
        await pongs.put((sender, ctx.session, msg.text))

    return proto


class Pair:
    def __init__(self) -> None:
        self.seen: list[str] = []
        self.pongs: asyncio.Queue[tuple[str, uuid.UUID, str]] = asyncio.Queue()
        self.errors: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
        self.resolver = StaticResolver()

        async def on_error(sender: str, session: uuid.UUID, text: str) -> None:
            await self.errors.put((sender, text))

        self.seller = Agent(
            SELLER_KEY,
            name="seller",
            resolver=self.resolver,
            protocols=[seller_protocol(self.seen)],
        )
        self.buyer = Agent(
            BUYER_KEY,
            name="buyer",
            resolver=self.resolver,
            protocols=[buyer_protocol(self.pongs)],
            on_error=on_error,
        )


@pytest_asyncio.fixture
async def pair() -> AsyncIterator[Pair]:
    pair = Pair()
    async with pair.seller, pair.buyer:
        pair.resolver.add(pair.seller.address, pair.seller.endpoint)
        pair.resolver.add(pair.buyer.address, pair.buyer.endpoint)
        yield pair


async def post(agent: Agent, body: bytes, *, sync: bool = False) -> tuple[int, bytes]:
    headers = {"content-type": "application/json"}
    if sync:
        headers["x-uagents-connection"] = "sync"
    async with (
        aiohttp.ClientSession() as session,
        session.post(agent.endpoint, data=body, headers=headers) as response,
    ):
        return response.status, await response.read()


def ping_envelope(target: str, text: str = "hi", **changes: object) -> Envelope:
    envelope = make_envelope(
        sender=agent_address(BUYER_KEY),
        target=target,
        session=uuid.uuid4(),
        schema_digest=model_digest(Ping),
        payload=encode_payload(Ping(text=text)),
        expires=int(time.time()) + 60,
        nonce=1,
    )
    return sign_envelope(BUYER_KEY, replace(envelope, **changes))  # type: ignore[arg-type]


def error_text(body: bytes, to: str) -> str:
    reply = envelope_from_json(body)
    assert verify_envelope(reply)
    assert reply.target == to and reply.schema_digest == ERROR_MESSAGE_DIGEST
    return decode_payload(reply.payload, ErrorMessage).error


async def still_serving(pair: Pair) -> None:
    assert await pair.buyer.ask(pair.seller.address, Ping(text="next"), replies=[Pong]) == Pong(
        text="NEXT"
    )


def test_error_message_is_uagents_core_one() -> None:
    assert model_digest(ErrorMessage) == ERROR_MESSAGE_DIGEST


@pytest.mark.asyncio
async def test_async_request_and_response(pair: Pair) -> None:
    session = await pair.buyer.send(pair.seller.address, Ping(text="hello"))
    sender, reply_session, text = await asyncio.wait_for(pair.pongs.get(), 5)
    assert (sender, reply_session, text) == (pair.seller.address, session, "HELLO")


@pytest.mark.asyncio
async def test_sync_request_and_response(pair: Pair) -> None:
    reply = await pair.buyer.ask(pair.seller.address, Ping(text="hello"), replies=[Pong])
    assert reply == Pong(text="HELLO")
    assert pair.pongs.empty()  # the reply came in the HTTP response, not as a message


@pytest.mark.asyncio
async def test_uagents_core_envelope_is_accepted(pair: Pair) -> None:
    identity = Identity.generate()
    envelope = UaEnvelope(
        version=1,
        sender=identity.address,
        target=pair.seller.address,
        session=uuid.uuid4(),
        schema_digest=UaModel.build_schema_digest(UaPing),
        expires=int(time.time()) + 60,
    )
    envelope.encode_payload(UaPing(text="from uagents").json())
    envelope.sign(identity)
    assert UaModel.build_schema_digest(UaPing) == model_digest(Ping)
    status, body = await post(pair.seller, envelope.model_dump_json().encode(), sync=True)
    assert status == 200
    reply = UaEnvelope.model_validate_json(body)
    assert reply.verify() and reply.target == identity.address
    assert reply.session == envelope.session
    assert pair.seen == ["from uagents"]


@pytest.mark.asyncio
async def test_stale_envelope_is_refused(pair: Pair) -> None:
    envelope = ping_envelope(pair.seller.address, expires=int(time.time()) - 1)
    status, body = await post(pair.seller, envelope_to_bytes(envelope))
    assert status == 400
    assert error_text(body, pair.buyer.address).startswith("stale")
    assert pair.seen == []
    await still_serving(pair)


@pytest.mark.asyncio
async def test_replayed_envelope_is_refused(pair: Pair) -> None:
    envelope = ping_envelope(pair.seller.address)
    assert (await post(pair.seller, envelope_to_bytes(envelope)))[0] == 200
    status, body = await post(pair.seller, envelope_to_bytes(envelope))
    assert status == 400
    assert error_text(body, pair.buyer.address).startswith("replayed")
    assert pair.seen == ["hi"]
    await still_serving(pair)


@pytest.mark.asyncio
async def test_wrong_target_is_refused(pair: Pair) -> None:
    envelope = ping_envelope(pair.buyer.address)  # signed, but for the buyer
    status, body = await post(pair.seller, envelope_to_bytes(envelope))
    assert status == 400
    assert b"error" in body and pair.seen == []
    await still_serving(pair)


@pytest.mark.asyncio
async def test_bad_signature_and_garbage_are_refused(pair: Pair) -> None:
    envelope = ping_envelope(pair.seller.address)
    forged = replace(envelope, payload=encode_payload(Ping(text="forged")))
    assert (await post(pair.seller, envelope_to_bytes(forged)))[0] == 400
    assert (await post(pair.seller, b"not json"))[0] == 400
    assert pair.seen == []
    await still_serving(pair)


@pytest.mark.asyncio
async def test_unknown_model_gets_an_error_reply(pair: Pair) -> None:
    with pytest.raises(ErrorReply, match="unknown model"):
        await pair.buyer.send(pair.seller.address, Other(n=1))
    sender, text = await asyncio.wait_for(pair.errors.get(), 5)  # also sent async
    assert sender == pair.seller.address and "unknown model" in text
    await still_serving(pair)


@pytest.mark.asyncio
async def test_malformed_payload_gets_an_error_reply(pair: Pair) -> None:
    envelope = ping_envelope(pair.seller.address, payload=encode_payload(Other(n=1)))
    status, body = await post(pair.seller, envelope_to_bytes(envelope), sync=True)
    assert status == 200
    assert "not a valid Ping" in error_text(body, pair.buyer.address)
    assert pair.seen == []
    await still_serving(pair)


@pytest.mark.asyncio
async def test_reply_outside_replies_is_refused(pair: Pair) -> None:
    with pytest.raises(ErrorReply, match="handler of Ping failed"):
        await pair.buyer.ask(pair.seller.address, Ping(text="wrong reply"), replies=[Pong])
    assert pair.seen == ["wrong reply"]
    await still_serving(pair)


@pytest.mark.asyncio
async def test_unknown_target_is_not_delivered(pair: Pair) -> None:
    stranger = agent_address(PrivateKey(bytes(31) + b"\x13"))
    with pytest.raises(DeliveryFailed, match="no endpoint"):
        await pair.buyer.send(stranger, Ping(text="x"))


def test_protocol_digest_matches_uagents_core() -> None:
    from uagents_core.protocol import ProtocolSpecification

    class UaPong(UaModel):
        text: str

    UaPong.__name__ = "Pong"
    spec = ProtocolSpecification(name="ping", version="0.1.0", interactions={UaPing: {UaPong}})
    assert seller_protocol([]).digest == spec.digest


def test_agent_guide_example_runs() -> None:
    """The example of docs/agent-guide.md "Agents that talk" runs as written."""
    import pathlib
    import subprocess
    import sys

    guide = pathlib.Path(__file__).parents[2] / "docs" / "agent-guide.md"
    section = guide.read_text().split("## Agents that talk (uAgents-compatible)")[1]
    code = section.split("```python\n")[1].split("```")[0]
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=20, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "text='HI'"


@pytest.mark.asyncio
async def test_async_ask_takes_the_reply_from_the_endpoint(pair: Pair) -> None:
    """In async mode the seller's Pong is a message of its own to the buyer's /submit; it
    answers the ask instead of reaching the buyer's Pong handler."""
    reply = await pair.buyer.ask(pair.seller.address, Ping(text="hi"), replies=[Pong], sync=False)
    assert reply == Pong(text="HI")
    assert pair.pongs.empty()
    assert pair.buyer._waiters == {}  # nothing left waiting
    with pytest.raises(ValueError, match="needs the models"):
        await pair.buyer.ask(pair.seller.address, Ping(text="x"), replies=[], sync=False)


@pytest.mark.asyncio
async def test_async_ask_without_a_reply_times_out(pair: Pair) -> None:
    started = time.monotonic()
    with pytest.raises(NoReply, match=r"no expected reply within 0\.3 s"):
        await pair.buyer.ask(
            pair.seller.address, Ping(text="silence"), replies=[Pong], sync=False, timeout=0.3
        )
    assert 0.3 <= time.monotonic() - started < 5
    assert pair.seen == ["silence"] and pair.buyer._waiters == {}


@pytest.mark.parametrize("sync", [True, False])
@pytest.mark.asyncio
async def test_a_handlers_refusal_reaches_the_sender_with_its_reason(
    pair: Pair, sync: bool
) -> None:
    with pytest.raises(ErrorReply, match="refused: pings must not say refuse"):
        await pair.buyer.ask(pair.seller.address, Ping(text="refuse"), replies=[Pong], sync=sync)
    await still_serving(pair)


@pytest.mark.asyncio
async def test_receive_is_the_submit_path(pair: Pair) -> None:
    """Agent.receive (what a mailbox poller calls) checks and handles like POST /submit."""
    envelope = ping_envelope(pair.seller.address, text="by mail")
    status, body = await pair.seller.receive(envelope_to_bytes(envelope))
    assert (status, body) == (200, b"{}")
    assert pair.seen == ["by mail"]
    assert await asyncio.wait_for(pair.pongs.get(), 5) == (
        pair.seller.address,
        envelope.session,
        "BY MAIL",
    )
    status, body = await pair.seller.receive(envelope_to_bytes(envelope))  # the same again
    assert status == 400 and "replayed" in error_text(body, pair.buyer.address)
    status, body = await pair.seller.receive(b"not json")
    assert status == 400 and b"not a valid envelope" in body
    assert pair.seen == ["by mail"]


class StubWallet:
    """Stands in for FarthingWallet: only what Context touches (address, pay)."""

    def __init__(self, key: PrivateKey) -> None:
        self.address = key.address
        self.paid: list[tuple[object, ...]] = []

    async def pay(self, *args: object, **kwargs: object) -> str:
        self.paid.append((*args, *kwargs.items()))
        return "receipt"


@pytest.mark.asyncio
async def test_a_handler_pays_through_the_agents_wallet() -> None:
    wallet = StubWallet(SELLER_KEY)
    proto = Protocol("tips", "0.1.0")

    @proto.on_message(Ping)
    async def on_ping(ctx: Context, sender: str, msg: Ping) -> None:
        assert ctx.wallet is wallet
        assert await ctx.pay("0x" + "11" * 20, msg.text, reference="0x" + "22" * 32) == "receipt"

    resolver = StaticResolver()
    seller = Agent(SELLER_KEY, resolver=resolver, protocols=[proto], wallet=wallet)  # type: ignore[arg-type]
    async with seller, Agent(BUYER_KEY, resolver=resolver) as buyer:
        resolver.add(seller.address, seller.endpoint)
        await buyer.send(seller.address, Ping(text="1 USDF"))
    assert wallet.paid == [("0x" + "11" * 20, "1 USDF", ("reference", "0x" + "22" * 32))]

    with pytest.raises(ValueError, match="key of its wallet's account"):
        Agent(BUYER_KEY, wallet=wallet)  # type: ignore[arg-type]
    walletless = Protocol("tips", "0.1.0")

    @walletless.on_message(Ping)
    async def pay_without(ctx: Context, sender: str, msg: Ping) -> None:
        await ctx.pay("0x" + "11" * 20, msg.text)

    seller = Agent(SELLER_KEY, resolver=resolver, protocols=[walletless])
    async with seller, Agent(BUYER_KEY, resolver=resolver) as buyer:
        resolver.add(seller.address, seller.endpoint)
        with pytest.raises(ErrorReply, match="handler of Ping failed"):  # RuntimeError
            await buyer.send(seller.address, Ping(text="1 USDF"))
