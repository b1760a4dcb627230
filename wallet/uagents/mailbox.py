"""An offline agent's mailbox poller: fetch the envelopes the nodes kept for it
(docs/protocol.md 7.3) and hand each to the agent, as if it had reached ``POST /submit``.

::

    poller = MailboxPoller(agent, key, directory)   # directory: a DirectoryClient
    async with agent:
        task = asyncio.create_task(poller.run())     # until cancelled

Each node keeps its own mailbox (a sender's resolver picks one node), so every node of
the client is polled. One poll of a node is one signed fetch (``sign_fetch``, naming the
node's address from ``GET /v1/health``) that acknowledges the envelopes handled since
the previous one; each fetched envelope is re-serialized as compact JSON and passed to
:meth:`~wallet.uagents.agent.Agent.receive`. Delivery is at least once: an envelope is
deleted only by a later fetch's ``ack``, so one whose handling was interrupted comes
again, and the agent's replay guard drops the copies it already handled (a restarted
agent, whose guard is new, may handle one twice). An envelope the agent refuses (a bad
signature, a replay: HTTP 400) is acknowledged too: it will never pass; one refused as
retryable (HTTP 503, the replay guard is full) is not, and ends that node's batch.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import TYPE_CHECKING, Final

from wallet.directory import MAX_FETCH
from wallet.errors import DirectoryRefused, DirectoryUnavailable, InvalidKey, WalletError
from wallet.keys import agent_address
from wallet.signing import PrivateKey
from wallet.types import Address
from wallet.uagents.directory_client import DirectoryClient, MailboxEnvelope

if TYPE_CHECKING:
    from wallet.uagents.agent import Agent

__all__ = ["MailboxPoller"]

log = logging.getLogger("wallet.uagents.mailbox")

#: The status Agent.receive answers for a refusal that may pass later (guard full).
_RETRY_LATER: Final = 503


class MailboxPoller:
    """Polls ``agent``'s mailbox on every node of ``directory`` every ``interval``
    seconds (at once again while a node keeps more); ``key`` signs the fetches and must
    be the agent's. See the module docstring."""

    def __init__(
        self,
        agent: Agent,
        key: PrivateKey,
        directory: DirectoryClient,
        *,
        interval: float = 5.0,
        limit: int = 20,
    ) -> None:
        if agent_address(key) != agent.address:
            raise InvalidKey(f"this key is not the key of {agent.address}")
        if not 1 <= limit <= MAX_FETCH:
            raise ValueError(f"limit must be from 1 to {MAX_FETCH}")
        self.agent = agent
        self.directory = directory
        self.interval = interval
        self.limit = limit
        self._key = key
        self._acks: dict[str, int] = dict.fromkeys(directory.nodes, 0)
        self._addresses: dict[str, Address] = {}
        self._more: set[str] = set()
        #: Each node's error in the last :meth:`fetch_once` (none: it answered).
        self.faults: dict[str, WalletError] = {}

    def __repr__(self) -> str:
        return f"MailboxPoller(agent={self.agent.address!r}, nodes={self.directory.nodes!r})"

    async def fetch_once(self) -> int:
        """One fetch from every node (acknowledging what was handled before), each
        envelope handed to the agent in id order; the number handed over. A failing
        node is logged and kept in :attr:`faults`; raises
        :class:`~wallet.errors.DirectoryUnavailable` if every node failed."""
        results = await asyncio.gather(*(self._poll(node) for node in self.directory.nodes))
        polled = zip(self.directory.nodes, results, strict=True)
        self.faults = {node: r for node, r in polled if isinstance(r, WalletError)}
        if len(self.faults) == len(results):
            raise DirectoryUnavailable(f"fetching {self.agent.address}'s mailbox", self.faults)
        return sum(r for r in results if isinstance(r, int))

    async def run(self) -> None:
        """Polls until cancelled; errors are logged and the next poll tries again."""
        while True:
            try:
                await self.fetch_once()
            except WalletError as error:
                log.warning("mailbox poll failed: %s", error)
            if not self._more:
                await asyncio.sleep(self.interval)

    async def _poll(self, node: str) -> int | WalletError:
        try:
            address = self._addresses.get(node)
            if address is None:
                address = await self.directory.node_address(node)
                self._addresses[node] = address
            batch = await self.directory.fetch_mailbox(
                self._key, node, node_address=address, ack=self._acks[node], limit=self.limit
            )
        except WalletError as error:
            if isinstance(error, DirectoryRefused) and error.code == "wrong_node":
                self._addresses.pop(node, None)  # read its address again next time
            log.info("mailbox fetch from %s failed: %s", node, error)
            self._more.discard(node)
            return error
        handled = 0
        for kept in batch.envelopes:
            if not await self._hand_over(node, kept):
                break
            self._acks[node] = kept.id
            handled += 1
        finished = handled == len(batch.envelopes)
        if finished and batch.remaining > len(batch.envelopes):
            self._more.add(node)
        else:
            self._more.discard(node)
        return handled

    async def _hand_over(self, node: str, kept: MailboxEnvelope) -> bool:
        """Passes one envelope to the agent; False if it should come again later."""
        body = json.dumps(kept.envelope, separators=(",", ":"), ensure_ascii=False).encode()
        try:
            status, _ = await self.agent.receive(body)
        except Exception:
            # Agent.receive answers every envelope; an exception is a bug, and blocking
            # the mailbox on it forever would be worse than dropping the envelope.
            log.exception("the agent failed on envelope %d from %s; dropped", kept.id, node)
            return True
        if status == _RETRY_LATER:
            log.info("envelope %d from %s refused for now; kept for later", kept.id, node)
            return False
        if status != 200:
            log.info("envelope %d from %s refused (HTTP %d)", kept.id, node, status)
        return True
