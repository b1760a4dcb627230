"""Account streams: the hub's rules (unit), then ``GET /v1/accounts/{a}/stream`` over a
real WebSocket: live entries, replay, a slow consumer, errors before the upgrade."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from node.api import ApiError
from node.state import ContractReceiveDeposit, ReceiveCertificate, Transition
from node.state.entries import deposit_leaf, order_leaf
from node.state.records import LogEntry
from node.stream import CloseCode, StreamHub, StreamSettings, entry_message, touched
from node.writer import CommitReport
from tests.node.factories import ALICE, BOB, CAROL, DOMAIN, USDF, certify, transfer, withdrawal
from tests.node.observed import Observed, observed_node, post_json
from wallet import wire
from wallet.codec import address_hex
from wallet.eip712 import order_digest
from wallet.types import Amount, Certificate

# ---------------------------------------------------------------- unit


def _entry(certificate: Certificate) -> LogEntry:
    return LogEntry(
        order_leaf(certificate.order, order_digest(DOMAIN, certificate.order)), certificate
    )


def _report(first: int, *entries: LogEntry) -> CommitReport:
    return CommitReport((Transition(log=tuple(entries)),), first, len(entries), 0.0)


def test_who_an_entry_touches() -> None:
    pay = certify(transfer(ALICE, BOB, 1, 0))
    assert touched(_entry(pay).leaf, pay) == (ALICE.address, BOB.address)
    to_self = certify(transfer(ALICE, ALICE, 1, 0))
    assert touched(_entry(to_self).leaf, to_self) == (ALICE.address,)
    out = certify(withdrawal(ALICE, 1, 0))
    assert touched(_entry(out).leaf, out) == (ALICE.address,)
    assert touched(deposit_leaf(7, CAROL.address, USDF, 5), None) == (CAROL.address,)


def test_deposit_message() -> None:
    message = json.loads(entry_message(3, deposit_leaf(7, CAROL.address, USDF, 2**200), None))
    assert message == {
        "type": "deposit",
        "log_index": 3,
        "deposit": {
            "id": 7,
            "beneficiary": address_hex(CAROL.address),
            "token": address_hex(USDF),
            "amount": str(2**200),
        },
    }


@pytest.mark.asyncio
async def test_hub_limits_filters_and_drops_a_full_queue() -> None:
    hub = StreamHub(StreamSettings(max_subscribers=3, max_per_account=2, queue_size=2))
    bob = hub.subscribe(BOB.address, 0)
    late = hub.subscribe(BOB.address, 2)
    with pytest.raises(ApiError) as per_account:
        hub.subscribe(BOB.address, 0)
    assert per_account.value.status == 429
    carol = hub.subscribe(CAROL.address, 0)
    with pytest.raises(ApiError) as per_node:
        hub.subscribe(ALICE.address, 0)
    assert per_node.value.status == 503

    entries = [_entry(certify(transfer(ALICE, BOB, 1, s))) for s in range(3)]
    hub.observe_commit(_report(1, *entries[:2]))  # log indices 1 and 2
    assert bob.queue.qsize() == 2 and late.queue.qsize() == 1 and carol.queue.empty()
    assert json.loads(late.queue.get_nowait())["log_index"] == 2
    hub.observe_commit(_report(3, entries[2]))  # bob's queue is full: dropped
    assert bob.stopped.is_set() and bob.close_code is CloseCode.SLOW_CONSUMER
    assert not late.stopped.is_set() and late.queue.qsize() == 1
    assert hub.count == 2 and hub.slow_disconnects == 1
    hub.unsubscribe(bob)  # the handler's own unsubscribe after a drop changes nothing
    assert hub.count == 2
    hub.close_all(CloseCode.GOING_AWAY, "bye")
    assert hub.count == 0 and carol.close_code is CloseCode.GOING_AWAY


# ---------------------------------------------------------------- through the API


def _stream_path(who: Any, query: str = "") -> str:
    return f"/v1/accounts/{address_hex(who.address)}/stream{query}"


async def _next(ws: aiohttp.ClientWebSocketResponse) -> dict[str, Any]:
    message = await asyncio.wait_for(ws.receive(), timeout=5)
    assert message.type is aiohttp.WSMsgType.TEXT, message
    parsed: dict[str, Any] = json.loads(message.data)
    return parsed


async def _pay(node: Observed, certificate: Certificate) -> Any:
    status, body = await post_json(node, "/v1/certificates", wire.certificate_to_json(certificate))
    assert status == 200
    return body


@pytest.mark.asyncio
async def test_a_transfer_reaches_the_payees_stream(tmp_path: Path) -> None:
    async with observed_node(tmp_path) as node:
        async with node.client.ws_connect(_stream_path(BOB)) as ws:
            assert await _next(ws) == {"type": "caught_up", "tree_size": 1}
            certificate = certify(transfer(ALICE, BOB, 30, 0))
            assert (await _pay(node, certificate))["log_index"] == 1
            message = await _next(ws)
            assert message["type"] == "transfer" and message["log_index"] == 1
            assert wire.certificate_from_json(message["certificate"]) == certificate
            # A payment between others is not on BOB's stream; his own withdrawal is.
            await _pay(node, certify(transfer(ALICE, CAROL, 1, 1)))
            out = certify(withdrawal(BOB, 5, 0))
            await _pay(node, out)
            message = await _next(ws)
            assert message["type"] == "withdrawal" and message["log_index"] == 3
            assert wire.certificate_from_json(message["certificate"]) == out
            # A deposit from the chain (not through the API) reaches the stream too.
            await node.writer.apply(ContractReceiveDeposit(2, BOB.address, USDF, Amount(9)))
            message = await _next(ws)
            assert message["type"] == "deposit" and message["log_index"] == 4
            assert message["deposit"]["id"] == 2 and message["deposit"]["amount"] == "9"
            assert node.streams.count == 1
        for _ in range(100):  # the server notices the close on its next loop turn
            if node.streams.count == 0:
                break
            await asyncio.sleep(0.01)
        assert node.streams.count == 0


@pytest.mark.asyncio
async def test_replay_from_an_index_then_live(tmp_path: Path) -> None:
    async with observed_node(tmp_path) as node:
        first = certify(transfer(ALICE, BOB, 30, 0))
        await _pay(node, first)
        await _pay(node, certify(transfer(ALICE, CAROL, 1, 1)))
        async with node.client.ws_connect(_stream_path(ALICE, "?from_index=0")) as ws:
            assert [(m["type"], m["log_index"]) for m in [await _next(ws) for _ in range(3)]] == [
                ("deposit", 0),
                ("transfer", 1),
                ("transfer", 2),
            ]
            assert await _next(ws) == {"type": "caught_up", "tree_size": 3}
            await _pay(node, certify(transfer(ALICE, BOB, 1, 2)))
            assert (await _next(ws))["log_index"] == 3
        async with node.client.ws_connect(_stream_path(BOB, "?from_index=1")) as ws:
            replayed = await _next(ws)
            assert replayed["log_index"] == 1
            assert wire.certificate_from_json(replayed["certificate"]) == first
            assert (await _next(ws))["log_index"] == 3
            assert await _next(ws) == {"type": "caught_up", "tree_size": 4}
        # Ahead of the log: nothing replayed, and live entries below from_index skipped.
        async with node.client.ws_connect(_stream_path(BOB, "?from_index=6")) as ws:
            assert await _next(ws) == {"type": "caught_up", "tree_size": 4}
            await _pay(node, certify(transfer(ALICE, BOB, 1, 3)))  # entry 4
            await _pay(node, certify(transfer(ALICE, BOB, 1, 4)))  # entry 5
            await _pay(node, certify(transfer(ALICE, BOB, 1, 5)))  # entry 6
            assert (await _next(ws))["log_index"] == 6


@pytest.mark.asyncio
async def test_a_slow_consumer_is_disconnected(tmp_path: Path) -> None:
    async with observed_node(tmp_path, StreamSettings(queue_size=2)) as node:
        async with node.client.ws_connect(_stream_path(BOB)) as ws:
            assert (await _next(ws))["type"] == "caught_up"
            # Five payments in one group commit: more than BOB's queue holds before his
            # connection gets a turn to send.
            changes = [ReceiveCertificate(certify(transfer(ALICE, BOB, 1, s))) for s in range(5)]
            await asyncio.gather(*(node.writer.apply(c) for c in changes))
            while True:
                message = await asyncio.wait_for(ws.receive(), timeout=5)
                if message.type is not aiohttp.WSMsgType.TEXT:
                    break
                assert json.loads(message.data)["type"] == "transfer"
            assert message.type is aiohttp.WSMsgType.CLOSE
            assert message.data == CloseCode.SLOW_CONSUMER == 4001
            assert message.extra.startswith("slow_consumer")
        assert node.streams.slow_disconnects == 1 and node.streams.count == 0
        # The writer went on: every payment is in the log.
        assert node.store.log_size() == 6


@pytest.mark.asyncio
async def test_errors_come_as_json_before_the_upgrade(tmp_path: Path) -> None:
    settings = StreamSettings(max_per_account=1, max_replay=2)
    async with observed_node(tmp_path, settings) as node:
        response = await node.client.get("/v1/accounts/0xnot-an-address/stream")
        assert response.status == 400
        body = await response.json()
        assert body["code"] == "bad_request" and body["field"] == "address"
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await node.client.ws_connect("/v1/accounts/0x1234/stream")
        assert refused.value.status == 400

        response = await node.client.get(_stream_path(BOB))  # no Upgrade header
        assert response.status == 426 and (await response.json())["code"] == "upgrade_required"
        response = await node.client.get(_stream_path(BOB, "?from_index=-1"))
        assert response.status == 400 and (await response.json())["field"] == "from_index"

        for s in range(3):
            await _pay(node, certify(transfer(ALICE, BOB, 1, s)))
        with pytest.raises(aiohttp.WSServerHandshakeError) as too_old:
            await node.client.ws_connect(_stream_path(BOB, "?from_index=1"))
        assert too_old.value.status == 416

        async with node.client.ws_connect(_stream_path(BOB, "?from_index=2")) as ws:
            assert [(await _next(ws))["log_index"] for _ in range(2)] == [2, 3]
            with pytest.raises(aiohttp.WSServerHandshakeError) as busy:
                await node.client.ws_connect(_stream_path(BOB))
            assert busy.value.status == 429
