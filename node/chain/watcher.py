"""The deposit watcher: follows the Vault's ``Deposited`` logs and hands the node each
final deposit once, in id order, as a :class:`~node.state.changes.ContractReceiveDeposit`.

The decisions are pure (:mod:`node.chain.deposits`); this loop only reads the chain, sleeps
and logs. It is an **async iterator**, not a task: the node's writer owns the loop and
its lifetime, and back-pressure is free (no deposit is read ahead of the writer)::

    watcher = DepositWatcher(reader, next_id=store.next_deposit_id(), from_block=deploy_block)
    async with contextlib.aclosing(watcher.deposits()) as deposits:
        async for change in deposits:          # runs until cancelled
            await writer.apply(change)

(or ``await queue.put(change)`` when the writer consumes a queue). Cancelling the task that
runs the loop, or leaving the ``async with``, stops the watcher; nothing is left running.
The watcher's cursor moves as it hands deposits over; after a restart, the store's
``next_deposit_id()`` is the truth, so pass it again, with the store's
``deposit_block()`` (the block of the last credited deposit, kept in the same write) as
``from_block`` when there is one: no deposit still to credit is before it.

**Confirmations.** A deposit is handed over once its log is ``confirmations`` blocks deep
(the block holding it counts as one). The devnet default is 2 (anvil reorganises only when
told to). On a real chain, choose more than the deepest reorganisation you will tolerate:
Ethereum mainnet reaches finality after about 2 epochs (64 to 96 blocks, ~13 minutes), so
64 or more there; on an L2, count the L1 blocks its batches need, or follow the
provider's "finalized" guidance. A reorg shallower than ``confirmations`` never makes the
node credit a deposit twice or credit one that vanished: only deep logs are read, and the
state machine credits each id once.

**RPC failures.** Each step has a timeout. A failing or slow RPC is logged and retried
with exponential back-off (``poll_interval`` doubling up to ``max_backoff``); the watcher
never gives up on its own. Logs are fetched in ranges of at most ``max_span`` blocks.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from node.chain.deposits import (
    DEVNET_CONFIRMATIONS,
    DepositAnchor,
    DepositBatch,
    WatchCursor,
    anchor_problem,
    last_final_block,
    plan_scan,
    take_final_deposits,
)
from node.errors import ChainReadError
from node.state.changes import ContractReceiveDeposit
from wallet.chain import DEFAULT_MAX_SPAN, BlockRange, DepositLog
from wallet.types import Hash32

logger = logging.getLogger(__name__)


class DepositSource(Protocol):
    """The chain reads the watcher needs (:class:`~node.chain.reader.ChainReader` has
    them; tests pass a fake chain)."""

    async def head(self) -> int: ...

    async def next_deposit_id(self, block: int | None = None) -> int: ...

    async def deposit_logs(self, blocks: BlockRange) -> Sequence[DepositLog]: ...

    async def block_hash(self, number: int) -> Hash32 | None: ...


@dataclass(frozen=True, slots=True)
class WatcherConfig:
    """How the watcher follows the chain (see the module docstring for confirmations)."""

    confirmations: int = DEVNET_CONFIRMATIONS
    poll_interval: float = 1.0  # seconds between polls once caught up
    max_span: int = DEFAULT_MAX_SPAN  # blocks per eth_getLogs
    step_timeout: float = 30.0  # seconds for one step (head, count, one log range)
    max_backoff: float = 30.0  # seconds, the longest wait after repeated failures

    def __post_init__(self) -> None:
        if self.confirmations < 1:
            raise ValueError(f"confirmations must be >= 1, got {self.confirmations}")
        if self.max_span < 1:
            raise ValueError(f"max_span must be >= 1, got {self.max_span}")
        if not 0 < self.poll_interval <= self.max_backoff:
            raise ValueError("need 0 < poll_interval <= max_backoff")
        if self.step_timeout <= 0:
            raise ValueError(f"step_timeout must be > 0, got {self.step_timeout}")


class DepositWatcher:
    """Hands over final deposits from ``next_id`` on (the store's ``next_deposit_id()``
    after a restart), scanning from ``from_block`` (the Vault's deploy block, or any
    block known to be at or before deposit ``next_id``'s); ``anchor``: where the last
    deposit credited is (the store's ``deposit_anchor()`` after a restart)."""

    def __init__(
        self,
        source: DepositSource,
        next_id: int,
        from_block: int,
        config: WatcherConfig | None = None,
        *,
        anchor: DepositAnchor | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._source = source
        self._config = config or WatcherConfig()
        self._cursor = WatchCursor.start(next_id, from_block, anchor)
        self._sleep = sleep

    @property
    def cursor(self) -> WatchCursor:
        """Where the watcher is: the next id it will hand over, the next block to scan."""
        return self._cursor

    async def step(self) -> DepositBatch:
        """One step: read the head, check that the last deposit handed over is still on
        the chain (its block's hash), read the Vault's deposit count at the last final
        block, fetch at most one range of logs, and return what is now final. Raises
        :class:`~node.errors.ChainReadError` when a read fails (the cursor is unchanged)."""
        config = self._config
        head = await self._source.head()
        anchor = self._cursor.anchor
        if anchor is not None:
            problem = anchor_problem(
                anchor, await self._source.block_hash(anchor.block_number), config.confirmations
            )
            if problem is not None:  # deposits stop here, reported on every step
                return DepositBatch(self._cursor, (), caught_up=False, problem=problem)
        final = last_final_block(head, config.confirmations)
        if final < self._cursor.scan_from:
            return DepositBatch(self._cursor, (), caught_up=True)
        vault_next_id = await self._source.next_deposit_id(final)
        plan = plan_scan(self._cursor, head, config.confirmations, vault_next_id, config.max_span)
        if plan.fetch is None:
            self._cursor = plan.cursor
            return DepositBatch(plan.cursor, (), caught_up=True, problem=plan.problem)
        logs = await self._source.deposit_logs(plan.fetch)
        batch = take_final_deposits(
            plan.cursor, plan.fetch, logs, head, config.confirmations, vault_next_id
        )
        self._cursor = batch.cursor
        return batch

    async def deposits(self) -> AsyncGenerator[ContractReceiveDeposit, None]:
        """Final deposits in id order, each once, for as long as the caller iterates."""
        config = self._config
        backoff = config.poll_interval
        while True:
            try:
                async with asyncio.timeout(config.step_timeout):
                    batch = await self.step()
            except (ChainReadError, TimeoutError) as exc:
                reason = exc if isinstance(exc, ChainReadError) else "step timed out"
                logger.warning("deposit watcher: %s; retrying in %.1f s", reason, backoff)
                backoff = await self._back_off(backoff)
                continue
            except Exception:
                logger.exception("deposit watcher: unexpected error; retrying in %.1f s", backoff)
                backoff = await self._back_off(backoff)
                continue
            for change in batch.deposits:
                yield change
            if batch.problem is not None:
                logger.error("deposit watcher: %s", batch.problem)
                backoff = await self._back_off(backoff)
            else:
                backoff = config.poll_interval
                if batch.caught_up:
                    await self._sleep(config.poll_interval)

    async def _back_off(self, delay: float) -> float:
        await self._sleep(delay)
        return min(delay * 2, self._config.max_backoff)
