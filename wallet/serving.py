"""Serving HTTP with a bounded number of connections, for the node and the agent server.

aiohttp bounds how long a connection may idle or trickle (``keepalive_timeout``, the body
timeout) but not how many are open: a client that opens connections in a loop would use
up the process's file descriptors and starve every other client. :class:`LimitedSite` is
an aiohttp site like ``TCPSite`` with two caps, counted when a connection is accepted:

- ``total``: open connections of all clients together;
- ``per_client``: open connections from one IP address.

A connection over a cap is answered at once, ``429`` over ``per_client`` (the client's
own doing) or ``503`` over ``total`` (the server's state), with ``Retry-After: 1``,
``Connection: close`` and a JSON body that names the cap, then closed: it never reaches
the application. Its bytes are read and dropped for at most :data:`REFUSAL_LINGER`
seconds first, so that closing does not reset the connection before the client read the
reply; refused connections lingering at once are themselves capped at ``total``, beyond
which they are closed without a reply.
"""

from __future__ import annotations

import asyncio
import json
import resource
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from aiohttp import web

#: Seconds a refused connection is kept open (reading and dropping) after its reply.
REFUSAL_LINGER: Final = 1.0
#: File descriptors kept free of connections: the store, the log files, outgoing clients.
RESERVED_DESCRIPTORS: Final = 256

ErrorBody = Callable[[str], dict[str, object]]


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    """Caps on open connections (see the module's docstring)."""

    total: int = 1_024
    per_client: int = 256

    def __post_init__(self) -> None:
        if self.total < 1 or self.per_client < 1:
            raise ValueError("connection limits must be positive")

    def fitted(self) -> ConnectionLimits:
        """These limits lowered, if need be, to what the process's descriptor limit allows
        (its soft ``RLIMIT_NOFILE`` less :data:`RESERVED_DESCRIPTORS`)."""
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft == resource.RLIM_INFINITY:
            return self
        room = max(1, soft - RESERVED_DESCRIPTORS)
        if self.total <= room:
            return self
        return ConnectionLimits(total=room, per_client=min(self.per_client, room))


class _Admission:
    """Open connections, in all and per client address (one event loop: no lock)."""

    def __init__(self, limits: ConnectionLimits, error_body: ErrorBody) -> None:
        self.limits = limits
        self.open = 0
        self.by_client: Counter[str] = Counter()
        #: Refused connections still open for their reply (closed by :meth:`close_refused`
        #: when the site stops).
        self.lingering: set[asyncio.Transport] = set()
        self.refused = 0
        self._error_body = error_body

    def admit(self, client: str) -> bytes | None:
        """None and the connection counted, or the reply that refuses it."""
        if self.open >= self.limits.total:
            status = "503 Service Unavailable"  # the server's state: retry
            message = (
                f"the server has {self.open} open connections, the most it allows: "
                "retry in a moment"
            )
        elif self.by_client[client] >= self.limits.per_client:
            status = "429 Too Many Requests"  # the client's own doing
            message = (
                f"this client address has {self.by_client[client]} open connections, the "
                "most allowed: reuse them (keep-alive) or close some"
            )
        else:
            self.open += 1
            self.by_client[client] += 1
            return None
        self.refused += 1
        body = json.dumps(
            self._error_body(message), separators=(",", ":"), ensure_ascii=True
        ).encode()
        head = (
            f"HTTP/1.1 {status}\r\n"
            "Content-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n"
            "Retry-After: 1\r\n"
            "Connection: close\r\n\r\n"
        ).encode()
        return head + body

    def close_refused(self) -> None:
        for transport in list(self.lingering):
            transport.abort()

    def release(self, client: str) -> None:
        self.open -= 1
        self.by_client[client] -= 1
        if self.by_client[client] == 0:
            del self.by_client[client]


class _Gate(asyncio.Protocol):
    """Counts a connection in, then hands everything to aiohttp's protocol; or refuses it."""

    __slots__ = ("_admission", "_client", "_inner", "_linger", "_make", "_transport")

    def __init__(self, admission: _Admission, make: Callable[[], asyncio.Protocol]) -> None:
        self._admission = admission
        self._make = make
        self._inner: asyncio.Protocol | None = None
        self._client = ""
        self._transport: asyncio.Transport | None = None
        self._linger: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        peer = transport.get_extra_info("peername")
        self._client = str(peer[0]) if isinstance(peer, tuple) and peer else ""
        refusal = self._admission.admit(self._client)
        if refusal is None:
            self._inner = self._make()
            self._inner.connection_made(transport)
            return
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        if len(self._admission.lingering) >= self._admission.limits.total:
            transport.abort()
            return
        self._admission.lingering.add(transport)
        transport.write(refusal)
        self._linger = asyncio.get_running_loop().call_later(REFUSAL_LINGER, transport.close)

    def data_received(self, data: bytes) -> None:
        if self._inner is not None:
            self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        if self._inner is not None:
            return self._inner.eof_received()
        if self._transport is not None:
            self._transport.close()
        return None

    def pause_writing(self) -> None:
        if self._inner is not None:
            self._inner.pause_writing()

    def resume_writing(self) -> None:
        if self._inner is not None:
            self._inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._inner is not None:
            self._admission.release(self._client)
            self._inner.connection_lost(exc)
            self._inner = None
        elif self._transport is not None:
            if self._linger is not None:
                self._linger.cancel()
            self._admission.lingering.discard(self._transport)
            self._transport = None


class LimitedSite(web.BaseSite):
    """An aiohttp site on ``host:port`` (port 0: any free one, then :attr:`port`) like
    ``TCPSite``, with :class:`ConnectionLimits`; ``error_body`` makes the JSON body of the
    429 and 503 replies from a message (the node's and the agent server's error shapes
    differ)."""

    def __init__(
        self,
        runner: web.BaseRunner,
        host: str,
        port: int,
        *,
        limits: ConnectionLimits,
        error_body: ErrorBody,
    ) -> None:
        super().__init__(runner)
        self._host, self._port = host, port
        self._admission = _Admission(limits.fitted(), error_body)

    @property
    def name(self) -> str:
        return f"http://{self._host}:{self._port}"

    @property
    def port(self) -> int:
        """The port served (the one the system chose, once started, when 0 was asked)."""
        return self._port

    @property
    def limits(self) -> ConnectionLimits:
        """The limits in force (lowered to the descriptor limit if need be)."""
        return self._admission.limits

    @property
    def open_connections(self) -> int:
        return self._admission.open

    @property
    def refused_connections(self) -> int:
        """Connections refused since the start (over a cap)."""
        return self._admission.refused

    async def start(self) -> None:
        await super().start()  # registers the site with the runner
        server = self._runner.server
        assert server is not None
        admission = self._admission

        def gate() -> asyncio.Protocol:
            return _Gate(admission, server)

        listening = await asyncio.get_running_loop().create_server(
            gate, self._host, self._port, backlog=self._backlog
        )
        self._server = listening
        self._port = int(listening.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        await super().stop()
        self._admission.close_refused()  # aiohttp closes the admitted ones
