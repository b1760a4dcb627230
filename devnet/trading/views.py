"""Reads the summary checks with: each node's view of an account
(``GET /v1/accounts/{address}``) and the chain's token balances and transaction fees
(raw JSON-RPC). Nothing here is trusted or aggregated: the checks compare the views."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

import aiohttp

from wallet import wire
from wallet.client import Committee, verify_certificate
from wallet.types import Address, Certificate, Domain, Epoch, Transfer

#: ``balanceOf(address)``'s selector.
BALANCE_OF = "0x70a08231"


async def node_account(
    session: aiohttp.ClientSession, node: str, account: str, tokens: Mapping[str, str]
) -> dict[str, int]:
    """``account``'s balances on ``node``, by token symbol (``tokens``: symbol -> 0x)."""
    async with session.get(f"{node}/v1/accounts/{account}") as reply:
        reply.raise_for_status()
        body: Any = await reply.json()
    balances = {str(k).lower(): int(v) for k, v in body["balances"].items()}
    return {symbol: balances.get(address.lower(), 0) for symbol, address in tokens.items()}


async def accounts_on_nodes(
    session: aiohttp.ClientSession,
    nodes: Sequence[str],
    accounts: Sequence[str],
    tokens: Mapping[str, str],
) -> dict[str, dict[str, dict[str, int]]]:
    """``{account: {node: {symbol: balance}}}``; a node that does not answer is left out."""

    async def one(node: str, account: str) -> dict[str, int] | None:
        try:
            return await node_account(session, node, account, tokens)
        except (aiohttp.ClientError, TimeoutError, ValueError, KeyError):
            return None

    pairs = [(n, a) for a in accounts for n in nodes]
    seen = await asyncio.gather(*(one(n, a) for n, a in pairs))
    views: dict[str, dict[str, dict[str, int]]] = {a: {} for a in accounts}
    for (node, account), balances in zip(pairs, seen, strict=True):
        if balances is not None:
            views[account][node] = balances
    return views


async def settled_views(
    session: aiohttp.ClientSession,
    nodes: Sequence[str],
    accounts: Sequence[str],
    tokens: Mapping[str, str],
    expected: Mapping[str, Mapping[str, int]],
    *,
    timeout: float = 10.0,
) -> dict[str, dict[str, dict[str, int]]]:
    """:func:`accounts_on_nodes` once every node shows the ``expected`` balances (a node
    applies a certificate a moment after the quorum did), or the last views after
    ``timeout`` seconds: the checks then report what differs."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        views = await accounts_on_nodes(session, nodes, accounts, tokens)
        settled = all(
            len(views[a]) == len(nodes)
            and all(
                all(b.get(s, 0) == v for s, v in expected.get(a, {}).items())
                for b in views[a].values()
            )
            for a in accounts
        )
        if settled or loop.time() > deadline:
            return views
        await asyncio.sleep(0.2)


async def rpc(session: aiohttp.ClientSession, url: str, method: str, params: list[Any]) -> Any:
    """One JSON-RPC call's result."""
    payload = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
    async with session.post(url, json=payload) as reply:
        reply.raise_for_status()
        body: Any = await reply.json()
    if "error" in body:
        raise RuntimeError(f"{method}: {body['error']}")
    return body["result"]


async def balance_of(session: aiohttp.ClientSession, url: str, token: str, owner: str) -> int:
    """``token.balanceOf(owner)`` at the latest block."""
    data = BALANCE_OF + owner.lower().removeprefix("0x").rjust(64, "0")
    result = await rpc(session, url, "eth_call", [{"to": token, "data": data}, "latest"])
    return int(result, 16)


async def transaction_fee(
    session: aiohttp.ClientSession, url: str, tx_hash: str
) -> tuple[int, int]:
    """A mined transaction's (gas used, fee paid in wei)."""
    receipt = await rpc(session, url, "eth_getTransactionReceipt", [tx_hash])
    gas = int(receipt["gasUsed"], 16)
    return gas, gas * int(receipt["effectiveGasPrice"], 16)


async def received_transfers(
    session: aiohttp.ClientSession,
    node: str,
    payee: Address,
    committees: Mapping[Epoch, Committee],
    domain: Domain,
) -> list[Certificate]:
    """The transfers to ``payee`` in ``node``'s log (``GET /v1/log/certificates``, pages
    of 256), each certificate verified (owner's signature, a quorum of the committee's
    votes): the provider's side of the payments, read without trusting the buyers."""
    async with session.get(f"{node}/v1/log/head") as reply:
        reply.raise_for_status()
        size = int((await reply.json())["tree_size"])
    found: list[Certificate] = []
    for start in range(0, size, 256):
        end = min(start + 256, size)
        async with session.get(f"{node}/v1/log/certificates?start={start}&end={end}") as reply:
            reply.raise_for_status()
            body: Any = await reply.json()
        for item in body["certificates"]:
            certificate = wire.certificate_from_json(item["certificate"])
            order = certificate.order
            if isinstance(order, Transfer) and order.payee == payee:
                verify_certificate(certificate, committees, domain)
                found.append(certificate)
    return found
