"""The agent directory and mailbox: node.directory's rules, node.store.directory, and the
endpoints of node.directory_api through a real aiohttp server."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from node.api import NodeServices, make_app
from node.directory import FETCH_WINDOW, MAX_SKEW, DirectoryRefusal, check_fetch, check_record
from node.directory_api import DirectoryServices, install
from node.state import Event
from node.store import LedgerStore
from node.store.directory import (
    DirectoryFull,
    DirectoryStore,
    MailboxFull,
    MailboxStore,
    agent_key,
)
from node.writer import Writer
from tests.node.factories import COMMITTEE, DOMAIN, MEMBERS, Node
from tests.wallet.test_directory import KEY, NOW, OTHER, PROTO, USDF, fetch, signed
from wallet.directory import (
    Service,
    SignedRecord,
    fetch_from_json,
    make_record,
    record_digest,
    sign_fetch,
    signed_record_to_json,
)
from wallet.keys import agent_address
from wallet.signing import PrivateKey
from wallet.types import Amount

ME = MEMBERS[0]


# ---------------------------------------------------------------- rules


def test_record_rules() -> None:
    first = signed()
    assert check_record(first, None, NOW) is None
    assert check_record(first, first, NOW) is None  # the same record again
    newer = signed(sequence=NOW + 1)
    assert check_record(newer, first, NOW) is None
    older = signed(sequence=NOW - 1)
    refused = check_record(older, first, NOW)
    assert refused is not None and refused.code is DirectoryRefusal.OLD_SEQUENCE
    forged = SignedRecord(first.record, OTHER.unsafe_sign_digest(record_digest(first.record)))
    assert check_record(forged, None, NOW).code is DirectoryRefusal.FORGED_RECORD  # type: ignore[union-attr]
    late = NOW + 86_400
    assert check_record(first, None, late).code is DirectoryRefusal.EXPIRED_RECORD  # type: ignore[union-attr]
    assert check_record(first, None, NOW - MAX_SKEW) is None
    early = check_record(first, None, NOW - MAX_SKEW - 1)
    assert early is not None and early.code is DirectoryRefusal.FUTURE_RECORD


def test_fetch_rules() -> None:
    request = fetch(node=ME.address)
    body = sign_fetch(KEY, request)
    request, signature = fetch_from_json(body)
    assert check_fetch(request, signature, ME.address, NOW, seen=False) is None
    codes = [
        check_fetch(request, signature, OTHER.address, NOW, seen=False),
        check_fetch(request, signature, ME.address, NOW + FETCH_WINDOW + 1, seen=False),
        check_fetch(replace(request, ack=5), signature, ME.address, NOW, seen=False),
        check_fetch(request, signature, ME.address, NOW, seen=True),
    ]
    assert [c.code if c else None for c in codes] == [
        DirectoryRefusal.WRONG_NODE,
        DirectoryRefusal.STALE_REQUEST,
        DirectoryRefusal.FORGED_REQUEST,
        DirectoryRefusal.REPLAYED_REQUEST,
    ]


# ---------------------------------------------------------------- store


@pytest.fixture
def ledger(tmp_path: Path) -> Any:
    store = LedgerStore(tmp_path, DOMAIN, sync=False)
    yield store
    store.close()


def test_store_indexes_follow_replacements_and_purges(ledger: LedgerStore) -> None:
    directory = DirectoryStore(ledger.keyspace(b"d"), max_agents=2)
    first = signed()
    directory.put(first)
    assert directory.get(agent_key(first.record.agent)) == first
    assert directory.by_protocol(PROTO, NOW) == ([first], False)
    assert directory.by_service("weather", NOW) == ([first], False)
    # A replacement without the protocol and with another service: the old indexes go.
    other = Service("maps", Amount(1), USDF)
    second = make_record(KEY, issued_at=NOW + 1, services=(other,))
    directory.put(second)
    assert directory.count() == 1
    assert directory.by_protocol(PROTO, NOW + 1) == ([], False)
    assert directory.by_service("weather", NOW + 1) == ([], False)
    assert directory.by_service("maps", NOW + 1) == ([second], False)
    theirs = make_record(OTHER, issued_at=NOW, lifetime=10, services=(other,))
    directory.put(theirs)
    assert directory.by_service("maps", NOW + 1, limit=1)[1] is True
    assert directory.by_service("maps", NOW + 10) == ([second], False)  # expired: filtered
    with pytest.raises(DirectoryFull):
        directory.put(make_record(PrivateKey(b"\x03" * 32), issued_at=NOW))
    assert directory.purge(NOW + 10) == 1
    assert directory.count() == 1 and directory.get(agent_key(theirs.record.agent)) is None
    assert directory.by_service("maps", NOW + 1) == ([second], False)


def test_mailbox_store(ledger: LedgerStore) -> None:
    box = MailboxStore(ledger.keyspace(b"x"), max_envelopes=3, ttl=100)
    key = agent_key(agent_address(KEY))
    ids = [box.put(key, b'{"n":%d}' % i, NOW).id for i in range(3)]
    assert ids == [1, 2, 3]
    with pytest.raises(MailboxFull):
        box.put(key, b"{}", NOW)
    found, remaining = box.fetch(key, 0, 2, b"\x01" * 16, NOW, NOW)
    assert [s.id for s in found] == [1, 2] and remaining == 3
    assert box.seen(key, b"\x01" * 16)
    found, remaining = box.fetch(key, 2, 10, b"\x02" * 16, NOW, NOW)
    assert [s.id for s in found] == [3] and remaining == 1
    assert box.put(key, b"{}", NOW + 50).id == 4
    assert box.purge(NOW + 100) >= 1  # envelope 3 expired
    found, remaining = box.fetch(key, 0, 10, b"\x03" * 16, NOW + 100, NOW + 100)
    assert [s.id for s in found] == [4] and remaining == 1
    box.purge(NOW + 100 + 3 * FETCH_WINDOW)
    assert not box.seen(key, b"\x01" * 16)


# ---------------------------------------------------------------- API


@dataclass
class Clock:
    now: int = NOW

    def __call__(self) -> int:
        return self.now


@dataclass
class Running:
    client: TestClient  # type: ignore[type-arg]
    clock: Clock
    services: DirectoryServices


@contextlib.asynccontextmanager
async def directory_node(path: Path, **limits: int) -> AsyncIterator[Running]:
    store = LedgerStore(path, DOMAIN, sync=False)
    store.put_committee(COMMITTEE)
    writer = Writer(store, Node().context)

    async def on_events(events: Sequence[Event]) -> None:
        return None

    app = make_app(NodeServices(writer, store, ME.address, lambda: COMMITTEE, on_events))
    clock = Clock()
    box_limits = {k: v for k, v in limits.items() if k != "max_agents"}
    services = DirectoryServices(
        DirectoryStore(store.keyspace(b"d"), max_agents=limits.get("max_agents", 100)),
        MailboxStore(store.keyspace(b"x"), **box_limits),
        ME.address,
        clock,
    )
    install(app, services)
    client = TestClient(TestServer(app, host="127.0.0.1"))
    await client.start_server()
    try:
        yield Running(client, clock, services)
    finally:
        await client.close()
        store.close()


@pytest_asyncio.fixture
async def api(tmp_path: Path) -> AsyncIterator[Running]:
    async with directory_node(tmp_path, max_envelopes=2) as running:
        yield running


async def call(api: Running, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    response = await api.client.request(method, path, json=body)
    return response.status, await response.json()


@pytest.mark.asyncio
async def test_register_look_up_replace_expire(api: Running) -> None:
    first = signed()
    agent = first.record.agent
    assert await call(api, "POST", "/v1/directory", signed_record_to_json(first)) == (
        200,
        {"status": "stored"},
    )
    status, body = await call(api, "POST", "/v1/directory", signed_record_to_json(first))
    assert body == {"status": "unchanged"}
    assert await call(api, "GET", f"/v1/directory/agents/{agent.upper()}") == (
        200,
        signed_record_to_json(first),
    )
    status, found = await call(api, "GET", f"/v1/directory?protocol={PROTO}")
    assert found == {"records": [signed_record_to_json(first)], "truncated": False}
    status, found = await call(api, "GET", "/v1/directory?service=weather")
    assert len(found["records"]) == 1
    # Refusals: forged, older, stale.
    forged = SignedRecord(first.record, OTHER.unsafe_sign_digest(record_digest(first.record)))
    status, body = await call(api, "POST", "/v1/directory", signed_record_to_json(forged))
    assert (status, body["code"]) == (422, "forged_record")
    older = signed(sequence=NOW - 1)
    status, body = await call(api, "POST", "/v1/directory", signed_record_to_json(older))
    assert (status, body["code"]) == (409, "old_sequence")
    future = make_record(OTHER, issued_at=NOW + MAX_SKEW + 1)
    status, body = await call(api, "POST", "/v1/directory", signed_record_to_json(future))
    assert (status, body["code"]) == (422, "future_record")
    # Expiry: filtered at once, purged later.
    api.clock.now = first.record.expires_at
    assert (await call(api, "GET", f"/v1/directory/agents/{agent}"))[0] == 404
    assert (await call(api, "GET", f"/v1/directory?protocol={PROTO}"))[1]["records"] == []
    status, body = await call(api, "POST", "/v1/directory", signed_record_to_json(first))
    assert (status, body["code"]) == (422, "expired_record")
    assert api.services.directory.purge(api.clock.now) == 1


@pytest.mark.asyncio
async def test_bad_queries(api: Running) -> None:
    for query in ["", "?protocol=x", "?service=A", f"?protocol={PROTO}&service=w", "?x=1"]:
        status, body = await call(api, "GET", f"/v1/directory{query}")
        assert status == 400 and body["code"] == "bad_request", query
    status, body = await call(api, "GET", "/v1/directory/agents/agent1nope")
    assert (status, body["field"]) == (400, "agent")


@pytest.mark.asyncio
async def test_mailbox_flow(api: Running) -> None:
    mine = signed()  # mailbox: True
    agent = mine.record.agent
    envelope = {"version": 1, "target": agent, "sender": agent_address(OTHER), "payload": "e30="}
    status, body = await call(api, "POST", f"/v1/mailbox/{agent}", envelope)
    assert (status, body["code"]) == (404, "not_registered")
    await call(api, "POST", "/v1/directory", signed_record_to_json(mine))
    quiet = make_record(OTHER, issued_at=NOW)  # no mailbox
    await call(api, "POST", "/v1/directory", signed_record_to_json(quiet))
    quiet_envelope = {**envelope, "target": quiet.record.agent}
    status, body = await call(api, "POST", f"/v1/mailbox/{quiet.record.agent}", quiet_envelope)
    assert (status, body["code"]) == (422, "no_mailbox")
    for expected in (1, 2):
        status, body = await call(api, "POST", f"/v1/mailbox/{agent}", envelope)
        assert status == 200 and body["id"] == expected
    status, body = await call(api, "POST", f"/v1/mailbox/{agent}", envelope)
    assert (status, body["code"]) == (507, "mailbox_full")
    status, body = await call(api, "POST", f"/v1/mailbox/{agent}", [1])
    assert status == 400
    huge = {"target": agent, "payload": "x" * (64 << 10)}
    status, body = await call(api, "POST", f"/v1/mailbox/{agent}", {**envelope, "target": 1})
    assert (status, body["field"]) == (400, "envelope.target")
    assert (await call(api, "POST", f"/v1/mailbox/{agent}", huge))[0] == 413

    def request(**fields: Any) -> dict[str, Any]:
        base = {"node": ME.address, "timestamp": NOW, "ack": 0, "limit": 1}
        return dict(sign_fetch(KEY, fetch(**{**base, **fields})))

    path = f"/v1/mailbox/{agent}/fetch"
    first = request()
    status, body = await call(api, "POST", path, first)
    assert status == 200 and body["remaining"] == 2
    assert body["envelopes"] == [{"id": 1, "expires": NOW + 86_400, "envelope": envelope}]
    status, body = await call(api, "POST", path, first)
    assert (status, body["code"]) == (409, "replayed_request")
    status, body = await call(api, "POST", path, request(ack=1, limit=5, nonce=b"\x02" * 16))
    assert [e["id"] for e in body["envelopes"]] == [2] and body["remaining"] == 1
    refusals = {
        "wrong_node": request(node=OTHER.address, nonce=b"\x03" * 16),
        "stale_request": request(timestamp=NOW - FETCH_WINDOW - 1, nonce=b"\x04" * 16),
    }
    for code, body in refusals.items():
        status, reply = await call(api, "POST", path, body)
        assert (status, reply["code"]) == (422, code)
    forged = {**request(nonce=b"\x05" * 16), "ack": 2}
    status, reply = await call(api, "POST", path, forged)
    assert (status, reply["code"]) == (422, "forged_request")
    other_agent = f"/v1/mailbox/{quiet.record.agent}/fetch"
    status, reply = await call(api, "POST", other_agent, request(nonce=b"\x06" * 16))
    assert (status, reply["field"]) == (400, "agent")


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=10,
)


def _near_miss() -> st.SearchStrategy[Any]:
    """Valid bodies with one field replaced by arbitrary JSON."""
    record: Any = signed_record_to_json(signed())
    request: Any = sign_fetch(KEY, fetch(node=ME.address))
    keys = [("record", k) for k in record["record"]] + [(k,) for k in request]

    def mutate(where: tuple[str, ...], value: Any) -> Any:
        body = json.loads(json.dumps(record if where[0] == "record" else request))
        target = body
        for part in where[:-1]:
            target = target[part]
        target[where[-1]] = value
        return body

    return st.builds(mutate, st.sampled_from(keys), JSON)


@given(
    body=JSON | _near_miss(),
    path=st.sampled_from(
        [
            "/v1/directory",
            f"/v1/mailbox/{agent_address(KEY)}",
            f"/v1/mailbox/{agent_address(KEY)}/fetch",
        ]
    ),
)
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@pytest.mark.asyncio
async def test_no_input_makes_the_directory_fail(api: Running, body: Any, path: str) -> None:
    status, reply = await call(api, "POST", path, body)
    assert status < 500 or status == 507, (status, reply)
    assert set(reply) >= ({"status"} if status == 200 else {"code", "message"})


@pytest.mark.asyncio
async def test_a_full_directory_purges_then_refuses(tmp_path: Path) -> None:
    async with directory_node(tmp_path, max_agents=1) as api:
        short = make_record(KEY, issued_at=NOW, lifetime=5)
        await call(api, "POST", "/v1/directory", signed_record_to_json(short))
        other = signed_record_to_json(make_record(OTHER, issued_at=NOW))
        status, body = await call(api, "POST", "/v1/directory", other)
        assert (status, body["code"]) == (507, "directory_full")
        api.clock.now = NOW + 5  # the first one expired: purged to make room
        assert await call(api, "POST", "/v1/directory", other) == (200, {"status": "stored"})
        assert api.services.directory.count() == 1


@pytest.mark.asyncio
async def test_an_empty_mailbox_answers_an_empty_list(api: Running) -> None:
    body = dict(sign_fetch(KEY, fetch(node=ME.address)))
    status, reply = await call(api, "POST", f"/v1/mailbox/{agent_address(KEY)}/fetch", body)
    assert (status, reply) == (200, {"envelopes": [], "remaining": 0})
