"""A node's API with its metrics and account streams wired as node.app wires them (the
writer's observers, the routes), on a loopback test server; shared by test_metrics and
test_stream."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from node.api import NodeServices, make_app
from node.metrics import NodeMetrics
from node.peers import PeerClient
from node.state import ContractReceiveDeposit, Event
from node.store import LedgerStore
from node.stream import STREAM_PATH, StreamHub, StreamSettings, install
from node.writer import Writer
from tests.node.factories import ALICE, COMMITTEE, DOMAIN, MEMBERS, USDF, Node
from wallet.types import Amount

#: A peer URL nothing listens on (port 9, discard): the outbox gauges need a peer.
DEAD_PEER = "http://127.0.0.1:9"


@dataclass
class Observed:
    client: TestClient  # type: ignore[type-arg]
    writer: Writer
    store: LedgerStore
    metrics: NodeMetrics
    streams: StreamHub


@contextlib.asynccontextmanager
async def observed_node(
    path: Path, settings: StreamSettings | None = None
) -> AsyncIterator[Observed]:
    """A node whose log starts with ALICE's deposit of 100 USDF (entry 0)."""
    store = LedgerStore(path, DOMAIN, sync=False)
    store.put_committee(COMMITTEE)
    metrics, streams = NodeMetrics(), StreamHub(settings)
    writer = Writer(
        store, Node().context, observers=(metrics.observe_commit, streams.observe_commit)
    )

    async def on_events(events: Sequence[Event]) -> None:
        return None

    services = NodeServices(writer, store, MEMBERS[0].address, lambda: COMMITTEE, on_events)
    app = make_app(services)
    install(app, streams)
    metrics.install(app, untimed=[STREAM_PATH])
    runner = asyncio.create_task(writer.run())
    async with PeerClient([DEAD_PEER]) as peers:
        metrics.track_node(store, lambda: None, peers, streams)
        client = TestClient(TestServer(app, host="127.0.0.1"))
        await client.start_server()
        try:
            await writer.apply(ContractReceiveDeposit(1, ALICE.address, USDF, Amount(100)))
            yield Observed(client, writer, store, metrics, streams)
        finally:
            await client.close()
            runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await runner
            store.close()


async def post_json(node: Observed, path: str, body: Any) -> tuple[int, Any]:
    response = await node.client.post(path, json=body)
    return response.status, await response.json()
