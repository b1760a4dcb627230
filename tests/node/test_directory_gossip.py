"""Directory gossip (docs/protocol.md 7.4): the listing route, forwarding a stored record
to the peers (bounded, in the background, once per node), the pull that heals a node
that missed pushes; on aiohttp test servers, then on a real devnet of 4 node processes."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from devnet import Devnet, DevnetConfig
from node.api import NodeServices, make_app
from node.directory import is_news
from node.directory_api import DirectoryServices, install, register_pulled
from node.peers import PeerClient, PeerSettings
from node.peers.directory import DirectoryGossip, GossipSettings
from node.state import Event
from node.store import LedgerStore
from node.store.directory import DirectoryStore, MailboxStore, agent_key
from node.writer import Writer
from tests.node.devnet_helpers import call as http_call
from tests.node.devnet_helpers import endpoints, wait_for
from tests.node.factories import COMMITTEE, DOMAIN, MEMBERS, Node
from wallet.directory import (
    SignedRecord,
    make_record,
    record_digest,
    signed_record_to_json,
)
from wallet.signing import PrivateKey

NOW = 1_767_225_600
KEYS = [PrivateKey(bytes([i]) * 32) for i in range(0x31, 0x37)]
ME = MEMBERS[0]
FAST = GossipSettings(timeout=0.5, pull_interval=3600.0)


def record(key: PrivateKey = KEYS[0], **fields: Any) -> SignedRecord:
    return make_record(key, issued_at=NOW, endpoints=("http://127.0.0.1:9/submit",), **fields)


def forged(of: PrivateKey = KEYS[1], by: PrivateKey = KEYS[0]) -> SignedRecord:
    """``of``'s record signed by ``by``'s key."""
    real = record(of)
    return SignedRecord(real.record, by.unsafe_sign_digest(record_digest(real.record)))


@dataclass
class Clock:
    now: int = NOW

    def __call__(self) -> int:
        return self.now


@dataclass
class GossipNode:
    client: TestClient  # type: ignore[type-arg]
    services: DirectoryServices
    gossip: DirectoryGossip
    peers: PeerClient
    url: str

    async def post(self, signed: SignedRecord) -> tuple[int, Any]:
        response = await self.client.post("/v1/directory", json=signed_record_to_json(signed))
        return response.status, await response.json()

    def has(self, signed: SignedRecord) -> bool:
        return self.services.directory.get(agent_key(signed.record.agent)) == signed

    def pull_into(self) -> Any:
        return lambda signed: register_pulled(self.services, signed)


async def _no_events(events: Sequence[Event]) -> None:
    return None


@contextlib.asynccontextmanager
async def cluster(
    path: Path, count: int, settings: GossipSettings = FAST, *, mesh: bool = True
) -> AsyncIterator[list[GossipNode]]:
    """``count`` nodes' directory APIs, each forwarding to the others (``mesh``) through
    its own PeerClient; the gossip senders run, the pulls only when a test calls them."""
    clock = Clock()
    nodes: list[GossipNode] = []
    async with contextlib.AsyncExitStack() as stack:
        for i in range(count):
            store = LedgerStore(path / str(i), DOMAIN, sync=False)
            stack.callback(store.close)
            store.put_committee(COMMITTEE)
            peers = await stack.enter_async_context(PeerClient([], PeerSettings()))
            gossip = DirectoryGossip(peers, settings)
            services = DirectoryServices(
                DirectoryStore(store.keyspace(b"d")),
                MailboxStore(store.keyspace(b"x")),
                ME.address,
                clock,
                on_stored=gossip.forward,
            )
            writer = Writer(store, Node().context)
            app = make_app(NodeServices(writer, store, ME.address, lambda: COMMITTEE, _no_events))
            install(app, services)
            client = TestClient(TestServer(app, host="127.0.0.1"))
            await client.start_server()
            stack.push_async_callback(client.close)
            url = f"http://127.0.0.1:{client.port}"
            nodes.append(GossipNode(client, services, gossip, peers, url))
            assert peers.spawn(gossip.run(), name="directory-gossip")
        if mesh:
            for node in nodes:
                node.peers.set_urls(other.url for other in nodes if other is not node)
        yield nodes


async def eventually(predicate: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


async def quiet(nodes: Sequence[GossipNode]) -> None:
    """Wait until no node has anything left to forward (twice, a little apart)."""
    for _ in range(2):
        for node in nodes:
            await asyncio.wait_for(node.gossip.drain(), 5.0)
        await asyncio.sleep(0.1)


# ---------------------------------------------------------------- rules


def test_only_news_is_checked_when_pulled() -> None:
    first, newer = record(), record(sequence=NOW + 1)
    assert is_news(first, None)
    assert is_news(newer, first)
    assert not is_news(first, first)
    assert not is_news(first, newer)


# ---------------------------------------------------------------- the listing


@pytest.mark.asyncio
async def test_the_listing_pages_through_live_records_in_agent_key_order(
    tmp_path: Path,
) -> None:
    async with cluster(tmp_path, 1) as (node,):
        records = [record(key) for key in KEYS[:4]]
        short = make_record(KEYS[4], issued_at=NOW, lifetime=10)
        for signed in [*records, short]:
            assert await node.post(signed) == (200, {"status": "stored"})
        node.services.clock.now = NOW + 10  # type: ignore[attr-defined]  # short expired
        expected = sorted(records, key=lambda s: agent_key(s.record.agent))

        async def page(query: str) -> Any:
            response = await node.client.get(f"/v1/directory/records{query}")
            assert response.status == 200, await response.text()
            return await response.json()

        first = await page("?limit=3")
        assert first["records"] == [signed_record_to_json(s) for s in expected[:3]]
        assert first["next"] == expected[2].record.agent
        rest = await page(f"?after={first['next']}&limit=3")
        assert rest == {"records": [signed_record_to_json(expected[3])], "next": None}
        everything = await page("")
        assert len(everything["records"]) == 4 and everything["next"] is None
        # ``after`` need not have a record here.
        assert (await page(f"?after={record(KEYS[5]).record.agent}"))["next"] is None
        for query in ["?limit=0", "?limit=101", "?limit=x", "?after=agent1x", "?x=1"]:
            response = await node.client.get(f"/v1/directory/records{query}")
            assert response.status == 400, query
        response = await node.client.get("/v1/directory/records?limit=1&limit=2")
        assert response.status == 400


# ---------------------------------------------------------------- forwarding


@pytest.mark.asyncio
async def test_a_record_reaches_every_node_and_the_flood_stops(tmp_path: Path) -> None:
    async with cluster(tmp_path, 3) as nodes:
        first = record()
        assert await nodes[0].post(first) == (200, {"status": "stored"})
        await eventually(lambda: all(node.has(first) for node in nodes))
        await quiet(nodes)
        # Each node stored it once, so forwarded it once; the copies it got back were
        # unchanged and went no further.
        assert [node.gossip.forwarded for node in nodes] == [1, 1, 1]
        # A replacement registered at another node replaces it everywhere.
        newer = record(sequence=NOW + 1)
        assert await nodes[2].post(newer) == (200, {"status": "stored"})
        await eventually(lambda: all(node.has(newer) for node in nodes))
        await quiet(nodes)
        assert [node.gossip.forwarded for node in nodes] == [2, 2, 2]
        # The older one again: refused, forwarded by nobody.
        status, body = await nodes[1].post(first)
        assert (status, body["code"]) == (409, "old_sequence")
        assert await nodes[1].post(newer) == (200, {"status": "unchanged"})
        await quiet(nodes)
        assert [node.gossip.forwarded for node in nodes] == [2, 2, 2]
        assert all(node.gossip.dropped == 0 for node in nodes)


@pytest.mark.asyncio
async def test_a_forged_record_is_refused_and_not_forwarded(tmp_path: Path) -> None:
    async with cluster(tmp_path, 2) as nodes:
        bad = forged()
        status, body = await nodes[0].post(bad)
        assert (status, body["code"]) == (422, "forged_record")
        expired = make_record(KEYS[2], issued_at=NOW - 100, lifetime=50)
        status, body = await nodes[0].post(expired)
        assert (status, body["code"]) == (422, "expired_record")
        good = record(KEYS[3])
        assert (await nodes[0].post(good))[0] == 200
        await eventually(lambda: nodes[1].has(good))
        await quiet(nodes)
        assert nodes[0].gossip.forwarded == 1  # the good one only
        for node in nodes:
            assert node.services.directory.get(agent_key(bad.record.agent)) is None
            assert node.services.directory.get(agent_key(expired.record.agent)) is None


@pytest.mark.asyncio
async def test_a_slow_or_dead_peer_delays_neither_the_reply_nor_the_others(
    tmp_path: Path,
) -> None:
    release = asyncio.Event()
    hits = 0

    async def hang(request: web.Request) -> web.Response:
        nonlocal hits
        hits += 1
        await release.wait()
        return web.json_response({"status": "stored"})

    slow = web.Application()
    slow.router.add_post("/v1/directory", hang)
    slow_server = TestServer(slow, host="127.0.0.1")
    await slow_server.start_server()
    dead_server = TestServer(web.Application(), host="127.0.0.1")
    await dead_server.start_server()
    dead = f"http://127.0.0.1:{dead_server.port}"
    await dead_server.close()  # nothing listens there now
    try:
        settings = GossipSettings(timeout=3.0, pull_interval=3600.0)
        async with cluster(tmp_path, 2, settings) as nodes:
            slow_url = f"http://127.0.0.1:{slow_server.port}"
            nodes[0].peers.set_urls([slow_url, dead, nodes[1].url])
            records = [record(key) for key in KEYS[:3]]
            started = time.monotonic()
            for signed in records:
                assert (await nodes[0].post(signed))[0] == 200
            # Waiting for the slow peer would take its timeout (3 s) for each record: 9 s.
            assert time.monotonic() - started < 3.0
            await eventually(lambda: all(nodes[1].has(s) for s in records))
            await asyncio.wait_for(nodes[0].gossip.drain(), 15.0)  # gave up on the slow one
            assert nodes[0].gossip.forwarded == 3 and hits == 3  # one try each, no retries
    finally:
        release.set()
        await slow_server.close()


@pytest.mark.asyncio
async def test_a_full_queue_drops_new_records(tmp_path: Path) -> None:
    async with PeerClient([], PeerSettings()) as peers:
        gossip = DirectoryGossip(peers, GossipSettings(queue_size=1))  # not running
        gossip.forward(record(KEYS[0]))
        gossip.forward(record(KEYS[1]))
        assert (gossip.queued(), gossip.dropped) == (1, 1)


# ---------------------------------------------------------------- pulling


@pytest.mark.asyncio
async def test_a_node_that_missed_the_pushes_pulls_them(tmp_path: Path) -> None:
    settings = GossipSettings(timeout=1.0, pull_page=2, pull_pages=2, pull_interval=3600.0)
    async with cluster(tmp_path, 2, settings, mesh=False) as (up, late):
        records = [record(key) for key in KEYS[:5]]
        for signed in records:
            assert (await up.post(signed))[0] == 200
        assert up.gossip.forwarded == 0  # no peers: nothing went anywhere
        late.peers.set_urls([up.url])
        # 2 pages of 2 per round: the round stops after 4 and the next resumes there.
        assert await late.gossip.pull(late.pull_into()) == 4
        assert sum(late.has(s) for s in records) == 4
        assert await late.gossip.pull(late.pull_into()) == 1
        assert all(late.has(s) for s in records)
        # Pulled records are not forwarded (every node pulls from every peer itself).
        assert (late.gossip.queued(), late.gossip.forwarded) == (0, 0)
        # The next rounds start over: only news is checked and stored.
        newer = record(KEYS[0], sequence=NOW + 5)
        assert (await up.post(newer))[0] == 200
        assert await late.gossip.pull(late.pull_into()) == 4
        assert await late.gossip.pull(late.pull_into()) == 1
        assert late.has(newer) and late.services.directory.count() == 5


@pytest.mark.asyncio
async def test_a_pull_checks_what_a_peer_lists_and_skips_bad_peers(tmp_path: Path) -> None:
    good, bad = record(KEYS[0]), forged(KEYS[1], KEYS[2])

    async def listing(request: web.Request) -> web.Response:
        body = [signed_record_to_json(s) for s in (good, bad)]
        return web.json_response({"records": body, "next": None})

    async def garbage(request: web.Request) -> web.Response:
        return web.json_response({"records": [{"record": 1}], "next": None})

    servers = []
    for handler in (listing, garbage, None):
        app = web.Application()
        if handler is not None:
            app.router.add_get("/v1/directory/records", handler)
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        servers.append(server)
    try:
        async with cluster(tmp_path, 1, mesh=False) as (node,):
            node.peers.set_urls(f"http://127.0.0.1:{s.port}" for s in servers)
            assert await node.gossip.pull(node.pull_into()) == 2
            assert node.has(good)
            assert node.services.directory.get(agent_key(bad.record.agent)) is None
            assert node.services.directory.count() == 1
    finally:
        for server in servers:
            await server.close()


@pytest.mark.asyncio
async def test_pull_forever_pulls_on_start(tmp_path: Path) -> None:
    async with cluster(tmp_path, 2, mesh=False) as (up, late):
        signed = record()
        assert (await up.post(signed))[0] == 200
        late.peers.set_urls([up.url])
        assert late.peers.spawn(late.gossip.pull_forever(late.pull_into()), name="pull")
        await eventually(lambda: late.has(signed))


# ---------------------------------------------------------------- on a devnet


@pytest.mark.integration
def test_a_record_registered_at_one_node_is_served_by_every_node() -> None:
    with Devnet.up(DevnetConfig(start_nodes=True, agents=2)) as net:
        m = net.manifest
        nodes = endpoints(m)
        mine, theirs = (PrivateKey.from_hex(a.private_key) for a in m.agents[:2])
        now = int(time.time())

        def served(endpoint: str, signed: SignedRecord) -> bool:
            status, body = http_call(f"{endpoint}/v1/directory/agents/{signed.record.agent}")
            return status == 200 and body == signed_record_to_json(signed)

        # A forged record (theirs, signed with my key) is refused at node 0...
        real = make_record(theirs, issued_at=now)
        fake = SignedRecord(real.record, mine.unsafe_sign_digest(record_digest(real.record)))
        status, body = http_call(f"{nodes[0]}/v1/directory", signed_record_to_json(fake))
        assert (status, body["code"]) == (422, "forged_record")
        # ... and a real one registered after it reaches every node within a few seconds.
        signed = make_record(mine, issued_at=now, endpoints=("http://127.0.0.1:9/submit",))
        status, body = http_call(f"{nodes[0]}/v1/directory", signed_record_to_json(signed))
        assert (status, body) == (200, {"status": "stored"})
        wait_for(lambda: all(served(e, signed) for e in nodes), timeout=5.0)
        # The forged one went nowhere (it would have been queued before the real one).
        for endpoint in nodes:
            path = f"{endpoint}/v1/directory/agents/{real.record.agent}"
            assert http_call(path)[0] == 404
        # A replacement registered at the last node reaches the first.
        newer = make_record(mine, issued_at=now, sequence=now + 1)
        status, body = http_call(f"{nodes[-1]}/v1/directory", signed_record_to_json(newer))
        assert (status, body) == (200, {"status": "stored"})
        wait_for(lambda: all(served(e, newer) for e in nodes), timeout=5.0)
