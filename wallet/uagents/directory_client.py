"""An agent's side of the nodes' directory and mailbox HTTP API (docs/protocol.md 7):
publish a signed record, read others' records, fetch the agent's mailbox from a node.

::

    async with DirectoryClient(["http://node-a:7000", "http://node-b:7000"]) as directory:
        await directory.register(agent_record(agent, key, services=(weather,)))
        record = await directory.lookup(seller)       # verified, live, or None
        sellers = await directory.find(service="weather")

Rule 1: a node is not trusted. Every record it serves is verified here (signed by the key
behind its own agent and payment addresses, live, for the agent or the query asked
about); one that is not is dropped and counted as that node's fault
(:class:`~wallet.errors.NodeMisbehaved`), never returned. Between valid records of one
agent from several nodes, the greatest ``sequence`` wins (a node cannot hide an update
unless every node does).

Rule 2: one node's failure is not the call's. :meth:`DirectoryClient.register` succeeds
if one node stored the record (or had it already) and reports every node's outcome;
reads succeed if one node answered usefully. A node that is down is
:class:`~wallet.errors.NodeUnavailable`, one that answers garbage
:class:`~wallet.errors.NodeMisbehaved`, one that refuses the request (4xx, 507)
:class:`~wallet.errors.DirectoryRefused` with the node's code; only when no node helps
does a call raise (:class:`~wallet.errors.RegistrationFailed`,
:class:`~wallet.errors.DirectoryUnavailable`).

:func:`agent_record` builds and signs a running agent's record;
:meth:`DirectoryClient.fetch_mailbox` is the signed fetch a mailbox poller
(:mod:`wallet.uagents.mailbox`) repeats.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Final, Literal, TypeVar

import aiohttp

from wallet.client.transport import MAX_REPLY_BYTES, read_capped
from wallet.codec import parse_address
from wallet.directory import (
    MAX_FETCH,
    PROTOCOL_PATTERN,
    SERVICE_NAME_PATTERN,
    FetchRequest,
    Service,
    SignedRecord,
    make_record,
    sign_fetch,
    signed_record_from_json,
    signed_record_to_json,
    verify_record,
)
from wallet.errors import (
    DirectoryRefused,
    DirectoryUnavailable,
    EncodingError,
    InvalidKey,
    NodeMisbehaved,
    NodeUnavailable,
    RegistrationFailed,
    WalletError,
)
from wallet.jsontext import loads_bounded
from wallet.keys import agent_address, parse_agent_address
from wallet.signing import PrivateKey
from wallet.types import Address

if TYPE_CHECKING:
    from wallet.uagents.agent import Agent

__all__ = [
    "DirectoryClient",
    "MailboxBatch",
    "MailboxEnvelope",
    "Registration",
    "agent_record",
    "record_problem",
]

log = logging.getLogger("wallet.uagents.directory")

#: The largest reply read from a node (100 records, or 100 envelopes of 64 KiB).

T = TypeVar("T")


def record_problem(signed: SignedRecord, now: float, agent: str | None = None) -> str | None:
    """Why a record served by a node must not be trusted at ``now`` (forged, expired, or
    not ``agent``'s), or None if it may be."""
    try:
        verify_record(signed)
    except WalletError as error:
        return f"a record that does not verify: {error}"
    record = signed.record
    if agent is not None and record.agent != agent.lower():
        return f"{record.agent}'s record for {agent.lower()}"
    if not now < record.expires_at:
        return f"an expired record of {record.agent}"
    return None


def agent_record(
    agent: Agent,
    key: PrivateKey,
    *,
    endpoints: Iterable[str] | None = None,
    services: Iterable[Service] = (),
    mailbox: bool = False,
    lifetime: int = 86_400,
    issued_at: int | None = None,
    sequence: int | None = None,
) -> SignedRecord:
    """``agent``'s record, signed with ``key`` (which must be the agent's key: the agent
    keeps its own private). ``endpoints`` default to ``(agent.endpoint,)`` (the agent
    must be started; pass a public URL if it is behind a proxy); pass ``()`` with
    ``mailbox=True`` for a mailbox-only agent. The protocols are the digests of the
    agent's protocols. ``issued_at`` defaults to now, ``sequence`` to ``issued_at``:
    a replacement made in the same second needs a greater ``sequence``."""
    if agent_address(key) != agent.address:
        raise InvalidKey(f"this key is not the key of {agent.address}")
    if endpoints is None:
        if agent.port == 0:
            raise ValueError("start the agent before taking its endpoint (its port is 0)")
        urls: tuple[str, ...] = (agent.endpoint,)
    else:
        urls = tuple(endpoints)
    return make_record(
        key,
        issued_at=int(time.time()) if issued_at is None else issued_at,
        lifetime=lifetime,
        sequence=sequence,
        endpoints=urls,
        protocols=tuple(dict.fromkeys(protocol.digest for protocol in agent.protocols)),
        services=tuple(services),
        mailbox=mailbox,
    )


@dataclass(frozen=True, slots=True)
class Registration:
    """Each node's answer to a registration: ``"stored"``, ``"unchanged"`` (it had this
    very record) or the error it gave."""

    outcomes: dict[str, Literal["stored", "unchanged"] | WalletError]

    @property
    def accepted(self) -> tuple[str, ...]:
        """The nodes that hold the record now."""
        return tuple(url for url, o in self.outcomes.items() if isinstance(o, str))

    @property
    def failures(self) -> dict[str, WalletError]:
        return {url: o for url, o in self.outcomes.items() if isinstance(o, WalletError)}


@dataclass(frozen=True, slots=True)
class MailboxEnvelope:
    """One kept envelope: its id on that node (1, 2, ... in arrival order), when the node
    drops it, and the envelope's JSON object as posted (unchecked: the agent checks)."""

    id: int
    expires: int
    envelope: dict[str, object]


@dataclass(frozen=True, slots=True)
class MailboxBatch:
    """A fetch's answer: envelopes in id order, and how many the node still keeps
    (these included)."""

    envelopes: tuple[MailboxEnvelope, ...]
    remaining: int


class DirectoryClient:
    """The directory and mailbox of the nodes at ``nodes`` (base URLs, e.g.
    ``http://127.0.0.1:7000``); see the module docstring. Uses ``session`` if given
    (not closed here), else its own, closed by :meth:`close` or ``async with``."""

    def __init__(
        self,
        nodes: str | Iterable[str],
        *,
        session: aiohttp.ClientSession | None = None,
        clock: Callable[[], float] = time.time,
        timeout: float = 5.0,
    ) -> None:
        urls = (nodes,) if isinstance(nodes, str) else tuple(nodes)
        self.nodes: Final = tuple(dict.fromkeys(url.rstrip("/") for url in urls))
        if not self.nodes:
            raise ValueError("a directory client needs at least one node URL")
        self._session = session
        self._own_session = session is None
        self._clock = clock
        self._timeout = aiohttp.ClientTimeout(total=timeout)

    async def close(self) -> None:
        if self._own_session and self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> DirectoryClient:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # ------------------------------------------------------------ HTTP

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        return self._session

    async def _call(
        self, node: str, method: str, path: str, body: object = None
    ) -> tuple[int, object]:
        """The status and JSON body of one request. Raises NodeUnavailable (no answer),
        NodeMisbehaved (not JSON) or DirectoryRefused (a 4xx or 507 with a code)."""
        url = node + path
        try:
            async with self._client().request(
                method, url, json=body, timeout=self._timeout
            ) as response:
                status = response.status
                raw = await read_capped(response.content, MAX_REPLY_BYTES)
        except (aiohttp.ClientError, TimeoutError) as error:
            problem = str(error) or type(error).__name__
            raise NodeUnavailable(node, f"{method} {path}: {problem}") from None
        if raw is None:
            raise NodeMisbehaved(node, f"{method} {path}: a reply over {MAX_REPLY_BYTES} bytes")
        try:
            reply: object = loads_bounded(raw)
        except ValueError:
            raise NodeMisbehaved(node, f"{method} {path}: HTTP {status}, not JSON") from None
        if status >= 400:
            code, message = _error_fields(reply)
            if status < 500 or status == 507:
                if code is None:
                    raise NodeMisbehaved(node, f"{method} {path}: HTTP {status} without a code")
                raise DirectoryRefused(node, status, code, message)
            if status in (502, 503, 504):
                raise NodeUnavailable(node, f"{method} {path}: HTTP {status}")
            raise NodeMisbehaved(node, f"{method} {path}: HTTP {status} ({code})")
        return status, reply

    async def _each(self, call: Callable[[str], Awaitable[T]]) -> dict[str, T | WalletError]:
        """``call`` on every node at once; each node's result or WalletError."""

        async def one(node: str) -> T | WalletError:
            try:
                return await call(node)
            except WalletError as error:
                return error

        results = await asyncio.gather(*(one(node) for node in self.nodes))
        return dict(zip(self.nodes, results, strict=True))

    # ------------------------------------------------------------ records

    async def register(self, signed: SignedRecord) -> Registration:
        """POSTs the record to every node. Returns every node's outcome if one stored it
        or had it; raises :class:`RegistrationFailed` otherwise. The record is not
        checked here beyond its encoding: the nodes check it (a forged one is refused)."""
        body = signed_record_to_json(signed)

        async def post(node: str) -> Literal["stored", "unchanged"]:
            _, reply = await self._call(node, "POST", "/v1/directory", body)
            status = reply.get("status") if isinstance(reply, dict) else None
            if status == "stored":
                return "stored"
            if status == "unchanged":
                return "unchanged"
            raise NodeMisbehaved(node, "POST /v1/directory: not a stored/unchanged status")

        outcomes = await self._each(post)
        registration = Registration(outcomes)
        failures = registration.failures
        for node, error in failures.items():
            log.info("%s did not take %s's record: %s", node, signed.record.agent, error)
        if not registration.accepted:
            raise RegistrationFailed(failures)
        return registration

    async def lookup(self, agent: str) -> SignedRecord | None:
        """``agent``'s verified, live record with the greatest sequence any node serves;
        None if the nodes that answered have none. Raises :class:`DirectoryUnavailable`
        if no node answered usefully (a node serving a record that does not verify,
        is expired or is another agent's counts as no answer), :class:`EncodingError`
        if ``agent`` is not an agent address."""
        parse_agent_address(agent, field="agent")
        agent = agent.lower()

        async def get(node: str) -> SignedRecord | None:
            try:
                _, reply = await self._call(node, "GET", f"/v1/directory/agents/{agent}")
            except DirectoryRefused as refused:
                if refused.status == 404:
                    return None
                raise
            signed = self._parse(node, reply)
            problem = record_problem(signed, self._clock(), agent)
            if problem is not None:
                raise NodeMisbehaved(node, f"served {problem}")
            return signed

        results = await self._each(get)
        faults = {node: r for node, r in results.items() if isinstance(r, WalletError)}
        self._log_faults(faults)
        if len(faults) == len(results):
            raise DirectoryUnavailable(f"looking up {agent}", faults)
        found = [r for r in results.values() if isinstance(r, SignedRecord)]
        return max(found, key=lambda s: s.record.sequence, default=None)

    async def find(
        self, *, service: str | None = None, protocol: str | None = None
    ) -> tuple[SignedRecord, ...]:
        """The verified, live records of the agents that sell ``service`` or speak
        ``protocol`` (a ``proto:...`` digest; give exactly one), from every node, one per
        agent (the greatest sequence), in agent address order. A node's record that
        does not verify, has expired or does not match the query is dropped. A node
        answers at most 100 records. Raises :class:`DirectoryUnavailable` if no node
        answered usefully."""
        if (service is None) == (protocol is None):
            raise ValueError("give exactly one of service= and protocol=")
        if service is not None:
            if SERVICE_NAME_PATTERN.fullmatch(service) is None:
                raise EncodingError("service", "expected a service name of [a-z0-9._-]")
            query = f"service={service}"
        else:
            assert protocol is not None
            if PROTOCOL_PATTERN.fullmatch(protocol) is None:
                raise EncodingError("protocol", 'expected "proto:" and 64 lower-case hex')
            query = f"protocol={protocol}"

        async def get(node: str) -> list[SignedRecord]:
            _, reply = await self._call(node, "GET", f"/v1/directory?{query}")
            items = reply.get("records") if isinstance(reply, dict) else None
            if not isinstance(items, list):
                raise NodeMisbehaved(node, "GET /v1/directory: no records list")
            kept: list[SignedRecord] = []
            for item in items:
                signed = self._parse(node, item)
                problem = record_problem(signed, self._clock())
                record = signed.record
                if problem is None and not (
                    protocol in record.protocols or any(s.name == service for s in record.services)
                ):
                    problem = f"{record.agent}'s record, which does not match {query}"
                if problem is not None:
                    log.warning("%s served %s: dropped", node, problem)
                    continue
                kept.append(signed)
            return kept

        results = await self._each(get)
        faults = {node: r for node, r in results.items() if isinstance(r, WalletError)}
        self._log_faults(faults)
        if len(faults) == len(results):
            raise DirectoryUnavailable(f"finding {query}", faults)
        best: dict[str, SignedRecord] = {}
        for records in results.values():
            for signed in records if isinstance(records, list) else ():
                held = best.get(signed.record.agent)
                if held is None or signed.record.sequence > held.record.sequence:
                    best[signed.record.agent] = signed
        return tuple(best[agent] for agent in sorted(best))

    @staticmethod
    def _parse(node: str, obj: object) -> SignedRecord:
        try:
            return signed_record_from_json(obj)
        except EncodingError as error:
            raise NodeMisbehaved(node, f"a malformed record: {error}") from None

    @staticmethod
    def _log_faults(faults: dict[str, WalletError]) -> None:
        for node, error in faults.items():
            log.info("%s: %s", node, error)

    # ------------------------------------------------------------ mailbox

    async def node_address(self, node: str) -> Address:
        """The node's signing address, from ``GET /v1/health`` (a fetch names it)."""
        node = node.rstrip("/")
        _, reply = await self._call(node, "GET", "/v1/health")
        text = reply.get("node") if isinstance(reply, dict) else None
        try:
            if isinstance(text, str):
                return parse_address(text, field="node")
        except EncodingError:
            pass
        raise NodeMisbehaved(node, "GET /v1/health: no node address")

    async def fetch_mailbox(
        self,
        key: PrivateKey,
        node: str,
        *,
        node_address: Address,
        ack: int = 0,
        limit: int = MAX_FETCH,
    ) -> MailboxBatch:
        """One signed fetch of ``key``'s agent's mailbox at ``node`` (whose address is
        ``node_address``): the node deletes the envelopes with an id up to ``ack``, then
        returns up to ``limit`` of the next ones. Raises NodeUnavailable, NodeMisbehaved
        or DirectoryRefused (``stale_request`` if the clocks differ by over 120 s)."""
        node = node.rstrip("/")
        agent = agent_address(key)
        request = FetchRequest(
            agent, node_address, ack, limit, int(self._clock()), secrets.token_bytes(16)
        )
        path = f"/v1/mailbox/{agent}/fetch"
        _, reply = await self._call(node, "POST", path, sign_fetch(key, request))
        try:
            return _batch(reply, ack, limit)
        except ValueError as error:
            raise NodeMisbehaved(node, f"POST {path}: {error}") from None


def _error_fields(reply: object) -> tuple[str | None, str]:
    if not isinstance(reply, dict):
        return None, ""
    code, message = reply.get("code"), reply.get("message")
    return (
        code if isinstance(code, str) else None,
        message if isinstance(message, str) else "",
    )


def _uint(value: object, name: str) -> int:
    if type(value) is not int or value < 0:
        raise ValueError(f"{name} is not a non-negative integer")
    return value


def _batch(reply: object, ack: int, limit: int) -> MailboxBatch:
    """A fetch's reply, checked: at most ``limit`` envelopes, ids increasing above
    ``ack``; raises ValueError."""
    if not isinstance(reply, dict) or set(reply) != {"envelopes", "remaining"}:
        raise ValueError("expected an object with envelopes and remaining")
    items = reply["envelopes"]
    if not isinstance(items, list) or len(items) > limit:
        raise ValueError(f"expected a list of at most {limit} envelopes")
    envelopes: list[MailboxEnvelope] = []
    last = ack
    for item in items:
        if not isinstance(item, dict) or set(item) != {"id", "expires", "envelope"}:
            raise ValueError("expected envelopes with id, expires and envelope")
        ident = _uint(item["id"], "id")
        if ident <= last:
            raise ValueError("envelope ids are not increasing above the acknowledged one")
        last = ident
        envelope = item["envelope"]
        if not isinstance(envelope, dict):
            raise ValueError("an envelope is not a JSON object")
        envelopes.append(MailboxEnvelope(ident, _uint(item["expires"], "expires"), envelope))
    remaining = _uint(reply["remaining"], "remaining")
    return MailboxBatch(tuple(envelopes), remaining)
