"""A fault-injecting TCP proxy for partition tests: one listening port per directed link
(who → which node), forwarding to the node's real port, each link cut and healed on
command.

A cut link behaves as a network partition does: it drops traffic rather than refusing
it. Connections open when the link is cut stop carrying bytes either way; connections
made while it is cut are accepted and then hear nothing (the sender's bytes are read and
thrown away), so clients see timeouts, not resets. Healing closes every connection
that lived through the cut (as a long partition's would be, by the peers' timeouts) and
forwards new ones again.

The links run on an event loop in a daemon thread of their own, so a test may drive them
from synchronous code and from another event loop alike. ``FaultyNetwork`` is a context
manager; leaving it closes every listener and connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field

_CHUNK = 65_536


@dataclass
class _Link:
    target: tuple[str, int]
    server: asyncio.Server | None = None
    cut: bool = False
    # Every live connection: the writer towards the client and towards the target.
    connections: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter | None]] = field(
        default_factory=set
    )
    forwarded: int = 0  # bytes carried, both ways
    dropped: int = 0  # bytes thrown away while cut


class FaultyNetwork:
    """Named links ``name → (host, port)``; :meth:`add` gives each its own port."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self._links: dict[str, _Link] = {}
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()

    def __enter__(self) -> FaultyNetwork:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---------------------------------------------------------------- control

    def add(self, name: str, target_port: int, target_host: str = "127.0.0.1") -> int:
        """A new link to ``target_host:target_port``; returns the port it listens on."""
        if name in self._links:
            raise ValueError(f"link {name!r} exists already")
        link = _Link((target_host, target_port))
        self._links[name] = link
        return self._run(self._listen(name, link))

    def url(self, name: str) -> str:
        """``http://host:port`` of link ``name``'s listening side."""
        server = self._links[name].server
        assert server is not None
        return f"http://{self.host}:{server.sockets[0].getsockname()[1]}"

    def cut(self, names: Iterable[str]) -> None:
        self._run(self._set(list(names), cut=True))

    def heal(self, names: Iterable[str]) -> None:
        self._run(self._set(list(names), cut=False))

    def names(self) -> list[str]:
        return list(self._links)

    def stats(self, name: str) -> tuple[int, int]:
        """Bytes forwarded and bytes dropped so far on link ``name``."""
        link = self._links[name]
        return link.forwarded, link.dropped

    def close(self) -> None:
        if self._loop.is_closed():
            return
        self._run(self._close_all())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        self._loop.close()

    # ---------------------------------------------------------------- the loop's side

    def _run(self, coroutine: object) -> int:
        future = asyncio.run_coroutine_threadsafe(coroutine, self._loop)  # type: ignore[arg-type]
        result = future.result(timeout=10)
        return int(result or 0)

    async def _listen(self, name: str, link: _Link) -> int:
        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await self._serve(link, reader, writer)

        link.server = await asyncio.start_server(serve, self.host, 0)
        return int(link.server.sockets[0].getsockname()[1])

    async def _serve(
        self, link: _Link, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        if link.cut:  # accepted, never answered: what a partition looks like from here
            entry: tuple[asyncio.StreamWriter, asyncio.StreamWriter | None] = (writer, None)
            link.connections.add(entry)
            try:
                while data := await reader.read(_CHUNK):
                    link.dropped += len(data)
            except OSError:
                pass
            finally:
                link.connections.discard(entry)
                _close(writer)
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*link.target)
        except OSError:
            _close(writer)  # the node is down: as a closed port would be
            return
        entry = (writer, up_writer)
        link.connections.add(entry)
        try:
            await asyncio.gather(
                self._pump(link, reader, up_writer), self._pump(link, up_reader, writer)
            )
        finally:
            link.connections.discard(entry)
            _close(writer)
            _close(up_writer)

    async def _pump(
        self, link: _Link, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        try:
            while data := await reader.read(_CHUNK):
                if link.cut:
                    link.dropped += len(data)
                    continue
                writer.write(data)
                link.forwarded += len(data)
                await writer.drain()
        except OSError:
            pass
        finally:
            if not writer.is_closing() and writer.can_write_eof():
                with contextlib.suppress(OSError):
                    writer.write_eof()

    async def _set(self, names: list[str], *, cut: bool) -> None:
        for name in names:
            link = self._links[name]
            if link.cut == cut:
                continue
            link.cut = cut
            if not cut:  # connections that lived through the cut are dead now
                for client, upstream in list(link.connections):
                    _close(client)
                    if upstream is not None:
                        _close(upstream)

    async def _close_all(self) -> None:
        for link in self._links.values():
            if link.server is not None:
                link.server.close()
            for client, upstream in list(link.connections):
                _close(client)
                if upstream is not None:
                    _close(upstream)
        for link in self._links.values():
            if link.server is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(link.server.wait_closed(), 2)


def _close(writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(Exception):
        writer.close()
