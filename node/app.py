"""The node process: start-up checks, then the writer, the API server, the deposit
watcher, the chain follower (new epochs, endpoints, tokens: node.chain.follower) and the
purge of the agent directory and mailbox (node.directory_api) as tasks of one task
group, and the peers' tasks (pushes, catch-up, witnessing, directory gossip:
node.peers) owned by the PeerClient, until a signal stops it.

Start-up refuses, with a message that says which setting to fix: an unreachable RPC URL,
a wrong chain, an address that is not a Farthing Vault, a key that is not a member of the
current committee (a member of an earlier one starts without voting), a data directory
held by another node, a busy port.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import time
from dataclasses import dataclass

from aiohttp import web

from node import byzantine
from node.api import KEEPALIVE_TIMEOUT, LINGERING_TIME, NodeServices, make_app
from node.chain import ChainReader, DepositWatcher, WatcherConfig, committee_of
from node.chain.deposits import DepositAnchor
from node.chain.follower import ChainFollower, ChainView
from node.checkpoints import Checkpointer, CheckpointPolicy
from node.config import NodeConfig
from node.directory_api import DirectoryServices, purge_forever, register_pulled
from node.directory_api import install as install_directory
from node.errors import NodeConfigError, UnknownEpochError
from node.evidence import EquivocationWatch, EvidenceReporter
from node.metrics import NodeMetrics
from node.peers import Effects, PeerClient, PeerSettings
from node.peers.directory import DirectoryGossip
from node.peers.witness import Witness
from node.state import NodeContext
from node.state.records import Committee
from node.store import LedgerStore
from node.store.directory import DirectoryStore, MailboxStore
from node.stream import STREAM_PATH, StreamHub
from node.stream import install as install_streams
from node.writer import Writer
from wallet.chain import CommitteeInfo, VaultClient, VaultInfo
from wallet.codec import address_hex
from wallet.serving import ConnectionLimits, LimitedSite
from wallet.types import Address

log = logging.getLogger("farthing.node")

#: Seconds between pulls of every peer's log (heals what pushes missed).
CATCH_UP_INTERVAL = 2.0


async def _committees(reader: ChainReader, current: int) -> list[Committee]:
    """The committees of every epoch up to ``current`` (certificates of retired epochs
    stay valid on the ledger)."""
    found = []
    for epoch in range(1, current + 1):
        with contextlib.suppress(UnknownEpochError):
            found.append(committee_of(await reader.committee(epoch)))
    return found


async def _sign_checkpoints(checkpointer: Checkpointer) -> None:
    """Sign checkpoints as they fall due (the clock is read here, in the shell)."""
    interval = min(0.05, checkpointer.policy.every_ms / 4_000)
    while True:
        signed = checkpointer.maybe_sign(time.time_ns() // 1_000_000)
        if signed is not None:
            log.debug("checkpoint at tree size %d", signed[0].tree_size)
        await asyncio.sleep(interval)


def _connection_refused(message: str) -> dict[str, object]:
    return {"code": "too_many_connections", "message": message}


async def _serve(runner: web.AppRunner, config: NodeConfig) -> LimitedSite:
    limits = ConnectionLimits(config.max_connections, config.max_client_connections)
    site = LimitedSite(
        runner, config.host, config.port, limits=limits, error_body=_connection_refused
    )
    if site.limits != limits:
        log.warning(
            "at most %d connections (not %d): the descriptor limit is lower; raise it with "
            "ulimit -n",
            site.limits.total,
            limits.total,
        )
    try:
        await site.start()
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise NodeConfigError(
                f"port {config.port} on {config.host} is in use: pass another --port"
            ) from None
        raise
    return site


@dataclass(frozen=True, slots=True)
class _Start:
    """What start-up read from the Vault and checked."""

    info: VaultInfo
    current: CommitteeInfo
    committees: list[Committee]
    member: bool
    tokens: frozenset[Address]
    withdraw_only: frozenset[Address]


async def _check_start(reader: ChainReader, config: NodeConfig, me: Address) -> _Start:
    """Read the Vault and refuse to start with a message that says what to fix."""
    info = await reader.check_vault(expected_chain_id=config.chain_id)
    if info.current_epoch == 0:
        raise NodeConfigError("the Vault has no committee yet: governance must start epoch 1")
    current = await reader.committee(info.current_epoch)
    committees = await _committees(reader, info.current_epoch)
    if not any(me in c.members for c in committees):
        raise NodeConfigError(
            f"this node's key ({address_hex(me)}) is not a member of the committee of "
            f"epoch {info.current_epoch} (nor of an earlier one): use a member's key or "
            "register this one"
        )
    member = me in current.members
    if not member:
        log.warning(
            "this node is not a member of the committee of epoch %d: it does not vote, "
            "it serves reads and applies certificates",
            info.current_epoch,
        )
    tokens, withdraw_only = await reader.token_sets(config.deploy_block, info.head)
    return _Start(info, current, committees, member, frozenset(tokens), withdraw_only)


async def run_node(config: NodeConfig, *, stop: asyncio.Event | None = None) -> None:
    """Run a node until ``stop`` is set (or the task is cancelled)."""
    key = config.load_key()
    me = key.address
    async with contextlib.AsyncExitStack() as stack:
        reader = await stack.enter_async_context(ChainReader(config.rpc_url, config.vault))
        start = await _check_start(reader, config, me)
        info, current = start.info, start.current

        store = LedgerStore(config.data_dir, info.domain, sync=config.sync)
        stack.callback(store.close)
        for committee in start.committees:
            store.put_committee(committee)
        context = NodeContext(
            domain=info.domain,
            node=me,
            tokens=start.tokens,
            current_epoch=info.current_epoch,
            sign=key.unsafe_sign_digest,
            withdraw_only=start.withdraw_only,
            member=start.member,
        )
        metrics, streams = NodeMetrics(), StreamHub()
        writer = Writer(store, context, observers=(metrics.observe_commit, streams.observe_commit))
        policy = CheckpointPolicy(config.checkpoint_entries, config.checkpoint_ms)
        checkpointer = Checkpointer(store, key, info.domain, policy)
        chain_config = WatcherConfig(
            confirmations=config.confirmations, poll_interval=config.poll_interval
        )
        follower = ChainFollower(reader, ChainView(info.head, current), chain_config)
        anchor = store.deposit_anchor()
        watcher = DepositWatcher(
            reader,
            store.next_deposit_id(),
            max(config.deploy_block, store.deposit_block() or 0),
            chain_config,
            anchor=None if anchor is None else DepositAnchor(*anchor),
        )
        peer_urls = list(config.peers) if config.peers is not None else follower.view.peer_urls(me)
        peers = await stack.enter_async_context(
            PeerClient(peer_urls, PeerSettings(), positions=store)
        )
        reporter = None
        if config.submit_evidence:
            chain = await stack.enter_async_context(VaultClient(config.rpc_url, config.vault, key))
            reporter = EvidenceReporter(chain.slash_equivocation)
            for kept in store.all_equivocations():
                reporter.submit(kept)
        evidence = EquivocationWatch(
            store, info.domain, on_new=(lambda e: None) if reporter is None else reporter.submit
        )
        effects = Effects(peers, writer, observe=evidence.observe)
        witness = Witness(peers, store, key, info.domain, lambda: follower.view.committee)

        services = NodeServices(
            writer,
            store,
            me,
            lambda: committee_of(follower.view.committee),
            effects.on_events,
            lambda: checkpointer.latest,
            evidence.observe,
        )
        app = make_app(services)
        misbehave = byzantine.modes_from(os.environ.get(byzantine.ENV))
        if misbehave:
            log.warning(
                "TEST-ONLY Byzantine node (%s=%s)", byzantine.ENV, ",".join(sorted(misbehave))
            )
            # Outermost, so that it sees the replies the error middleware made of refusals.
            app.middlewares.insert(0, byzantine.middleware(misbehave, lambda: writer.context))
        install_streams(app, streams)
        gossip = DirectoryGossip(peers)  # the same peer list as certificate pushes
        directory = DirectoryServices(
            DirectoryStore(store.keyspace(b"d")),
            MailboxStore(store.keyspace(b"x")),
            me,
            on_stored=gossip.forward,
        )
        install_directory(app, directory)
        metrics.install(app, untimed=[STREAM_PATH])
        metrics.track_node(store, lambda: checkpointer.latest, peers, streams)
        metrics.track_watcher(lambda: watcher.cursor.next_id, lambda: watcher.cursor.scan_from)
        runner = web.AppRunner(
            app,
            access_log=None,
            keepalive_timeout=KEEPALIVE_TIMEOUT,  # idle and slow clients: node.api
            lingering_time=LINGERING_TIME,
        )
        await runner.setup()
        stack.push_async_callback(runner.cleanup)
        metrics.track_connections(await _serve(runner, config))
        log.info(
            "node %s serving on http://%s:%d, epoch %d, log size %d, %d peers",
            address_hex(me),
            config.host,
            config.port,
            info.current_epoch,
            store.log_size(),
            len(peer_urls),
        )

        def on_view(view: ChainView) -> None:
            if config.peers is None:
                peers.set_urls(view.peer_urls(me))

        async def follow_deposits() -> None:
            async with contextlib.aclosing(watcher.deposits()) as deposits:
                async for change in deposits:
                    await effects.on_events((await writer.apply(change)).events)

        async with asyncio.TaskGroup() as group:
            tasks = [
                group.create_task(writer.run()),
                group.create_task(follow_deposits()),
                group.create_task(follower.run(writer.apply, on_view)),
                group.create_task(_sign_checkpoints(checkpointer)),
                group.create_task(purge_forever(directory)),
                *([] if reporter is None else [group.create_task(reporter.run())]),
            ]
            catch_up = peers.catch_up_forever(
                effects.feed_from_log, CATCH_UP_INTERVAL, known=effects.known
            )
            peers.spawn(catch_up, name="catch-up")
            peers.spawn(witness.run_forever(config.witness_interval), name="witness")
            peers.spawn(gossip.run(), name="directory-gossip")
            if "gossip" in misbehave:
                forged = byzantine.forge_gossip(peer_urls, lambda: writer.context)
                peers.spawn(forged, name="byzantine-gossip")
            pull = gossip.pull_forever(lambda signed: register_pulled(directory, signed))
            peers.spawn(pull, name="directory-pull")
            await (stop or asyncio.Event()).wait()
            for task in tasks:
                task.cancel()
    log.info("node %s stopped", address_hex(me))
