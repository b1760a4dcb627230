"""Peers: push, fetch_missing and catch-up between real node API servers in-process
(aiohttp TestServer on loopback ports, one LevelDB store and writer per node), and fake
peers that answer garbage, fail or hang."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer, unused_port

from node.api import NodeServices, make_app
from node.peers import Effects, PeerClient, PeerSettings
from node.peers.outbox import Backoff, Outbox, Push
from node.state import ContractReceiveDeposit, ReceiveCertificate
from node.store import LedgerStore
from node.writer import Writer
from tests.node.factories import (
    ALICE,
    BOB,
    CAROL,
    COMMITTEE,
    DOMAIN,
    MEMBERS,
    USDF,
    Node,
    certify,
    transfer,
)
from wallet import wire
from wallet.codec import parse_hash32
from wallet.eip712 import order_digest
from wallet.signing import PrivateKey
from wallet.types import Amount, Certificate, Hash32
from wallet.types import Sequence as SequenceNumber

FAST = PeerSettings(
    request_timeout=0.5,
    connect_timeout=0.3,
    max_reply_bytes=64 * 1024,
    max_attempts=3,
    backoff_base=0.02,
    backoff_cap=0.2,
)
ACCOUNTS = (ALICE, BOB, CAROL)


@dataclass
class Member:
    """One node: store, writer, peer client, event sink and (when up) its API server."""

    port: int
    store: LedgerStore
    writer: Writer
    peers: PeerClient
    effects: Effects = field(init=False)
    server: TestServer | None = None

    def __post_init__(self) -> None:
        self.effects = Effects(self.peers, self.writer, retry_delay=0.05)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        services = NodeServices(
            self.writer, self.store, MEMBERS[0].address, lambda: COMMITTEE, self.effects.on_events
        )
        self.server = TestServer(make_app(services), host="127.0.0.1", port=self.port)
        await self.server.start_server()

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.close()
            self.server = None

    async def receive(self, certificates: Sequence[Certificate]) -> None:
        """As the API does: apply, then hand the events to the sink."""
        for certificate in certificates:
            t = await self.writer.apply(ReceiveCertificate(certificate))
            await self.effects.on_events(t.events)

    def state(self) -> dict[bytes, tuple[int, dict[bytes, int], list[bytes | None]]]:
        """Per account: next sequence, balances and the applied digests."""
        out = {}
        for key in ACCOUNTS:
            record = self.store.account(key.address)
            applied = [
                self.store.applied(key.address, SequenceNumber(s))
                for s in range(record.next_sequence)
            ]
            out[key.address] = (record.next_sequence, dict(record.balances), applied)
        return out


@contextlib.asynccontextmanager
async def cluster(
    tmp_path: Path, n: int, *, start: Sequence[int] | None = None, extra: Sequence[str] = ()
) -> AsyncIterator[list[Member]]:
    """``n`` nodes, each funded with the same deposits; those in ``start`` (default: all)
    are up. Odd nodes run their peer tasks in the cluster's task group, even ones in
    their own."""
    ports = [unused_port() for _ in range(n)]
    urls = [f"http://127.0.0.1:{p}" for p in ports]
    stores = [LedgerStore(tmp_path / f"node{i}", DOMAIN, sync=False) for i in range(n)]
    try:
        async with asyncio.TaskGroup() as group:
            writers = [Writer(store, Node(me=MEMBERS[i]).context) for i, store in enumerate(stores)]
            runs = [group.create_task(writer.run()) for writer in writers]
            members: list[Member] = []
            try:
                for i, (store, writer) in enumerate(zip(stores, writers, strict=True)):
                    store.put_committee(COMMITTEE)
                    others = [u for j, u in enumerate(urls) if j != i] + list(extra)
                    peers = PeerClient(others, FAST, task_group=group if i % 2 else None)
                    await peers.__aenter__()
                    members.append(Member(ports[i], store, writer, peers))
                    for deposit_id, key in enumerate(ACCOUNTS, 1):
                        await writer.apply(
                            ContractReceiveDeposit(deposit_id, key.address, USDF, Amount(1_000))
                        )
                for i in range(n) if start is None else start:
                    await members[i].start()
                yield members
            finally:
                for member in members:  # no client left to connect while servers stop
                    await member.peers.aclose()
                for member in members:
                    await member.stop()
                for run in runs:
                    run.cancel()
    finally:
        for store in stores:
            store.close()


def payments(payer: PrivateKey, payee: PrivateKey, sequences: range) -> list[Certificate]:
    return [certify(transfer(payer, payee, 1, s)) for s in sequences]


async def eventually(check: Callable[[], bool], timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("the condition did not hold in time")
        await asyncio.sleep(0.02)


async def post_json(url: str, body: Any) -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, json=body) as response,
    ):
        return response.status, await response.json()


async def quiet(node: Member, nodes: Sequence[Member]) -> None:
    """Wait until no node is pushing to ``node``: stopping an aiohttp server while a
    connection to it is being accepted can leak that connection's transport (asyncio
    creates it before aiohttp tracks it), which the warnings-as-errors setting reports."""
    await eventually(lambda: all(n.peers.queued(node.url) == 0 for n in nodes if n is not node))


def no_tasks_left() -> bool:
    return asyncio.all_tasks() == {asyncio.current_task()}


# ---------------------------------------------------------------- the parts


def pushes(certificates: Sequence[Certificate]) -> list[tuple[Hash32, Certificate]]:
    return [(order_digest(DOMAIN, c.order), c) for c in certificates]


@pytest.mark.asyncio
async def test_outbox_drops_the_oldest_and_takes_in_bounded_batches() -> None:
    def item(body: bytes) -> Push:
        return Push(Hash32(body.ljust(32, b"-")[:32]), body)

    box = Outbox(3)
    assert [box.put(item(bytes([i]))) for i in range(5)] == [True, True, True, False, False]
    assert box.dropped == 2 and len(box) == 3
    assert [p.body for p in box.take(2, 1_000)] == [b"\x02", b"\x03"]
    assert [p.body for p in box.take(10, 1_000)] == [b"\x04"]
    box.put(item(b"x" * 10))
    await asyncio.wait_for(box.wait(), 1)
    box.put(item(b"y" * 10))
    assert [p.body for p in box.take(10, 15)] == [b"x" * 10]  # the second would pass max_bytes
    assert [p.body for p in box.take(10, 5)] == [b"y" * 10]  # but one item always goes
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(box.wait(), 0.01)


def test_backoff_grows_with_jitter_up_to_the_cap() -> None:
    backoff = Backoff(0.1, 1.0, random.Random(7))
    bounds = []
    for _ in range(8):
        backoff.failed()
        delay = backoff.delay()
        ceiling = min(1.0, 0.1 * 2**backoff.failures)
        assert ceiling / 2 <= delay <= ceiling
        bounds.append(ceiling)
    assert bounds[-1] == 1.0 and bounds[0] == 0.2
    backoff.succeeded()
    assert backoff.failures == 0


@pytest.mark.asyncio
async def test_a_client_that_is_not_running_does_nothing() -> None:
    peers = PeerClient(["http://127.0.0.1:9/"])
    peers.push(pushes(payments(ALICE, BOB, range(1))))  # not started: ignored
    assert peers.queued("http://127.0.0.1:9") == 0
    async with peers:
        assert peers.running and peers.urls == ["http://127.0.0.1:9"]
    assert peers.closed and no_tasks_left()
    peers.push(pushes(payments(ALICE, BOB, range(1))))
    assert peers.queued("http://127.0.0.1:9") == 0

    async def never() -> None:
        raise AssertionError("not run")

    assert peers.spawn(never(), name="late") is False
    assert await peers.fetch_missing(ALICE.address, 0, 3) == []
    with pytest.raises(RuntimeError):
        await peers.__aenter__()


# ---------------------------------------------------------------- real nodes


@pytest.mark.asyncio
async def test_a_certificate_applied_at_one_node_reaches_all_others(tmp_path: Path) -> None:
    async with cluster(tmp_path, 4) as nodes:
        first, *others = nodes
        certificates = payments(ALICE, BOB, range(30)) + payments(BOB, CAROL, range(5))
        body = {"certificates": [wire.certificate_to_json(c) for c in certificates]}
        status, reply = await post_json(first.url + "/v1/certificates/batch", body)
        assert status == 200 and all(r["status"] == "applied" for r in reply["results"])
        await eventually(lambda: all(n.state() == first.state() for n in others))
        assert first.state()[ALICE.address][0] == 30
        assert first.store.account(CAROL.address).balance(USDF) == 1_005
        # Each node applied each certificate exactly once: logs of equal length.
        assert {n.store.log_size() for n in nodes} == {3 + 35}
        # The other nodes pushed the certificates on; all of them were duplicates there.
        await eventually(lambda: all(n.peers.queued(u) == 0 for n in nodes for u in n.peers.urls))
    assert no_tasks_left()


@pytest.mark.asyncio
async def test_a_node_that_was_down_catches_up_by_pulling_the_logs(tmp_path: Path) -> None:
    async with cluster(tmp_path, 4, start=[0, 1, 2]) as nodes:
        late = nodes[3]
        await nodes[0].receive(payments(ALICE, BOB, range(20)))
        await nodes[1].receive(payments(BOB, CAROL, range(10)))
        up = nodes[:3]
        await eventually(lambda: all(n.state() == nodes[0].state() for n in up))
        assert late.store.log_size() == 3  # its deposits only: nobody could reach it

        await late.start()
        fed = await late.peers.catch_up(late.effects.feed, known=late.effects.known)
        # Each missing certificate at most once, from the first peer that has it (a
        # retried push may bring some first); before, every peer's copy was fed.
        assert 0 < fed <= 30
        assert late.state() == nodes[0].state()
        assert late.store.log_size() == nodes[0].store.log_size()

        # Down again (stopped), more payments, up again: it pulls only what is new.
        await quiet(late, nodes)
        await late.stop()
        await nodes[2].receive(payments(CAROL, ALICE, range(4)))
        await eventually(lambda: all(n.state() == nodes[0].state() for n in up))
        await late.start()
        fed = await late.peers.catch_up(late.effects.feed, known=late.effects.known)
        assert fed <= 4  # the 4 new certificates at most once (pushes may be quicker)
        assert late.state() == nodes[0].state()

        # As the node runs it: catch-up in a loop, a task owned by the peer client.
        await quiet(late, nodes)
        await late.stop()
        await nodes[0].receive(payments(ALICE, CAROL, range(20, 23)))
        await late.start()
        forever = late.peers.catch_up_forever(late.effects.feed, 0.05, known=late.effects.known)
        assert late.peers.spawn(forever, name="cu")
        await eventually(lambda: late.state() == nodes[0].state())
    assert no_tasks_left()


@pytest.mark.asyncio
async def test_catch_up_resumes_where_it_stopped_in_the_same_log(tmp_path: Path) -> None:
    async with cluster(tmp_path, 2) as nodes:
        source = nodes[0]
        await source.receive(payments(ALICE, BOB, range(5)))
        saved = LedgerStore(tmp_path / "positions", DOMAIN, sync=False)
        fed: list[Certificate] = []

        async def feed(certificate: Certificate) -> None:
            fed.append(certificate)

        async def pull() -> int:  # a fresh client each time, as after a restart
            async with PeerClient([source.url], FAST, positions=saved) as peers:
                return await peers.catch_up(feed)

        try:
            assert await pull() == 5
            assert saved.catch_up_position(source.url) == (
                source.store.log_size(),
                source.store.leaf(source.store.log_size() - 1),
            )
            assert await pull() == 0  # nothing new: it starts at the end
            await source.receive(payments(ALICE, BOB, range(5, 7)))
            assert await pull() == 2
            # Another log behind the same URL (a wiped node, a moved endpoint): from 0.
            index, _ = saved.catch_up_position(source.url) or (0, b"")
            saved.put_catch_up_position(source.url, index, b"\x01" + bytes(32))
            assert await pull() == 7
            assert len(fed) == 14
        finally:
            saved.close()
    assert no_tasks_left()


@pytest.mark.asyncio
async def test_a_certificate_ahead_makes_the_node_fetch_what_is_missing(tmp_path: Path) -> None:
    async with cluster(tmp_path, 3) as nodes:
        earlier = payments(ALICE, BOB, range(5))
        for node in nodes[:2]:  # applied there without gossip (as if pushes were lost)
            for certificate in earlier:
                await node.writer.apply(ReceiveCertificate(certificate))
        behind = nodes[2]
        ahead = certify(transfer(ALICE, BOB, 1, 5))
        status, reply = await post_json(
            behind.url + "/v1/certificates", wire.certificate_to_json(ahead)
        )
        assert (status, reply) == (200, {"status": "pending"})  # the reply did not wait
        await eventually(lambda: behind.store.account(ALICE.address).next_sequence == 6)
        digest = order_digest(DOMAIN, ahead.order)
        assert behind.store.applied(ALICE.address, SequenceNumber(5)) == digest
        # ... and then it pushed sequence 5 to the others.
        await eventually(lambda: all(n.state() == behind.state() for n in nodes))
        # Entries in order: the fetched 0..4, then 5.
        leaves = [behind.store.leaf(i) for i in range(3, 9)]
        expected = [order_digest(DOMAIN, c.order) for c in [*earlier, ahead]]
        assert [leaf[1:] for leaf in leaves] == expected
    assert no_tasks_left()


@pytest.mark.asyncio
async def test_fetch_missing_takes_what_each_peer_has(tmp_path: Path) -> None:
    async with cluster(tmp_path, 3) as nodes:
        certificates = payments(ALICE, BOB, range(6))
        for certificate in certificates[:3]:  # node 0 has 0..2, node 1 has 0..5
            await nodes[0].writer.apply(ReceiveCertificate(certificate))
        for certificate in certificates:
            await nodes[1].writer.apply(ReceiveCertificate(certificate))
        for seed in range(4):  # whichever peer is asked first
            nodes[2].peers._rng.seed(seed)
            got = await nodes[2].peers.fetch_missing(ALICE.address, 1, 5)
            assert got == certificates[1:6]
        assert await nodes[2].peers.fetch_missing(CAROL.address, 0, 3) == []
    assert no_tasks_left()


# ---------------------------------------------------------------- bad peers


def fake_peer(kind: str, release: asyncio.Event) -> web.Application:
    """A peer that answers every request badly, in one way."""
    # Well-formed, but one vote short of the quorum: the writer refuses it.
    stranger_order = transfer(CAROL, BOB, 1, 0)
    stranger = wire.certificate_to_json(certify(stranger_order, MEMBERS[:2]))
    stranger_digest = order_digest(DOMAIN, stranger_order.order)

    async def handle(request: web.Request) -> web.StreamResponse:
        await request.read()
        match kind:
            case "garbage":
                return web.Response(text="<html>not json", content_type="application/json")
            case "error":
                return web.Response(status=500, text="boom")
            case "hang":
                await release.wait()
                return web.Response(status=503)
            case "shape":  # JSON, but nothing is where it should be
                return web.json_response(
                    {"certificates": [{"log_index": "x"}, 7], "tree_size": -1, "results": {}}
                )
            case "stranger":  # well-formed replies, with a certificate that is not valid
                if request.path == "/v1/log/head":
                    return web.json_response({"tree_size": 1})
                if request.path == "/v1/log/entries":
                    leaf = "0x01" + stranger_digest.hex()
                    return web.json_response(
                        {"entries": [{"index": 0, "leaf": leaf}], "tree_size": 1}
                    )
                if request.path == "/v1/log/certificates":
                    entries = [{"log_index": 0, "certificate": stranger}]
                    return web.json_response({"certificates": entries, "tree_size": 1})
                return web.json_response({"certificates": [stranger]})  # another account
            case "huge":
                return web.Response(
                    body=b'{"certificates": [' + b" " * 200_000 + b"]}",
                    content_type="application/json",
                )
        raise AssertionError(kind)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    return app


KINDS = ("garbage", "error", "hang", "shape", "stranger", "huge")


@contextlib.asynccontextmanager
async def fake_peers() -> AsyncIterator[list[str]]:
    release = asyncio.Event()
    servers = [TestServer(fake_peer(kind, release), host="127.0.0.1") for kind in KINDS]
    try:
        for server in servers:
            await server.start_server()
        yield [str(server.make_url("")).rstrip("/") for server in servers]
    finally:
        release.set()
        for server in servers:
            await server.close()


async def within(seconds: float, work: Awaitable[Any]) -> Any:
    return await asyncio.wait_for(work, seconds)


@pytest.mark.asyncio
async def test_bad_peers_do_not_break_the_others(tmp_path: Path) -> None:
    async with fake_peers() as bad, cluster(tmp_path, 3, extra=bad) as nodes:
        certificates = payments(ALICE, BOB, range(8))
        started = time.monotonic()
        await nodes[0].receive(certificates)
        # Push: the good peers have them long before the hanging one times out twice.
        await eventually(lambda: all(n.state() == nodes[0].state() for n in nodes), 1.5)
        assert time.monotonic() - started < 1.5

        # Fetch: whatever order the peers are asked in, the good answer wins.
        for seed in range(3):
            nodes[1].peers._rng.seed(seed)
            got = await within(3, nodes[1].peers.fetch_missing(ALICE.address, 0, 7))
            assert got == certificates

        # Catch-up over all peers: the bad ones are skipped, nothing raises.
        fed = await within(3, nodes[2].peers.catch_up(nodes[2].effects.feed))
        assert fed == 2 * len(certificates) + 1  # the good peers' and the stranger's
        assert nodes[2].state() == nodes[0].state()

    assert no_tasks_left()


@pytest.mark.asyncio
async def test_only_bad_peers_give_nothing_and_raise_nothing() -> None:
    fed: list[Certificate] = []

    async def feed(certificate: Certificate) -> None:
        fed.append(certificate)

    async with fake_peers() as bad, PeerClient(bad, FAST) as peers:
        assert await within(2, peers.fetch_missing(ALICE.address, 0, 3)) == []
        # Only the stranger's well-formed certificate reaches the feed (whose writer
        # would refuse it).
        assert await within(2, peers.catch_up(feed)) == 1
        assert [c.order.owner for c in fed] == [CAROL.address]
        peers.push(pushes(payments(ALICE, BOB, range(3))))
        await asyncio.sleep(0.1)  # the senders post, fail, and back off
    assert peers.closed and no_tasks_left()


@pytest.mark.asyncio
async def test_pushes_are_batched_per_peer() -> None:
    sizes: list[int] = []

    async def batch(request: web.Request) -> web.Response:
        items = (await request.json())["certificates"]
        sizes.append(len(items))
        return web.json_response({"results": [{"status": "duplicate"}] * len(items)})

    app = web.Application(client_max_size=4 << 20)
    app.router.add_post("/v1/certificates/batch", batch)
    async with TestServer(app, host="127.0.0.1") as server:
        url = str(server.make_url("")).rstrip("/")
        certificate = payments(ALICE, BOB, range(1))[0]
        async with PeerClient([url], FAST) as peers:
            peers.push(pushes([certificate] * 300))  # queued before the sender runs
            await eventually(lambda: sum(sizes) == 300)
            assert sizes == [256, 44]
        small = PeerSettings(max_request_bytes=3_000)  # about two certificates
        async with PeerClient([url], small) as peers:
            peers.push(pushes([certificate] * 5))
            await eventually(lambda: sum(sizes) == 305)
            assert sizes[2:] == [2, 2, 1]
    assert no_tasks_left()


@pytest.mark.asyncio
async def test_a_peer_gets_only_the_certificates_it_lacks() -> None:
    certificates = payments(ALICE, BOB, range(4))
    has = {order_digest(DOMAIN, c.order) for c in certificates[:3]}
    posted: list[Any] = []

    async def unknown(request: web.Request) -> web.Response:
        digests = (await request.json())["digests"]
        return web.json_response({"unknown": [d for d in digests if parse_hash32(d) not in has]})

    async def batch(request: web.Request) -> web.Response:
        items = (await request.json())["certificates"]
        posted.extend(items)
        return web.json_response({"results": [{"status": "applied"}] * len(items)})

    app = web.Application()
    app.router.add_post("/v1/certificates/unknown", unknown)
    app.router.add_post("/v1/certificates/batch", batch)
    async with TestServer(app, host="127.0.0.1") as server:
        url = str(server.make_url("")).rstrip("/")
        async with PeerClient([url], FAST) as peers:
            peers.push(pushes(certificates))
            await eventually(lambda: peers.queued(url) == 0)
            await eventually(lambda: bool(posted))
            assert [wire.certificate_from_json(c) for c in posted] == certificates[3:]
            has.add(order_digest(DOMAIN, certificates[3].order))
            peers.push(pushes(certificates))  # all known now: nothing is posted
            await eventually(lambda: peers.queued(url) == 0)
            assert len(posted) == 1
    assert no_tasks_left()


@pytest.mark.asyncio
async def test_a_full_queue_drops_the_oldest(tmp_path: Path) -> None:
    settings = PeerSettings(queue_size=4, request_timeout=0.3, backoff_base=0.5)
    down = f"http://127.0.0.1:{unused_port()}"
    async with PeerClient([down], settings) as peers:
        for certificate in payments(ALICE, BOB, range(20)):
            peers.push(pushes([certificate]))
        await asyncio.sleep(0.05)
        # The 20 were queued before the sender ran: it took the newest 4, failed, and
        # backs off with them.
        assert peers.queued(down) == 4 and peers.dropped(down) == 16
    assert peers.closed and no_tasks_left()


@pytest.mark.asyncio
async def test_the_event_sink_does_not_wait_for_the_network(tmp_path: Path) -> None:
    async with fake_peers() as bad, cluster(tmp_path, 1, extra=bad) as (node,):
        ahead = certify(transfer(ALICE, BOB, 1, 3))
        t = await node.writer.apply(ReceiveCertificate(ahead))
        started = time.monotonic()
        await node.effects.on_events(t.events)  # a fetch from hanging peers, and a push
        await node.effects.on_events(t.events)  # the same request again: no second fetch
        assert time.monotonic() - started < 0.2
        assert len(node.effects._fetching) == 1
        await eventually(lambda: not node.effects._fetching, 4)
    assert no_tasks_left()
