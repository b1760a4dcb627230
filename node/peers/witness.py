"""Witnessing the peers' checkpoints: the shell around :mod:`node.witness`.

Every ``interval`` seconds, for each peer URL of the :class:`PeerClient` (concurrently;
the list follows :meth:`PeerClient.set_urls`):

1. ``GET /v1/log/checkpoint`` (a 404, no checkpoint yet, is skipped quietly);
2. if that checkpoint's size differs from the last one accepted from its node,
   ``GET /v1/log/consistency?first=&second=`` from the same URL;
3. :func:`node.witness.check`, then: an accepted checkpoint is stored as the node's last
   (``w`` records) with this node's signed :class:`~wallet.types.Cosignature` of it, which
   is also posted back to the node (``POST /v1/log/cosignatures``; retried every round
   until it is delivered); evidence is stored (``f`` records) and logged at ERROR once;
   a rejected reply is logged (at WARNING when the peer's problem changes, else DEBUG).

A peer that is down, slow or answers garbage is skipped this round; nothing here raises
because of a peer. A node with evidence against it is no longer witnessed: this node
will not countersign a log it caught forking (an operator clears the ``f`` record after
investigating).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any, assert_never

from node.peers.client import PeerClient
from node.peers.replies import BadReplyError
from node.store import LedgerStore
from node.witness import (
    Accepted,
    Evidence,
    ForkReport,
    Rejected,
    SignedCheckpoint,
    Unchanged,
    Witnessed,
    check,
    is_witnessable_by,
    proof_range,
    screen,
)
from wallet import wire
from wallet.chain import CommitteeInfo
from wallet.codec import address_hex, parse_hash32
from wallet.errors import EncodingError
from wallet.signing import PrivateKey, sign_cosignature
from wallet.types import Address, Cosignature, Domain, Hash32

log = logging.getLogger("farthing.node.witness")

#: No valid consistency proof of uint64 sizes is longer (two hashes per tree level).
MAX_PROOF = 128


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def consistency_reply(reply: Any, first: int, second: int) -> list[Hash32]:
    """The proof of a ``/v1/log/consistency?first=&second=`` reply, which must be for
    those sizes. Its hashes are only parsed here: whether they prove anything is
    :func:`node.witness.check`'s business."""
    if not isinstance(reply, dict) or (reply.get("first"), reply.get("second")) != (
        first,
        second,
    ):
        raise BadReplyError(f"expected a consistency proof from {first} to {second}")
    items = reply.get("proof")
    if not isinstance(items, list) or len(items) > MAX_PROOF:
        raise BadReplyError(f"the proof is not a list of at most {MAX_PROOF} hashes")
    try:
        return [parse_hash32(item) for item in items]
    except (EncodingError, TypeError, AttributeError):
        raise BadReplyError("a proof hash is not 0x and 64 hex digits") from None


class Witness:
    """This node's witness of its peers' logs; :meth:`run_forever` is spawned in the
    node's :class:`PeerClient` (which owns it and its HTTP session)."""

    def __init__(
        self,
        peers: PeerClient,
        store: LedgerStore,
        key: PrivateKey,
        domain: Domain,
        committee: Callable[[], CommitteeInfo],
        *,
        clock: Callable[[], int] = _now_ms,
    ) -> None:
        self.peers, self.store, self.key, self.domain = peers, store, key, domain
        self.committee, self.clock = committee, clock
        self._problems: dict[str, str] = {}  # url -> the last problem logged at WARNING
        self._delivered: set[Address] = set()  # nodes holding our latest cosignature

    async def run_forever(self, interval: float) -> None:
        while True:
            await self.witness_all()
            await asyncio.sleep(interval)

    async def witness_all(self) -> None:
        """One round: every peer URL, concurrently."""
        await asyncio.gather(*(self.witness(url) for url in self.peers.urls))

    async def witness(self, url: str) -> None:
        """One round for one peer URL; never raises because of the peer."""
        try:
            await self._witness(url)
        except BadReplyError as exc:
            self._problem(url, f"skipped: {exc}")

    async def _witness(self, url: str) -> None:
        reply = await self.peers.get_json(url, "/v1/log/checkpoint")
        if reply is None:
            return  # the peer's log is still empty
        try:
            new = wire.signed_checkpoint_from_json(reply)
        except EncodingError as exc:
            raise BadReplyError(f"the checkpoint does not decode: {exc}") from None
        info = self.committee()
        members = info.members
        # The member whose endpoint ``url`` is, if it is one (a --peer URL may not be).
        owners = {e.rstrip("/"): m for m, e in zip(members, info.endpoints, strict=True)}
        refusal = is_witnessable_by(new[0], owners.get(url), self.key.address, members)
        if refusal is not None:
            self._problem(url, f"refused {refusal}")
            return
        peer = new[0].node
        if self.store.evidence(peer) is not None:
            log.debug("peer %s: %s forked before; not witnessed", url, address_hex(peer))
            return
        rejected = screen(self.domain, peer, new)
        if rejected is not None:
            self._problem(url, f"refused a checkpoint of {address_hex(peer)}: {rejected.reason}")
            return
        last = self.store.witnessed(peer)
        last_checkpoint = None if last is None else last.checkpoint
        needed = proof_range(None if last is None else last.checkpoint[0], new[0])
        proof = None
        if needed is not None:
            first, second = needed
            params = {"first": str(first), "second": str(second)}
            found = await self.peers.get_json(url, "/v1/log/consistency", params)
            if found is None:
                raise BadReplyError(f"no consistency proof from {first} to {second}")
            proof = consistency_reply(found, first, second)
        verdict = check(self.domain, peer, last_checkpoint, new, proof)
        match verdict:
            case Accepted(checkpoint=checkpoint):
                record = self._cosign(checkpoint)
                self.store.put_witnessed(record)
                self._delivered.discard(peer)
                self._problems.pop(url, None)
                log.debug(
                    "witnessed %s at tree size %d", address_hex(peer), record.cosignature.tree_size
                )
                await self._deliver(url, record)
            case Unchanged():
                self._problems.pop(url, None)
                if last is not None and peer not in self._delivered:
                    await self._deliver(url, last)
            case Evidence():
                self._report(url, verdict)
            case Rejected(reason=reason):
                self._problem(url, f"refused a checkpoint of {address_hex(peer)}: {reason}")
            case _:
                assert_never(verdict)

    def _cosign(self, checkpoint: SignedCheckpoint) -> Witnessed:
        head = checkpoint[0]
        cosignature = Cosignature(
            self.key.address, head.node, head.tree_size, head.root, self.clock()
        )
        signature = sign_cosignature(self.key, self.domain, cosignature)
        return Witnessed(checkpoint, cosignature, signature)

    async def _deliver(self, url: str, record: Witnessed) -> None:
        """Post our cosignature to the node it vouches for (best effort: a failure is
        retried next round; a refusal is logged and not retried)."""
        body = wire.signed_cosignature_to_json(record.cosignature, record.signature)
        try:
            status = await self.peers.post_json(url, "/v1/log/cosignatures", body)
        except BadReplyError as exc:
            log.debug("peer %s: cosignature not delivered: %s", url, exc)
            return
        if status >= 500 or status in (408, 429):
            log.debug("peer %s: cosignature not delivered: HTTP %d", url, status)
            return
        if status != 200:
            log.warning("peer %s refused this node's cosignature: HTTP %d", url, status)
        self._delivered.add(record.checkpoint[0].node)

    def _report(self, url: str, evidence: Evidence) -> None:
        report = ForkReport(evidence, url, self.clock())
        if self.store.put_evidence(report):
            log.error(
                "FORK: node %s at %s signed two checkpoints that cannot both be true (%s, "
                "tree sizes %d and %d): %s; the evidence is at GET /v1/log/evidence",
                address_hex(evidence.node),
                url,
                evidence.kind.value,
                evidence.first[0].tree_size,
                evidence.second[0].tree_size,
                evidence.detail,
            )

    def _problem(self, url: str, problem: str) -> None:
        """Log a peer's problem at WARNING when it changes, else at DEBUG (once a round
        would flood the log while a peer is down)."""
        level = logging.DEBUG if self._problems.get(url) == problem else logging.WARNING
        self._problems[url] = problem
        log.log(level, "witnessing peer %s: %s", url, problem)
