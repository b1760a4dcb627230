"""The node's client of its peers: push, fetch_missing and catch_up (see the package
docstring for the theory of operation)."""

from __future__ import annotations

import asyncio
import enum
import json
import logging
import random
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Protocol, Self

import aiohttp

from node.peers.outbox import Backoff, Outbox, Push
from node.peers.replies import (
    BadReplyError,
    account_certificates,
    batch_refusals,
    entry_page,
    log_page,
    read_json,
    tree_size,
    unknown_digests,
    unknown_orders,
)
from wallet import wire
from wallet.codec import address_hex, hash_hex
from wallet.errors import EncodingError
from wallet.types import Address, Certificate, Hash32

log = logging.getLogger("farthing.node.peers")

#: What catch-up hands each pulled certificate to (the node: apply it through its writer).
CertificateFeed = Callable[[Certificate], Awaitable[object]]
#: Whether this node has applied the order with this digest (catch-up skips those).
KnownDigest = Callable[[Hash32], bool]


class CatchUpPositions(Protocol):
    """Where catch-up stopped in each peer's log, kept across restarts (the node's store):
    the next index to read and the leaf just before it, which must still be there."""

    def catch_up_position(self, url: str) -> tuple[int, bytes] | None: ...

    def put_catch_up_position(self, url: str, index: int, last_leaf: bytes) -> None: ...


def _nothing_known(digest: Hash32) -> bool:
    return False


PAGE = 256  # certificates per request: the API's limit for batches and listings
ENTRY_PAGE = 1_000  # log entries per request: the API's limit for /v1/log/entries
_JSON = {"Content-Type": "application/json"}
_NETWORK_ERRORS = (aiohttp.ClientError, TimeoutError, BadReplyError)


@dataclass(frozen=True, slots=True)
class PeerSettings:
    """Limits and timeouts of a :class:`PeerClient` (seconds, items, bytes)."""

    request_timeout: float = 5.0  # a whole request, reply body included
    connect_timeout: float = 2.0
    queue_size: int = 10_000  # certificates waiting per peer; the oldest go first when full
    max_request_bytes: int = 512 * 1024  # a pushed batch, well below the API's 1 MiB
    max_reply_bytes: int = 8 * 1024 * 1024
    max_attempts: int = 6  # tries of one pushed batch before it is dropped
    # A push waits this long for more to join its batch: pushes leave the clients'
    # critical path (a client delivers to every node itself) and come in fewer requests.
    push_delay: float = 0.1
    backoff_base: float = 0.1
    backoff_cap: float = 10.0
    connections: int = 64  # the session's connection pool, all peers together
    connections_per_peer: int = 4
    keepalive: float = 30.0


class _Outcome(enum.Enum):
    DONE = enum.auto()  # delivered, or refused for good: do not send it again
    RETRY = enum.auto()  # the peer is down or overloaded


@dataclass(eq=False)
class _Peer:
    url: str
    outbox: Outbox
    backoff: Backoff
    log_index: int = 0  # catch-up: the next entry of its log to pull
    resume_leaf: bytes | None = None  # entry log_index - 1 when the position was saved
    seen_size: int | None = None  # its log's size at the last pull (for metrics)
    sending: int = 0  # certificates in the batch being delivered (tried or backing off)
    pulling: asyncio.Lock = field(default_factory=asyncio.Lock)
    sender: asyncio.Task[None] | None = None


class PeerClient:
    """The node's one client of its peers (the other committee members' API URLs).

    Use as ``async with PeerClient(urls, settings) as peers:``. It owns one
    :class:`aiohttp.ClientSession` (keep-alive, a bounded connection pool) and its
    tasks: one sender per peer plus whatever :meth:`spawn` is given, run in
    ``task_group`` when the caller passes one, else in a task group of its own. Leaving
    the block (or :meth:`aclose`, from the task that entered it) stops them all and
    closes the session. No method raises because of a peer: failures are logged.

    Each peer's outbound queue holds ``settings.queue_size`` certificates; when it is full
    the oldest is dropped (logged, counted by :meth:`dropped`), and a batch still
    undelivered after ``settings.max_attempts`` tries is dropped too. The peer heals
    from both by fetching the gap when a later certificate arrives ahead of its
    sequence, and by catch-up (see :mod:`node.peers`).
    """

    def __init__(
        self,
        urls: Iterable[str],
        settings: PeerSettings | None = None,
        *,
        task_group: asyncio.TaskGroup | None = None,
        rng: random.Random | None = None,
        positions: CatchUpPositions | None = None,
    ) -> None:
        self.settings = settings if settings is not None else PeerSettings()
        self._rng = rng if rng is not None else random.Random()
        self._positions = positions
        self._peers = [self._new_peer(url) for url in dict.fromkeys(u.rstrip("/") for u in urls)]
        self._given_group = task_group
        self._own_group: asyncio.TaskGroup | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._session: aiohttp.ClientSession | None = None
        self._state = "new"  # new -> running -> closed

    @property
    def urls(self) -> list[str]:
        return [peer.url for peer in self._peers]

    @property
    def running(self) -> bool:
        return self._state == "running"

    @property
    def closed(self) -> bool:
        """True once :meth:`aclose` has stopped the tasks and closed the session."""
        return self._state == "closed" and (self._session is None or self._session.closed)

    def seen_tree_size(self, url: str) -> int | None:
        """The size of ``url``'s log when catch-up last asked (None before it did)."""
        return self._peer(url).seen_size

    def queued(self, url: str) -> int:
        """Certificates not yet delivered to ``url``: queued, or in the batch being sent."""
        peer = self._peer(url)
        return len(peer.outbox) + peer.sending

    def dropped(self, url: str) -> int:
        """Certificates dropped for ``url`` because its queue was full."""
        return self._peer(url).outbox.dropped

    def _new_peer(self, url: str) -> _Peer:
        s = self.settings
        peer = _Peer(url, Outbox(s.queue_size), Backoff(s.backoff_base, s.backoff_cap))
        saved = None if self._positions is None else self._positions.catch_up_position(url)
        if saved is not None:
            peer.log_index, peer.resume_leaf = saved
        return peer

    def set_urls(self, urls: Iterable[str]) -> None:
        """Follow a changed peer list (a new committee, a moved endpoint): a new peer gets
        a sender (and is caught up from its log's start); a peer no longer listed loses
        its sender and whatever was queued for it; the others keep their queue and
        catch-up position."""
        wanted = list(dict.fromkeys(url.rstrip("/") for url in urls))
        kept = {peer.url: peer for peer in self._peers if peer.url in wanted}
        for peer in self._peers:
            if peer.url not in kept and peer.sender is not None:
                peer.sender.cancel()
        added = [self._new_peer(url) for url in wanted if url not in kept]
        self._peers = [kept[url] if url in kept else added.pop(0) for url in wanted]
        for peer in self._peers:
            if peer.sender is None and self._state == "running":
                peer.sender = self._spawn(self._sender(peer), f"peer-sender {peer.url}")

    def _peer(self, url: str) -> _Peer:
        for peer in self._peers:
            if peer.url == url.rstrip("/"):
                return peer
        raise KeyError(url)

    # ------------------------------------------------------------ lifetime

    async def __aenter__(self) -> Self:
        if self._state != "new":
            raise RuntimeError("a PeerClient is started once")
        s = self.settings
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(
                limit=s.connections,
                limit_per_host=s.connections_per_peer,
                keepalive_timeout=s.keepalive,
            ),
            timeout=aiohttp.ClientTimeout(total=s.request_timeout, connect=s.connect_timeout),
        )
        if self._given_group is None:
            self._own_group = asyncio.TaskGroup()
            await self._own_group.__aenter__()
        self._state = "running"
        for peer in self._peers:
            peer.sender = self._spawn(self._sender(peer), f"peer-sender {peer.url}")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop every task this client started and close its session (idempotent).
        Certificates still queued are dropped: catch-up brings them later."""
        if self._state == "closed":
            return
        self._state = "closed"
        try:
            for task in self._tasks:
                task.cancel()
            if self._tasks:
                await asyncio.wait(self._tasks)
            if self._own_group is not None:
                # Our tasks are all done and never fail, so this only retires the group.
                await self._own_group.__aexit__(None, None, None)
        finally:
            if self._session is not None:
                await self._session.close()

    def spawn(self, coroutine: Coroutine[Any, Any, None], *, name: str) -> bool:
        """Run ``coroutine`` as a task owned by this client: cancelled by :meth:`aclose`,
        an exception in it logged (it cannot take the node down). False, and the
        coroutine is closed unrun, when the client is not running."""
        return self._spawn(coroutine, name) is not None

    def _spawn(self, coroutine: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None] | None:
        group = self._given_group if self._given_group is not None else self._own_group
        if self._state != "running" or group is None:
            coroutine.close()
            return None
        try:
            task = group.create_task(_guarded(coroutine, name), name=name)
        except RuntimeError:  # the caller's task group is already shutting down
            coroutine.close()
            return None
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        # A task cancelled before its first step never starts ``coroutine``: close it.
        task.add_done_callback(lambda _: coroutine.close())
        return task

    def _session_or_fail(self) -> aiohttp.ClientSession:
        if self._session is None or self._state != "running":
            raise BadReplyError("the peer client is not running")
        return self._session

    # ------------------------------------------------------------ push

    def push(self, certificates: Iterable[tuple[Hash32, Certificate]]) -> None:
        """Queue ``certificates`` (each with its order's digest) for every peer and return
        at once; each peer's sender delivers them in batches. Never blocks, never raises
        because of a peer."""
        if self._state != "running":
            return
        for digest, certificate in certificates:
            try:
                text = wire.certificate_to_json(certificate)
            except EncodingError as exc:  # a certificate we applied always encodes
                log.error("cannot push a certificate that does not encode: %s", exc)
                continue
            item = Push(digest, json.dumps(text, separators=(",", ":")).encode())
            for peer in self._peers:
                if not peer.outbox.put(item) and peer.outbox.dropped % 1000 == 1:
                    log.warning(
                        "peer %s: outbound queue full (%d); dropped the oldest certificate "
                        "(%d so far); catch-up will bring them",
                        peer.url,
                        peer.outbox.capacity,
                        peer.outbox.dropped,
                    )

    async def _sender(self, peer: _Peer) -> None:
        s = self.settings
        while True:
            await peer.outbox.wait()
            if s.push_delay > 0:
                await asyncio.sleep(s.push_delay)
            batch = peer.outbox.take(PAGE, s.max_request_bytes)
            peer.sending = len(batch)
            try:
                await self._deliver(peer, batch)
            finally:
                peer.sending = 0

    async def _deliver(self, peer: _Peer, batch: list[Push]) -> None:
        """Offer the batch's digests, then post the certificates the peer lacks."""
        for _ in range(self.settings.max_attempts):
            if peer.backoff.failures:  # the peer is down: wait before trying it again
                await asyncio.sleep(peer.backoff.delay())
            wanted = await self._offer(peer, batch)
            if wanted is None:
                continue
            batch = wanted
            if not batch:
                return
            body = b'{"certificates":[' + b",".join(p.body for p in batch) + b"]}"
            if await self._post_batch(peer, body, len(batch)) is _Outcome.DONE:
                return
        log.warning(
            "peer %s: dropped a batch of %d certificates after %d attempts; "
            "catch-up will bring them",
            peer.url,
            len(batch),
            self.settings.max_attempts,
        )

    async def _offer(self, peer: _Peer, batch: list[Push]) -> list[Push] | None:
        """The items of ``batch`` whose orders the peer has not applied (it is asked with
        their digests: when the wallet sent its certificate to every node, as wallets do,
        that is none, and the peer is spared decoding certificates it has). All of them
        when the peer cannot say; None when it is down (try again later)."""
        url = peer.url + "/v1/certificates/unknown"
        body = json.dumps({"digests": [hash_hex(p.digest) for p in batch]}).encode()
        try:
            async with self._session_or_fail().post(url, data=body, headers=_JSON) as response:
                if response.status == 200:
                    self._up(peer)
                    reply = await read_json(response, self.settings.max_reply_bytes)
                    try:
                        unknown = unknown_digests(reply, [p.digest for p in batch])
                    except BadReplyError as exc:
                        log.warning("peer %s: unreadable reply to an offer: %s", peer.url, exc)
                        return batch
                    return [p for p in batch if p.digest in unknown]
                if 400 <= response.status < 500 and response.status not in (408, 429):
                    self._up(peer)
                    return batch  # a peer that does not know offers: send it everything
                raise BadReplyError(f"HTTP {response.status}")
        except _NETWORK_ERRORS as exc:
            self._down(peer, "offer", exc)
            return None

    async def _post_batch(self, peer: _Peer, body: bytes, count: int) -> _Outcome:
        url = peer.url + "/v1/certificates/batch"
        try:
            async with self._session_or_fail().post(url, data=body, headers=_JSON) as response:
                status = response.status
                if status == 200:
                    self._up(peer)
                    try:
                        refused = batch_refusals(
                            await read_json(response, self.settings.max_reply_bytes), count
                        )
                    except BadReplyError as exc:
                        log.warning("peer %s: unreadable reply to a push: %s", peer.url, exc)
                        return _Outcome.DONE
                    if refused:
                        log.warning("peer %s refused pushed certificates: %s", peer.url, refused)
                    return _Outcome.DONE
                if 400 <= status < 500 and status not in (408, 429):
                    self._up(peer)
                    log.warning("peer %s refused a batch of %d: HTTP %d", peer.url, count, status)
                    return _Outcome.DONE
                raise BadReplyError(f"HTTP {status}")
        except _NETWORK_ERRORS as exc:
            self._down(peer, "push", exc)
            return _Outcome.RETRY

    def _up(self, peer: _Peer) -> None:
        if peer.backoff.failures:
            log.info("peer %s answers again", peer.url)
        peer.backoff.succeeded()

    def _down(self, peer: _Peer, what: str, exc: BaseException) -> None:
        level = logging.WARNING if peer.backoff.failures == 0 else logging.DEBUG
        log.log(level, "peer %s: %s failed: %s", peer.url, what, _describe(exc))
        peer.backoff.failed()

    # ------------------------------------------------------------ pull

    async def _get_json(self, peer: _Peer, path: str, params: dict[str, str]) -> Any:
        async with self._session_or_fail().get(peer.url + path, params=params) as response:
            if response.status != 200:
                raise BadReplyError(f"HTTP {response.status} for {path}")
            return await read_json(response, self.settings.max_reply_bytes)

    async def get_json(self, url: str, path: str, params: dict[str, str] | None = None) -> Any:
        """GET ``url + path`` with this client's session, timeouts and reply limit, for the
        node's other peer protocols (witnessing): the JSON of a 200 reply, or None for a
        404. Raises :class:`BadReplyError` for anything else, a refused connection or a
        timeout included (the caller logs it and skips the peer this round)."""
        try:
            async with self._session_or_fail().get(url + path, params=params) as response:
                if response.status == 404:
                    return None
                if response.status != 200:
                    raise BadReplyError(f"HTTP {response.status} for {path}")
                return await read_json(response, self.settings.max_reply_bytes)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise BadReplyError(f"{path}: {_describe(exc)}") from None

    async def post_json(self, url: str, path: str, body: object) -> int:
        """POST ``body`` as JSON to ``url + path``; the reply's status (its body is not
        read). Raises :class:`BadReplyError` for a refused connection or a timeout."""
        data = json.dumps(body, separators=(",", ":")).encode()
        try:
            async with self._session_or_fail().post(url + path, data=data, headers=_JSON) as reply:
                return reply.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise BadReplyError(f"{path}: {_describe(exc)}") from None

    async def fetch_missing(self, account: Address, first: int, last: int) -> list[Certificate]:
        """``account``'s certificates at sequences ``first``..``last`` from the peers, asked
        in random order until they are all found (a peer that has only some of them gives
        those; the next is asked for the rest). Returns the consecutive run found from
        ``first``, maybe empty; checking them is for the writer."""
        found: list[Certificate] = []
        peers = list(self._peers)
        self._rng.shuffle(peers)
        for peer in peers:
            if first + len(found) > last:
                break
            try:
                while (start := first + len(found)) <= last:
                    end = min(last, start + PAGE - 1)
                    reply = await self._get_json(
                        peer,
                        f"/v1/accounts/{address_hex(account)}/certificates",
                        {"first": str(start), "last": str(end)},
                    )
                    got = account_certificates(reply, account, start, end)
                    found.extend(got)
                    if len(got) < end - start + 1:
                        break  # this peer has no more: ask the next one
            except _NETWORK_ERRORS as exc:
                log.warning(
                    "peer %s: fetch for 0x%s failed: %s", peer.url, account.hex(), _describe(exc)
                )
        return found

    async def catch_up(
        self,
        feed: CertificateFeed,
        urls: Iterable[str] | None = None,
        *,
        known: KnownDigest = _nothing_known,
    ) -> int:
        """Pull what every peer's log (or ``urls``') holds that this node lacks, from where
        the last pull stopped to its end, handing each certificate to ``feed``; returns
        how many were fed.

        Each page of the peer's log is read as entries first (33 bytes an order); only
        the certificates of orders whose digest is not ``known`` are then fetched, in
        runs. So a node that pushes kept up to date pays for a list of digests, not for
        every certificate again. Where each peer's pull stopped is saved in ``positions``
        when the client has them (see :class:`CatchUpPositions`), else kept in memory.
        """
        peers = self._peers if urls is None else [self._peer(url) for url in urls]
        total = 0
        for peer in peers:
            total += await self._catch_up_peer(peer, feed, known)
        return total

    async def _catch_up_peer(self, peer: _Peer, feed: CertificateFeed, known: KnownDigest) -> int:
        fed = 0
        async with peer.pulling:
            try:
                size = tree_size(await self._get_json(peer, "/v1/log/head", {}))
                peer.seen_size = size
                if size < peer.log_index:
                    log.warning(
                        "peer %s: its log shrank to %d (below %d): pulling again from 0",
                        peer.url,
                        size,
                        peer.log_index,
                    )
                    peer.log_index = 0
                if peer.resume_leaf is not None:
                    if not await self._same_log(peer, size):
                        log.info(
                            "peer %s: its log is not the one catch-up stopped in at %d: "
                            "reading it from 0",
                            peer.url,
                            peer.log_index,
                        )
                        peer.log_index = 0
                    peer.resume_leaf = None
                while (start := peer.log_index) < size:
                    end = min(size, start + ENTRY_PAGE)
                    leaves, size = await self._entries(peer, start, end)
                    unknown = unknown_orders(leaves, start, known)
                    for run_start, run_end in _runs(unknown, PAGE):
                        got = await self._pull_run(peer, feed, run_start, run_end, set(unknown))
                        if got is None:
                            return fed  # pulled again next time
                        fed += got
                    peer.log_index = end
                    if self._positions is not None:
                        self._positions.put_catch_up_position(peer.url, end, leaves[-1])
            except _NETWORK_ERRORS as exc:
                log.warning("peer %s: catch-up stopped: %s", peer.url, _describe(exc))
        return fed

    async def _entries(self, peer: _Peer, start: int, end: int) -> tuple[list[bytes], int]:
        reply = await self._get_json(
            peer, "/v1/log/entries", {"start": str(start), "end": str(end)}
        )
        return entry_page(reply, start, end)

    async def _same_log(self, peer: _Peer, size: int) -> bool:
        """Whether the peer's log still holds, just before the saved position, the entry
        seen there (else the URL now serves another log: a moved endpoint, a wiped node)."""
        at = peer.log_index
        if not 0 < at <= size:
            return at == 0
        leaves, _ = await self._entries(peer, at - 1, at)
        return leaves[0] == peer.resume_leaf

    async def _pull_run(
        self, peer: _Peer, feed: CertificateFeed, start: int, end: int, wanted: set[int]
    ) -> int | None:
        """Feed the wanted certificates among the peer's entries ``start``..``end - 1``;
        how many, or None when applying them failed."""
        reply = await self._get_json(
            peer, "/v1/log/certificates", {"start": str(start), "end": str(end)}
        )
        page, _ = log_page(reply, start, end, peer.url)
        certificates = [c for index, c in page if index in wanted]
        # Fed together so that the writer commits them as one batch.
        outcomes = await asyncio.gather(*(feed(c) for c in certificates), return_exceptions=True)
        errors = [o for o in outcomes if isinstance(o, BaseException)]
        if errors:
            log.error(
                "catch-up from %s: applying entries %d..%d failed (%r); "
                "they are pulled again next time",
                peer.url,
                start,
                end - 1,
                errors[0],
            )
            return None
        return len(certificates)

    async def catch_up_forever(
        self, feed: CertificateFeed, interval: float, *, known: KnownDigest = _nothing_known
    ) -> None:
        """:meth:`catch_up` every ``interval`` seconds (the node :meth:`spawn` s this)."""
        while True:
            await self.catch_up(feed, known=known)
            await asyncio.sleep(interval)


def _runs(indices: list[int], longest: int) -> list[tuple[int, int]]:
    """Cover the sorted ``indices`` with ranges ``[start, end)`` of at most ``longest``
    entries, each starting and ending at a wanted index."""
    runs: list[tuple[int, int]] = []
    for index in indices:
        if runs and index < runs[-1][0] + longest:
            runs[-1] = (runs[-1][0], index + 1)
        else:
            runs.append((index, index + 1))
    return runs


async def _guarded(coroutine: Coroutine[Any, Any, None], name: str) -> None:
    try:
        await coroutine
    except Exception:
        log.exception("peer task %s failed", name)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    return str(exc) or type(exc).__name__
