"""A directory resolver that remembers what it resolved for a while.

The agents resolve each other through the nodes' directory
(:class:`~wallet.uagents.resolver.DirectoryResolver`: the signed record is fetched and
verified). A metered session sends a few messages per request, so the verified endpoints
are kept ``ttl`` seconds instead of asking a node for every message.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import aiohttp

from wallet.uagents.resolver import Resolver


class CachingResolver:
    """Resolves through ``inner`` and keeps each answer ``ttl`` seconds."""

    def __init__(
        self, inner: Resolver, *, ttl: float = 60.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._inner = inner
        self._ttl = ttl
        self._clock = clock
        self._known: dict[str, tuple[float, tuple[str, ...]]] = {}
        self.lookups = 0  # answers fetched from the inner resolver

    async def resolve(self, agent: str, session: aiohttp.ClientSession) -> tuple[str, ...]:
        now = self._clock()
        known = self._known.get(agent)
        if known is not None and now < known[0]:
            return known[1]
        endpoints = await self._inner.resolve(agent, session)
        self.lookups += 1
        self._known[agent] = (now + self._ttl, endpoints)
        return endpoints
