"""The node's HTTP API, through a real aiohttp server on a loopback port."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from node.api import NodeServices, make_app
from node.state import ContractReceiveDeposit, Event, Transition
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
from wallet.codec import address_hex, hash_hex, parse_hash32
from wallet.eip712 import order_digest, vote_digest
from wallet.merkle import hash_leaf, verify_inclusion
from wallet.signing import recover
from wallet.types import Amount, Certificate


@dataclass
class Running:
    client: TestClient  # type: ignore[type-arg]
    writer: Writer
    events: list[Event]


@contextlib.asynccontextmanager
async def serving(
    tmp_path: Path,
    observer: Callable[[LedgerStore], Callable[[Certificate, Transition], object]] | None = None,
) -> AsyncIterator[Running]:
    """The node API on LevelDB (member 0 of COMMITTEE; Alice has deposited 100 USDF);
    ``observer`` makes the certificate observer from the store (node.evidence)."""
    store = LedgerStore(tmp_path, DOMAIN, sync=False)
    store.put_committee(COMMITTEE)
    writer = Writer(store, Node().context)
    seen: list[Event] = []

    async def on_events(events: Sequence[Event]) -> None:
        seen.extend(events)

    services = NodeServices(
        writer,
        store,
        MEMBERS[0].address,
        lambda: COMMITTEE,
        on_events,
        observe_certificate=(lambda c, t: None) if observer is None else observer(store),
    )
    runner = asyncio.create_task(writer.run())
    client = TestClient(TestServer(make_app(services), host="127.0.0.1"))
    await client.start_server()
    try:
        await writer.apply(ContractReceiveDeposit(1, ALICE.address, USDF, Amount(100)))
        yield Running(client, writer, seen)
    finally:
        await client.close()
        runner.cancel()
        with pytest.raises(asyncio.CancelledError):
            await runner
        store.close()


@pytest_asyncio.fixture
async def api(tmp_path: Path) -> AsyncIterator[Running]:
    async with serving(tmp_path) as running:
        yield running


async def post(api: Running, path: str, body: Any) -> tuple[int, Any]:
    response = await api.client.post(path, json=body)
    return response.status, await response.json()


async def get(api: Running, path: str) -> tuple[int, Any]:
    response = await api.client.get(path)
    return response.status, await response.json()


@pytest.mark.asyncio
async def test_health_committee_account(api: Running) -> None:
    status, body = await get(api, "/v1/health")
    assert status == 200 and body["status"] == "ok" and body["log_size"] == 1
    status, body = await get(api, "/v1/committee")
    assert body == {"epoch": 1, "quorum": 3, "members": [address_hex(m.address) for m in MEMBERS]}
    status, body = await get(api, f"/v1/accounts/{address_hex(ALICE.address).lower()}")
    assert status == 200
    assert body == {
        "address": address_hex(ALICE.address),
        "next_sequence": 0,
        "balances": {address_hex(USDF): "100"},
        "pending_order": None,
    }


@pytest.mark.asyncio
async def test_vote_then_certificate_then_proof(api: Running) -> None:
    signed = transfer(ALICE, BOB, 30, 0)
    status, body = await post(api, "/v1/orders", wire.signed_order_to_json(signed))
    assert status == 200
    vote = wire.vote_from_json(body["vote"])
    digest = order_digest(DOMAIN, signed.order)
    assert (
        vote.order == digest
        and recover(vote_digest(DOMAIN, digest, vote.epoch), vote.signature) == MEMBERS[0].address
    )
    # The same order again: the same vote. Another order at that sequence: 409.
    assert (await post(api, "/v1/orders", wire.signed_order_to_json(signed)))[1] == body
    status, refused = await post(
        api, "/v1/orders", wire.signed_order_to_json(transfer(ALICE, CAROL, 1, 0))
    )
    assert status == 409 and refused["code"] == "conflicting_order"
    assert refused["conflicting"] == hash_hex(digest)
    _, account = await get(api, f"/v1/accounts/{address_hex(ALICE.address)}")
    assert account["pending_order"] == wire.signed_order_to_json(signed)

    certificate = certify(signed)
    status, body = await post(api, "/v1/certificates", wire.certificate_to_json(certificate))
    assert (status, body) == (200, {"status": "applied", "log_index": 1})
    assert (await post(api, "/v1/certificates", wire.certificate_to_json(certificate)))[1] == {
        "status": "duplicate"
    }
    status, body = await get(api, f"/v1/certificates/{hash_hex(digest)}")
    assert status == 200 and body["log_index"] == 1
    assert wire.certificate_from_json(body["certificate"]) == certificate

    _, head = await get(api, "/v1/log/head")
    assert head["tree_size"] == 2
    _, entries = await get(api, "/v1/log/entries?start=0&end=2")
    leaf = bytes.fromhex(entries["entries"][1]["leaf"][2:])
    _, proof = await get(api, "/v1/log/inclusion?index=1&size=2")
    verify_inclusion(
        hash_leaf(leaf), 1, 2, [parse_hash32(h) for h in proof["proof"]], parse_hash32(head["root"])
    )
    _, consistency = await get(api, "/v1/log/consistency?first=1&second=2")
    assert len(consistency["proof"]) == 1
    assert any(type(e).__name__ == "SendCertificateToPeers" for e in api.events)


@pytest.mark.asyncio
async def test_batches(api: Running) -> None:
    orders = [wire.signed_order_to_json(transfer(ALICE, BOB, 1, 0)), {"nonsense": 1}]
    status, body = await post(api, "/v1/orders/batch", {"orders": orders})
    assert status == 200 and "vote" in body["results"][0]
    assert body["results"][1]["error"]["code"] == "bad_request"
    certs = [wire.certificate_to_json(certify(transfer(ALICE, BOB, 1, s))) for s in (1, 0)]
    status, body = await post(api, "/v1/certificates/batch", {"certificates": certs})
    assert status == 200 and {r["status"] for r in body["results"]} <= {"applied", "pending"}
    _, account = await get(api, f"/v1/accounts/{address_hex(BOB.address)}")
    assert account["balances"] == {address_hex(USDF): "2"}
    status, body = await post(api, "/v1/orders/batch", {"orders": []})
    assert status == 400


@pytest.mark.asyncio
async def test_bad_requests_get_json_errors_and_change_nothing(api: Running) -> None:
    client = api.client
    r = await client.post(
        "/v1/orders", data="{not json", headers={"Content-Type": "application/json"}
    )
    assert r.status == 400 and (await r.json())["code"] == "bad_json"
    r = await client.post("/v1/orders", data="x", headers={"Content-Type": "text/plain"})
    assert r.status == 415
    import io

    big = io.BytesIO(b"{" + b" " * (2 << 20) + b"}")
    r = await client.post("/v1/orders", data=big, headers={"Content-Type": "application/json"})
    assert r.status == 413 and (await r.json())["code"] == "too_large"
    status, body = await post(api, "/v1/orders", {"order": {}, "signature": "0x"})
    assert status == 400 and body["field"].startswith("order")
    assert (await get(api, "/v1/accounts/0x1234"))[0] == 400
    assert (await get(api, "/v1/certificates/0x" + "00" * 32))[0] == 404
    assert (await get(api, "/v1/log/entries?start=0&end=99"))[0] == 416
    assert (await get(api, "/v1/log/inclusion?index=-1&size=1"))[0] == 400
    assert (await get(api, "/v1/nowhere"))[0] == 404
    _, head = await get(api, "/v1/log/head")
    assert head["tree_size"] == 1


@pytest.mark.asyncio
async def test_peers_ask_which_orders_are_unknown(api: Running) -> None:
    applied = certify(transfer(ALICE, BOB, 1, 0))
    await post(api, "/v1/certificates", wire.certificate_to_json(applied))
    known = order_digest(DOMAIN, applied.order)
    other = order_digest(DOMAIN, transfer(ALICE, BOB, 1, 1).order)
    digests = [hash_hex(known), hash_hex(other), hash_hex(other).upper().replace("0X", "0x")]
    status, body = await post(api, "/v1/certificates/unknown", {"digests": digests})
    assert (status, body) == (200, {"unknown": [hash_hex(other)] * 2})
    for bad in ({"digests": []}, {"digests": ["0x12"]}, {"digests": [7]}, {"other": []}):
        status, body = await post(api, "/v1/certificates/unknown", bad)
        assert status == 400 and body["code"] == "bad_request"
    too_many = {"digests": [hash_hex(other)] * 257}
    assert (await post(api, "/v1/certificates/unknown", too_many))[0] == 400


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)


@pytest.mark.asyncio
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    body=json_values,
    path=st.sampled_from(
        [
            "/v1/orders",
            "/v1/certificates",
            "/v1/orders/batch",
            "/v1/certificates/batch",
            "/v1/certificates/unknown",
        ]
    ),
)
async def test_no_input_makes_the_node_fail(api: Running, body: Any, path: str) -> None:
    response = await api.client.post(
        path, data=json.dumps(body), headers={"Content-Type": "application/json"}
    )
    assert response.status < 500
    assert "code" in await response.json() or response.status == 200


@pytest.mark.asyncio
async def test_certificates_of_an_account_and_of_the_log(api: Running) -> None:
    certificates = [certify(transfer(ALICE, BOB, 1, s)) for s in range(3)]
    for certificate in certificates:
        await post(api, "/v1/certificates", wire.certificate_to_json(certificate))
    await api.writer.apply(ContractReceiveDeposit(2, BOB.address, USDF, Amount(5)))
    alice = address_hex(ALICE.address).lower()

    status, body = await get(api, f"/v1/accounts/{alice}/certificates?first=1&last=9")
    assert status == 200  # stops at sequence 3, the first not applied
    assert [wire.certificate_from_json(c) for c in body["certificates"]] == certificates[1:]
    status, body = await get(api, f"/v1/accounts/{alice}/certificates?first=5&last=5")
    assert (status, body) == (200, {"certificates": []})
    for query in ("first=2&last=1", "first=0&last=256", f"first={2**64}&last={2**64}"):
        assert (await get(api, f"/v1/accounts/{alice}/certificates?{query}"))[0] == 416
    assert (await get(api, f"/v1/accounts/{alice}/certificates?first=0"))[0] == 400

    # The log: deposit 0, the three orders 1..3, deposit 4.
    status, body = await get(api, "/v1/log/certificates?start=0&end=5")
    assert status == 200 and body["tree_size"] == 5
    assert [e["log_index"] for e in body["certificates"]] == [1, 2, 3]
    assert [wire.certificate_from_json(e["certificate"]) for e in body["certificates"]] == (
        certificates
    )
    assert (await get(api, "/v1/log/certificates?start=4&end=5"))[1]["certificates"] == []
    for query in ("start=0&end=6", "start=3&end=2"):
        assert (await get(api, f"/v1/log/certificates?{query}"))[0] == 416


@pytest.mark.asyncio
async def test_latest_checkpoint(tmp_path: Path) -> None:
    from node.checkpoints import Checkpointer, CheckpointPolicy
    from wallet.signing import verify_checkpoint

    store = LedgerStore(tmp_path, DOMAIN, sync=False)
    store.put_committee(COMMITTEE)
    writer = Writer(store, Node().context)
    checkpointer = Checkpointer(store, MEMBERS[0], DOMAIN, CheckpointPolicy())

    async def on_events(events: Sequence[Event]) -> None:
        return None

    services = NodeServices(
        writer, store, MEMBERS[0].address, lambda: COMMITTEE, on_events, lambda: checkpointer.latest
    )
    client = TestClient(TestServer(make_app(services), host="127.0.0.1"))
    await client.start_server()
    runner = asyncio.create_task(writer.run())
    try:
        reply = await client.get("/v1/log/checkpoint")
        assert reply.status == 404
        await writer.apply(ContractReceiveDeposit(1, ALICE.address, USDF, Amount(5)))
        checkpointer.maybe_sign(1_234)
        reply = await client.get("/v1/log/checkpoint")
        checkpoint, signature = wire.signed_checkpoint_from_json(await reply.json())
        assert checkpoint.tree_size == 1 and checkpoint.root == store.root()
        assert verify_checkpoint(DOMAIN, checkpoint, signature)
    finally:
        await client.close()
        runner.cancel()
        with pytest.raises(asyncio.CancelledError):
            await runner
        store.close()
