"""Live streams of an account's confirmed entries over WebSocket:
``GET /v1/accounts/{address}/stream[?from_index=N]`` (docs/protocol.md "Node API").

Rule 1: the writer is never slowed by a client. :class:`StreamHub` is a
:data:`~node.writer.CommitObserver`: after each commit it encodes each new entry that
touches a subscribed account once and puts it, without awaiting, on each of that
account's subscribers' bounded queues. A subscriber whose queue is full is not waited
for: it is dropped from the hub at once and its connection closed with code 4001
(``slow_consumer``); it reconnects with ``from_index`` and replays what it missed.

Rule 2: everything is bounded. Subscribers per node and per account, messages queued per
subscriber, entries scanned by a replay, the size of a client's frames.

Theory of operation
-------------------
Entries come from the writer's :class:`~node.writer.CommitReport`, so a stream sees
every entry whichever way it reached the node (a client, a peer's push, catch-up, the
chain), in log order. An entry touches the payer and the payee of a transfer, the
account of a withdrawal (not its on-chain recipient) and the beneficiary of a deposit.

Replay without gaps or repeats: the handler registers the subscriber and reads the log's
size ``H`` in one synchronous step (the writer cannot commit in between: one thread),
so every entry from ``H`` on reaches the queue, and the replay sends the entries
``from_index .. H-1`` from the store. The store has no index of an account's entries
(``s`` keys cover only the orders an account signed, not what it received), so a
replay scans the log: it is limited to the last :attr:`StreamSettings.max_replay`
entries (older history: ``/v1/log/certificates``), reads in chunks and yields to the
event loop between them. Deposits are replayed too: their leaf holds the beneficiary.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import json
import logging
from dataclasses import dataclass
from typing import Literal, TypedDict

from aiohttp import WSCloseCode, web

from node.api import SERVICES, ApiError
from node.errors import CorruptRecordError
from node.state.entries import DEPOSIT, parse_deposit_leaf
from node.store import LedgerStore
from node.writer import CommitReport
from wallet import wire
from wallet.codec import address_hex, parse_address
from wallet.errors import EncodingError
from wallet.types import Address, Certificate, Hash32, Transfer

log = logging.getLogger("farthing.node.stream")

STREAM_PATH = "/v1/accounts/{address}/stream"


class CloseCode(enum.IntEnum):
    """Close codes the node sends (RFC 6455 section 7.4; 4000-4999 are private)."""

    GOING_AWAY = WSCloseCode.GOING_AWAY  # 1001: the node is shutting down
    INTERNAL_ERROR = WSCloseCode.INTERNAL_ERROR  # 1011: the node failed to read its log
    SLOW_CONSUMER = 4001  # the client fell behind by more than the queue holds


@dataclass(frozen=True, slots=True)
class StreamSettings:
    """Limits of the account streams."""

    max_subscribers: int = 1_000  # per node
    max_per_account: int = 16
    queue_size: int = 256  # messages waiting for one subscriber before it is dropped
    max_replay: int = 10_000  # log entries a replay may scan (from_index >= size - this)
    replay_chunk: int = 256  # entries read between two yields to the event loop
    heartbeat: float = 30.0  # seconds between pings (aiohttp closes after a missed pong)
    close_timeout: float = 5.0  # seconds to send a close frame and hear the reply
    max_client_frame: int = 4_096  # the client has nothing to say; bytes per frame


# ---------------------------------------------------------------- messages


class DepositJSON(TypedDict):
    id: int
    beneficiary: str
    token: str
    amount: str


class OrderEntryMessage(TypedDict):
    type: Literal["transfer", "withdrawal"]
    log_index: int
    certificate: wire.CertificateJSON


class DepositEntryMessage(TypedDict):
    type: Literal["deposit"]
    log_index: int
    deposit: DepositJSON


class CaughtUpMessage(TypedDict):
    type: Literal["caught_up"]
    tree_size: int


def _dumps(message: OrderEntryMessage | DepositEntryMessage | CaughtUpMessage) -> str:
    return json.dumps(message, separators=(",", ":"))


def touched(leaf: bytes, certificate: Certificate | None) -> tuple[Address, ...]:
    """The accounts whose stream shows this entry."""
    if certificate is None:
        deposit = parse_deposit_leaf(leaf)
        return () if deposit is None else (deposit.beneficiary,)
    order = certificate.order
    if isinstance(order, Transfer) and order.payee != order.payer:
        return (order.payer, order.payee)
    return (order.owner,)


def entry_message(log_index: int, leaf: bytes, certificate: Certificate | None) -> str:
    """The JSON text of one log entry's message (docs/protocol.md "Node API")."""
    if certificate is not None:
        kind: Literal["transfer", "withdrawal"] = (
            "transfer" if isinstance(certificate.order, Transfer) else "withdrawal"
        )
        return _dumps(
            {
                "type": kind,
                "log_index": log_index,
                "certificate": wire.certificate_to_json(certificate),
            }
        )
    deposit = parse_deposit_leaf(leaf)
    if deposit is None:
        raise CorruptRecordError(f"log entry {log_index} is neither a deposit nor an order")
    return _dumps(
        {
            "type": "deposit",
            "log_index": log_index,
            "deposit": {
                "id": deposit.deposit_id,
                "beneficiary": address_hex(deposit.beneficiary),
                "token": address_hex(deposit.token),
                "amount": str(deposit.amount),
            },
        }
    )


# ---------------------------------------------------------------- the hub


class Subscriber:
    """One open stream: its account, the first log index it wants, and its queue of
    encoded messages. ``stopped`` is set when the hub drops it (``close_code`` says
    why); the connection's handler then closes the socket."""

    def __init__(self, account: Address, from_index: int, queue_size: int) -> None:
        self.account, self.from_index = account, from_index
        self.queue: asyncio.Queue[str] = asyncio.Queue(queue_size)
        self.stopped = asyncio.Event()
        self.close_code: CloseCode | None = None
        self.reason = ""

    def stop(self, code: CloseCode, reason: str) -> None:
        if self.close_code is None:
            self.close_code, self.reason = code, reason
            self.stopped.set()


class StreamHub:
    """The node's subscribers by account, fed by the writer (:meth:`observe_commit`)."""

    def __init__(self, settings: StreamSettings | None = None) -> None:
        self.settings = settings if settings is not None else StreamSettings()
        self._by_account: dict[Address, set[Subscriber]] = {}
        self.count = 0
        self.slow_disconnects = 0  # for metrics

    def subscribe(self, account: Address, from_index: int) -> Subscriber:
        """Register a subscriber to ``account``'s entries from log index ``from_index``;
        an :class:`~node.api.ApiError` (a JSON reply, before the upgrade) at a limit."""
        s = self.settings
        if self.count >= s.max_subscribers:
            raise ApiError(
                503, "too_many_streams", f"this node serves at most {s.max_subscribers} streams"
            )
        subscribers = self._by_account.setdefault(account, set())
        if len(subscribers) >= s.max_per_account:
            raise ApiError(
                429,
                "too_many_streams",
                f"at most {s.max_per_account} streams of one account at a time",
            )
        subscriber = Subscriber(account, from_index, s.queue_size)
        subscribers.add(subscriber)
        self.count += 1
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        subscribers = self._by_account.get(subscriber.account)
        if subscribers is None or subscriber not in subscribers:
            return
        subscribers.discard(subscriber)
        self.count -= 1
        if not subscribers:
            del self._by_account[subscriber.account]

    def close_all(self, code: CloseCode, reason: str) -> None:
        """Stop every subscriber (the node is shutting down)."""
        for subscribers in list(self._by_account.values()):
            for subscriber in list(subscribers):
                subscriber.stop(code, reason)
                self.unsubscribe(subscriber)

    def observe_commit(self, report: CommitReport) -> None:
        """Queue each new entry for the subscribers of the accounts it touches (a
        :data:`~node.writer.CommitObserver`: never awaits, never blocks)."""
        if not self._by_account:
            return
        index = report.first_log_index
        for t in report.transitions:
            for entry in t.log:
                self._publish(index, entry.leaf, entry.certificate)
                index += 1

    def _publish(self, index: int, leaf: bytes, certificate: Certificate | None) -> None:
        message: str | None = None
        for account in touched(leaf, certificate):
            subscribers = self._by_account.get(account)
            if not subscribers:
                continue
            if message is None:
                message = entry_message(index, leaf, certificate)
            for subscriber in list(subscribers):
                if index < subscriber.from_index:
                    continue
                try:
                    subscriber.queue.put_nowait(message)
                except asyncio.QueueFull:
                    self.slow_disconnects += 1
                    subscriber.stop(
                        CloseCode.SLOW_CONSUMER,
                        f"slow_consumer: more than {self.settings.queue_size} messages behind",
                    )
                    self.unsubscribe(subscriber)


# ---------------------------------------------------------------- the endpoint

STREAM_HUB = web.AppKey("stream_hub", StreamHub)


def _from_index(request: web.Request) -> int | None:
    raw = request.query.get("from_index")
    if raw is None:
        return None
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 20:
        raise EncodingError("from_index", "query parameter from_index must be a log index")
    return int(raw)


async def stream_account(request: web.Request) -> web.StreamResponse:
    """Every check (address, ``from_index``, limits, the upgrade itself) answers with a
    JSON error before the upgrade; after it, only close codes speak."""
    hub = request.app[STREAM_HUB]
    store = request.app[SERVICES].store
    s = hub.settings
    account = parse_address(request.match_info["address"])
    from_index = _from_index(request)
    ws = web.WebSocketResponse(
        heartbeat=s.heartbeat,
        timeout=s.close_timeout,
        compress=False,
        max_msg_size=s.max_client_frame,
    )
    if not ws.can_prepare(request).ok:
        raise ApiError(426, "upgrade_required", "this endpoint speaks WebSocket only")
    # Register and read the log's size in one synchronous step: see the module docstring.
    head = store.log_size()
    if from_index is not None and from_index < head - s.max_replay:
        raise ApiError(
            416,
            "bad_range",
            f"from_index must be at least {head - s.max_replay} (the last {s.max_replay} "
            "entries); read older ones from /v1/log/certificates",
        )
    subscriber = hub.subscribe(account, head if from_index is None else from_index)
    try:
        await ws.prepare(request)
        await _serve(ws, subscriber, store, from_index, head, s)
    finally:
        hub.unsubscribe(subscriber)
    return ws


async def _serve(
    ws: web.WebSocketResponse,
    subscriber: Subscriber,
    store: LedgerStore,
    from_index: int | None,
    head: int,
    s: StreamSettings,
) -> None:
    async def send() -> None:
        try:
            if from_index is not None:
                await _replay(ws, store, subscriber.account, from_index, head, s.replay_chunk)
            await ws.send_str(_dumps({"type": "caught_up", "tree_size": head}))
            while True:
                await ws.send_str(await subscriber.queue.get())
        except ConnectionError:
            return  # the client went away; the reader sees it too
        except Exception:
            log.exception("stream of %s failed", address_hex(subscriber.account))
            subscriber.stop(CloseCode.INTERNAL_ERROR, "internal error")

    async def read() -> None:
        # One-way stream: what a client sends is ignored; aiohttp answers pings and
        # close frames while this loop receives.
        async for _ in ws:
            pass

    async with asyncio.TaskGroup() as group:
        sending = group.create_task(send())
        reading = group.create_task(read())
        stopping = group.create_task(subscriber.stopped.wait())
        await asyncio.wait((sending, reading, stopping), return_when=asyncio.FIRST_COMPLETED)
        sending.cancel()  # it may be stuck writing to a client that does not read
        stopping.cancel()
        if subscriber.close_code is not None and not ws.closed:
            with contextlib.suppress(TimeoutError, ConnectionError):
                async with asyncio.timeout(s.close_timeout):
                    await ws.close(code=subscriber.close_code, message=subscriber.reason.encode())
        reading.cancel()


async def _replay(
    ws: web.WebSocketResponse,
    store: LedgerStore,
    account: Address,
    start: int,
    end: int,
    chunk: int,
) -> None:
    """Send ``account``'s entries among log entries ``start .. end-1``."""
    for first in range(start, end, chunk):
        messages = []
        for index in range(first, min(end, first + chunk)):
            leaf = store.leaf(index)
            certificate = None
            if leaf[0] != DEPOSIT:
                found = store.certificate(Hash32(leaf[1:]))
                if found is None:
                    raise CorruptRecordError(
                        f"log entry {index} names an order with no certificate"
                    )
                certificate = found[1]
            if account in touched(leaf, certificate):
                messages.append(entry_message(index, leaf, certificate))
        for message in messages:
            await ws.send_str(message)
        await asyncio.sleep(0)  # let the writer and other requests in between chunks


async def _close_streams(app: web.Application) -> None:
    app[STREAM_HUB].close_all(CloseCode.GOING_AWAY, "node shutting down")


def install(app: web.Application, hub: StreamHub) -> None:
    """Serve the account streams of ``hub`` on ``app`` (whose node must also register
    ``hub.observe_commit`` with its writer)."""
    app[STREAM_HUB] = hub
    app.router.add_get(STREAM_PATH, stream_account)
    app.on_shutdown.append(_close_streams)


__all__ = [
    "STREAM_HUB",
    "STREAM_PATH",
    "CaughtUpMessage",
    "CloseCode",
    "DepositEntryMessage",
    "DepositJSON",
    "OrderEntryMessage",
    "StreamHub",
    "StreamSettings",
    "Subscriber",
    "entry_message",
    "install",
    "touched",
]
