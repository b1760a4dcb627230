"""The chain follower: what the node learns from the Vault after start, turned into state
changes for the writer and into the shell's views.

Start-up reads the committees, the endpoints and the token set once
(:func:`node.app.run_node`); from then on this loop follows, at the same confirmation
depth as deposits (:mod:`node.chain.deposits`, Rule 1), so that a shallow reorg never
makes the node adopt a committee or a token change that then vanishes:

* a new epoch (``currentEpoch()`` grew): the committee of every epoch started since
  becomes a :class:`~node.state.changes.ContractReceiveNewEpoch`, applied through the
  writer, which stores the committee and moves the node's current epoch in the same
  atomic batch, ordered with every vote and certificate (a vote after it carries the new
  epoch; a certificate of the new epoch is checked only once its committee is stored);
* a token registered or deregistered (``TokenRegistered``/``TokenDeregistered`` logs):
  a :class:`~node.state.changes.ContractReceiveTokenRegistration`;
* an endpoint changed (``setEndpoint``) or a new committee: the current committee, with
  its endpoints, is handed to ``on_view`` once the changes are committed (the node
  serves it at ``/v1/committee`` and points its peer client at the new endpoints).

Polling, not event decoding, for the committee: each step reads, at one block ``b`` (the
last final block, or the end of a ``max_span`` range when catching up), the token logs
since the last step, ``currentEpoch()`` and ``committee(e)``: four calls per step, and
the Vault's view functions are the truth (nothing to decode, no log to miss).
:func:`plan_follow` is the pure part; :class:`ChainFollower` the thin loop around it,
with the deposit watcher's timeouts and back-off (:class:`~node.chain.WatcherConfig`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from node.chain.deposits import last_final_block
from node.chain.reader import committee_of
from node.chain.watcher import WatcherConfig
from node.errors import ChainReadError
from node.state.changes import (
    ContractReceiveNewEpoch,
    ContractReceiveTokenRegistration,
    StateChange,
)
from node.state.events import (
    Event,
    EventCommitteeStored,
    EventEpochChanged,
    EventRefused,
    EventTokensChanged,
)
from node.state.transition import Transition
from wallet.chain import BlockRange, CommitteeInfo, TokenEvent, in_chain_order
from wallet.codec import address_hex
from wallet.types import Address, Epoch

logger = logging.getLogger(__name__)


class FollowSource(Protocol):
    """The chain reads the follower needs (:class:`~node.chain.reader.ChainReader`)."""

    async def head(self) -> int: ...

    async def current_epoch(self, block: int | None = None) -> Epoch: ...

    async def committee(self, epoch: int, block: int | None = None) -> CommitteeInfo: ...

    async def token_events(self, blocks: BlockRange) -> Sequence[TokenEvent]: ...


@dataclass(frozen=True, slots=True)
class ChainView:
    """What the node has taken from the Vault: everything up to ``block``, the current
    epoch and its committee with the endpoints."""

    block: int
    committee: CommitteeInfo

    @property
    def epoch(self) -> Epoch:
        return self.committee.epoch

    def peer_urls(self, me: Address) -> list[str]:
        """The endpoints of the committee's members other than ``me``."""
        c = self.committee
        return [e for m, e in zip(c.members, c.endpoints, strict=True) if m != me]


@dataclass(frozen=True, slots=True)
class FollowStep:
    """The result of one step: the changes to apply in order, then the new view."""

    view: ChainView
    changes: tuple[StateChange, ...]
    caught_up: bool


def plan_follow(
    view: ChainView,
    block: int,
    token_events: Sequence[TokenEvent],
    started: Sequence[CommitteeInfo],
    current: CommitteeInfo | None,
    *,
    caught_up: bool = True,
) -> FollowStep:
    """The step after ``view`` once blocks ``view.block + 1 .. block`` are read: their
    token logs, the committees of the epochs ``started`` since ``view.epoch`` (in epoch
    order) and ``current``, the committee of the epoch current at ``block`` (None when
    that epoch is older than ``view.epoch``: start-up read a later block; keep ours)."""
    changes: list[StateChange] = [
        ContractReceiveTokenRegistration(e.token, e.registered)
        for e in in_chain_order(
            e for e in token_events if view.block < e.position.block_number <= block
        )
    ]
    changes += [ContractReceiveNewEpoch(committee_of(info)) for info in started]
    newest = started[-1] if started else current
    committee = view.committee if newest is None else newest
    return FollowStep(ChainView(block, committee), tuple(changes), caught_up)


class ChainFollower:
    """Follows the Vault from ``view`` (what start-up read) on. :meth:`run` is a task
    owned by the node's task group; it never gives up on its own."""

    def __init__(
        self,
        source: FollowSource,
        view: ChainView,
        config: WatcherConfig | None = None,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._source = source
        self._config = config or WatcherConfig()
        self._view = view
        self._sleep = sleep

    @property
    def view(self) -> ChainView:
        """What the node has applied from the Vault (moves only after the writer
        committed the changes)."""
        return self._view

    async def step(self) -> FollowStep | None:
        """Read the next range of final blocks (None: nothing new is final). Raises
        :class:`~node.errors.ChainReadError` when a read fails."""
        config, view = self._config, self._view
        final = last_final_block(await self._source.head(), config.confirmations)
        if final <= view.block:
            return None
        last = min(final, view.block + config.max_span)
        events = await self._source.token_events(BlockRange(view.block + 1, last))
        epoch = await self._source.current_epoch(last)
        started = [await self._source.committee(e, last) for e in range(view.epoch + 1, epoch + 1)]
        current = None
        if not started and epoch == view.epoch:
            current = await self._source.committee(epoch, last)  # endpoints may have moved
        return plan_follow(view, last, events, started, current, caught_up=last == final)

    async def run(
        self,
        apply: Callable[[StateChange], Awaitable[Transition]],
        on_view: Callable[[ChainView], None],
    ) -> None:
        """Apply each step's changes through ``apply`` (the writer), then move the view,
        calling ``on_view`` when the committee or its endpoints changed."""
        config = self._config
        backoff = config.poll_interval
        while True:
            try:
                async with asyncio.timeout(config.step_timeout):
                    step = await self.step()
                if step is not None:
                    for change in step.changes:
                        _report((await apply(change)).events)
            except (ChainReadError, TimeoutError) as exc:
                reason = exc if isinstance(exc, ChainReadError) else "step timed out"
                logger.warning("chain follower: %s; retrying in %.1f s", reason, backoff)
                await self._sleep(backoff)
                backoff = min(backoff * 2, config.max_backoff)
                continue
            except Exception:
                logger.exception("chain follower: unexpected error; retrying in %.1f s", backoff)
                await self._sleep(backoff)
                backoff = min(backoff * 2, config.max_backoff)
                continue
            backoff = config.poll_interval
            if step is None:
                await self._sleep(config.poll_interval)
                continue
            before, self._view = self._view, step.view
            if step.view.committee != before.committee:
                logger.info(
                    "following epoch %d: %d members, quorum %d",
                    step.view.epoch,
                    len(step.view.committee.members),
                    step.view.committee.quorum,
                )
                try:
                    on_view(step.view)
                except Exception:  # a view of the shell must not stop the follower
                    logger.exception("chain follower: updating the views failed")
            if step.caught_up:
                await self._sleep(config.poll_interval)


def _report(events: Sequence[Event]) -> None:
    for event in events:
        match event:
            case EventEpochChanged(epoch=epoch, member=True):
                logger.info("epoch %d started: this node is a member and votes in it", epoch)
            case EventEpochChanged(epoch=epoch, member=False):
                logger.warning(
                    "epoch %d started and this node is not a member of its committee: it "
                    "stops voting (orders are refused with not_voting) and keeps serving "
                    "reads and applying certificates",
                    epoch,
                )
            case EventCommitteeStored(epoch=epoch):
                logger.info("committee of epoch %d stored", epoch)
            case EventTokensChanged(token=token, registered=registered):
                logger.info(
                    "token %s %s",
                    address_hex(token),
                    "registered" if registered else "deregistered: withdrawals only",
                )
            case EventRefused(message=message):
                logger.error("chain follower: %s", message)
            case _:
                pass
