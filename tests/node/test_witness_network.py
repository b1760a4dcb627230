"""Witnessing between real node API servers in-process (aiohttp TestServer on loopback,
one LevelDB store per node): the witness accepts and countersigns a peer's growing log,
posts its cosignature back, then catches the peer rewriting history; the endpoints
``/v1/log/witnesses``, ``/v1/log/evidence`` and ``/v1/log/cosignatures``; peers that are
down or answer garbage."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer, unused_port

from node.api import NodeServices, make_app
from node.checkpoints import Checkpointer, CheckpointPolicy
from node.peers import PeerClient, PeerSettings
from node.peers.witness import Witness
from node.state import ContractReceiveDeposit, Event, transition
from node.store import LedgerStore
from node.writer import Writer
from tests.node.factories import ALICE, COMMITTEE, DOMAIN, MEMBERS, USDF, Node
from wallet import wire
from wallet.chain import CommitteeInfo
from wallet.codec import address_hex, parse_hash32
from wallet.merkle import MerkleProofError, verify_consistency
from wallet.signing import PrivateKey, sign_cosignature, verify_checkpoint, verify_cosignature
from wallet.types import Amount, Cosignature

WITNESS, PEER = MEMBERS[0], MEMBERS[1]
#: The committee's endpoints are not the test servers' URLs: like --peer URLs, any other
#: member may answer at them.
INFO = CommitteeInfo(
    COMMITTEE.epoch,
    COMMITTEE.members,
    COMMITTEE.quorum,
    tuple(f"http://member-{i}.invalid" for i in range(4)),
    0,
)
FAST = PeerSettings(request_timeout=0.5, connect_timeout=0.3, max_reply_bytes=64 * 1024)
EVERY_ENTRY = CheckpointPolicy(every_entries=1, every_ms=1)


def grow(store: LedgerStore, n: int, amount: int = 1) -> None:
    context = Node().context
    for _ in range(n):
        change = ContractReceiveDeposit(
            store.next_deposit_id(), ALICE.address, USDF, Amount(amount)
        )
        store.commit(transition(store, context, change))


@dataclass
class Site:
    """One node's store, checkpointer and API server."""

    store: LedgerStore
    checkpointer: Checkpointer
    server: TestServer

    @property
    def url(self) -> str:
        return str(self.server.make_url("")).rstrip("/")


async def _ignore(events: Sequence[Event]) -> None:
    pass


@asynccontextmanager
async def site(path: Path, key: PrivateKey) -> AsyncIterator[Site]:
    store = LedgerStore(path, DOMAIN, sync=False)
    store.put_committee(COMMITTEE)
    checkpointer = Checkpointer(store, key, DOMAIN, EVERY_ENTRY)
    writer = Writer(store, Node(me=key).context)
    services = NodeServices(
        writer, store, key.address, lambda: COMMITTEE, _ignore, lambda: checkpointer.latest
    )
    server = TestServer(make_app(services), host="127.0.0.1")
    await server.start_server()
    try:
        yield Site(store, checkpointer, server)
    finally:
        await server.close()
        store.close()


async def fetch(site: Site, path: str) -> Any:
    async with aiohttp.ClientSession() as session, session.get(site.url + path) as response:
        assert response.status == 200
        return await response.json()


async def witness_round(witness_store: LedgerStore, url: str) -> None:
    """One round of a witness (WITNESS's key, ``witness_store``) of the peer at ``url``."""
    clock = iter(range(10_000, 20_000, 100))
    async with PeerClient([url], FAST) as peers:
        witness = Witness(
            peers, witness_store, WITNESS, DOMAIN, lambda: INFO, clock=lambda: next(clock)
        )
        await witness.witness_all()


@pytest.mark.asyncio
async def test_witness_countersigns_then_catches_a_rewritten_history(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with site(tmp_path / "witness", WITNESS) as w, site(tmp_path / "peer", PEER) as p:
        assert await fetch(w, "/v1/log/witnesses") == {"witnessed": []}
        assert await fetch(w, "/v1/log/evidence") == {"evidence": [], "equivocations": []}

        # The peer's log is empty: nothing to witness yet, and nothing is logged as wrong.
        with caplog.at_level(logging.WARNING, logger="farthing.node.witness"):
            await witness_round(w.store, p.url)
        assert caplog.records == [] and w.store.all_witnessed() == []

        # Five entries, signed: accepted on first use and countersigned.
        grow(p.store, 5)
        assert p.checkpointer.maybe_sign(1_000) is not None
        await witness_round(w.store, p.url)
        first = w.store.witnessed(PEER.address)
        assert first is not None and first.checkpoint == p.checkpointer.latest
        # ... and the cosignature went back to the peer, which kept it.
        (body,) = (await fetch(p, "/v1/log/cosignatures"))["cosignatures"]
        cosignature, signature = wire.signed_cosignature_from_json(body)
        assert cosignature == first.cosignature and verify_cosignature(
            DOMAIN, cosignature, signature
        )
        assert (cosignature.witness, cosignature.node, cosignature.tree_size) == (
            WITNESS.address,
            PEER.address,
            5,
        )

        # Four more: consistent, accepted, countersigned again.
        grow(p.store, 4)
        assert p.checkpointer.maybe_sign(2_000) is not None
        await witness_round(w.store, p.url)
        second = w.store.witnessed(PEER.address)
        assert second is not None and second.checkpoint[0].tree_size == 9
        (record,) = (await fetch(w, "/v1/log/witnesses"))["witnessed"]
        assert wire.signed_checkpoint_from_json(record["checkpoint"]) == second.checkpoint
        cosigned, cosig = wire.signed_cosignature_from_json(record["cosignature"])
        assert verify_cosignature(DOMAIN, cosigned, cosig) and cosigned.tree_size == 9
        (body,) = (await fetch(p, "/v1/log/cosignatures"))["cosignatures"]
        assert body["tree_size"] == 9

    # The peer rewrites history: the same key, a log whose entries from 5 on differ.
    async with site(tmp_path / "witness", WITNESS) as w, site(tmp_path / "fork", PEER) as f:
        grow(f.store, 5)
        grow(f.store, 7, amount=2)
        assert f.checkpointer.maybe_sign(3_000) is not None
        with caplog.at_level(logging.ERROR, logger="farthing.node.witness"):
            await witness_round(w.store, f.url)
            await witness_round(w.store, f.url)  # found again: kept and logged once
        errors = [r for r in caplog.records if r.levelno == logging.ERROR]
        assert len(errors) == 1
        message = errors[0].getMessage()
        assert address_hex(PEER.address) in message and f.url in message

        # The last accepted checkpoint stays; the evidence is served.
        kept = w.store.witnessed(PEER.address)
        assert kept is not None and kept.checkpoint[0].tree_size == 9
        (evidence,) = (await fetch(w, "/v1/log/evidence"))["evidence"]
        assert evidence["node"] == address_hex(PEER.address) and evidence["url"] == f.url
        assert evidence["kind"] == "inconsistent" and evidence["found_at"] >= 10_000
        a, sig_a = wire.signed_checkpoint_from_json(evidence["first"])
        b, sig_b = wire.signed_checkpoint_from_json(evidence["second"])
        assert (a.tree_size, b.tree_size) == (9, 12)
        assert verify_checkpoint(DOMAIN, a, sig_a) and verify_checkpoint(DOMAIN, b, sig_b)
        proof = [parse_hash32(h) for h in evidence["proof"]]
        with pytest.raises(MerkleProofError):
            verify_consistency(9, 12, proof, a.root, b.root)
        # The forked node got no cosignature.
        assert (await fetch(f, "/v1/log/cosignatures")) == {"cosignatures": []}


def garbage_app(checkpoint: Any, consistency: Any) -> web.Application:
    async def get_checkpoint(request: web.Request) -> web.Response:
        return web.json_response(checkpoint)

    async def get_consistency(request: web.Request) -> web.Response:
        return web.json_response(consistency)

    app = web.Application()
    app.router.add_get("/v1/log/checkpoint", get_checkpoint)
    app.router.add_get("/v1/log/consistency", get_consistency)
    return app


@pytest.mark.asyncio
async def test_down_and_lying_peers_are_skipped(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with site(tmp_path / "witness", WITNESS) as w, site(tmp_path / "peer", PEER) as p:
        grow(p.store, 5)
        p.checkpointer.maybe_sign(1_000)
        await witness_round(w.store, p.url)  # PEER's checkpoint at 5 is known
        grow(p.store, 3)
        checkpoint, signature = p.checkpointer.maybe_sign(2_000) or pytest.fail("not signed")
        good = wire.signed_checkpoint_to_json(checkpoint, signature)
        stranger = PrivateKey(b"\x05" * 32)  # not a member
        liars = [
            garbage_app({"tree_size": "many"}, {}),  # not a checkpoint
            garbage_app(good, {"first": 5, "second": 8, "proof": ["0x12"]}),  # bad hashes
            garbage_app(good, {"first": 1, "second": 8, "proof": []}),  # another range
            garbage_app(good, {"first": 5, "second": 8, "proof": ["0x" + "00" * 32] * 200}),
            garbage_app(good | {"signature": "0x" + "1b" * 65}, {}),  # a bad signature
            garbage_app(
                wire.signed_checkpoint_to_json(
                    checkpoint.__class__(stranger.address, 8, checkpoint.root, 2_000),
                    signature,
                ),
                {},
            ),
        ]
        servers = [TestServer(app, host="127.0.0.1") for app in liars]
        for server in servers:
            await server.start_server()
        try:
            urls = [str(s.make_url("")).rstrip("/") for s in servers]
            urls.append(f"http://127.0.0.1:{unused_port()}")  # down
            with caplog.at_level(logging.DEBUG, logger="farthing.node.witness"):
                async with PeerClient(urls, FAST) as peers:
                    witness = Witness(peers, w.store, WITNESS, DOMAIN, lambda: INFO)
                    await witness.witness_all()
                    await witness.witness_all()
        finally:
            for server in servers:
                await server.close()
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == len(urls)  # one per peer, not one per round
        assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
        kept = w.store.witnessed(PEER.address)
        assert kept is not None and kept.checkpoint[0].tree_size == 5  # nothing changed
        assert w.store.all_evidence() == []


@pytest.mark.asyncio
async def test_posted_cosignatures_are_checked_and_the_newest_kept(tmp_path: Path) -> None:
    async with site(tmp_path / "peer", PEER) as p:
        grow(p.store, 6)
        client = aiohttp.ClientSession(p.url)

        async def post(cosignature: Cosignature, key: PrivateKey = WITNESS) -> tuple[int, Any]:
            signature = sign_cosignature(key, DOMAIN, cosignature)
            body = wire.signed_cosignature_to_json(cosignature, signature)
            async with client.post("/v1/log/cosignatures", json=body) as response:
                return response.status, await response.json()

        at4 = Cosignature(WITNESS.address, PEER.address, 4, p.store.root_at(4), 100)
        at6 = Cosignature(WITNESS.address, PEER.address, 6, p.store.root_at(6), 200)
        assert await post(at6) == (200, {"status": "stored"})
        assert await post(at4) == (200, {"status": "stale"})
        assert await post(at6) == (200, {"status": "stale"})
        for bad in (
            Cosignature(WITNESS.address, PEER.address, 7, p.store.root_at(6), 300),  # too big
            Cosignature(WITNESS.address, PEER.address, 5, p.store.root_at(6), 300),  # wrong root
            Cosignature(WITNESS.address, MEMBERS[2].address, 6, p.store.root_at(6), 300),
        ):
            status, body = await post(bad)
            assert (status, body["code"]) == (422, "bad_cosignature")
        outsider = PrivateKey(b"\x06" * 32)
        status, body = await post(
            Cosignature(outsider.address, PEER.address, 6, p.store.root_at(6), 300), outsider
        )
        assert (status, body["code"]) == (422, "bad_cosignature")
        async with client.post("/v1/log/cosignatures", json={"witness": 1}) as response:
            assert response.status == 400 and (await response.json())["code"] == "bad_request"
        await client.close()
        (body,) = (await fetch(p, "/v1/log/cosignatures"))["cosignatures"]
        assert wire.signed_cosignature_from_json(body)[0] == at6
