"""A lean JSON-RPC client of anvil for the chain benchmarks: raw transactions out,
receipts back, over one aiohttp session (web3.py's per-call overhead would be measured
instead of the chain's).

:func:`send_and_confirm` is the timed part of the ERC-20 and EIP-3009 benchmarks: it
sends transactions signed beforehand, one lane per sending account, all lanes at once;
within a lane the next transaction goes out when the previous one's receipt is in (one
poller reads the receipts of every new block, ``eth_getBlockReceipts``). One transaction in flight
per account because anvil's automine, fed several pending transactions of one account
under load, leaves ready ones unmined for good (foundry issue 10122; ``evm_mine`` and
interval mining then mine empty blocks): seen here with 25 pipelined per account.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp

_RECEIPT_BATCH = 200


class RpcError(RuntimeError):
    """The node answered a JSON-RPC error."""


class Rpc:
    """JSON-RPC over HTTP, one session (use as ``async with``)."""

    def __init__(self, url: str, connections: int = 32) -> None:
        self._url = url
        self._ids = itertools.count(1)
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=connections),
            timeout=aiohttp.ClientTimeout(total=60),
        )

    async def __aenter__(self) -> Rpc:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._session.close()

    async def call(self, method: str, params: list[Any]) -> Any:
        body = {"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": params}
        async with self._session.post(self._url, json=body) as reply:
            reply.raise_for_status()
            answer = await reply.json()
        if "error" in answer:
            raise RpcError(f"{method}: {answer['error']}")
        return answer["result"]

    async def batch(self, method: str, params: Sequence[list[Any]]) -> list[Any]:
        """The results of one batch request of ``method`` calls, in order (None for an
        error, e.g. a receipt not found yet)."""
        if not params:
            return []
        first = next(self._ids)
        body = [
            {"jsonrpc": "2.0", "id": first + i, "method": method, "params": p}
            for i, p in enumerate(params)
        ]
        self._ids = itertools.count(first + len(params))
        async with self._session.post(self._url, json=body) as reply:
            reply.raise_for_status()
            answers = await reply.json()
        by_id = {a["id"]: a.get("result") for a in answers}
        return [by_id.get(first + i) for i in range(len(params))]


@dataclass(frozen=True, slots=True)
class ChainRun:
    """Transactions sent and confirmed: how many, in how long, the gas each used."""

    sent: int
    confirmed: int  # receipts with status 1
    seconds: float  # first send to last receipt
    gas_used: tuple[int, ...]

    @property
    def per_s(self) -> float:
        return self.confirmed / self.seconds if self.seconds > 0 else 0.0

    @property
    def mean_gas(self) -> float:
        return sum(self.gas_used) / len(self.gas_used) if self.gas_used else 0.0


async def send_and_confirm(
    rpc: Rpc, lanes: Sequence[Sequence[bytes]], *, timeout: float = 120.0
) -> ChainRun:
    """Sends every lane's transactions, each lane one after another (the next only once the
    previous one's receipt is in), all lanes at once; a lane is one sending account. Times
    from the first send to the last receipt."""
    waiting: dict[str, asyncio.Future[dict[str, Any]]] = {}
    mined: dict[str, dict[str, Any]] = {}  # receipts of the blocks seen, by hash
    receipts: list[dict[str, Any]] = []
    done = asyncio.Event()
    first_block = int(await rpc.call("eth_blockNumber", []), 16)

    async def lane(raws: Sequence[bytes]) -> None:
        for raw in raws:
            tx_hash = str(await rpc.call("eth_sendRawTransaction", ["0x" + raw.hex()]))
            if tx_hash in mined:
                receipts.append(mined[tx_hash])
                continue
            future = asyncio.get_running_loop().create_future()
            waiting[tx_hash] = future
            receipts.append(await future)

    async def poll() -> None:
        seen, last = first_block, time.monotonic()
        while not done.is_set():
            latest = int(await rpc.call("eth_blockNumber", []), 16)
            blocks = [[hex(n)] for n in range(seen + 1, latest + 1)]
            for first in range(0, len(blocks), _RECEIPT_BATCH):
                chunk = blocks[first : first + _RECEIPT_BATCH]
                for block in await rpc.batch("eth_getBlockReceipts", chunk):
                    for receipt in block or ():
                        h = receipt["transactionHash"]
                        mined[h] = receipt
                        if h in waiting:
                            waiting.pop(h).set_result(receipt)
            if latest > seen:
                seen, last = latest, time.monotonic()
            if waiting and time.monotonic() - last > timeout:
                raise TimeoutError(f"{len(waiting)} transactions not mined in {timeout:g} s")
            await asyncio.sleep(0.002)

    started = time.perf_counter()
    poller = asyncio.ensure_future(poll())
    try:
        sending: asyncio.Future[Any] = asyncio.gather(*(lane(raws) for raws in lanes))
        watched: set[asyncio.Future[Any]] = {sending, poller}
        finished, _ = await asyncio.wait(watched, return_when=asyncio.FIRST_COMPLETED)
        if poller in finished:
            poller.result()  # raises the poller's error
        await sending
    finally:
        done.set()
        poller.cancel()
    seconds = time.perf_counter() - started
    ok = [r for r in receipts if int(r["status"], 16) == 1]
    return ChainRun(
        sent=sum(len(raws) for raws in lanes),
        confirmed=len(ok),
        seconds=seconds,
        gas_used=tuple(int(r["gasUsed"], 16) for r in ok),
    )
