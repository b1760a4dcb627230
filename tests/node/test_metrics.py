"""Metrics: the registry and its text exposition (unit), then ``GET /v1/metrics`` of a
node whose counters move with its payments (functional)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from node.metrics import (
    CONTENT_TYPE,
    MAX_SERIES,
    MetricsError,
    Registry,
    escape_help,
    escape_label_value,
    format_value,
    single,
)
from tests.node.factories import ALICE, BOB, CAROL, USDF, certify, transfer
from tests.node.observed import DEAD_PEER, observed_node, post_json
from wallet import wire
from wallet.codec import address_hex

# ---------------------------------------------------------------- a strict reader

_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_LABEL = r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"'
_SAMPLE = re.compile(rf"({_NAME})(\{{(?:{_LABEL}(?:,{_LABEL})*)?\}})? (?P<value>\S+)\Z")
_VALUE = re.compile(r"[+-]?(\d+(\.\d*)?([eE][+-]?\d+)?|Inf|NaN)\Z")


@dataclass
class Sample:
    name: str
    labels: dict[str, str]
    value: float


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", lambda m: {"n": "\n"}.get(m[1], m[1]), text)


def parse_exposition(text: str) -> dict[str, tuple[str, list[Sample]]]:
    """Read the text format 0.0.4 strictly: every family has HELP then TYPE before its
    samples, every sample belongs to the family declared last, label values are
    escaped, and a histogram's buckets are cumulative up to ``+Inf == _count``."""
    assert text.endswith("\n")
    families: dict[str, tuple[str, list[Sample]]] = {}
    current: str | None = None
    expect_type: str | None = None
    for line in text[:-1].split("\n"):
        if line.startswith("# HELP "):
            name = line.split(" ", 3)[2]
            assert re.fullmatch(_NAME, name) and name not in families, line
            assert expect_type is None, "HELP without TYPE"
            expect_type = name
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            assert name == expect_type and kind in ("counter", "gauge", "histogram"), line
            families[name] = (kind, [])
            current, expect_type = name, None
            continue
        match = _SAMPLE.match(line)
        assert match is not None and current is not None, f"bad line {line!r}"
        name, value = match[1], match["value"]
        assert _VALUE.match(value), line
        labels = dict((k, _unescape(v)) for k, v in re.findall(_LABEL, match[2] or ""))
        kind = families[current][0]
        suffixes = ("_bucket", "_sum", "_count") if kind == "histogram" else ("",)
        assert any(name == current + s for s in suffixes), f"{name} outside {current}"
        families[current][1].append(Sample(name, labels, float(value)))
    for name, (kind, samples) in families.items():
        if kind == "histogram":
            _check_histogram(name, samples)
        if kind == "counter":
            assert name.endswith("_total") and all(s.value >= 0 for s in samples)
    return families


def _check_histogram(name: str, samples: list[Sample]) -> None:
    series: dict[tuple[tuple[str, str], ...], list[Sample]] = {}
    for s in samples:
        key = tuple(sorted((k, v) for k, v in s.labels.items() if k != "le"))
        series.setdefault(key, []).append(s)
    for group in series.values():
        buckets = [s for s in group if s.name == name + "_bucket"]
        bounds = [float(s.labels["le"]) for s in buckets]
        assert bounds == sorted(bounds) and bounds[-1] == math.inf
        counts = [s.value for s in buckets]
        assert counts == sorted(counts)
        (count,) = [s.value for s in group if s.name == name + "_count"]
        assert counts[-1] == count


def value_of(families: dict[str, tuple[str, list[Sample]]], name: str, **labels: str) -> float:
    for family, (_, samples) in families.items():
        if name.startswith(family):
            for s in samples:
                if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                    return s.value
    raise KeyError(f"{name} {labels}")


# ---------------------------------------------------------------- unit


def test_exposition_of_each_kind_is_exact() -> None:
    r = Registry()
    r.counter("jobs_total", "Jobs done.", ("queue",)).labels("a").inc(3)
    r.gauge("depth", "Queue depth.").labels().set(2.5)
    h = r.histogram("wait_seconds", "Waits.", (0.1, 1)).labels()
    for v in (0.05, 0.1, 0.5, 7):
        h.observe(v)
    r.callback("up", "Up.", "gauge", single(lambda: 1))
    assert r.expose() == (
        "# HELP jobs_total Jobs done.\n"
        "# TYPE jobs_total counter\n"
        'jobs_total{queue="a"} 3\n'
        "# HELP depth Queue depth.\n"
        "# TYPE depth gauge\n"
        "depth 2.5\n"
        "# HELP wait_seconds Waits.\n"
        "# TYPE wait_seconds histogram\n"
        'wait_seconds_bucket{le="0.1"} 2\n'
        'wait_seconds_bucket{le="1.0"} 3\n'
        'wait_seconds_bucket{le="+Inf"} 4\n'
        "wait_seconds_sum 7.65\n"
        "wait_seconds_count 4\n"
        "# HELP up Up.\n"
        "# TYPE up gauge\n"
        "up 1\n"
    )
    parse_exposition(r.expose())


def test_escaping() -> None:
    assert escape_label_value('a\\b"c\nd') == 'a\\\\b\\"c\\nd'
    assert escape_help('say "hi"\\\n') == 'say "hi"\\\\\\n'
    r = Registry()
    r.counter("odd_total", "Odd\nhelp.", ("peer",)).labels('http://x/"\\\n').inc()
    text = r.expose()
    assert "# HELP odd_total Odd\\nhelp.\n" in text
    (sample,) = parse_exposition(text)["odd_total"][1]
    assert sample.labels == {"peer": 'http://x/"\\\n'}


@pytest.mark.parametrize(
    ("value", "text"),
    [(0, "0"), (3, "3"), (2.0, "2"), (0.25, "0.25"), (1e-07, "1e-07"), (math.inf, "+Inf"),
     (-math.inf, "-Inf"), (math.nan, "NaN"), (2**70, str(2**70)),
     (2.0**70, "1.1805916207174113e+21")],
)  # fmt: skip
def test_format_value(value: float, text: str) -> None:
    assert format_value(value) == text


def test_histogram_bucket_edges_are_inclusive() -> None:
    h = Registry().histogram("x", "X.", (1, 2)).labels()
    for v in (1, 1.0000001, 2, 3):
        h.observe(v)
    assert h.counts == [1, 2, 1] and h.count == 4


def test_misuse_is_refused() -> None:
    r = Registry()
    family = r.counter("a_total", "A.", ("kind",))
    with pytest.raises(MetricsError):
        r.counter("a_total", "again")
    with pytest.raises(MetricsError):
        r.counter("b", "counters end in _total")
    with pytest.raises(MetricsError):
        r.gauge("bad-name", "B.")
    with pytest.raises(MetricsError):
        r.histogram("h", "H.", (1,), ("le",))
    with pytest.raises(MetricsError):
        r.histogram("h2", "H.", (2, 1))
    with pytest.raises(MetricsError):
        family.labels()
    for i in range(MAX_SERIES):
        family.labels(str(i))
    with pytest.raises(MetricsError):
        family.labels("one too many")


# ---------------------------------------------------------------- through the API


@pytest.mark.asyncio
async def test_metrics_endpoint_counts_payments_votes_and_refusals(tmp_path: Path) -> None:
    async with observed_node(tmp_path) as node:
        signed = transfer(ALICE, BOB, 30, 0)
        assert (await post_json(node, "/v1/orders", wire.signed_order_to_json(signed)))[0] == 200
        conflicting = wire.signed_order_to_json(transfer(ALICE, CAROL, 1, 0))
        assert (await post_json(node, "/v1/orders", conflicting))[0] == 409
        certificate = wire.certificate_to_json(certify(signed))
        for _ in range(2):
            assert (await post_json(node, "/v1/certificates", certificate))[0] == 200
        await node.client.get(f"/v1/accounts/{address_hex(BOB.address)}")
        await node.client.get("/v1/no/such/path/0xdeadbeef")

        response = await node.client.get("/v1/metrics")
        assert response.status == 200 and response.headers["Content-Type"] == CONTENT_TYPE
        text = await response.text()
        families = parse_exposition(text)

        usdf = address_hex(USDF)
        payments = "farthing_payments_confirmed_total"
        assert value_of(families, payments, kind="deposit", token=usdf) == 1
        assert value_of(families, payments, kind="transfer", token=usdf) == 1
        assert value_of(families, "farthing_votes_total") == 1
        assert value_of(families, "farthing_refusals_total", code="conflicting_order") == 1
        assert value_of(families, "farthing_refusals_total", code="bad_vote") == 0
        assert value_of(families, "farthing_certificate_duplicates_total") == 1
        latency = "farthing_http_request_duration_seconds_count"
        assert value_of(families, latency, method="POST", route="/v1/orders") == 2
        assert value_of(families, latency, method="POST", route="/v1/certificates") == 2
        assert value_of(families, latency, route="/v1/accounts/{address}") == 1
        assert value_of(families, latency, route="unmatched") == 1
        assert value_of(families, "farthing_writer_batch_size_count") >= 5
        assert value_of(families, "farthing_writer_commit_seconds_count") >= 5
        assert value_of(families, "farthing_log_size") == 2
        assert value_of(families, "farthing_deposit_next_id") == 2
        assert value_of(families, "farthing_checkpoint_tree_size") == 0
        assert value_of(families, "farthing_peer_outbox_queued", peer=DEAD_PEER) == 0
        assert value_of(families, "farthing_stream_subscribers") == 0
        # Series are labelled by route patterns, never by what a client put in a path.
        assert address_hex(BOB.address) not in text and "deadbeef" not in text


@pytest.mark.asyncio
async def test_a_failing_observer_does_not_stop_the_writer(tmp_path: Path) -> None:
    async with observed_node(tmp_path) as node:

        def broken(report: object) -> None:
            raise RuntimeError("observer bug")

        node.writer.observers.insert(0, broken)
        signed = transfer(ALICE, BOB, 5, 0)
        status, body = await post_json(
            node, "/v1/certificates", wire.certificate_to_json(certify(signed))
        )
        assert (status, body) == (200, {"status": "applied", "log_index": 1})
        text = await (await node.client.get("/v1/metrics")).text()
        families = parse_exposition(text)
        usdf = address_hex(USDF)
        assert (
            value_of(families, "farthing_payments_confirmed_total", kind="transfer", token=usdf)
            == 1
        )
