"""A fake chain for the deposit watcher's tests: blocks of deposits numbered like the
Vault's, reorgs, and an RPC that can fail, hang or lose logs on demand."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field

from node.chain.deposits import deposit_change
from node.errors import ChainReadError
from node.state.changes import ContractReceiveDeposit
from wallet.chain import BlockRange, DepositLog, LogPosition
from wallet.types import Address, Amount, Hash32

TOKENS = (Address(b"\x11" * 20), Address(b"\x22" * 20))


def beneficiary(n: int) -> Address:
    return Address(n.to_bytes(20, "big"))


@dataclass
class FakeChain:
    """Block ``i`` holds ``blocks[i]``, a list of (beneficiary, token, amount); deposit
    ids are given in block order from 1, as the Vault does. ``fork`` tags each block so
    that a reorged block has another hash."""

    blocks: list[list[tuple[Address, Address, Amount]]] = field(default_factory=lambda: [[]])
    forks: list[int] = field(default_factory=lambda: [0])
    next_fork: int = 1

    # RPC behaviour
    failures: int = 0  # the next N reads raise ChainReadError
    lose_log_ids: set[int] = field(default_factory=set)  # ids whose log the next fetch drops
    hang: asyncio.Event | None = None  # when set: reads wait until the event is set
    calls: dict[str, int] = field(default_factory=dict)

    @property
    def head(self) -> int:
        return len(self.blocks) - 1

    def mine(self, deposits: Sequence[tuple[Address, Address, Amount]] = ()) -> None:
        self.blocks.append(list(deposits))
        self.forks.append(0)

    def reorg(self, depth: int, replacement: Sequence[Sequence[tuple[Address, Address, Amount]]]):
        """Replace the last ``depth`` blocks with ``replacement`` (any number of blocks)."""
        assert 0 < depth < len(self.blocks)
        del self.blocks[-depth:], self.forks[-depth:]
        for deposits in replacement:
            self.blocks.append(list(deposits))
            self.forks.append(self.next_fork)
        self.next_fork += 1

    def canonical(self, up_to_block: int | None = None) -> list[ContractReceiveDeposit]:
        """Every deposit in blocks 0..up_to_block, as the state machine's inputs."""
        last = self.head if up_to_block is None else up_to_block
        return [deposit_change(log) for log in self._logs(BlockRange(0, max(last, 0)))]

    def block_hash(self, number: int) -> Hash32:
        return Hash32(hashlib.sha256(f"{number}/{self.forks[number]}".encode()).digest())

    def _logs(self, blocks: BlockRange) -> list[DepositLog]:
        logs = []
        deposit_id = 1 + sum(len(b) for b in self.blocks[: blocks.first])
        for number in range(blocks.first, min(blocks.last, self.head) + 1):
            for index, (who, token, amount) in enumerate(self.blocks[number]):
                position = LogPosition(number, self.block_hash(number), index)
                logs.append(DepositLog(deposit_id, who, token, amount, who, position))
                deposit_id += 1
        return logs

    async def _enter(self, name: str) -> None:
        self.calls[name] = self.calls.get(name, 0) + 1
        if self.hang is not None:
            await self.hang.wait()
        if self.failures > 0:
            self.failures -= 1
            raise ChainReadError(f"{name}: injected failure")

    # DepositSource
    async def head_(self) -> int:
        await self._enter("head")
        return self.head

    async def next_deposit_id(self, block: int | None = None) -> int:
        await self._enter("next_deposit_id")
        last = self.head if block is None else block
        return 1 + sum(len(b) for b in self.blocks[: last + 1])

    async def deposit_logs(self, blocks: BlockRange) -> list[DepositLog]:
        await self._enter("deposit_logs")
        logs = [log for log in self._logs(blocks) if log.deposit_id not in self.lose_log_ids]
        self.lose_log_ids.clear()
        return logs


class FakeSource:
    """``FakeChain`` seen through the :class:`~node.chain.watcher.DepositSource` protocol."""

    def __init__(self, chain: FakeChain) -> None:
        self.chain = chain

    async def head(self) -> int:
        return await self.chain.head_()

    async def next_deposit_id(self, block: int | None = None) -> int:
        return await self.chain.next_deposit_id(block)

    async def deposit_logs(self, blocks: BlockRange) -> list[DepositLog]:
        return await self.chain.deposit_logs(blocks)

    async def block_hash(self, number: int) -> Hash32 | None:
        return self.chain.block_hash(number) if number <= self.chain.head else None


def deposit(n: int, token: int = 0, amount: int = 1) -> tuple[Address, Address, Amount]:
    return (beneficiary(n), TOKENS[token % 2], Amount(amount))
