"""Prometheus metrics of the node, served at ``GET /v1/metrics`` (text format 0.0.4).

Rule 1: the hot path stays cheap. Counting a payment, a vote or a request is a dict
lookup and an integer add on an object made at start-up: no lock (the node is one
asyncio thread; the writer and the handlers never run at once), no allocation, no
formatting. Text is built only when Prometheus scrapes, and gauges whose truth lives
elsewhere (the log size, the peers' queues, the watcher's cursor) are read only then.

Rule 2: the number of time series is bounded by construction. Labels take values from
fixed sets: refusal codes, order kinds, registered tokens (at most :data:`MAX_TOKENS`;
any more share ``token="other"``), the router's routes, the configured peers. Nothing is
labelled by account, digest, or anything else a client chooses; every family also
refuses to grow past :data:`MAX_SERIES`.

Why a registry of our own rather than ``prometheus-client`` (which the package index
has): its values take a ``threading.Lock`` on every increment, which this single-threaded
node does not need on its hottest path; the format is a page of text (HELP and TYPE
lines, escaped label values, cumulative histogram buckets); and the node keeps one
dependency fewer. The tests check the exposition against the format's grammar.

Everything the node counts comes from one place: the writer's
:class:`~node.writer.CommitReport` (every committed batch, whether its changes came from
a client, a peer or the chain), plus a middleware that times requests by route.
"""

from __future__ import annotations

import math
import re
import time
from bisect import bisect_left
from collections.abc import Awaitable, Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Generic, Literal, TypeVar

from aiohttp import web
from aiohttp.web_urldispatcher import AbstractRoute

from node.state import (
    EventCertificateDuplicate,
    EventCertificatePending,
    EventRefused,
    RefusalCode,
    SendVote,
)
from node.state.entries import parse_deposit_leaf
from node.store import LedgerStore
from node.writer import CommitReport
from wallet.codec import address_hex
from wallet.types import Address, Checkpoint, Signature, Transfer

if TYPE_CHECKING:
    from node.peers import PeerClient
    from node.stream import StreamHub
    from wallet.serving import LimitedSite

#: The ``Content-Type`` of the text exposition format.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
#: A family refuses more label combinations than this (a bug, never a client, hits it).
MAX_SERIES = 1_000
#: Tokens with a series of their own; more (only with > f faulty members) count as "other".
MAX_TOKENS = 64

#: Seconds: from 0.5 ms (a cached read) to 10 s (a request stuck behind a slow disk).
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10)
#: Requests per group commit: powers of two up to the writer's largest batch.
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)

_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*\Z")
_LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z")

Kind = Literal["counter", "gauge", "histogram"]


class MetricsError(ValueError):
    """A metric defined or used against the rules above (a programming error)."""


# ---------------------------------------------------------------- values


class Counter:
    """A value that only goes up (``inc`` does not check the sign: it is on the hot
    path, and every caller in the node adds a count)."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value: float = 0

    def inc(self, amount: float = 1) -> None:
        self.value += amount


class Gauge:
    """A value that goes up and down."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value: float = 0

    def set(self, value: float) -> None:
        self.value = value

    def inc(self, amount: float = 1) -> None:
        self.value += amount


class Histogram:
    """Observations counted in fixed buckets (upper bounds, ``value <= bound``). Each
    observation adds to one bucket; the cumulative counts Prometheus wants are summed
    at exposition, not on every observation."""

    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last one is +Inf
        self.sum: float = 0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value

    @property
    def count(self) -> int:
        return sum(self.counts)


V = TypeVar("V", Counter, Gauge, Histogram)

#: What a callback family returns at scrape time: (label values, value) pairs.
Samples = Iterable[tuple[tuple[str, ...], float]]


# ---------------------------------------------------------------- text format


def escape_label_value(value: str) -> str:
    """A label value as the text format quotes it: backslash, double quote and line
    feed escaped."""
    return value.replace("\\", r"\\").replace('"', r"\"").replace("\n", r"\n")


def escape_help(text: str) -> str:
    """HELP text: backslash and line feed escaped (quotes stay as they are)."""
    return text.replace("\\", r"\\").replace("\n", r"\n")


def format_value(value: float) -> str:
    """A sample value: integers without a fraction, floats in Python's shortest exact
    form (which Go's ParseFloat reads), and the spellings of infinity and NaN."""
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value.is_integer() and abs(value) < 2**53:
        return str(int(value))
    return repr(value)


def _bound(value: float) -> str:
    return "+Inf" if math.isinf(value) else repr(float(value))


def _labels(names: tuple[str, ...], values: tuple[str, ...], extra: str = "") -> str:
    pairs = [f'{n}="{escape_label_value(v)}"' for n, v in zip(names, values, strict=True)]
    if extra:
        pairs.append(extra)
    return "{" + ",".join(pairs) + "}" if pairs else ""


# ---------------------------------------------------------------- families


class _Family:
    def __init__(self, name: str, help_text: str, kind: Kind, label_names: tuple[str, ...]):
        if not _NAME.match(name):
            raise MetricsError(f"bad metric name {name!r}")
        for label in label_names:
            if not _LABEL.match(label) or label.startswith("__") or label == "le":
                raise MetricsError(f"bad label name {label!r} in {name}")
        if kind == "counter" and not name.endswith("_total"):
            raise MetricsError(f"counter {name} must end in _total")
        self.name, self.help, self.kind, self.label_names = name, help_text, kind, label_names

    def header(self) -> Iterator[str]:
        yield f"# HELP {self.name} {escape_help(self.help)}"
        yield f"# TYPE {self.name} {self.kind}"

    def lines(self) -> Iterator[str]:
        raise NotImplementedError


class Family(_Family, Generic[V]):
    """A metric with its series, one per combination of label values, each made once
    (at start-up, or the first time a route is used) and then updated in place."""

    def __init__(
        self,
        name: str,
        help_text: str,
        kind: Kind,
        label_names: tuple[str, ...],
        make: Callable[[], V],
    ) -> None:
        super().__init__(name, help_text, kind, label_names)
        self._make: Callable[[], V] = make
        self._series: dict[tuple[str, ...], V] = {}

    def labels(self, *values: str) -> V:
        """The series for these label values, made on first use (not for the hot path:
        keep what it returns)."""
        if len(values) != len(self.label_names):
            raise MetricsError(f"{self.name} takes labels {self.label_names}, got {values}")
        found = self._series.get(values)
        if found is None:
            if len(self._series) >= MAX_SERIES:
                raise MetricsError(f"{self.name} has {MAX_SERIES} series already")
            found = self._series[values] = self._make()
        return found

    def lines(self) -> Iterator[str]:
        for values, series in self._series.items():
            if isinstance(series, Histogram):
                yield from self._histogram_lines(values, series)
            else:
                yield f"{self.name}{_labels(self.label_names, values)} {format_value(series.value)}"

    def _histogram_lines(self, values: tuple[str, ...], h: Histogram) -> Iterator[str]:
        cumulative = 0
        for bound, count in zip((*h.bounds, math.inf), h.counts, strict=True):
            cumulative += count
            le = f'le="{_bound(bound)}"'
            yield f"{self.name}_bucket{_labels(self.label_names, values, le)} {cumulative}"
        labels = _labels(self.label_names, values)
        yield f"{self.name}_sum{labels} {format_value(h.sum)}"
        yield f"{self.name}_count{labels} {cumulative}"


class CallbackFamily(_Family):
    """A counter or gauge whose values are read from their owner at scrape time (the
    log size, a peer's queue): nothing to update, nothing to get out of date."""

    def __init__(
        self,
        name: str,
        help_text: str,
        kind: Kind,
        label_names: tuple[str, ...],
        collect: Callable[[], Samples],
    ) -> None:
        super().__init__(name, help_text, kind, label_names)
        self._collect = collect

    def lines(self) -> Iterator[str]:
        for values, value in self._collect():
            yield f"{self.name}{_labels(self.label_names, values)} {format_value(value)}"


_FamilyT = TypeVar("_FamilyT", bound=_Family)


class Registry:
    """The node's metrics, exposed in the order they were defined."""

    def __init__(self) -> None:
        self._families: dict[str, _Family] = {}

    def _add(self, family: _FamilyT) -> _FamilyT:
        if family.name in self._families:
            raise MetricsError(f"metric {family.name} is defined twice")
        self._families[family.name] = family
        return family

    def counter(self, name: str, help_text: str, labels: tuple[str, ...] = ()) -> Family[Counter]:
        return self._add(Family(name, help_text, "counter", labels, Counter))

    def gauge(self, name: str, help_text: str, labels: tuple[str, ...] = ()) -> Family[Gauge]:
        return self._add(Family(name, help_text, "gauge", labels, Gauge))

    def histogram(
        self,
        name: str,
        help_text: str,
        buckets: Iterable[float],
        labels: tuple[str, ...] = (),
    ) -> Family[Histogram]:
        bounds = tuple(float(b) for b in buckets)
        if not bounds or list(bounds) != sorted(set(bounds)) or math.isinf(bounds[-1]):
            raise MetricsError(f"{name}: buckets must be finite, distinct and increasing")
        return self._add(Family(name, help_text, "histogram", labels, lambda: Histogram(bounds)))

    def callback(
        self,
        name: str,
        help_text: str,
        kind: Literal["counter", "gauge"],
        collect: Callable[[], Samples],
        labels: tuple[str, ...] = (),
    ) -> CallbackFamily:
        return self._add(CallbackFamily(name, help_text, kind, labels, collect))

    def expose(self) -> str:
        """The text exposition of every metric (format 0.0.4)."""
        lines: list[str] = []
        for family in self._families.values():
            lines.extend(family.header())
            lines.extend(family.lines())
        return "\n".join(lines) + "\n"


def single(value: Callable[[], float]) -> Callable[[], Samples]:
    """A callback for a metric without labels."""
    return lambda: [((), value())]


# ---------------------------------------------------------------- the node's metrics

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class NodeMetrics:
    """The metrics of one node (docs/protocol.md "Node API" lists them). The writer
    calls :meth:`observe_commit`; :meth:`install` adds the endpoint and the request
    timer to the app; the ``track_*`` methods attach the gauges read at scrape time."""

    def __init__(self, registry: Registry | None = None) -> None:
        r = self.registry = registry if registry is not None else Registry()
        self._payments = r.counter(
            "farthing_payments_confirmed_total",
            "Entries appended to this node's log, by kind (transfer, withdrawal, deposit) "
            "and token.",
            ("kind", "token"),
        )
        # kind -> token -> series; filled as tokens appear (at most MAX_TOKENS of them).
        self._by_token: dict[str, dict[Address, Counter]] = {
            "transfer": {},
            "withdrawal": {},
            "deposit": {},
        }
        self._votes = r.counter(
            "farthing_votes_total", "Votes this node gave (the same order again included)."
        ).labels()
        refusals = r.counter(
            "farthing_refusals_total", "Inputs refused by the ledger rules, by code.", ("code",)
        )
        self._refusals = {code: refusals.labels(code.value) for code in RefusalCode}
        self._duplicates = r.counter(
            "farthing_certificate_duplicates_total",
            "Certificates received that were already applied or pending (from clients and peers).",
        ).labels()
        self._pending = r.counter(
            "farthing_certificates_pending_total",
            "Certificates kept because they arrived ahead of their account's sequence.",
        ).labels()
        self._batch_size = r.histogram(
            "farthing_writer_batch_size",
            "Requests per group commit of the writer.",
            BATCH_BUCKETS,
        ).labels()
        self._commit_seconds = r.histogram(
            "farthing_writer_commit_seconds",
            "Seconds one group commit took to write to the store (sync included).",
            LATENCY_BUCKETS,
        ).labels()
        self._requests = r.histogram(
            "farthing_http_request_duration_seconds",
            "Seconds to answer an API request, by method and route (the route's pattern, "
            'never the path a client sent; "unmatched" for unknown paths).',
            LATENCY_BUCKETS,
            ("method", "route"),
        )
        self._route_series: dict[AbstractRoute, Histogram | None] = {}
        self._untimed: set[str] = set()

    # ------------------------------------------------------------ hot path

    def observe_commit(self, report: CommitReport) -> None:
        """Count what one group commit did (a :data:`~node.writer.CommitObserver`)."""
        self._batch_size.observe(report.batch_size)
        self._commit_seconds.observe(report.commit_seconds)
        for t in report.transitions:
            for entry in t.log:
                certificate = entry.certificate
                if certificate is None:
                    deposit = parse_deposit_leaf(entry.leaf)
                    if deposit is not None:
                        self._payment("deposit", deposit.token).inc()
                else:
                    order = certificate.order
                    kind = "transfer" if isinstance(order, Transfer) else "withdrawal"
                    self._payment(kind, order.token).inc()
            for event in t.events:
                if isinstance(event, SendVote):
                    self._votes.inc()
                elif isinstance(event, EventRefused):
                    self._refusals[event.code].inc()
                elif isinstance(event, EventCertificateDuplicate):
                    self._duplicates.inc()
                elif isinstance(event, EventCertificatePending):
                    self._pending.inc()

    def _payment(self, kind: str, token: Address) -> Counter:
        tokens = self._by_token[kind]
        found = tokens.get(token)
        if found is None:
            label = address_hex(token) if len(tokens) < MAX_TOKENS else "other"
            found = tokens[token] = self._payments.labels(kind, label)
        return found

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Time every request by its route (not by the path: a path holds addresses)."""
        started = time.perf_counter()
        try:
            return await handler(request)
        finally:
            series = self._route_histogram(request.match_info.route)
            if series is not None:
                series.observe(time.perf_counter() - started)

    def _route_histogram(self, route: AbstractRoute) -> Histogram | None:
        try:
            return self._route_series[route]
        except KeyError:
            pass
        resource = route.resource
        if resource is None:  # aiohttp's own routes for 404 and 405
            series: Histogram | None = self._requests.labels("any", "unmatched")
        elif resource.canonical in self._untimed:
            series = None
        else:
            series = self._requests.labels(route.method, resource.canonical)
        self._route_series[route] = series
        return series

    # ------------------------------------------------------------ wiring

    def install(self, app: web.Application, *, untimed: Iterable[str] = ()) -> None:
        """Serve ``GET /v1/metrics`` and time requests, except on the routes in
        ``untimed`` (a WebSocket stream lasts as long as its client stays)."""
        self._untimed.update(untimed)
        app.middlewares.append(self.middleware)
        app.router.add_get("/v1/metrics", self.handle)

    async def handle(self, request: web.Request) -> web.Response:
        return web.Response(
            body=self.registry.expose().encode(), headers={"Content-Type": CONTENT_TYPE}
        )

    def track_log(self, log_size: Callable[[], int], next_deposit_id: Callable[[], int]) -> None:
        self.registry.callback(
            "farthing_log_size", "Entries in this node's log.", "gauge", single(log_size)
        )
        self.registry.callback(
            "farthing_deposit_next_id",
            "The next Vault deposit id the ledger will credit (its deposit cursor).",
            "gauge",
            single(next_deposit_id),
        )

    def track_checkpoints(self, tree_size: Callable[[], int]) -> None:
        self.registry.callback(
            "farthing_checkpoint_tree_size",
            "Tree size of this node's latest signed checkpoint (0 before the first).",
            "gauge",
            single(tree_size),
        )

    def track_watcher(self, next_id: Callable[[], int], scan_from: Callable[[], int]) -> None:
        self.registry.callback(
            "farthing_deposit_watcher_next_id",
            "The next deposit id the chain watcher will hand to the writer.",
            "gauge",
            single(next_id),
        )
        self.registry.callback(
            "farthing_deposit_watcher_scan_block",
            "The first chain block the deposit watcher has not scanned yet.",
            "gauge",
            single(scan_from),
        )

    def track_peers(self, peers: PeerClient, our_log_size: Callable[[], int]) -> None:
        """Per peer (the configured ones, or the committee's endpoints: bounded by the
        committee's size): its push queue, what was dropped from it, and its log's size
        as catch-up last saw it (no sample before the first pull)."""
        r = self.registry
        r.callback(
            "farthing_peer_outbox_queued",
            "Certificates waiting to be pushed to the peer (queued or in flight).",
            "gauge",
            lambda: [((u,), peers.queued(u)) for u in peers.urls],
            ("peer",),
        )
        r.callback(
            "farthing_peer_outbox_dropped_total",
            "Certificates dropped from the peer's full push queue since this node started "
            "(catch-up repairs them).",
            "counter",
            lambda: [((u,), peers.dropped(u)) for u in peers.urls],
            ("peer",),
        )

        def sizes() -> Iterator[tuple[str, int]]:
            for url in peers.urls:
                size = peers.seen_tree_size(url)
                if size is not None:
                    yield url, size

        r.callback(
            "farthing_peer_tree_size",
            "The peer's log size at its last catch-up pull.",
            "gauge",
            lambda: [((u,), s) for u, s in sizes()],
            ("peer",),
        )
        r.callback(
            "farthing_peer_log_behind",
            "Entries the peer's log (at its last pull) has fewer than this node's "
            "(negative when it is ahead; logs hold the same payments in different orders).",
            "gauge",
            lambda: [((u,), our_log_size() - s) for u, s in sizes()],
            ("peer",),
        )

    def track_streams(self, streams: StreamHub) -> None:
        self.registry.callback(
            "farthing_stream_subscribers",
            "Open account streams (WebSocket).",
            "gauge",
            single(lambda: streams.count),
        )
        self.registry.callback(
            "farthing_stream_slow_disconnects_total",
            "Account streams closed because their client fell too far behind.",
            "counter",
            single(lambda: streams.slow_disconnects),
        )

    def track_connections(self, site: LimitedSite) -> None:
        self.registry.callback(
            "farthing_http_connections",
            "Open HTTP connections to this node's API (capped: --max-connections).",
            "gauge",
            single(lambda: site.open_connections),
        )
        self.registry.callback(
            "farthing_http_connections_refused_total",
            "Connections refused (429 or 503) because a connection cap was reached.",
            "counter",
            single(lambda: site.refused_connections),
        )

    def track_node(
        self,
        store: LedgerStore,
        checkpoint: Callable[[], tuple[Checkpoint, Signature] | None],
        peers: PeerClient,
        streams: StreamHub,
    ) -> None:
        """Attach the gauges of a running node's parts (the watcher comes later)."""
        self.track_log(store.log_size, store.next_deposit_id)

        def checkpoint_size() -> int:
            latest = checkpoint()
            return 0 if latest is None else latest[0].tree_size

        self.track_checkpoints(checkpoint_size)
        self.track_peers(peers, store.log_size)
        self.track_streams(streams)


__all__ = [
    "CONTENT_TYPE",
    "CallbackFamily",
    "Counter",
    "Family",
    "Gauge",
    "Histogram",
    "MetricsError",
    "NodeMetrics",
    "Registry",
    "escape_help",
    "escape_label_value",
    "format_value",
    "single",
]
