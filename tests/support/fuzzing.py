"""Shared pieces of the HTTP fuzz tests (tests/node/test_api_fuzz.py,
tests/wallet/test_agent_fuzz.py): a node wired as node.app wires it (ledger, streams,
directory and mailbox, metrics) over a real LevelDB store, a digest of everything the
node keeps (to show that a refusal changed nothing), the reply checks, JSON and raw-body
strategies, and a counter of the cases run.

``FARTHING_LONG=1`` multiplies the number of generated cases by five and adds
schemathesis's coverage phase (about 4,400 → 20,000+ in all); the default run takes
about a minute on a 2-core machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import threading
from collections import Counter
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from node.api import NodeServices, make_app
from node.checkpoints import Checkpointer, CheckpointPolicy
from node.directory_api import DirectoryServices
from node.directory_api import install as install_directory
from node.metrics import NodeMetrics
from node.state import ContractReceiveDeposit, Event
from node.store import LedgerStore
from node.store.directory import DirectoryStore, MailboxStore
from node.stream import STREAM_PATH, StreamHub
from node.stream import install as install_streams
from node.writer import Writer
from tests.node.factories import ALICE, COMMITTEE, DOMAIN, MEMBERS, USDF, Node
from tests.support.long_runs import LONG
from wallet.types import Amount

#: Long runs: FARTHING_LONG=1 (10,000+ cases in all instead of about 2,000).
SCALE = 5 if LONG else 1
#: The fixed clock of the directory (its records are issued at this time).
NOW = 1_767_225_600

#: The settings of every fuzz test (fixtures are function-scoped on purpose: a case
#: builds on the state the node is in; big cases are slow by design).
FUZZ = settings(
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

#: The marks of every fuzz module: its own timeout, and quiet about large failing cases
#: (hypothesis warns before it prints one).
FUZZ_MARKS = [
    pytest.mark.timeout(240),
    pytest.mark.filterwarnings("ignore:Generating overly large repr"),
]


def examples(default: int) -> int:
    """How many examples a fuzz test runs: ``default``, times 5 under FARTHING_LONG."""
    return default * SCALE


# ---------------------------------------------------------------- counting


@dataclass
class CaseCount:
    """Cases run, by test; a final test of each module checks the totals."""

    by_test: Counter[str] = field(default_factory=Counter)

    def add(self, test: str, n: int = 1) -> None:
        self.by_test[test] += n

    @property
    def total(self) -> int:
        return sum(self.by_test.values())


CASES = CaseCount()


# ---------------------------------------------------------------- a node


@dataclass
class FuzzNode:
    """A node's parts, wired as node.app wires them, and its server's URL."""

    server: TestServer
    store: LedgerStore
    writer: Writer
    streams: StreamHub
    directory: DirectoryServices

    @property
    def url(self) -> str:
        return str(self.server.make_url("")).rstrip("/")

    def digest(self) -> str:
        """A digest of every key and value in the node's LevelDB (ledger, log,
        directory, mailbox, witnessing): equal before and after means nothing changed."""
        h = hashlib.sha256()
        for k, v in self.store._db.iterator():  # the whole LevelDB
            h.update(len(k).to_bytes(4, "big") + k + len(v).to_bytes(4, "big") + v)
        return h.hexdigest()


def node_app(store: LedgerStore) -> tuple[web.Application, Writer, StreamHub, DirectoryServices]:
    """The application of node.app over ``store`` (no peers, no chain)."""
    metrics, streams = NodeMetrics(), StreamHub()
    writer = Writer(
        store, Node().context, observers=(metrics.observe_commit, streams.observe_commit)
    )
    checkpointer = Checkpointer(store, MEMBERS[0], DOMAIN, CheckpointPolicy())

    async def on_events(events: Sequence[Event]) -> None:
        return None

    services = NodeServices(
        writer,
        store,
        MEMBERS[0].address,
        lambda: COMMITTEE,
        on_events,
        lambda: checkpointer.latest,
    )
    app = make_app(services)
    install_streams(app, streams)
    directory = DirectoryServices(
        DirectoryStore(store.keyspace(b"d")),
        # Roomy: a fuzzer's envelopes must not fill the mailbox (that is a 507 by design).
        MailboxStore(store.keyspace(b"x"), max_envelopes=1 << 30, max_bytes=1 << 40),
        MEMBERS[0].address,
        lambda: NOW,
    )
    install_directory(app, directory)
    metrics.install(app, untimed=[STREAM_PATH])
    return app, writer, streams, directory


@contextlib.asynccontextmanager
async def running_node(path: Path, **server_args: Any) -> AsyncIterator[FuzzNode]:
    """A node serving on a loopback port, ALICE holding 100 USDF (deposit 1);
    ``server_args`` go to aiohttp's AppRunner (``keepalive_timeout``...)."""
    store = LedgerStore(path, DOMAIN, sync=False)
    store.put_committee(COMMITTEE)
    app, writer, streams, directory = node_app(store)
    runner = asyncio.create_task(writer.run())
    server = TestServer(app, host="127.0.0.1")
    await server.start_server(**server_args)
    try:
        await writer.apply(ContractReceiveDeposit(1, ALICE.address, USDF, Amount(100)))
        yield FuzzNode(server, store, writer, streams, directory)
    finally:
        await server.close()
        runner.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await runner
        store.close()


@contextlib.contextmanager
def node_in_thread(path: Path) -> Iterator[FuzzNode]:
    """:func:`running_node` on an event loop of its own thread, for synchronous clients
    (schemathesis sends with ``requests``)."""
    loop = asyncio.new_event_loop()
    ready: asyncio.Future[FuzzNode] = loop.create_future()
    stop = asyncio.Event()

    async def serve() -> None:
        async with running_node(path) as node:
            ready.set_result(node)
            await stop.wait()

    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), daemon=True)
    thread.start()
    node = asyncio.run_coroutine_threadsafe(_wait(ready), loop).result(timeout=30)
    try:
        yield node
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(timeout=30)
        loop.close()


async def _wait(future: asyncio.Future[FuzzNode]) -> FuzzNode:
    return await future


# ---------------------------------------------------------------- reply checks


def check_node_reply(status: int, content_type: str, raw: bytes, *, what: object) -> Any:
    """A node's reply to any input: never a 5xx; JSON; a refusal is ``{"code",
    "message"}`` with a message that says something (a 400 ``bad_request`` also names the
    ``field``). Returns the parsed body (None for the Prometheus text of /v1/metrics)."""
    assert status < 500, (status, raw[:300], what)
    if status < 400 and content_type.startswith("text/plain"):
        return None  # /v1/metrics
    assert content_type == "application/json", (status, content_type, raw[:300], what)
    body = json.loads(raw)  # strict JSON: no NaN or Infinity from the node
    if status >= 400:
        assert isinstance(body, dict), (status, body, what)
        code, message = body.get("code"), body.get("message")
        assert isinstance(code, str) and code and code == code.lower(), (body, what)
        assert isinstance(message, str) and len(message) >= 8, (body, what)
        assert code != "internal", (body, what)
        if code == "bad_request":
            assert isinstance(body.get("field"), str) and body["field"], (body, what)
    return body


# ---------------------------------------------------------------- strategies

#: Integers of every size: small, uint64 edges, beyond uint256, and over Python's
#: 4,300-digit limit for int() of a text (as JSON text, see :func:`json_text`).
INTEGERS = st.one_of(
    st.integers(),
    st.sampled_from([0, -1, 1, 2**53 + 1, 2**63, 2**64 - 1, 2**64, 2**256 - 1, 2**256, -(2**255)]),
    st.integers(min_value=-(10**100), max_value=10**100),
)
TEXT = st.one_of(
    st.text(max_size=40),
    st.text(alphabet="0123456789abcdefABCDEFx", max_size=140).map(lambda s: "0x" + s),
    st.sampled_from(
        [
            "",
            "0",
            "-1",
            "1e3",
            "0x",
            "agent1",
            "proto:",
            "\x00",
            "\ud7ff\ufffd",
            "\ud800",
            "\udfff x",
            "😀",
        ]
    ),
    st.integers(0, 300).map(lambda n: "a" * n * 100),
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    INTEGERS,
    st.floats(allow_nan=True, allow_infinity=True),
    TEXT,
)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(TEXT, inner, max_size=5),
    max_leaves=25,
)


def json_text(value: Any) -> bytes:
    """JSON text of ``value``, with NaN and Infinity written as Python writes them."""
    return json.dumps(value, allow_nan=True).encode()


def _nested(depth: int, kind: str) -> bytes:
    if kind == "array":
        return b"[" * depth + b"]" * depth
    return b'{"a":' * depth + b"1" + b"}" * depth


RAW = st.one_of(
    st.binary(max_size=200),
    st.builds(_nested, st.integers(1, 200_000), st.sampled_from(["array", "object"])),
    st.integers(4_000, 20_000).map(lambda n: b"1" * n),  # over int()'s digit limit
    st.integers(4_000, 20_000).map(lambda n: b'{"amount": ' + b"9" * n + b"}"),
    st.sampled_from(
        [
            b"",
            b"\xff\xfe\x00",
            b'{"a": "\xc3\x28"}',
            b"NaN",
            b"[Infinity, -Infinity]",
            b'{"a": 1e999}',
            b"\xef\xbb\xbf{}",
            b"null",
            b"{" * 10,
            b'"\\ud800"',
            b"1" * 4_301,
        ]
    ),
)


@st.composite
def truncated_json(draw: st.DrawFn, bodies: st.SearchStrategy[Any]) -> bytes:
    text = json_text(draw(bodies))
    return text[: draw(st.integers(0, max(0, len(text) - 1)))]


def bodies(valid: Sequence[Any]) -> st.SearchStrategy[bytes]:
    """Bodies of every kind: random JSON, raw bytes, and truncated valid JSON."""
    return st.one_of(
        JSON.map(json_text),
        RAW,
        truncated_json(st.sampled_from(list(valid))) if valid else RAW,
    )


__all__ = [
    "CASES",
    "JSON",
    "LONG",
    "NOW",
    "RAW",
    "TEXT",
    "FuzzNode",
    "bodies",
    "check_node_reply",
    "examples",
    "json_text",
    "node_in_thread",
    "running_node",
]
