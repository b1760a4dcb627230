"""wallet.serving: the connection caps of the node's and the agent server's HTTP site.

Real sockets on loopback; other client addresses are other loopback addresses
(127.0.0.2, 127.0.0.3: Linux routes all of 127/8 to the loopback interface).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import resource
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from wallet import serving
from wallet.serving import ConnectionLimits, LimitedSite

pytestmark = pytest.mark.timeout(30)

Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]


async def _hello(request: web.Request) -> web.Response:
    await request.read()
    return web.json_response({"hello": "world"})


class Served:
    """A LimitedSite serving a small app, and the client connections a test opened."""

    def __init__(self, runner: web.AppRunner, site: LimitedSite) -> None:
        self.runner, self.site = runner, site
        self.connections: list[Connection] = []

    async def connect(self, client: str = "127.0.0.1") -> Connection:
        connection = await asyncio.open_connection(
            "127.0.0.1", self.site.port, local_addr=(client, 0)
        )
        self.connections.append(connection)
        await asyncio.sleep(0.01)  # accepted and counted by the server
        return connection


@contextlib.asynccontextmanager
async def serve(limits: ConnectionLimits) -> AsyncIterator[Served]:
    app = web.Application()
    app.router.add_route("*", "/", _hello)
    runner = web.AppRunner(app)
    await runner.setup()
    site = LimitedSite(
        runner, "127.0.0.1", 0, limits=limits, error_body=lambda m: {"code": "busy", "m": m}
    )
    await site.start()
    served = Served(runner, site)
    try:
        yield served
    finally:
        for _, writer in served.connections:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
        await runner.cleanup()


async def request(connection: Connection, body: bytes = b"") -> tuple[bytes, dict[str, object]]:
    """Sends a request on a (kept-alive) connection; its status line and JSON body."""
    reader, writer = connection
    writer.write(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
    with contextlib.suppress(ConnectionResetError):
        await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    reply = json.loads(await reader.readexactly(length))
    assert isinstance(reply, dict)
    return head, reply


async def rest(connection: Connection, within: float) -> bytes:
    """What the server still sends until it closes the connection (fails if it does not
    close within ``within`` seconds)."""
    async with asyncio.timeout(within):
        with contextlib.suppress(ConnectionResetError):
            return await connection[0].read()
    return b""


@pytest.mark.asyncio
async def test_one_client_cannot_take_every_connection() -> None:
    async with serve(ConnectionLimits(total=10, per_client=3)) as net:
        mine = [await net.connect() for _ in range(3)]
        for c in mine:  # admitted: served, and kept alive
            head, reply = await request(c)
            assert head.startswith(b"HTTP/1.1 200 ") and reply == {"hello": "world"}
        assert net.site.open_connections == 3

        head, reply = await request(await net.connect())
        assert head.startswith(b"HTTP/1.1 429 ")
        assert b"Retry-After: 1" in head and b"Connection: close" in head
        assert reply["code"] == "busy"
        assert "this client address has 3 open connections" in str(reply["m"])
        assert net.site.refused_connections == 1

        other = await net.connect("127.0.0.2")  # another client is still served
        assert (await request(other))[1] == {"hello": "world"}

        mine[0][1].close()  # a connection closed frees its place
        await asyncio.sleep(0.05)
        assert (await request(await net.connect()))[1] == {"hello": "world"}
        assert net.site.open_connections == 4


@pytest.mark.asyncio
async def test_the_total_is_capped_across_clients() -> None:
    async with serve(ConnectionLimits(total=4, per_client=4)) as net:
        for client in ("127.0.0.1", "127.0.0.1", "127.0.0.2", "127.0.0.2"):
            assert (await request(await net.connect(client)))[1] == {"hello": "world"}
        head, reply = await request(await net.connect("127.0.0.3"))
        assert head.startswith(b"HTTP/1.1 503 ")
        assert "the server has 4 open connections" in str(reply["m"])


@pytest.mark.asyncio
async def test_a_refused_client_reads_its_reply_and_the_connection_ends() -> None:
    async with serve(ConnectionLimits(total=1, per_client=1)) as net:
        await net.connect()
        refused = await net.connect()
        # A large body sent before reading: the server drops it, the reply is not lost to
        # a reset, and the server closes the connection (no second request on it).
        head, _ = await request(refused, b"x" * 200_000)
        assert head.startswith(b"HTTP/1.1 503 ")
        assert await rest(refused, within=serving.REFUSAL_LINGER + 1) == b""
        silent = await net.connect()  # never sends anything: closed after the linger
        assert (await rest(silent, within=serving.REFUSAL_LINGER + 1)).startswith(b"HTTP/1.1 503 ")
        assert net.site.open_connections == 1


@pytest.mark.asyncio
async def test_stopping_the_server_closes_refused_connections_at_once() -> None:
    async with serve(ConnectionLimits(total=1, per_client=1)) as net:
        await net.connect()
        refused = await net.connect()
        await net.runner.cleanup()
        await rest(refused, within=serving.REFUSAL_LINGER / 2)  # closed, not lingering


@pytest.mark.asyncio
async def test_lingering_refusals_are_capped_too() -> None:
    async with serve(ConnectionLimits(total=2, per_client=2)) as net:
        kept = [await net.connect() for _ in range(2)]
        lingering = [await net.connect() for _ in range(2)]  # refused, reply and linger
        aborted = await net.connect()  # refused beyond the lingering cap: closed at once
        assert await rest(aborted, within=0.5) == b""
        for reader, _ in lingering:
            assert (await reader.readuntil(b"\r\n")).startswith(b"HTTP/1.1 503 ")
        assert net.site.open_connections == len(kept) and net.site.refused_connections == 3


def test_limits_are_fitted_to_the_descriptor_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(resource, "getrlimit", lambda _: (1_000, 4_096))
    fitted = ConnectionLimits(total=1_024, per_client=900).fitted()
    assert fitted == ConnectionLimits(total=1_000 - serving.RESERVED_DESCRIPTORS, per_client=744)
    assert ConnectionLimits(total=500, per_client=10).fitted() == ConnectionLimits(500, 10)
    monkeypatch.setattr(resource, "getrlimit", lambda _: (resource.RLIM_INFINITY,) * 2)
    assert ConnectionLimits(total=10**6).fitted().total == 10**6


@pytest.mark.parametrize(("total", "per_client"), [(0, 1), (1, 0), (-5, 3)])
def test_limits_must_be_positive(total: int, per_client: int) -> None:
    with pytest.raises(ValueError, match="positive"):
        ConnectionLimits(total, per_client)
