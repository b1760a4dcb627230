"""The node's events, performed: certificates to push, missing certificates to fetch.

:func:`make_event_sink` gives the ``on_events`` of :class:`~node.api.NodeServices`. It
runs on the API's request path, so it only queues work: pushes go to the peers'
outboxes, fetches become tasks owned by the :class:`~node.peers.client.PeerClient`; it
never awaits the network.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence

from node.errors import NodeError
from node.peers.client import PeerClient
from node.state import (
    Event,
    EventRefused,
    ReceiveCertificate,
    RefusalCode,
    RequestMissingCertificates,
    SendCertificateToPeers,
    Transition,
)
from node.writer import Writer
from wallet.types import Address, Certificate, Hash32

log = logging.getLogger("farthing.node.peers")

#: The API's ``on_events`` (node.api.EventSink).
EventSink = Callable[[Sequence[Event]], Awaitable[None]]


class EpochNotYetKnownError(NodeError):
    """A peer's certificate is of an epoch this node's chain follower has not seen start
    yet (it follows the Vault a little behind the peer): transient, pull it again later."""


class Effects:
    """Performs the events of the writer's transitions through a :class:`PeerClient`.

    A certificate fetched or pulled from a peer goes through the writer like any other;
    the events of that transition are performed too (an applied certificate is pushed on,
    as docs/protocol.md 1a says; one still ahead asks for what it misses).
    """

    def __init__(
        self,
        peers: PeerClient,
        writer: Writer,
        *,
        fetch_attempts: int = 3,
        retry_delay: float = 0.5,
        concurrent_fetches: int = 8,
        observe: Callable[[Certificate, Transition], object] = lambda c, t: None,
    ) -> None:
        self.peers, self.writer, self.observe = peers, writer, observe
        self.fetch_attempts, self.retry_delay = fetch_attempts, retry_delay
        self._fetch_slots = asyncio.Semaphore(concurrent_fetches)
        self._fetching: dict[Address, int] = {}  # account -> last sequence being fetched

    async def on_events(self, events: Sequence[Event]) -> None:
        pushes = [
            (e.digest, e.certificate) for e in events if isinstance(e, SendCertificateToPeers)
        ]
        if pushes:
            self.peers.push(pushes)
        for event in events:
            if isinstance(event, RequestMissingCertificates):
                self._request(event)

    async def feed(self, certificate: Certificate) -> None:
        """Apply a certificate from a peer, then perform the events of that."""
        t = await self.writer.apply(ReceiveCertificate(certificate))
        self.observe(certificate, t)
        await self.on_events(t.events)

    def known(self, digest: Hash32) -> bool:
        """Whether the order with ``digest`` is applied here (catch-up skips it)."""
        return self.writer.store.has_certificate(digest)

    async def feed_from_log(self, certificate: Certificate) -> None:
        """:meth:`feed` for catch-up: a certificate of an epoch later than this node's
        current one, refused as ``unknown_epoch``, raises :class:`EpochNotYetKnownError` so
        that catch-up does not move past it and pulls it again on its next round."""
        t = await self.writer.apply(ReceiveCertificate(certificate))
        self.observe(certificate, t)
        await self.on_events(t.events)
        if certificate.epoch > self.writer.context.current_epoch and any(
            isinstance(e, EventRefused) and e.code is RefusalCode.UNKNOWN_EPOCH for e in t.events
        ):
            raise EpochNotYetKnownError(
                f"a certificate of epoch {certificate.epoch}, which this node has not seen "
                "start on chain yet"
            )

    def _request(self, event: RequestMissingCertificates) -> None:
        account, last = event.account, event.last
        if self._fetching.get(account, -1) >= last:
            return  # a running fetch already covers these sequences
        self._fetching[account] = last
        self.peers.spawn(self._fetch(account, last), name=f"fetch {account.hex()} ..{last}")

    async def _fetch(self, account: Address, last: int) -> None:
        try:
            async with self._fetch_slots:
                for attempt in range(self.fetch_attempts):
                    first = self.writer.store.account(account).next_sequence
                    if first > last:
                        return
                    if attempt:
                        await asyncio.sleep(self.retry_delay * 2 ** (attempt - 1))
                    certificates = await self.peers.fetch_missing(account, first, last)
                    await asyncio.gather(*(self.feed(c) for c in certificates))
                if self.writer.store.account(account).next_sequence <= last:
                    log.warning(
                        "no peer gave the certificates of %s up to sequence %d; "
                        "catch-up or a later push will bring them",
                        account.hex(),
                        last,
                    )
        finally:
            if self._fetching.get(account) == last:
                del self._fetching[account]


def make_event_sink(peers: PeerClient, writer: Writer) -> EventSink:
    """The ``on_events`` for :class:`~node.api.NodeServices`. (A node that also catches up
    builds one :class:`Effects` and uses its ``on_events`` and ``feed``, so that fetches
    started from either are not duplicated.)"""
    return Effects(peers, writer).on_events
