"""tests/support/tcp_proxy.py: links forward, a cut drops (the client hears nothing),
a heal forwards again."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from tests.support.tcp_proxy import FaultyNetwork


@pytest_asyncio.fixture
async def echo_port() -> AsyncIterator[int]:
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(1024):
            writer.write(data)
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    yield int(server.sockets[0].getsockname()[1])
    server.close()


async def _ask(port: int, data: bytes, timeout: float = 1.0) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        await writer.drain()
        return await asyncio.wait_for(reader.readexactly(len(data)), timeout)
    finally:
        writer.close()


@pytest.mark.asyncio
async def test_forward_cut_heal(echo_port: int) -> None:
    with FaultyNetwork() as net:
        port = net.add("a>b", echo_port)
        assert net.url("a>b") == f"http://127.0.0.1:{port}"
        assert await _ask(port, b"hello") == b"hello"

        net.cut(["a>b"])
        with pytest.raises(TimeoutError):  # accepted, then silence: not a reset
            await _ask(port, b"lost", timeout=0.3)
        forwarded, dropped = net.stats("a>b")
        assert forwarded == 10 and dropped == 4

        net.heal(["a>b"])
        assert await _ask(port, b"again") == b"again"


@pytest.mark.asyncio
async def test_a_connection_open_at_the_cut_goes_silent(echo_port: int) -> None:
    with FaultyNetwork() as net:
        port = net.add("a>b", echo_port)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"one")
        assert await asyncio.wait_for(reader.readexactly(3), 1) == b"one"
        net.cut(["a>b"])
        writer.write(b"two")
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(reader.readexactly(3), 0.3)
        net.heal(["a>b"])  # it lived through the cut: closed
        assert await asyncio.wait_for(reader.read(10), 1) == b""
        writer.close()


def test_names_are_unique_and_a_dead_target_closes() -> None:
    with FaultyNetwork() as net:
        net.add("x", 1)  # nothing listens on port 1
        with pytest.raises(ValueError, match="exists"):
            net.add("x", 2)
        assert net.names() == ["x"]
