"""One peer's outbound queue of certificates, and the retry delay while it is down.

Both are plain data structures: no sockets, no tasks (the sender in
:mod:`node.peers.client` drains the queue and sleeps the delays).
"""

from __future__ import annotations

import asyncio
import random
from collections import deque
from typing import NamedTuple

from wallet.types import Hash32


class Push(NamedTuple):
    """A certificate to push: its order's digest and its JSON text."""

    digest: Hash32
    body: bytes


class Outbox:
    """A bounded FIFO of certificates (:class:`Push`) waiting to be pushed to one peer.

    When it is full, :meth:`put` drops the **oldest** item to make room (see the package
    docstring for why); :attr:`dropped` counts those, for logs and tests.
    """

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("an outbox holds at least one item")
        self.capacity = capacity
        self.dropped = 0
        self._items: deque[Push] = deque()
        self._ready = asyncio.Event()

    def __len__(self) -> int:
        return len(self._items)

    def put(self, item: Push) -> bool:
        """Queue ``item``; False when the oldest item had to be dropped for it."""
        kept = True
        if len(self._items) >= self.capacity:
            self._items.popleft()
            self.dropped += 1
            kept = False
        self._items.append(item)
        self._ready.set()
        return kept

    async def wait(self) -> None:
        """Return when at least one item is queued."""
        await self._ready.wait()

    def take(self, max_items: int, max_bytes: int) -> list[Push]:
        """Remove and return the oldest items, at most ``max_items`` of them and (unless the
        first alone is larger) at most ``max_bytes`` of JSON text once joined."""
        batch: list[Push] = []
        size = 0
        while self._items and len(batch) < max_items:
            cost = len(self._items[0].body) + 1  # its comma
            if batch and size + cost > max_bytes:
                break
            batch.append(self._items.popleft())
            size += cost
        if not self._items:
            self._ready.clear()
        return batch


class Backoff:
    """Exponential backoff with jitter: after ``n`` consecutive failures the next try waits
    between half and all of ``min(cap, base * 2**n)`` seconds (so peers that went down
    together do not come back to a synchronized stampede)."""

    def __init__(self, base: float, cap: float, rng: random.Random | None = None) -> None:
        self.base, self.cap = base, cap
        self.failures = 0
        self._rng = rng if rng is not None else random.Random()

    def delay(self) -> float:
        ceiling: float = min(self.cap, self.base * 2.0 ** min(self.failures, 40))
        return ceiling / 2 + self._rng.uniform(0, ceiling / 2)

    def failed(self) -> None:
        self.failures += 1

    def succeeded(self) -> None:
        self.failures = 0
