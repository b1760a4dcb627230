"""The directory and mailbox endpoints (docs/protocol.md section 7), installed beside
node.api's routes and sharing its error middleware (JSON errors, no 500 for any input).

    POST /v1/directory                     register or replace a signed agent record
    GET  /v1/directory/agents/{agent}      an agent's live record
    GET  /v1/directory?protocol=|service=  live records by protocol digest or service
    GET  /v1/directory/records?after=&limit=  every live record, a page in agent key order
    POST /v1/mailbox/{agent}               keep an envelope for an agent with a mailbox
    POST /v1/mailbox/{agent}/fetch         the agent acknowledges and fetches (signed)

Writes go straight to node.store.directory (one batch each), not through the ledger's
writer; the rules are node.directory's. The clock is read here, in the shell.

A record stored by ``POST /v1/directory`` (new, or replacing an older one) is handed to
``DirectoryServices.on_stored`` after the batch is written, which must return at once:
the node gives its gossip's queue (node.peers.directory), so the client's reply never
waits for the peers. :func:`register` is the same write for records pulled from a peer,
without ``on_stored`` (pulled records are not forwarded: docs/protocol.md 7.4).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from aiohttp import web

from node.api import ApiError, json_body
from node.directory import CONFLICTS, Refused, check_fetch, check_record, is_live, is_news
from node.store.directory import (
    MAX_ENVELOPE,
    MAX_RESULTS,
    DirectoryFull,
    DirectoryStore,
    MailboxFull,
    MailboxStore,
    agent_key,
)
from wallet.directory import (
    PROTOCOL_PATTERN,
    SERVICE_NAME_PATTERN,
    SignedRecord,
    fetch_from_json,
    signed_record_from_json,
    signed_record_to_json,
)
from wallet.errors import EncodingError
from wallet.keys import parse_agent_address
from wallet.types import Address

log = logging.getLogger("farthing.node.directory")

#: Seconds between purges of expired records, envelopes and nonces.
PURGE_INTERVAL = 60.0


def _now() -> int:
    return int(time.time())


def _ignore(signed: SignedRecord) -> None:
    return None


@dataclass(frozen=True, slots=True)
class DirectoryServices:
    directory: DirectoryStore
    mailbox: MailboxStore
    node_address: Address
    clock: Callable[[], int] = _now
    #: Called with each record a client's POST stored (new or replacing); returns at once.
    on_stored: Callable[[SignedRecord], None] = _ignore


DIRECTORY = web.AppKey("directory", DirectoryServices)


def _refused(refusal: Refused) -> ApiError:
    status = 409 if refusal.code in CONFLICTS else 422
    return ApiError(status, refusal.code.value, refusal.message)


def _agent(request: web.Request) -> tuple[str, bytes]:
    text = request.match_info["agent"]
    key = parse_agent_address(text, field="agent")
    return text.lower(), key


def register(
    services: DirectoryServices, signed: SignedRecord, *, pulled: bool = False
) -> Literal["stored", "unchanged"] | Refused:
    """Check ``signed`` against the kept record (node.directory.check_record) and store
    it: ``"stored"``, ``"unchanged"`` (the same signed record) or why it is refused.
    ``pulled``: from a peer's listing, so a record that is not news is ``"unchanged"``
    without verifying its signature. Raises :class:`DirectoryFull` (after a purge)."""
    now = services.clock()
    kept = services.directory.get(agent_key(signed.record.agent))
    if pulled and not is_news(signed, kept):
        return "unchanged"
    refusal = check_record(signed, kept, now)
    if refusal is not None:
        return refusal
    if kept == signed:
        return "unchanged"
    try:
        services.directory.put(signed)
    except DirectoryFull:
        services.directory.purge(now)
        services.directory.put(signed)
    return "stored"


def register_pulled(
    services: DirectoryServices, signed: SignedRecord
) -> Literal["stored", "unchanged", "directory_full"] | Refused:
    """:func:`register` for a record listed by a peer (not forwarded; a full directory
    is an outcome, not an exception)."""
    try:
        return register(services, signed, pulled=True)
    except DirectoryFull:
        return "directory_full"


async def post_record(request: web.Request) -> web.Response:
    services = request.app[DIRECTORY]
    signed = signed_record_from_json(await json_body(request))
    try:
        outcome = register(services, signed)
    except DirectoryFull as exc:
        raise ApiError(507, "directory_full", str(exc)) from None
    if isinstance(outcome, Refused):
        raise _refused(outcome)
    if outcome == "stored":
        services.on_stored(signed)
    return web.json_response({"status": outcome})


async def get_record(request: web.Request) -> web.Response:
    services = request.app[DIRECTORY]
    _, key = _agent(request)
    signed = services.directory.get(key)
    if signed is None or not is_live(signed.record, services.clock()):
        raise ApiError(404, "not_found", "this node has no live record of this agent")
    return web.json_response(signed_record_to_json(signed))


async def get_records(request: web.Request) -> web.Response:
    services = request.app[DIRECTORY]
    query = request.query
    if sorted(query) not in (["protocol"], ["service"]):
        raise EncodingError("query", "give exactly one of protocol= and service=, once")
    now = services.clock()
    if "protocol" in query:
        digest = query["protocol"]
        if len(digest) != 70 or PROTOCOL_PATTERN.fullmatch(digest) is None:
            raise EncodingError("protocol", 'expected "proto:" and 64 lower-case hex digits')
        found, more = services.directory.by_protocol(digest, now)
    else:
        name = query["service"]
        if len(name) > 64 or SERVICE_NAME_PATTERN.fullmatch(name) is None:
            raise EncodingError("service", "expected a service name of [a-z0-9._-]")
        found, more = services.directory.by_service(name, now)
    records = [signed_record_to_json(s) for s in found]
    return web.json_response({"records": records, "truncated": more})


async def get_all_records(request: web.Request) -> web.Response:
    services = request.app[DIRECTORY]
    query = request.query
    if not set(query) <= {"after", "limit"} or len(query) != len(set(query)):
        raise EncodingError("query", "give at most after= and limit=, each once")
    after = query.get("after")
    key = None if after is None else parse_agent_address(after, field="after")
    limit = MAX_RESULTS
    if "limit" in query:
        raw = query["limit"]
        if not (raw.isascii() and raw.isdigit() and 1 <= len(raw) <= 3):
            raise EncodingError("limit", f"expected an integer from 1 to {MAX_RESULTS}")
        limit = int(raw)
        if not 1 <= limit <= MAX_RESULTS:
            raise EncodingError("limit", f"expected an integer from 1 to {MAX_RESULTS}")
    found, more = services.directory.page(key, services.clock(), limit)
    next_agent = found[-1].record.agent if more else None
    records = [signed_record_to_json(s) for s in found]
    return web.json_response({"records": records, "next": next_agent})


async def post_envelope(request: web.Request) -> web.Response:
    services = request.app[DIRECTORY]
    body = await json_body(request)
    agent, key = _agent(request)
    if not isinstance(body, dict):
        raise EncodingError("envelope", "expected a JSON object")
    target = body.get("target")
    if not isinstance(target, str) or target.lower() != agent:
        raise EncodingError("envelope.target", "the envelope's target must be this agent")
    try:
        envelope = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
    except UnicodeEncodeError:  # "\ud800": JSON can escape it, UTF-8 cannot hold it
        raise EncodingError(
            "envelope", "a string holds a lone surrogate (\\ud800-\\udfff): not Unicode text"
        ) from None
    if len(envelope) > MAX_ENVELOPE:
        raise ApiError(413, "too_large", f"an envelope is at most {MAX_ENVELOPE} bytes")
    now = services.clock()
    signed = services.directory.get(key)
    if signed is None or not is_live(signed.record, now):
        raise ApiError(404, "not_registered", "this node has no live record of this agent")
    if not signed.record.mailbox:
        raise ApiError(422, "no_mailbox", "this agent's record does not ask for a mailbox")
    try:
        stored = services.mailbox.put(key, envelope, now)
    except MailboxFull as exc:
        raise ApiError(507, "mailbox_full", str(exc)) from None
    log.debug("envelope %d kept for %s", stored.id, agent)
    return web.json_response({"status": "stored", "id": stored.id, "expires": stored.expires})


async def post_fetch(request: web.Request) -> web.Response:
    services = request.app[DIRECTORY]
    body = await json_body(request)
    agent, key = _agent(request)
    fetch, signature = fetch_from_json(body)
    if fetch.agent != agent:
        raise EncodingError("agent", "the request's agent is not the one in the path")
    now = services.clock()
    seen = services.mailbox.seen(key, fetch.nonce)
    refusal = check_fetch(fetch, signature, services.node_address, now, seen)
    if refusal is not None:
        raise _refused(refusal)
    found, remaining = services.mailbox.fetch(
        key, fetch.ack, fetch.limit, fetch.nonce, fetch.timestamp, now
    )
    envelopes: list[dict[str, Any]] = [
        {"id": s.id, "expires": s.expires, "envelope": json.loads(s.envelope)} for s in found
    ]
    return web.json_response({"envelopes": envelopes, "remaining": remaining})


def install(app: web.Application, services: DirectoryServices) -> None:
    """Add the directory and mailbox routes to a node.api application."""
    app[DIRECTORY] = services
    app.router.add_post("/v1/directory", post_record)
    app.router.add_get("/v1/directory", get_records)
    app.router.add_get("/v1/directory/agents/{agent}", get_record)
    app.router.add_get("/v1/directory/records", get_all_records)
    app.router.add_post("/v1/mailbox/{agent}", post_envelope)
    app.router.add_post("/v1/mailbox/{agent}/fetch", post_fetch)


async def purge_forever(services: DirectoryServices, interval: float = PURGE_INTERVAL) -> None:
    """Delete expired records, envelopes and nonces every ``interval`` seconds."""
    while True:
        now = services.clock()
        gone = services.directory.purge(now) + services.mailbox.purge(now)
        if gone:
            log.debug("purged %d expired directory and mailbox keys", gone)
        await asyncio.sleep(interval)


__all__ = [
    "DIRECTORY",
    "DirectoryServices",
    "install",
    "purge_forever",
    "register",
    "register_pulled",
]
