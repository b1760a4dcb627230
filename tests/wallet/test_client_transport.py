"""HttpTransport against a small local aiohttp server: a node's garbage, silence, size
or absence becomes that node's NodeError, never anything else."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from aiohttp import web

from wallet.client import transport as transport_module
from wallet.client.transport import HttpTransport, Refusal
from wallet.errors import NodeMisbehaved, NodeUnavailable
from wallet.signing import PrivateKey

ACCOUNT = PrivateKey(bytes([0x11] * 32)).address
MODE = web.AppKey("mode", dict[str, str])  # {"mode": ...}, changed by the tests


async def account(request: web.Request) -> web.StreamResponse:
    mode = request.app[MODE]["mode"]
    if mode == "chunked":  # a large reply that arrives in pieces
        response = web.StreamResponse(headers={"content-type": "application/json"})
        await response.prepare(request)
        text = json.dumps(
            {
                "address": request.match_info["address"],
                "next_sequence": 3,
                "balances": {"0x5FbDB2315678afecb367f032d93F642f64180aa3": "-12"},
                "pending_order": None,
            },
            indent=100_000,  # 300 KB of whitespace: JSON all the same
        ).encode()
        for start in range(0, len(text), 50_000):
            await response.write(text[start : start + 50_000])
            await asyncio.sleep(0.01)
        await response.write_eof()
        return response
    if mode == "garbage":
        return web.Response(text="<html>oops</html>")
    if mode == "slow":
        await asyncio.sleep(1)
    if mode == "huge":
        return web.Response(text='{"pad": "' + "x" * 4096 + '"}')
    return web.json_response(
        {
            "address": request.match_info["address"],
            "next_sequence": 3,
            "balances": {"0x5FbDB2315678afecb367f032d93F642f64180aa3": "-12"},
            "pending_order": None,
        }
    )


async def order(request: web.Request) -> web.Response:
    return web.json_response(
        {"code": "conflicting_order", "message": "locked", "conflicting": "0x" + "ab" * 32},
        status=409,
    )


@pytest_asyncio.fixture
async def node() -> AsyncIterator[tuple[str, web.Application]]:
    app = web.Application()
    app[MODE] = {"mode": "ok"}
    app.router.add_get("/v1/accounts/{address}", account)
    app.router.add_post("/v1/orders", order)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}", app
    finally:
        await runner.cleanup()


@pytest.mark.asyncio
async def test_replies_are_parsed_and_checked(node: tuple[str, web.Application]) -> None:
    url, _ = node
    async with HttpTransport(timeout=0.5) as transport:
        state = await transport.get_account(url, ACCOUNT)
        assert state.next_sequence == 3 and list(state.balances.values()) == [-12]
        from tests.wallet.client_fakes import DOMAIN, TOKEN
        from wallet.signing import sign_order
        from wallet.types import Amount, Sequence, Transfer

        key = PrivateKey(bytes([0x11] * 32))
        signed = sign_order(
            key, DOMAIN, Transfer(key.address, TOKEN, TOKEN, Amount(1), Sequence(3))
        )
        refusal = await transport.post_order(url, signed)
        assert isinstance(refusal, Refusal) and refusal.code == "conflicting_order"
        assert refusal.conflicting == bytes([0xAB] * 32)


@pytest.mark.parametrize(
    ("mode", "error"), [("garbage", NodeMisbehaved), ("slow", NodeUnavailable)]
)
@pytest.mark.asyncio
async def test_a_bad_node_is_that_nodes_error(
    node: tuple[str, web.Application], mode: str, error: type[Exception]
) -> None:
    url, app = node
    app[MODE]["mode"] = mode
    async with HttpTransport(timeout=0.3) as transport:
        with pytest.raises(error) as raised:
            await transport.get_account(url, ACCOUNT)
    assert raised.value.endpoint == url  # type: ignore[attr-defined]


@pytest.mark.asyncio
async def test_a_large_reply_is_read_whole(node: tuple[str, web.Application]) -> None:
    """A reply that arrives in pieces is read to its end (not just what has arrived)."""
    url, app = node
    app[MODE]["mode"] = "chunked"
    async with HttpTransport(timeout=2) as transport:
        state = await transport.get_account(url, ACCOUNT)
    assert state.next_sequence == 3


@pytest.mark.asyncio
async def test_an_oversized_reply_is_not_read(
    node: tuple[str, web.Application], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, app = node
    app[MODE]["mode"] = "huge"
    monkeypatch.setattr(transport_module, "MAX_REPLY_BYTES", 1024)
    async with HttpTransport(timeout=1) as transport:
        with pytest.raises(NodeMisbehaved, match="over 1024 bytes"):
            await transport.get_account(url, ACCOUNT)


@pytest.mark.asyncio
async def test_a_node_that_is_down_is_unavailable() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with HttpTransport(timeout=1) as transport:
        with pytest.raises(NodeUnavailable):
            await transport.get_account(f"http://127.0.0.1:{port}", ACCOUNT)
