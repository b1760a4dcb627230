"""The chain follower against a fake Vault: new epochs, endpoint moves and token
(de)registrations become state changes at the confirmation depth, in order; the view
moves only once they are applied; RPC failures are retried. Plus the peer client taking a
changed peer list."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest

from node.chain import WatcherConfig, committee_of
from node.chain.follower import ChainFollower, ChainView, plan_follow
from node.errors import ChainReadError
from node.peers import Effects, PeerClient
from node.peers.effects import EpochNotYetKnownError
from node.state import (
    ContractReceiveNewEpoch,
    ContractReceiveTokenRegistration,
    Transition,
)
from node.state.changes import StateChange
from node.store import LedgerStore
from node.writer import Writer
from tests.node.factories import ALICE, BOB, COMMITTEE, DOMAIN, MEMBERS, Node, certify, transfer
from wallet.chain import BlockRange, CommitteeInfo, LogPosition, TokenEvent
from wallet.types import Address, Epoch, Hash32
from wallet.types import Sequence as Seq

TOKEN = Address(b"\x77" * 20)
CONFIG = WatcherConfig(confirmations=2, poll_interval=0.01, step_timeout=2, max_span=10)


def info(epoch: int, endpoints: Sequence[str] | None = None) -> CommitteeInfo:
    members = tuple(m.address for m in MEMBERS)
    urls = tuple(endpoints or (f"http://n{i}.e{epoch}" for i in range(4)))
    return CommitteeInfo(Epoch(epoch), members, 3, urls, 0)


def token_event(block: int, registered: bool, index: int = 0) -> TokenEvent:
    return TokenEvent(TOKEN, registered, LogPosition(block, Hash32(b"\0" * 32), index))


@dataclass
class FakeVault:
    """Block ``b``'s state: the epoch started by then, each epoch's endpoints as of then."""

    head_block: int = 5
    starts: dict[int, int] = field(default_factory=lambda: {1: 0})  # epoch -> block
    endpoint_moves: list[tuple[int, int, tuple[str, ...]]] = field(default_factory=list)
    tokens: list[TokenEvent] = field(default_factory=list)
    failures: int = 0
    reads: list[int] = field(default_factory=list)  # blocks read at

    def _fail(self) -> None:
        if self.failures:
            self.failures -= 1
            raise ChainReadError("the RPC is down")

    async def head(self) -> int:
        self._fail()
        return self.head_block

    async def current_epoch(self, block: int | None = None) -> Epoch:
        assert block is not None
        self.reads.append(block)
        return Epoch(max(e for e, b in self.starts.items() if b <= block))

    async def committee(self, epoch: int, block: int | None = None) -> CommitteeInfo:
        assert block is not None and self.starts[epoch] <= block
        moved = [urls for e, at, urls in self.endpoint_moves if e == epoch and at <= block]
        return info(epoch, moved[-1] if moved else None)

    async def token_events(self, blocks: BlockRange) -> list[TokenEvent]:
        self._fail()
        return [e for e in self.tokens if e.position.block_number in blocks]


class Recorder:
    def __init__(self) -> None:
        self.applied: list[StateChange] = []
        self.views: list[ChainView] = []

    async def apply(self, change: StateChange) -> Transition:
        self.applied.append(change)
        return Transition()

    def on_view(self, view: ChainView) -> None:
        self.views.append(view)


async def run_until(follower: ChainFollower, recorder: Recorder, done: object) -> None:
    async def wait() -> None:
        while not done():  # type: ignore[operator]
            await asyncio.sleep(0.005)

    task = asyncio.create_task(follower.run(recorder.apply, recorder.on_view))
    try:
        await asyncio.wait_for(wait(), 5)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


def test_plan_turns_token_logs_and_new_epochs_into_changes_in_order() -> None:
    view = ChainView(10, info(1))
    events = [token_event(14, False, 1), token_event(12, True), token_event(9, True)]
    step = plan_follow(view, 15, events, [info(2), info(3)], None)
    assert step.changes == (
        ContractReceiveTokenRegistration(TOKEN, True),
        ContractReceiveTokenRegistration(TOKEN, False),
        ContractReceiveNewEpoch(committee_of(info(2))),
        ContractReceiveNewEpoch(committee_of(info(3))),
    )
    assert step.view == ChainView(15, info(3)) and step.view.epoch == 3
    # Nothing new: the view keeps its committee unless a fresher one is given.
    assert plan_follow(view, 12, [], [], None).view == ChainView(12, info(1))
    moved = info(1, ["http://a", "http://b", "http://c", "http://d"])
    assert plan_follow(view, 12, [], [], moved).view.committee == moved


def test_peer_urls_leave_this_node_out() -> None:
    view = ChainView(0, info(1))
    assert view.peer_urls(MEMBERS[0].address) == ["http://n1.e1", "http://n2.e1", "http://n3.e1"]
    assert len(view.peer_urls(Address(b"\x01" * 20))) == 4


@pytest.mark.asyncio
async def test_a_new_epoch_is_applied_at_the_confirmation_depth() -> None:
    vault = FakeVault(head_block=5)
    follower = ChainFollower(vault, ChainView(5, info(1)), CONFIG)
    recorder = Recorder()
    vault.starts[2] = 6
    vault.head_block = 6  # block 6 has 1 confirmation of 2: not yet
    assert await follower.step() is None
    vault.head_block = 7
    await run_until(follower, recorder, lambda: follower.view.epoch == 2)
    assert recorder.applied == [ContractReceiveNewEpoch(committee_of(info(2)))]
    assert recorder.views == [ChainView(6, info(2))]
    assert all(block <= 6 for block in vault.reads)


@pytest.mark.asyncio
async def test_endpoint_moves_and_tokens_follow_and_a_long_gap_is_read_in_spans() -> None:
    vault = FakeVault(head_block=40)
    urls = ("http://x0", "http://n1.e1", "http://n2.e1", "http://n3.e1")
    vault.endpoint_moves.append((1, 12, urls))
    vault.tokens += [token_event(3, True), token_event(25, True), token_event(31, False)]
    vault.starts[2] = 33
    follower = ChainFollower(vault, ChainView(5, info(1)), CONFIG)
    recorder = Recorder()
    await run_until(follower, recorder, lambda: follower.view.block == 39)
    assert recorder.applied == [
        ContractReceiveTokenRegistration(TOKEN, True),
        ContractReceiveTokenRegistration(TOKEN, False),
        ContractReceiveNewEpoch(committee_of(info(2))),
    ]
    # Spans of 10 blocks: 6..15 (endpoint moved), 16..25, 26..35 (epoch 2), 36..39.
    assert [v.block for v in recorder.views] == [15, 35]
    assert recorder.views[0].committee.endpoints == urls
    assert recorder.views[1].epoch == 2


@pytest.mark.asyncio
async def test_rpc_failures_are_retried_and_nothing_is_skipped() -> None:
    vault = FakeVault(head_block=9, failures=3)
    vault.tokens.append(token_event(8, True))
    follower = ChainFollower(vault, ChainView(5, info(1)), CONFIG)
    recorder = Recorder()
    await run_until(follower, recorder, lambda: follower.view.block == 8)
    assert recorder.applied == [ContractReceiveTokenRegistration(TOKEN, True)]
    assert vault.failures == 0


@pytest.mark.asyncio
async def test_a_failed_apply_leaves_the_view_and_is_retried() -> None:
    vault = FakeVault(head_block=9)
    vault.starts[2] = 7
    follower = ChainFollower(vault, ChainView(5, info(1)), CONFIG)
    recorder = Recorder()
    calls = 0

    async def flaky(change: StateChange) -> Transition:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("a bug in a rule")
        return await recorder.apply(change)

    task = asyncio.create_task(follower.run(flaky, recorder.on_view))
    try:
        async with asyncio.timeout(5):
            while follower.view.epoch != 2:
                await asyncio.sleep(0.005)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert recorder.applied == [ContractReceiveNewEpoch(committee_of(info(2)))]


@pytest.mark.asyncio
async def test_the_peer_client_takes_a_changed_peer_list() -> None:
    async with PeerClient(["http://127.0.0.1:9/a", "http://127.0.0.1:9/b"]) as peers:
        peers.set_urls(["http://127.0.0.1:9/b/", "http://127.0.0.1:9/c"])
        assert peers.urls == ["http://127.0.0.1:9/b", "http://127.0.0.1:9/c"]
        await asyncio.sleep(0)
        with pytest.raises(KeyError):
            peers.queued("http://127.0.0.1:9/a")
        assert peers.queued("http://127.0.0.1:9/c") == 0
        peers.set_urls([])
        assert peers.urls == []
    assert peers.closed


@pytest.mark.asyncio
async def test_catch_up_does_not_move_past_a_certificate_of_an_epoch_not_seen_yet(
    tmp_path: Path,
) -> None:
    store = LedgerStore(tmp_path, DOMAIN, sync=False)
    store.put_committee(COMMITTEE)
    writer = Writer(store, Node().context)
    signed = transfer(ALICE, BOB, 10, 0)
    future = certify(signed, MEMBERS[:3], Epoch(2))
    bogus = certify(signed, MEMBERS[:2], Epoch(1))  # a plain refusal: catch-up moves on
    async with PeerClient([]) as peers:
        effects = Effects(peers, writer)
        async with asyncio.TaskGroup() as group:
            runner = group.create_task(writer.run())
            with pytest.raises(EpochNotYetKnownError):
                await effects.feed_from_log(future)
            await effects.feed_from_log(bogus)
            await writer.apply(ContractReceiveNewEpoch(replace(COMMITTEE, epoch=Epoch(2))))
            await effects.feed_from_log(future)  # now known: applied (whatever the balance)
            runner.cancel()
    assert store.applied(ALICE.address, Seq(0)) is not None
    store.close()
