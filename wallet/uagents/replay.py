"""The replay and expiry guard uAgents lacks: pure, bounded, with time passed in.

uagents enforces neither ``expires`` nor ``nonce``: an envelope captured once is handled
again an hour later. :class:`ReplayGuard` remembers the signed digest
(:func:`~wallet.uagents.envelope.envelope_digest`) of every envelope it accepted until that
envelope expires, and refuses:

- ``stale``: ``expires`` is not after ``now`` (:class:`~wallet.errors.StaleEnvelope`);
- ``too_far_ahead``: ``expires`` is more than ``max_lifetime`` seconds after ``now`` (the
  guard would have to remember it for too long);
- ``no_expiry``: no ``expires`` while ``require_expires`` is set; otherwise such an
  envelope is remembered for ``default_lifetime`` seconds, and a replay after that is not
  caught (set ``require_expires`` where every peer sends ``expires``);
- ``replayed``: a digest it accepted before and still remembers
  (:class:`~wallet.errors.ReplayedEnvelope`). The digest does not cover the signature, so
  the same envelope signed again (uagents signs with a random k) or with ``s`` replaced by
  ``n - s`` is still a replay;
- ``guard_full``: ``capacity`` unexpired digests are remembered already
  (:class:`~wallet.errors.ReplayGuardFull`, retryable). It fails closed: forgetting an
  unexpired digest would let its envelope be replayed.

Check the signature first (:func:`~wallet.uagents.envelope.check_envelope_signature`): an
unsigned or forged envelope must not take a place in the guard. ``now`` is unix seconds
from the caller's clock; nothing here reads a clock or does I/O. A restarted process
starts with an empty guard, so envelopes it accepted before the restart and that have
not expired could be replayed once, unless the agent keeps a
:class:`~wallet.uagents.replay_journal.ReplayJournal` (each accepted digest written to
disk before the envelope is handled, and :meth:`ReplayGuard.remember`-ed on start).
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import NamedTuple

from wallet.errors import EnvelopeRefused, ReplayedEnvelope, ReplayGuardFull, StaleEnvelope
from wallet.uagents.envelope import Envelope, envelope_digest


class Accepted(NamedTuple):
    """An envelope the guard accepted: its signed digest, remembered until ``until``."""

    digest: bytes
    until: float


@dataclass
class ReplayGuard:
    """Remembers accepted envelope digests until they expire (see the module docstring)."""

    capacity: int = 100_000
    max_lifetime: int = 3_600
    default_lifetime: int = 300
    require_expires: bool = False
    _expiry: dict[bytes, float] = field(default_factory=dict, init=False, repr=False)
    _queue: list[tuple[float, bytes]] = field(default_factory=list, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.capacity < 1 or self.max_lifetime < 1 or self.default_lifetime < 1:
            raise ValueError("capacity and lifetimes must be positive")

    def __len__(self) -> int:
        """How many digests are remembered (expired ones go at the next check)."""
        return len(self._expiry)

    def _forget_expired(self, now: float) -> None:
        while self._queue and self._queue[0][0] <= now:
            until, digest = heapq.heappop(self._queue)
            if self._expiry.get(digest) == until:  # not forgotten or remembered anew
                del self._expiry[digest]

    def check(self, envelope: Envelope, now: float) -> Accepted:
        """Accepts ``envelope`` at time ``now`` (unix seconds) and remembers its digest, or
        raises :class:`~wallet.errors.EnvelopeRefused` saying why not (nothing is
        remembered then)."""
        digest = envelope_digest(envelope)
        name = digest.hex()
        self._forget_expired(now)
        if envelope.expires is None:
            if self.require_expires:
                raise EnvelopeRefused("no_expiry", name, "no expires (this agent needs one)")
            until: float = now + self.default_lifetime
        else:
            until = envelope.expires
            if until <= now:
                raise StaleEnvelope(
                    "stale", name, f"expired at {until}, {now - until:g} s before {now:g}"
                )
            if until > now + self.max_lifetime:
                raise EnvelopeRefused(
                    "too_far_ahead",
                    name,
                    f"expires {until - now:g} s from now, more than {self.max_lifetime} s",
                )
        if digest in self._expiry:
            raise ReplayedEnvelope("replayed", name, "already received (a replay)")
        if len(self._expiry) >= self.capacity:
            raise ReplayGuardFull(
                "guard_full", name, f"{self.capacity} unexpired envelopes remembered already"
            )
        self._expiry[digest] = until
        heapq.heappush(self._queue, (until, digest))
        return Accepted(digest, until)

    def remember(self, accepted: Accepted, now: float) -> bool:
        """Remembers a digest accepted before (by a previous run: see
        :mod:`.replay_journal`) unless it has expired by ``now`` or is known; whether it
        was added. The capacity bounds new envelopes only."""
        if accepted.until <= now or accepted.digest in self._expiry:
            return False
        self._expiry[accepted.digest] = accepted.until
        heapq.heappush(self._queue, (accepted.until, accepted.digest))
        return True

    def forget(self, accepted: Accepted) -> None:
        """Undoes :meth:`check` for an envelope that could not be handled after all (its
        digest could not be written to the journal): the sender may send it again."""
        if self._expiry.get(accepted.digest) == accepted.until:
            del self._expiry[accepted.digest]

    def remembered(self, now: float) -> Iterator[Accepted]:
        """Every digest remembered and not expired by ``now``."""
        for digest, until in self._expiry.items():
            if until > now:
                yield Accepted(digest, until)
