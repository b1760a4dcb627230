"""Talking to the other committee members: push what this node applied, fetch what it
misses, catch up on their logs.

Rule 1: nothing here decides anything about the ledger. Every certificate that comes from
a peer goes through the node's one :class:`~node.writer.Writer`, which verifies it like a
client's; a peer can waste a little of this node's time, never change its state wrongly.

Rule 2: a peer cannot break the node. Its replies are size-limited and checked
(:mod:`node.peers.replies`); a bad answer, an error status, a refused connection or a
timeout is logged and the peer skipped. No public method raises because of a peer.

Theory of operation
-------------------
:class:`PeerClient` owns one :class:`aiohttp.ClientSession` (keep-alive, a bounded pool)
and its tasks (in an :class:`asyncio.TaskGroup`; ``aclose`` stops them).

* **Push.** After each commit, the applied certificates are queued for every peer
  (:meth:`PeerClient.push` returns at once). One sender task per peer drains its queue in
  batches of up to 256 certificates (``POST /v1/certificates/batch``): whatever piled up
  while the last request was in flight goes in the next one. While a peer is down, the
  sender retries with exponential backoff and jitter, at most ``max_attempts`` times per
  batch, then drops the batch.

  Each queue is bounded (``queue_size``); when it is full the **oldest** certificate is
  dropped (logged, counted in :meth:`PeerClient.dropped`). Drop-oldest because the
  newest certificates are the ones a payee or a client is waiting on now, and an old one
  is the most likely to have reached the peer another way already (every node that
  applies a certificate pushes it). Nothing is lost for good: a certificate the peer
  receives ahead of a dropped one makes it fetch the gap (below), and catch-up pulls
  everything else.

* **Fetch.** A certificate ahead of its account's sequence makes the state machine emit
  ``RequestMissingCertificates``; :mod:`node.peers.effects` starts an owned task that asks
  the peers in random order (``GET /v1/accounts/{a}/certificates?first=&last=``), stops at
  the first that has them all, and applies what it got through the writer (retried a few
  times while some are still missing).

* **Catch-up.** :meth:`PeerClient.catch_up` reads each peer's log as entries
  (``GET /v1/log/entries?start=&end=``, an order's entry is its digest) from where the
  last pull stopped to its end, and fetches only the certificates of orders this node has
  not applied (``GET /v1/log/certificates?start=&end=``, in runs). Positions are saved
  in the node's store (``positions=``) with the entry before each: a restarted node
  resumes where it stopped if that peer's log still holds that entry, else reads it from
  0, which is safe because the writer recognises an applied certificate by its digest (a
  duplicate, no signature checked).

Wiring, in the node's process::

    async with PeerClient(peer_urls, PeerSettings(request_timeout=5.0)) as peers:
        effects = Effects(peers, writer)
        services = NodeServices(writer, store, address, committee, effects.on_events)
        peers.spawn(
            peers.catch_up_forever(effects.feed, 10.0, known=effects.known), name="catch-up"
        )
        ...  # serve the API until asked to stop
"""

from node.peers.client import CertificateFeed, PeerClient, PeerSettings
from node.peers.effects import Effects, EventSink, make_event_sink

__all__ = [
    "CertificateFeed",
    "Effects",
    "EventSink",
    "PeerClient",
    "PeerSettings",
    "make_event_sink",
]
