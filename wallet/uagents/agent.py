"""An agent that talks: uAgents-compatible messages over HTTP, signed with the wallet's key.

::

    agent = Agent(key, name="seller", port=8001, resolver=StaticResolver({...}),
                  protocols=[quotes])
    async with agent:            # serves POST /submit on host:port
        await agent.send(buyer, Hello())

Theory of operation. ``POST /submit`` takes one envelope (docs/protocol.md 6.2) and
handles it before answering (no queue: a handler's own sends happen inside the request).
:meth:`Agent.receive` is the same path for envelopes that arrive another way (a mailbox):

1. Refusals of an envelope whose sender is not proven (its text is not an envelope, it
   is for another agent, its signature is not the sender's): HTTP 400 ``{"error": ...}``
   as uagents answers, and nothing is sent to the claimed sender.
2. The replay guard (:class:`~wallet.uagents.replay.ReplayGuard`): a ``stale``,
   ``replayed``, ``too_far_ahead`` or ``no_expiry`` envelope gets HTTP 400 (503 for
   ``guard_full``) whose body is a signed ``ErrorMessage`` envelope to the sender in the
   same session. With a ``replay_journal`` (:mod:`~wallet.uagents.replay_journal`) an
   accepted digest is synced to disk before anything else happens, so a restarted agent
   still refuses the replay; if it cannot be written, HTTP 503 and nothing is handled.
   A guard refusal is **not** also sent to the sender's endpoint: anyone holding an old
   envelope could otherwise make this agent write to its sender.
3. A reply that an async-mode :meth:`Agent.ask` is waiting for (same sender and
   session, an expected model or an ``ErrorMessage``) goes to that call, not to a
   handler: HTTP 200 ``{}``.
4. An unknown ``schema_digest``, a payload that is not a valid instance of its model, or
   a handler that raises: HTTP 200 (the envelope was delivered; uagents also answers 200
   for an unknown model, but drops it silently) with a signed ``ErrorMessage`` envelope
   as the body, and in async mode the same ``ErrorMessage`` is also sent to the sender's
   endpoint, so a uAgents peer (which ignores response bodies) hears of it. Its text is
   ``"{reason}: {message}"`` if the handler raised
   :class:`~wallet.errors.MessageRefused` (a session's refusals, e.g. ``out_of_turn:
   ...``, are ones), else a generic one (the exception is logged, not shown). The agent
   keeps serving: a bad message never stops the next one (uagents 0.26.1 stops handling
   after one malformed payload).
5. Otherwise the handler runs with a :class:`~wallet.uagents.context.Context`; the answer
   is HTTP 200 ``{}``, or in sync mode (header ``x-uagents-connection: sync``) the signed
   envelope of the handler's first reply.

An incoming ``ErrorMessage`` is logged and passed to ``on_error`` if given; it is never
answered (two agents must not trade error replies forever).

Sending: the target's endpoints come from the resolver; the envelope (expiring
``message_ttl`` seconds after now, random nonce) is signed with the agent's key and
POSTed to each endpoint in turn until one answers HTTP 200, the only status uAgents
counts as delivered; otherwise :class:`~wallet.errors.DeliveryFailed`. If the answer's
body is a signed ``ErrorMessage`` from the target, :class:`~wallet.errors.ErrorReply`.
:meth:`Agent.ask` returns the reply: in sync mode the HTTP answer's body, which must be
an envelope signed by the target; in async mode (``sync=False``, what uAgents peers
need: uagents sends its sync replies unsigned) the first matching message in the session
that reaches ``/submit`` (step 3). Nothing here logs or shows the key.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Final

import aiohttp
from aiohttp import web

from wallet.errors import (
    DeliveryFailed,
    EncodingError,
    EnvelopeRefused,
    ErrorReply,
    InvalidSignature,
    JournalError,
    MessageRefused,
    NoReply,
    WalletError,
)
from wallet.keys import agent_address
from wallet.serving import ConnectionLimits, LimitedSite
from wallet.signing import PrivateKey
from wallet.uagents.context import Context
from wallet.uagents.envelope import (
    Envelope,
    check_envelope_signature,
    envelope_from_json,
    envelope_to_bytes,
    make_envelope,
    sign_envelope,
)
from wallet.uagents.models import Model, decode_payload, encode_payload, model_digest
from wallet.uagents.protocol import ErrorMessage, Protocol, Route
from wallet.uagents.replay import ReplayGuard
from wallet.uagents.replay_journal import ReplayJournal
from wallet.uagents.resolver import Resolver, StaticResolver

if TYPE_CHECKING:
    from wallet.agent import FarthingWallet

__all__ = ["MAX_SUBMIT", "SYNC_HEADER", "Agent"]

#: The request header that asks for the reply in the HTTP response.
SYNC_HEADER: Final = "x-uagents-connection"
ERROR_DIGEST: Final = model_digest(ErrorMessage)
#: The largest body ``POST /submit`` reads (aiohttp's default); larger: HTTP 413.
MAX_SUBMIT: Final = 1 << 20
#: Seconds a client has to send the body once its headers arrived (else HTTP 408).
BODY_TIMEOUT: Final = 30.0
#: Seconds a connection may stay open without a complete request line and headers, from
#: its start or its last reply (aiohttp's default is 3,630 s): idle and slow clients.
KEEPALIVE_TIMEOUT: Final = 60.0
#: Seconds the server still reads a body it answered before the end (408, 413), so that
#: the client reads the reply, before it closes the connection (aiohttp's default: 10 s).
LINGERING_TIME: Final = 5.0


@dataclass(frozen=True, slots=True)
class _Waiter:
    """An async-mode :meth:`Agent.ask` waiting for a reply with one of ``digests``."""

    digests: frozenset[str]
    future: asyncio.Future[Envelope]


class Agent:
    """A uAgents-compatible agent whose identity is ``key`` (see the module docstring)."""

    def __init__(
        self,
        key: PrivateKey,
        *,
        name: str = "agent",
        host: str = "127.0.0.1",
        port: int = 0,
        resolver: Resolver | None = None,
        protocols: Iterable[Protocol] = (),
        wallet: FarthingWallet | None = None,
        replay_guard: ReplayGuard | None = None,
        replay_journal: str | Path | None = None,
        clock: Callable[[], float] = time.time,
        message_ttl: int = 60,
        timeout: float = 10.0,
        on_error: Callable[[str, uuid.UUID, str], Awaitable[None]] | None = None,
        connection_limits: ConnectionLimits | None = None,
    ) -> None:
        if wallet is not None and wallet.address != key.address:
            raise ValueError("the agent's key must be the key of its wallet's account")
        self._key = key
        self.address: Final = agent_address(key)
        self.name = name
        self.host = host
        self.port = port
        self.resolver: Resolver = resolver if resolver is not None else StaticResolver()
        self.wallet = wallet
        self.logger = logging.getLogger(f"wallet.uagents.agent.{name}")
        self._guard = replay_guard if replay_guard is not None else ReplayGuard()
        self._journal = None if replay_journal is None else ReplayJournal(replay_journal)
        self._clock = clock
        self._ttl = message_ttl
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._on_error = on_error
        #: Caps on the server's open connections (over a cap: 429 or 503, see wallet.serving).
        self.connection_limits = connection_limits or ConnectionLimits()
        self._routes: dict[str, Route] = {}
        self._protocols: list[Protocol] = []
        for protocol in protocols:
            self.include(protocol)
        self.app = web.Application(client_max_size=MAX_SUBMIT)
        self.app.router.add_post("/submit", self._submit)
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self._waiters: dict[tuple[str, uuid.UUID], list[_Waiter]] = {}

    def __repr__(self) -> str:
        return f"Agent(name={self.name!r}, address={self.address!r})"

    def include(self, protocol: Protocol) -> None:
        """Adds a protocol's handlers (a schema digest may have only one handler)."""
        routes = protocol.routes()
        clash = sorted(routes.keys() & (self._routes.keys() | {ERROR_DIGEST}))
        if clash:
            raise ValueError(f"{protocol.name}: a handler for {clash[0]} exists already")
        self._routes.update(routes)
        self._protocols.append(protocol)

    @property
    def protocols(self) -> tuple[Protocol, ...]:
        return tuple(self._protocols)

    @property
    def endpoint(self) -> str:
        """This agent's ``/submit`` URL (the port is known once started)."""
        return f"http://{self.host}:{self.port}/submit"

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Opens the HTTP client and serves ``POST /submit`` on host:port (port 0: any)."""
        if self._runner is not None:
            return
        if self._journal is not None:
            restored = self._journal.open(self._guard, self._clock())
            self.logger.info("%d unexpired envelope digests restored", restored)
        self._session = aiohttp.ClientSession()
        runner = web.AppRunner(
            self.app,
            access_log=None,
            keepalive_timeout=KEEPALIVE_TIMEOUT,
            lingering_time=LINGERING_TIME,
        )
        await runner.setup()
        try:
            site = LimitedSite(
                runner,
                self.host,
                self.port,
                limits=self.connection_limits,
                error_body=lambda message: {"error": message},
            )
            await site.start()
        except BaseException:
            await runner.cleanup()
            await self._session.close()
            self._session = None
            if self._journal is not None:
                self._journal.close()
            raise
        self._runner = runner
        self.port = int(runner.addresses[0][1])

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self._journal is not None:
            self._journal.close()

    async def __aenter__(self) -> Agent:
        await self.start()
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("start the agent before sending (async with agent: ...)")
        return self._session

    # ------------------------------------------------------------ sending

    def make_message(
        self,
        to: str,
        message: Model,
        *,
        session: uuid.UUID | None = None,
        protocol_digest: str | None = None,
    ) -> Envelope:
        """``message`` to ``to`` as an envelope signed by this agent."""
        envelope = make_envelope(
            sender=self.address,
            target=to,
            session=session or uuid.uuid4(),
            schema_digest=model_digest(message),
            protocol_digest=protocol_digest,
            payload=encode_payload(message),
            expires=int(self._clock()) + self._ttl,
            nonce=secrets.randbits(64),
        )
        return sign_envelope(self._key, envelope)

    async def deliver(self, envelope: Envelope, *, sync: bool = False) -> bytes:
        """POSTs a signed envelope to its target's endpoints until one answers 200; the
        body of that answer. Raises DeliveryFailed, or ErrorReply if the target answered
        with its signed ErrorMessage."""
        target = envelope.target
        endpoints = await self.resolver.resolve(target, self._client())
        headers = {"content-type": "application/json"}
        if sync:
            headers[SYNC_HEADER] = "sync"
        problems: list[str] = []
        for url in endpoints:
            try:
                async with self._client().post(
                    url, data=envelope_to_bytes(envelope), headers=headers, timeout=self._timeout
                ) as response:
                    body = await response.read()
                    status = response.status
            except (aiohttp.ClientError, TimeoutError) as error:
                problems.append(f"{url}: {type(error).__name__}")
                continue
            error_text = self._error_in(body, envelope)
            if status == 200:
                if error_text is not None:
                    raise ErrorReply(target, error_text)
                return body
            problems.append(f"{url}: HTTP {status}" + (f" ({error_text})" if error_text else ""))
        raise DeliveryFailed(target, "; ".join(problems) or "no endpoint")

    def _error_in(self, body: bytes, sent: Envelope) -> str | None:
        """The text of a signed ErrorMessage from the target in ``body``, or of an
        unsigned ``{"error": ...}`` (marked as the server's words), else None."""
        try:
            reply = self._read_reply(body, sent)
        except (WalletError, ValueError):
            return None
        if reply is None:
            return None
        if reply.schema_digest == ERROR_DIGEST:
            return self._error_text(reply)
        return None

    @staticmethod
    def _error_text(envelope: Envelope) -> str:
        try:
            return decode_payload(envelope.payload, ErrorMessage).error
        except EncodingError as error:
            return f"(unreadable ErrorMessage: {error})"

    def _read_reply(self, body: bytes, sent: Envelope) -> Envelope | None:
        """A signed reply envelope to ``sent`` in a response body, None for ``{}``."""
        if body.strip() in (b"", b"{}"):
            return None
        reply = envelope_from_json(body)
        check_envelope_signature(reply)
        if reply.sender != sent.target or reply.target != self.address:
            raise DeliveryFailed(sent.target, "the reply is not from the target to this agent")
        if reply.session != sent.session:
            raise DeliveryFailed(sent.target, "the reply is in another session")
        return reply

    async def send(
        self,
        to: str,
        message: Model,
        *,
        session: uuid.UUID | None = None,
        protocol_digest: str | None = None,
    ) -> uuid.UUID:
        """Sends ``message`` to ``to`` (a new session unless given); the session."""
        envelope = self.make_message(to, message, session=session, protocol_digest=protocol_digest)
        await self.deliver(envelope)
        return envelope.session

    async def ask(
        self,
        to: str,
        message: Model,
        *,
        replies: Iterable[type[Model]],
        session: uuid.UUID | None = None,
        protocol_digest: str | None = None,
        sync: bool = True,
        timeout: float | None = None,
    ) -> Model | None:
        """Sends ``message`` to ``to`` and returns its reply, one of ``replies``; raises
        ErrorReply if the reply is an ErrorMessage.

        - ``sync=True`` (Farthing peers): the reply is the body of the HTTP answer and
          must be an envelope signed by ``to``; None if its handler did not reply.
        - ``sync=False`` (any uAgents peer: uagents leaves its sync replies unsigned):
          the reply is the first envelope from ``to`` in this session, with one of
          ``replies``' models, that reaches this agent's ``/submit`` (checked there like
          any message, and not passed to a handler) within ``timeout`` seconds (the
          agent's ``timeout`` by default); NoReply otherwise. The agent must be running
          and reachable by ``to``."""
        envelope = self.make_message(to, message, session=session, protocol_digest=protocol_digest)
        expected = tuple(replies)
        if sync:
            body = await self.deliver(envelope, sync=True)
            try:
                reply = self._read_reply(body, envelope)
                if reply is None:
                    return None
                self._guard.check(reply, self._clock())
            except (WalletError, ValueError) as error:
                raise DeliveryFailed(to, f"invalid sync reply: {error}") from None
        else:
            reply = await self._await_reply(envelope, expected, timeout)
        if reply.schema_digest == ERROR_DIGEST:
            raise ErrorReply(to, self._error_text(reply))
        for model in expected:
            if model_digest(model) == reply.schema_digest:
                try:
                    return decode_payload(reply.payload, model)
                except EncodingError as error:
                    raise DeliveryFailed(to, f"invalid reply: {error}") from None
        raise DeliveryFailed(to, f"the reply's model {reply.schema_digest} was not expected")

    async def _await_reply(
        self, envelope: Envelope, replies: tuple[type[Model], ...], timeout: float | None
    ) -> Envelope:
        if not replies:
            raise ValueError("an async-mode ask needs the models its reply may have")
        wait = timeout if timeout is not None else self._timeout.total or 10.0
        key = (envelope.target, envelope.session)
        waiter = _Waiter(
            frozenset(model_digest(model) for model in replies),
            asyncio.get_running_loop().create_future(),
        )
        self._waiters.setdefault(key, []).append(waiter)
        try:
            await self.deliver(envelope)
            try:
                return await asyncio.wait_for(waiter.future, wait)
            except TimeoutError:
                raise NoReply(envelope.target, wait) from None
        finally:
            waiting = self._waiters[key]
            waiting.remove(waiter)
            if not waiting:
                del self._waiters[key]

    # ------------------------------------------------------------ receiving

    async def _submit(self, request: web.Request) -> web.StreamResponse:
        sync = request.headers.get(SYNC_HEADER, "").lower() == "sync"
        try:
            async with asyncio.timeout(BODY_TIMEOUT):
                raw = await request.read()
        except web.HTTPRequestEntityTooLarge:  # aiohttp's own reply would be plain text
            status, problem = 413, f"the envelope is larger than {MAX_SUBMIT} bytes"
        except TimeoutError:
            status, problem = 408, f"the envelope did not arrive within {BODY_TIMEOUT:g} s"
        except ConnectionResetError:  # the client left before its envelope arrived
            status, problem = 400, "the client closed the connection"
        else:
            status, reply = await self.receive(raw, sync=sync)
            return web.Response(body=reply, status=status, content_type="application/json")
        self.logger.info("refused an envelope: %s", problem)
        return web.json_response({"error": problem}, status=status)

    async def receive(self, body: bytes, *, sync: bool = False) -> tuple[int, bytes]:
        """Handles one envelope's JSON as ``POST /submit`` does (steps 1 to 4 of the
        module docstring); the HTTP status and body of the answer. A mailbox poller
        passes fetched envelopes here."""
        try:
            envelope = envelope_from_json(body)
        except EncodingError as error:
            return self._bad_request(f"not a valid envelope: {error}")
        if envelope.target != self.address:
            return self._bad_request(f"this agent is {self.address}, not {envelope.target}")
        try:
            check_envelope_signature(envelope)
        except InvalidSignature as error:
            return self._bad_request(str(error))
        now = self._clock()
        try:
            accepted = self._guard.check(envelope, now)
        except EnvelopeRefused as error:
            status = 503 if error.retryable else 400
            self.logger.info("refused %s from %s: %s", error.reason, envelope.sender, error)
            return await self._refuse(envelope, f"{error.reason}: {error}", status, notify=False)
        if self._journal is not None:
            try:
                self._journal.append(accepted, self._guard, now)
            except JournalError as error:  # not handled: the sender may try again
                self._guard.forget(accepted)
                self.logger.error("%s", error)
                return 503, json.dumps({"error": "this agent cannot take messages now"}).encode()
        if self._answers_a_waiter(envelope):
            return 200, b"{}"
        if envelope.schema_digest == ERROR_DIGEST:
            await self._received_error(envelope)
            return 200, b"{}"
        route = self._routes.get(envelope.schema_digest)
        if route is None:
            problem = f"unknown model {envelope.schema_digest}"
            return await self._refuse(envelope, problem, 200, notify=not sync)
        try:
            message = decode_payload(envelope.payload, route.model)
        except EncodingError as error:
            return await self._refuse(envelope, str(error), 200, notify=not sync)
        context = Context(self, envelope, route, sync=sync)
        try:
            await route.handler(context, envelope.sender, message)
        except MessageRefused as refused:
            self.logger.info("refused a message from %s: %s", envelope.sender, refused)
            problem = f"{refused.reason}: {refused}"
            return await self._refuse(envelope, problem, 200, notify=not sync)
        except Exception:
            self.logger.exception("the handler of %s failed", route.model.__name__)
            problem = f"the handler of {route.model.__name__} failed"
            return await self._refuse(envelope, problem, 200, notify=not sync)
        if sync and context.sync_reply is not None:
            return 200, envelope_to_bytes(context.sync_reply)
        return 200, b"{}"

    def _answers_a_waiter(self, envelope: Envelope) -> bool:
        """Hands ``envelope`` to the async-mode :meth:`ask` waiting for it (same sender and
        session, an expected model or an ErrorMessage), if there is one."""
        waiters = self._waiters.get((envelope.sender, envelope.session), [])
        for waiter in waiters:
            if not waiter.future.done() and (
                envelope.schema_digest in waiter.digests or envelope.schema_digest == ERROR_DIGEST
            ):
                waiter.future.set_result(envelope)
                return True
        return False

    def _bad_request(self, problem: str) -> tuple[int, bytes]:
        self.logger.info("refused an envelope: %s", problem)
        return 400, json.dumps({"error": problem}).encode()

    async def _refuse(
        self, envelope: Envelope, problem: str, status: int, *, notify: bool
    ) -> tuple[int, bytes]:
        """The signed ErrorMessage to the (authenticated) sender as the response body;
        with ``notify``, also sent to the sender's endpoint (best effort)."""
        error = self.make_message(
            envelope.sender,
            ErrorMessage(error=problem),
            session=envelope.session,
            protocol_digest=envelope.protocol_digest,
        )
        if notify:
            try:
                await self.deliver(error)
            except WalletError as failure:
                self.logger.info("could not send the error reply: %s", failure)
        return status, envelope_to_bytes(error)

    async def _received_error(self, envelope: Envelope) -> None:
        text = self._error_text(envelope)
        self.logger.warning("%s answered with an error: %s", envelope.sender, text)
        if self._on_error is not None:
            try:
                await self._on_error(envelope.sender, envelope.session, text)
            except Exception:
                self.logger.exception("on_error failed")
