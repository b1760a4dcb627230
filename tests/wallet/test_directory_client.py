"""wallet.uagents.directory_client, the DirectoryResolver's mailbox path and
wallet.uagents.mailbox, against real node API apps in process (node.directory_api on a
LevelDB store, as tests/node/test_directory.py starts them) and real agents."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
import pytest_asyncio

from tests.node.test_directory import Running, directory_node
from tests.wallet.test_directory import OTHER, PROTO, USDF
from wallet.directory import Service, SignedRecord, make_record, record_digest
from wallet.errors import (
    DeliveryFailed,
    DirectoryRefused,
    DirectoryUnavailable,
    EncodingError,
    InvalidKey,
    NodeMisbehaved,
    NodeUnavailable,
    RegistrationFailed,
)
from wallet.keys import agent_address
from wallet.signing import PrivateKey
from wallet.types import Amount
from wallet.uagents.agent import Agent
from wallet.uagents.context import Context
from wallet.uagents.directory_client import DirectoryClient, agent_record, record_problem
from wallet.uagents.mailbox import MailboxPoller
from wallet.uagents.models import Model
from wallet.uagents.protocol import Protocol
from wallet.uagents.replay import ReplayGuard
from wallet.uagents.resolver import DirectoryResolver

pytestmark = pytest.mark.timeout(30)

SELLER_KEY = PrivateKey(bytes(31) + b"\x31")
BUYER_KEY = PrivateKey(bytes(31) + b"\x32")
WEATHER = Service("weather", Amount(2500), USDF)


class Ask(Model):
    text: str


class Answer(Model):
    text: str


def now() -> int:
    return int(time.time())


def url(node: Running) -> str:
    return str(node.client.make_url("")).rstrip("/")


def dead_url() -> str:
    """A loopback URL where nothing listens."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def record(key: PrivateKey = SELLER_KEY, **fields: object) -> SignedRecord:
    base: dict[str, object] = {
        "issued_at": now(),
        "endpoints": ("http://127.0.0.1:9/submit",),
        "protocols": (PROTO,),
        "services": (WEATHER,),
    }
    return make_record(key, **{**base, **fields})  # type: ignore[arg-type]


def forged(signed: SignedRecord) -> SignedRecord:
    return SignedRecord(signed.record, OTHER.unsafe_sign_digest(record_digest(signed.record)))


@pytest_asyncio.fixture
async def nodes(tmp_path: Path) -> AsyncIterator[list[Running]]:
    async with (
        directory_node(tmp_path / "a") as a,
        directory_node(tmp_path / "b") as b,
    ):
        for node in (a, b):
            node.clock.now = now()  # real agents sign with the real clock
        yield [a, b]


# ---------------------------------------------------------------- records


@pytest.mark.asyncio
async def test_register_look_up_and_find_on_two_nodes(nodes: list[Running]) -> None:
    mine = record()
    async with DirectoryClient([url(n) for n in nodes]) as directory:
        registration = await directory.register(mine)
        assert set(registration.outcomes.values()) == {"stored"}
        assert registration.accepted == directory.nodes and registration.failures == {}
        again = await directory.register(mine)
        assert set(again.outcomes.values()) == {"unchanged"}
        assert await directory.lookup(mine.record.agent.upper()) == mine
        assert await directory.lookup(agent_address(OTHER)) is None
        assert await directory.find(service="weather") == (mine,)
        assert await directory.find(protocol=PROTO) == (mine,)
        assert await directory.find(service="maps") == ()
        # A newer record that reached one node only: the greatest sequence wins.
        newer = record(issued_at=now() + 1, mailbox=True)
        async with DirectoryClient(url(nodes[1])) as one:
            assert (await one.register(newer)).outcomes == {url(nodes[1]): "stored"}
        assert await directory.lookup(mine.record.agent) == newer
        assert await directory.find(service="weather") == (newer,)
        theirs = record(OTHER)
        await directory.register(theirs)
        found = await directory.find(protocol=PROTO)
        assert found == tuple(sorted((newer, theirs), key=lambda s: s.record.agent))


@pytest.mark.asyncio
async def test_registration_reports_each_node(nodes: list[Running]) -> None:
    down = dead_url()
    mine = record()
    async with DirectoryClient([url(nodes[0]), down]) as directory:
        registration = await directory.register(mine)
        assert registration.accepted == (url(nodes[0]),)
        assert isinstance(registration.failures[down], NodeUnavailable)
        # An older record: refused by the node (409), the other node is still down.
        with pytest.raises(RegistrationFailed) as caught:
            await directory.register(record(sequence=mine.record.sequence - 1))
        refused = caught.value.outcomes[url(nodes[0])]
        assert isinstance(refused, DirectoryRefused)
        assert (refused.status, refused.code, refused.retryable) == (409, "old_sequence", False)
        assert caught.value.retryable  # the down node may take it later
    async with DirectoryClient(url(nodes[0])) as directory:
        with pytest.raises(RegistrationFailed) as caught:
            await directory.register(forged(record(BUYER_KEY)))
        assert not caught.value.retryable
        [error] = caught.value.outcomes.values()
        assert isinstance(error, DirectoryRefused) and error.code == "forged_record"
    async with DirectoryClient(down) as directory:
        with pytest.raises(RegistrationFailed) as caught:
            await directory.register(mine)
        assert caught.value.retryable
        with pytest.raises(DirectoryUnavailable):
            await directory.lookup(mine.record.agent)


@pytest.mark.asyncio
async def test_forged_and_expired_records_served_by_a_node_are_refused(
    nodes: list[Running],
) -> None:
    good, bad = nodes
    mine = record()
    bad.services.directory.put(forged(mine))  # past the node's own checks
    async with DirectoryClient(url(bad)) as directory:
        with pytest.raises(DirectoryUnavailable) as caught:
            await directory.lookup(mine.record.agent)
        fault = caught.value.faults[url(bad)]
        assert isinstance(fault, NodeMisbehaved) and "does not verify" in str(fault)
        assert await directory.find(service="weather") == ()  # dropped, not trusted
    with pytest.raises(DeliveryFailed, match="does not verify"):
        async with aiohttp.ClientSession() as session:
            await DirectoryResolver(url(bad)).resolve(mine.record.agent, session)
    good.services.directory.put(mine)
    async with aiohttp.ClientSession() as session:  # the bad node is passed over
        resolver = DirectoryResolver([url(bad), url(good)])
        assert await resolver.resolve(mine.record.agent, session) == mine.record.endpoints
    async with DirectoryClient([url(good), url(bad)]) as directory:
        assert await directory.lookup(mine.record.agent) == mine
        assert await directory.find(service="weather") == (mine,)
    # A node whose clock lags serves a record that has expired by the client's clock.
    late = lambda: float(mine.record.expires_at)  # noqa: E731
    async with DirectoryClient(url(good), clock=late) as directory:
        with pytest.raises(DirectoryUnavailable, match="expired"):
            await directory.lookup(mine.record.agent)
        assert await directory.find(protocol=PROTO) == ()
    assert record_problem(mine, now(), agent_address(OTHER)) is not None  # another agent's
    assert record_problem(mine, now(), mine.record.agent) is None


@pytest.mark.asyncio
async def test_bad_queries_are_refused_before_sending() -> None:
    async with DirectoryClient(dead_url()) as directory:
        with pytest.raises(ValueError, match="exactly one"):
            await directory.find()
        with pytest.raises(ValueError, match="exactly one"):
            await directory.find(service="weather", protocol=PROTO)
        with pytest.raises(EncodingError):
            await directory.find(service="Weather?x=1")
        with pytest.raises(EncodingError):
            await directory.find(protocol="proto:12")
        with pytest.raises(EncodingError):
            await directory.lookup("agent1nope")
    with pytest.raises(ValueError, match="at least one node"):
        DirectoryClient([])


@pytest.mark.asyncio
async def test_agent_record_from_a_running_agent() -> None:
    proto = Protocol("ask", "0.1.0")

    @proto.on_message(Ask, replies={Answer})
    async def on_ask(ctx: Context, sender: str, msg: Ask) -> None:
        await ctx.reply(Answer(text=msg.text))

    agent = Agent(SELLER_KEY, protocols=[proto])
    with pytest.raises(InvalidKey):
        agent_record(agent, BUYER_KEY)
    with pytest.raises(ValueError, match="start the agent"):
        agent_record(agent, SELLER_KEY)
    async with agent:
        signed = agent_record(agent, SELLER_KEY, services=[WEATHER], issued_at=1000)
        assert signed.record.endpoints == (agent.endpoint,)
        assert signed.record.protocols == (proto.digest,)
        assert signed.record.services == (WEATHER,) and not signed.record.mailbox
        assert (signed.record.issued_at, signed.record.expires_at) == (1000, 1000 + 86_400)
    boxed = agent_record(agent, SELLER_KEY, endpoints=(), mailbox=True, lifetime=60)
    assert boxed.record.endpoints == () and boxed.record.mailbox
    assert boxed.record.expires_at - boxed.record.issued_at == 60


# ---------------------------------------------------------------- mailbox


@pytest.mark.asyncio
async def test_resolver_sends_a_mailbox_only_agent_to_the_nodes_mailbox(
    nodes: list[Running],
) -> None:
    node = url(nodes[0])
    resolver = DirectoryResolver(node)
    boxed = record(endpoints=(), mailbox=True)
    neither = record(OTHER, endpoints=())
    async with DirectoryClient(node) as directory, aiohttp.ClientSession() as session:
        await directory.register(boxed)
        await directory.register(neither)
        agent = boxed.record.agent
        assert await resolver.resolve(agent, session) == (f"{node}/v1/mailbox/{agent}",)
        with pytest.raises(DeliveryFailed, match="neither an endpoint nor a mailbox"):
            await resolver.resolve(neither.record.agent, session)
        # Endpoints win over the mailbox.
        both = record(issued_at=now() + 1, mailbox=True)
        await directory.register(both)
        assert await resolver.resolve(agent, session) == both.record.endpoints


class Shop:
    """A mailbox-only seller and a buyer reachable at its endpoint, both resolving
    through one node's directory."""

    def __init__(self, node: str, *, guard: ReplayGuard | None = None) -> None:
        self.node = node
        self.asked: list[str] = []
        proto = Protocol("ask", "0.1.0")

        @proto.on_message(Ask, replies={Answer})
        async def on_ask(ctx: Context, sender: str, msg: Ask) -> None:
            self.asked.append(msg.text)
            await ctx.reply(Answer(text=msg.text.upper()))

        self.seller = Agent(
            SELLER_KEY,
            name="seller",
            resolver=DirectoryResolver(node),
            protocols=[proto],
            replay_guard=guard,
        )
        self.answers: list[str] = []
        replies = Protocol("answers", "0.1.0")

        @replies.on_message(Answer)
        async def on_answer(ctx: Context, sender: str, msg: Answer) -> None:
            self.answers.append(msg.text)

        self.buyer = Agent(
            BUYER_KEY, name="buyer", resolver=DirectoryResolver(node), protocols=[replies]
        )

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[DirectoryClient]:
        async with self.seller, self.buyer, DirectoryClient(self.node) as directory:
            seller = agent_record(self.seller, SELLER_KEY, endpoints=(), mailbox=True)
            await directory.register(seller)
            await directory.register(agent_record(self.buyer, BUYER_KEY))
            yield directory


@pytest.mark.asyncio
async def test_the_poller_delivers_a_message_sent_to_a_mailbox(nodes: list[Running]) -> None:
    shop = Shop(url(nodes[0]))
    async with shop.running() as directory:
        poller = MailboxPoller(shop.seller, SELLER_KEY, directory, interval=0.05)
        task = asyncio.create_task(poller.run())
        try:
            # An async-mode ask: the message goes to the mailbox (HTTP 200 "stored"),
            # the poller hands it to the seller, whose reply reaches the buyer's endpoint.
            reply = await shop.buyer.ask(
                shop.seller.address, Ask(text="hi"), replies=[Answer], sync=False, timeout=10
            )
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        assert reply == Answer(text="HI") and shop.asked == ["hi"]
        assert poller.faults == {}


@pytest.mark.asyncio
async def test_delivery_is_at_least_once_and_duplicates_are_dropped(
    nodes: list[Running],
) -> None:
    shop = Shop(url(nodes[0]))
    async with shop.running() as directory:
        body = await shop.buyer.deliver(shop.buyer.make_message(shop.seller.address, Ask(text="1")))
        assert b'"stored"' in body
        first = MailboxPoller(shop.seller, SELLER_KEY, directory)
        assert await first.fetch_once() == 1  # handled, acknowledged by the next fetch only
        # A poller that lost its acknowledgements (a restart) gets the envelope again;
        # the agent's replay guard refuses it, and it is acknowledged all the same.
        second = MailboxPoller(shop.seller, SELLER_KEY, directory)
        assert await second.fetch_once() == 1
        assert await second.fetch_once() == 0
        assert shop.asked == ["1"] and shop.answers == ["1"]
        assert await first.fetch_once() == 0  # envelope 1 is gone
        address = await directory.node_address(shop.node)
        batch = await directory.fetch_mailbox(SELLER_KEY, shop.node, node_address=address)
        assert batch.envelopes == () and batch.remaining == 0


@pytest.mark.asyncio
async def test_a_retryable_refusal_is_not_acknowledged(nodes: list[Running]) -> None:
    shop = Shop(url(nodes[0]), guard=ReplayGuard(capacity=1))  # the second one: guard_full
    async with shop.running() as directory:
        for text in ("1", "2"):
            await shop.buyer.deliver(shop.buyer.make_message(shop.seller.address, Ask(text=text)))
        poller = MailboxPoller(shop.seller, SELLER_KEY, directory)
        assert await poller.fetch_once() == 1
        assert await poller.fetch_once() == 0
        assert shop.asked == ["1"]
        address = await directory.node_address(shop.node)
        batch = await directory.fetch_mailbox(SELLER_KEY, shop.node, node_address=address, ack=1)
        assert [kept.id for kept in batch.envelopes] == [2]  # kept for a later try


@pytest.mark.asyncio
async def test_poller_errors(nodes: list[Running]) -> None:
    agent = Agent(SELLER_KEY)
    async with DirectoryClient([url(nodes[0]), dead_url()]) as directory:
        with pytest.raises(InvalidKey):
            MailboxPoller(agent, BUYER_KEY, directory)
        with pytest.raises(ValueError, match="limit"):
            MailboxPoller(agent, SELLER_KEY, directory, limit=0)
        poller = MailboxPoller(agent, SELLER_KEY, directory)
        assert await poller.fetch_once() == 0  # no mailbox yet: an empty one
        assert list(poller.faults) == [directory.nodes[1]]
        address = await directory.node_address(url(nodes[0]))
        with pytest.raises(DirectoryRefused) as caught:
            await directory.fetch_mailbox(SELLER_KEY, url(nodes[0]), node_address=OTHER.address)
        assert caught.value.code == "wrong_node"
        late = DirectoryClient(url(nodes[0]), clock=lambda: now() + 3600.0)
        with pytest.raises(DirectoryRefused, match="stale_request"):
            await late.fetch_mailbox(SELLER_KEY, url(nodes[0]), node_address=address)
        await late.close()
    async with DirectoryClient(dead_url()) as directory:
        with pytest.raises(DirectoryUnavailable):
            await MailboxPoller(agent, SELLER_KEY, directory).fetch_once()
