"""The node's HTTP API (aiohttp, JSON, under ``/v1``): docs/protocol.md "Node API".

Every input is decoded by :mod:`wallet.wire` (strict: a bad body is a 400 with the field
that is wrong) and goes through the one :class:`~node.writer.Writer`; a refusal of the
ledger rules is a 409 or 422 with its machine-readable ``code``. Errors are always JSON
``{"code", "message"}`` (plus ``field`` or ``conflicting`` where they apply), mapped in
one middleware; no input makes the node answer 500.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from node.state import (
    ActionSubmitOrder,
    Event,
    EventCertificateApplied,
    EventCertificateDuplicate,
    EventCertificatePending,
    EventRefused,
    ReceiveCertificate,
    RefusalCode,
    SendVote,
    Transition,
)
from node.state.records import Committee
from node.store import LedgerStore
from node.witness import check_cosignature, report_to_json, witnessed_to_json
from node.writer import Writer
from wallet import wire
from wallet.codec import address_hex, hash_hex, parse_address, parse_hash32
from wallet.errors import EncodingError
from wallet.jsontext import MAX_JSON_DEPTH, TooDeep, loads_bounded
from wallet.types import UINT64_MAX, Address, Certificate, Checkpoint, Signature
from wallet.types import Sequence as SequenceNumber

log = logging.getLogger("farthing.node.api")

MAX_BODY = 1 << 20  # bytes
MAX_BATCH = 256
MAX_ENTRIES = 1_000
MAX_CERTIFICATES = 256  # per reply of the two certificate-listing endpoints (peer catch-up)
#: Seconds a connection may stay open without a complete request line and headers: from
#: its start or its last reply (aiohttp's ``keepalive_timeout``, 3,630 s by default). It
#: bounds idle connections and clients that send their headers byte by byte; above the
#: peers' 30-s connection pool (node.peers.client), so a peer's reused connection is
#: never one the node is closing.
KEEPALIVE_TIMEOUT = 60.0
#: Seconds a client has to send a request's body once its headers arrived (else 408).
BODY_TIMEOUT = 30.0
#: Seconds the node still reads (and drops) a body it answered before the end (408, 413)
#: before it closes the connection, so that the client reads the reply (aiohttp: 10 s).
LINGERING_TIME = 5.0

_CONFLICTS = {
    RefusalCode.CONFLICTING_ORDER,
    RefusalCode.CONFLICTING_CERTIFICATE,
    RefusalCode.SEQUENCE_USED,
    RefusalCode.SEQUENCE_AHEAD,
}

#: Called with the events of every committed transition (gossip, fetches, metrics).
EventSink = Callable[[Sequence[Event]], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class NodeServices:
    """What the handlers use; built by the node at start-up."""

    writer: Writer
    store: LedgerStore
    node_address: Address
    committee: Callable[[], Committee]
    on_events: EventSink
    latest_checkpoint: Callable[[], tuple[Checkpoint, Signature] | None] = lambda: None
    #: Sees every certificate received and its transition (node.evidence).
    observe_certificate: Callable[[Certificate, Transition], object] = lambda c, t: None


SERVICES = web.AppKey("services", NodeServices)


class ApiError(Exception):
    """A request the node refuses; becomes a JSON error reply."""

    def __init__(self, status: int, code: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.extra = status, code, message, extra


def _error(status: int, code: str, message: str, **extra: Any) -> web.Response:
    return web.json_response({"code": code, "message": message, **extra}, status=status)


@web.middleware
async def errors_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as exc:
        return _error(exc.status, exc.code, exc.message, **exc.extra)
    except EncodingError as exc:
        return _error(400, "bad_request", str(exc), field=exc.field)
    except web.HTTPRequestEntityTooLarge:
        return _error(413, "too_large", f"the body is larger than {MAX_BODY} bytes")
    except web.HTTPException as exc:
        if exc.status >= 400:
            return _error(exc.status, exc.reason.lower().replace(" ", "_"), exc.reason)
        raise
    except Exception:
        log.exception("internal error on %s %s", request.method, request.path)
        return _error(500, "internal", "the node failed to handle this request")


async def json_body(request: web.Request) -> Any:
    """The request's JSON body (415 unless sent as application/json, 408 unless it arrives
    within :data:`BODY_TIMEOUT`, 400 `bad_json`: :func:`parse_json`); every POST handler
    of the node reads its body through this."""
    if request.content_type != "application/json":
        raise ApiError(415, "unsupported_media_type", "send Content-Type: application/json")
    try:
        async with asyncio.timeout(BODY_TIMEOUT):
            raw = await request.read()
    except TimeoutError:
        raise ApiError(
            408, "request_timeout", f"the body did not arrive within {BODY_TIMEOUT:g} s"
        ) from None
    except ConnectionResetError:  # the client left: its fault, not the node's (no 500)
        raise ApiError(400, "connection_lost", "the client closed the connection") from None
    return parse_json(raw)


class _NotJsonError(ValueError):
    """A number JSON (RFC 8259) does not have: NaN, Infinity, or a float out of range."""


def _constant(name: str) -> Any:
    raise _NotJsonError(f"{name} is not a JSON number")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _NotJsonError("a number is out of the range of a double")
    return value


def parse_json(raw: bytes) -> Any:
    """The JSON value of a body: UTF-8 (RFC 8259, whatever charset is claimed), strict
    (no NaN or Infinity, no number beyond a double's range or 4,300 digits: Python's
    limit for int()), nested at most :data:`~wallet.jsontext.MAX_JSON_DEPTH` deep (a
    deeper body would crash the process: wallet.jsontext). Anything else is an
    :class:`ApiError` 400 ``bad_json`` saying what is wrong."""
    try:
        return loads_bounded(raw, parse_constant=_constant, parse_float=_finite)
    except UnicodeDecodeError:
        raise ApiError(400, "bad_json", "the body is not UTF-8 text") from None
    except TooDeep:
        raise ApiError(
            400, "bad_json", f"the body nests arrays or objects more than {MAX_JSON_DEPTH} deep"
        ) from None
    except json.JSONDecodeError as exc:
        raise ApiError(400, "bad_json", f"the body is not JSON: {exc.msg}") from None
    except _NotJsonError as exc:
        raise ApiError(400, "bad_json", f"the body is not JSON: {exc}") from None
    except ValueError:  # int() of more than sys.get_int_max_str_digits() digits
        most = sys.get_int_max_str_digits()
        raise ApiError(
            400, "bad_json", f"the body has a number of more than {most} digits"
        ) from None


def _refusal(event: EventRefused) -> ApiError:
    extra = {} if event.conflicting is None else {"conflicting": hash_hex(event.conflicting)}
    status = 409 if event.code in _CONFLICTS else 422
    return ApiError(status, event.code.value, event.message, **extra)


def _first_refusal(t: Transition) -> EventRefused | None:
    for event in t.events:
        if isinstance(event, EventRefused):
            return event
    return None


async def _apply(services: NodeServices, change: Any) -> Transition:
    t = await services.writer.apply(change)
    if isinstance(change, ReceiveCertificate):
        services.observe_certificate(change.certificate, t)
    if t.events:
        await services.on_events(t.events)
    return t


def _vote_result(t: Transition) -> dict[str, Any]:
    refusal = _first_refusal(t)
    if refusal is not None:
        raise _refusal(refusal)
    for event in t.events:
        if isinstance(event, SendVote):
            return {"vote": wire.vote_to_json(event.vote)}
    raise ApiError(500, "internal", "no vote and no refusal")  # unreachable


def _certificate_result(t: Transition) -> dict[str, Any]:
    refusal = _first_refusal(t)
    if refusal is not None:
        raise _refusal(refusal)
    for event in t.events:
        if isinstance(event, EventCertificateApplied):
            return {"status": "applied", "log_index": event.log_index}
        if isinstance(event, EventCertificateDuplicate):
            return {"status": "duplicate"}
        if isinstance(event, EventCertificatePending):
            return {"status": "pending"}
    raise ApiError(500, "internal", "no outcome")  # unreachable


def _batch_items(body: Any, key: str) -> list[Any]:
    if not isinstance(body, dict) or set(body) != {key} or not isinstance(body[key], list):
        raise EncodingError(key, f'expected {{"{key}": [...]}}')
    items: list[Any] = body[key]
    if not 0 < len(items) <= MAX_BATCH:
        raise EncodingError(key, f"a batch holds 1 to {MAX_BATCH} items")
    return items


async def _each(items: list[Any], one: Callable[[Any], Awaitable[dict[str, Any]]]) -> web.Response:
    """Run ``one`` for every item concurrently (so the writer batches them) and report each
    item's result or error in order."""

    async def guarded(item: Any) -> dict[str, Any]:
        try:
            return await one(item)
        except ApiError as exc:
            return {"error": {"code": exc.code, "message": exc.message, **exc.extra}}
        except EncodingError as exc:
            return {"error": {"code": "bad_request", "message": str(exc), "field": exc.field}}

    return web.json_response({"results": await asyncio.gather(*(guarded(i) for i in items))})


# ---------------------------------------------------------------- handlers


async def post_order(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    signed = wire.signed_order_from_json(await json_body(request))
    return web.json_response(_vote_result(await _apply(services, ActionSubmitOrder(signed))))


async def post_orders(request: web.Request) -> web.Response:
    services = request.app[SERVICES]

    async def one(item: Any) -> dict[str, Any]:
        signed = wire.signed_order_from_json(item)
        return _vote_result(await _apply(services, ActionSubmitOrder(signed)))

    return await _each(_batch_items(await json_body(request), "orders"), one)


async def post_certificate(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    certificate = wire.certificate_from_json(await json_body(request))
    result = _certificate_result(await _apply(services, ReceiveCertificate(certificate)))
    return web.json_response(result)


async def post_certificates(request: web.Request) -> web.Response:
    services = request.app[SERVICES]

    async def one(item: Any) -> dict[str, Any]:
        certificate = wire.certificate_from_json(item)
        return _certificate_result(await _apply(services, ReceiveCertificate(certificate)))

    return await _each(_batch_items(await json_body(request), "certificates"), one)


async def post_unknown(request: web.Request) -> web.Response:
    """Which of these orders' digests this node has not applied (peers offer digests
    before they push certificates, docs/protocol.md "Between nodes")."""
    store = request.app[SERVICES].store
    items = _batch_items(await json_body(request), "digests")
    digests = [parse_hash32(item, field=f"digests[{i}]") for i, item in enumerate(items)]
    unknown = [hash_hex(d) for d in digests if not store.has_certificate(d)]
    return web.json_response({"unknown": unknown})


async def get_account(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    address = parse_address(request.match_info["address"])
    account = services.store.account(address)
    lock = account.lock
    return web.json_response(
        {
            "address": address_hex(address),
            "next_sequence": account.next_sequence,
            "balances": {address_hex(t): str(v) for t, v in sorted(account.balances.items())},
            "pending_order": None if lock is None else wire.signed_order_to_json(lock.signed),
        }
    )


async def get_certificate(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    digest = parse_hash32(request.match_info["digest"])
    found = services.store.certificate(digest)
    if found is None:
        raise ApiError(404, "not_found", "no applied certificate has this digest")
    index, certificate = found
    return web.json_response(
        {"log_index": index, "certificate": wire.certificate_to_json(certificate)}
    )


async def get_account_certificates(request: web.Request) -> web.Response:
    """The applied certificates of an account at sequences ``first``..``last`` (inclusive),
    stopping before the first sequence this node has not applied (peers fetch what they
    miss with it)."""
    store = request.app[SERVICES].store
    address = parse_address(request.match_info["address"])
    first, last = _int_query(request, "first"), _int_query(request, "last")
    if not first <= last <= UINT64_MAX or last - first >= MAX_CERTIFICATES:
        raise ApiError(
            416,
            "bad_range",
            f"need first <= last <= 2**64 - 1 and at most {MAX_CERTIFICATES} sequences",
        )
    certificates: list[wire.CertificateJSON] = []
    for sequence in range(first, last + 1):
        digest = store.applied(address, SequenceNumber(sequence))
        found = None if digest is None else store.certificate(digest)
        if found is None:
            break
        certificates.append(wire.certificate_to_json(found[1]))
    return web.json_response({"certificates": certificates})


async def get_log_certificates(request: web.Request) -> web.Response:
    """The certificates of the orders among log entries ``start``..``end - 1`` with their
    log index (deposits are skipped: they come from the chain), for peers catching up."""
    store = request.app[SERVICES].store
    start, end = _int_query(request, "start"), _int_query(request, "end")
    size = store.log_size()
    if not start <= end <= size or end - start > MAX_CERTIFICATES:
        raise ApiError(
            416, "bad_range", f"need start <= end <= {size} and at most {MAX_CERTIFICATES} entries"
        )
    certificates: list[dict[str, Any]] = []
    for index in range(start, end):
        certificate = store.certificate_at(index)
        if certificate is not None:
            certificates.append(
                {"log_index": index, "certificate": wire.certificate_to_json(certificate)}
            )
    return web.json_response({"certificates": certificates, "tree_size": size})


def _int_query(request: web.Request, name: str, minimum: int = 0) -> int:
    raw = request.query.get(name)
    if raw is None or not (raw.isascii() and raw.isdigit()) or len(raw) > 20:
        raise EncodingError(name, f"query parameter {name} must be a non-negative integer")
    value = int(raw)
    if value < minimum:
        raise EncodingError(name, f"query parameter {name} must be at least {minimum}")
    return value


async def get_entries(request: web.Request) -> web.Response:
    store = request.app[SERVICES].store
    start, end = _int_query(request, "start"), _int_query(request, "end")
    size = store.log_size()
    if not start <= end <= size or end - start > MAX_ENTRIES:
        raise ApiError(
            416, "bad_range", f"need start <= end <= {size} and at most {MAX_ENTRIES} entries"
        )
    entries = [{"index": i, "leaf": "0x" + store.leaf(i).hex()} for i in range(start, end)]
    return web.json_response({"entries": entries, "tree_size": size})


async def get_inclusion(request: web.Request) -> web.Response:
    store = request.app[SERVICES].store
    index, size = _int_query(request, "index"), _int_query(request, "size", 1)
    if not index < size <= store.log_size():
        raise ApiError(416, "bad_range", f"need index < size <= {store.log_size()}")
    proof = store.inclusion_proof(index, size)
    return web.json_response(
        {"index": index, "tree_size": size, "proof": [hash_hex(h) for h in proof]}
    )


async def get_consistency(request: web.Request) -> web.Response:
    store = request.app[SERVICES].store
    first, second = _int_query(request, "first", 1), _int_query(request, "second", 1)
    if not first <= second <= store.log_size():
        raise ApiError(416, "bad_range", f"need 1 <= first <= second <= {store.log_size()}")
    proof = store.consistency_proof(first, second)
    return web.json_response(
        {"first": first, "second": second, "proof": [hash_hex(h) for h in proof]}
    )


async def get_head(request: web.Request) -> web.Response:
    store = request.app[SERVICES].store
    return web.json_response({"tree_size": store.log_size(), "root": hash_hex(store.root())})


async def get_checkpoint(request: web.Request) -> web.Response:
    latest = request.app[SERVICES].latest_checkpoint()
    if latest is None:
        raise ApiError(404, "not_found", "no checkpoint yet: the log is empty")
    return web.json_response(wire.signed_checkpoint_to_json(*latest))


async def get_witnessed(request: web.Request) -> web.Response:
    """Per peer: its last checkpoint this node accepted, and this node's cosignature."""
    records = request.app[SERVICES].store.all_witnessed()
    return web.json_response({"witnessed": [witnessed_to_json(r) for r in records]})


async def get_evidence(request: web.Request) -> web.Response:
    """The evidence this node holds against committee members: forked logs (node.witness)
    and equivocating votes (node.evidence)."""
    store = request.app[SERVICES].store
    return web.json_response(
        {
            "evidence": [report_to_json(r) for r in store.all_evidence()],
            "equivocations": [wire.equivocation_to_json(e) for e in store.all_equivocations()],
        }
    )


async def get_cosignatures(request: web.Request) -> web.Response:
    """The latest cosignature each witness gave this node's log."""
    found = request.app[SERVICES].store.all_cosignatures()
    return web.json_response({"cosignatures": [wire.signed_cosignature_to_json(*c) for c in found]})


async def post_cosignature(request: web.Request) -> web.Response:
    """A peer's cosignature of this node's log: kept, per witness, if it is the newest."""
    services = request.app[SERVICES]
    store = services.store
    cosignature, signature = wire.signed_cosignature_from_json(await json_body(request))
    size = cosignature.tree_size
    ours = store.root_at(size) if 0 < size <= store.log_size() else None
    me, members = services.node_address, services.committee().members
    domain = services.writer.context.domain
    refusal = check_cosignature(domain, me, members, cosignature, signature, ours)
    if refusal is not None:
        raise ApiError(422, "bad_cosignature", refusal)
    kept = store.cosignature(cosignature.witness)
    if kept is not None and (kept[0].tree_size, kept[0].timestamp) >= (size, cosignature.timestamp):
        return web.json_response({"status": "stale"})
    store.put_cosignature(cosignature, signature)
    return web.json_response({"status": "stored"})


async def get_committee(request: web.Request) -> web.Response:
    committee = request.app[SERVICES].committee()
    return web.json_response(
        {
            "epoch": committee.epoch,
            "quorum": committee.quorum,
            "members": [address_hex(m) for m in committee.members],
        }
    )


async def get_health(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    return web.json_response(
        {
            "status": "ok",
            "node": address_hex(services.node_address),
            "log_size": services.store.log_size(),
        }
    )


def make_app(services: NodeServices) -> web.Application:
    app = web.Application(middlewares=[errors_middleware], client_max_size=MAX_BODY)
    app[SERVICES] = services
    app.router.add_post("/v1/orders", post_order)
    app.router.add_post("/v1/orders/batch", post_orders)
    app.router.add_post("/v1/certificates", post_certificate)
    app.router.add_post("/v1/certificates/batch", post_certificates)
    app.router.add_post("/v1/certificates/unknown", post_unknown)
    app.router.add_get("/v1/accounts/{address}", get_account)
    app.router.add_get("/v1/accounts/{address}/certificates", get_account_certificates)
    app.router.add_get("/v1/certificates/{digest}", get_certificate)
    app.router.add_get("/v1/log/entries", get_entries)
    app.router.add_get("/v1/log/certificates", get_log_certificates)
    app.router.add_get("/v1/log/inclusion", get_inclusion)
    app.router.add_get("/v1/log/consistency", get_consistency)
    app.router.add_get("/v1/log/head", get_head)
    app.router.add_get("/v1/log/checkpoint", get_checkpoint)
    app.router.add_get("/v1/log/witnesses", get_witnessed)
    app.router.add_get("/v1/log/evidence", get_evidence)
    app.router.add_get("/v1/log/cosignatures", get_cosignatures)
    app.router.add_post("/v1/log/cosignatures", post_cosignature)
    app.router.add_get("/v1/committee", get_committee)
    app.router.add_get("/v1/health", get_health)
    return app


__all__ = [
    "BODY_TIMEOUT",
    "KEEPALIVE_TIMEOUT",
    "LINGERING_TIME",
    "SERVICES",
    "ApiError",
    "NodeServices",
    "json_body",
    "make_app",
    "parse_json",
]
