"""Directory gossip: the shell that carries agent records between the nodes
(docs/protocol.md 7.4). The rules stay node.directory's; every record a peer sends goes
through the same checks as a client's, so a peer can waste a little time, never plant a
record its agent did not sign.

* **Forward.** :meth:`DirectoryGossip.forward` is the directory's ``on_stored`` hook: a
  record that ``POST /v1/directory`` stored (new, or replacing an older one) is queued and
  the call returns at once. The queue is bounded (``queue_size``); when it is full the
  record is dropped (logged at DEBUG, counted in :attr:`DirectoryGossip.dropped`): the
  pull below brings it. ``senders`` tasks drain the queue; each posts one record to every
  peer at the time (``POST /v1/directory``, concurrently), once, within ``timeout``
  seconds. No retries: a peer that was down gets the record from its own pull. Answers
  200 (``stored``/``unchanged``) and 409 (``old_sequence``) are normal; anything else is
  logged at INFO (the status and the agent, never the record), a failure at DEBUG.

  A peer stores the record and forwards it in turn; a node that already has it answers
  ``unchanged`` and forwards nothing, so a flood stops after each node has forwarded a
  record once (at most n·(n − 1) posts for n nodes).

* **Pull (anti-entropy).** :meth:`DirectoryGossip.pull_forever` asks every peer at once on
  start and then every ``pull_interval`` seconds for its live records, a page at a time
  (``GET /v1/directory/records?after=&limit=``), at most ``pull_pages`` pages per peer a
  round (a round that stops early resumes where it stopped; one that reached the end
  starts from the first agent next time). Each record whose sequence is greater than the
  kept one is checked and stored like a client's (:func:`node.directory_api.register`
  with ``pulled=True``); pulled records are **not** forwarded (every node pulls from
  every peer itself). A peer that answers 404 (no listing route) is skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from node.directory import Refused
from node.peers.replies import BadReplyError
from wallet.directory import SignedRecord, signed_record_from_json, signed_record_to_json
from wallet.errors import EncodingError
from wallet.keys import parse_agent_address

log = logging.getLogger("farthing.node.directory.gossip")

RECORD_PATH = "/v1/directory"
LISTING_PATH = "/v1/directory/records"
#: Peer answers to a forwarded record that are part of normal operation.
NORMAL_ANSWERS = frozenset({200, 409})

#: What a pulled record is handed to (the node: node.directory_api.register_pulled); a
#: :class:`~node.directory.Refused` result is logged.
Apply = Callable[[SignedRecord], object]


class DirectoryPeers(Protocol):
    """What gossip needs of :class:`~node.peers.client.PeerClient`."""

    @property
    def urls(self) -> list[str]: ...

    async def post_json(self, url: str, path: str, body: object) -> int: ...

    async def get_json(self, url: str, path: str, params: dict[str, str] | None = None) -> Any: ...


@dataclass(frozen=True, slots=True)
class GossipSettings:
    queue_size: int = 1_000  # records waiting to be forwarded; new ones dropped when full
    senders: int = 4  # records forwarded concurrently (each to every peer at once)
    timeout: float = 2.0  # seconds for one forward or one listing page
    pull_interval: float = 30.0  # seconds between pulls from every peer
    pull_page: int = 100  # records per listing page (the route's most)
    pull_pages: int = 100  # pages per peer per pull round


class DirectoryGossip:
    """Forwarding stored records to the peers, and pulling theirs (module docstring).

    Run :meth:`run` (the senders) and :meth:`pull_forever` as tasks owned by the node's
    :class:`~node.peers.client.PeerClient` (``peers.spawn``); nothing here raises because
    of a peer."""

    def __init__(self, peers: DirectoryPeers, settings: GossipSettings | None = None) -> None:
        self.peers = peers
        self.settings = settings if settings is not None else GossipSettings()
        self.dropped = 0  # records not queued because the queue was full
        self.forwarded = 0  # records offered to the peers (whatever they answered)
        self._queue: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue(
            self.settings.queue_size
        )
        self._cursors: dict[str, str | None] = {}  # pull: where each peer's round stopped

    def queued(self) -> int:
        return self._queue.qsize()

    # ------------------------------------------------------------ forward

    def forward(self, signed: SignedRecord) -> None:
        """Queue ``signed`` for every peer; returns at once, never raises."""
        item = (signed.record.agent, dict(signed_record_to_json(signed)))
        try:
            self._queue.put_nowait(item)
        except asyncio.QueueFull:
            self.dropped += 1
            log.debug(
                "directory gossip queue full (%d): dropped the record of %s (%d so far)",
                self.settings.queue_size,
                item[0],
                self.dropped,
            )

    async def run(self) -> None:
        """The senders, until cancelled."""
        async with asyncio.TaskGroup() as group:
            for _ in range(self.settings.senders):
                group.create_task(self._sender())

    async def _sender(self) -> None:
        while True:
            agent, body = await self._queue.get()
            try:
                urls = list(self.peers.urls)
                if urls:
                    await asyncio.gather(*(self._send(url, agent, body) for url in urls))
                    self.forwarded += 1
            finally:
                self._queue.task_done()

    async def _send(self, url: str, agent: str, body: dict[str, Any]) -> None:
        try:
            async with asyncio.timeout(self.settings.timeout):
                status = await self.peers.post_json(url, RECORD_PATH, body)
        except (BadReplyError, TimeoutError) as exc:
            log.debug("peer %s: forwarding the record of %s failed: %s", url, agent, exc)
            return
        except Exception:  # a peer must not stop a sender
            log.exception("peer %s: forwarding the record of %s failed", url, agent)
            return
        if status not in NORMAL_ANSWERS:
            log.info("peer %s answered HTTP %d to the record of %s", url, status, agent)

    async def drain(self) -> None:
        """Return when every queued record has been handed to the peers (tests)."""
        await self._queue.join()

    # ------------------------------------------------------------ pull

    async def pull(self, apply: Apply) -> int:
        """One round: pull every peer's live records (concurrently), handing each to
        ``apply``; how many records were handed over."""
        urls = list(self.peers.urls)
        counts = await asyncio.gather(*(self._pull_peer(url, apply) for url in urls))
        return sum(counts)

    async def _pull_peer(self, url: str, apply: Apply) -> int:
        s = self.settings
        handed = 0
        after = self._cursors.get(url)
        try:
            for _ in range(s.pull_pages):
                params = {"limit": str(s.pull_page)}
                if after is not None:
                    params["after"] = after
                async with asyncio.timeout(s.timeout):
                    reply = await self.peers.get_json(url, LISTING_PATH, params)
                if reply is None:
                    log.debug("peer %s has no directory listing: not pulled", url)
                    return handed
                records, after = listing_page(reply, s.pull_page)
                for signed in records:
                    handed += 1
                    outcome = apply(signed)
                    if isinstance(outcome, Refused):
                        log.info(
                            "peer %s listed a record of %s that this node refuses: %s",
                            url,
                            signed.record.agent,
                            outcome.code.value,
                        )
                if after is None:
                    break
                await asyncio.sleep(0)  # let the API serve between pages
        except (BadReplyError, TimeoutError) as exc:
            log.debug("peer %s: directory pull stopped: %s", url, exc)
        except Exception:
            log.exception("peer %s: directory pull failed", url)
        self._cursors[url] = after
        return handed

    async def pull_forever(self, apply: Apply) -> None:
        """:meth:`pull` on start and then every ``pull_interval`` seconds."""
        while True:
            with contextlib.suppress(Exception):
                await self.pull(apply)
            await asyncio.sleep(self.settings.pull_interval)


def listing_page(reply: Any, limit: int) -> tuple[list[SignedRecord], str | None]:
    """The records and the ``next`` cursor of a listing page; raises
    :class:`BadReplyError` for a page that is not one."""
    if not isinstance(reply, dict) or set(reply) != {"records", "next"}:
        raise BadReplyError('expected an object with "records" and "next"')
    raw, after = reply["records"], reply["next"]
    if not isinstance(raw, list) or len(raw) > limit:
        raise BadReplyError(f"expected at most {limit} records")
    if after is not None:
        if not isinstance(after, str):
            raise BadReplyError('"next" must be an agent address or null')
        try:
            parse_agent_address(after, field="next")
        except EncodingError as exc:
            raise BadReplyError(str(exc)) from None
    try:
        records = [signed_record_from_json(item) for item in raw]
    except EncodingError as exc:
        raise BadReplyError(f"a listed record does not decode: {exc}") from None
    return records, after
