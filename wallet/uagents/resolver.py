"""Where to send an agent's messages: its ``/submit`` URLs.

- :class:`StaticResolver`: a fixed map from agent address to endpoint URL(s);
- :class:`DirectoryResolver`: a Farthing node's directory (``GET
  /v1/directory/agents/{agent}``, docs/protocol.md 7.2). The record is verified here
  (signed by the agent's own key, for that agent, live): a node cannot redirect an
  agent's messages by serving a forged record. A mailbox-only agent (``"mailbox":
  true`` and no endpoints) resolves to that node's mailbox, ``{node}/v1/mailbox/{agent}``
  (docs/protocol.md 7.3), which answers HTTP 200 ``{"status": "stored", ...}``: the
  message is delivered, and the agent fetches it later (send to it in async mode: the
  answer carries no reply).

An endpoint is the full URL that receives envelopes (``http://host:port/submit``), as in
uAgents and in directory records.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Protocol

import aiohttp

from wallet.directory import signed_record_from_json
from wallet.errors import DeliveryFailed, WalletError
from wallet.uagents.directory_client import record_problem


class Resolver(Protocol):
    async def resolve(self, agent: str, session: aiohttp.ClientSession) -> tuple[str, ...]:
        """The agent's endpoints, best first; raises :class:`DeliveryFailed` if none."""
        ...


class StaticResolver:
    """A fixed map ``{agent address: endpoint URL or URLs}``."""

    def __init__(self, endpoints: Mapping[str, str | Iterable[str]] | None = None) -> None:
        self._endpoints: dict[str, tuple[str, ...]] = {}
        for agent, urls in (endpoints or {}).items():
            self.add(agent, urls)

    def add(self, agent: str, urls: str | Iterable[str]) -> None:
        self._endpoints[agent] = (urls,) if isinstance(urls, str) else tuple(urls)

    async def resolve(self, agent: str, session: aiohttp.ClientSession) -> tuple[str, ...]:
        urls = self._endpoints.get(agent)
        if not urls:
            raise DeliveryFailed(agent, "no endpoint known for this agent")
        return urls


class DirectoryResolver:
    """Reads the agent's signed record from the nodes' directory (``nodes``: one base URL
    or several, asked in turn until one serves a valid, live record of the agent: a node
    that is down, has no record or serves a bad one is passed over). The endpoints are
    the record's, else that node's mailbox URL if the record asks for a mailbox."""

    def __init__(
        self,
        nodes: str | Sequence[str],
        *,
        clock: Callable[[], float] = time.time,
        timeout: float = 5.0,
    ) -> None:
        urls = (nodes,) if isinstance(nodes, str) else tuple(nodes)
        self.nodes: tuple[str, ...] = tuple(dict.fromkeys(url.rstrip("/") for url in urls))
        if not self.nodes:
            raise ValueError("a directory resolver needs at least one node URL")
        self._clock = clock
        self._timeout = aiohttp.ClientTimeout(total=timeout)

    async def resolve(self, agent: str, session: aiohttp.ClientSession) -> tuple[str, ...]:
        problems: list[str] = []
        for node in self.nodes:
            try:
                return await self._resolve_at(node, agent, session)
            except DeliveryFailed as failure:
                problems.append(f"{node}: {failure.problem}")
        raise DeliveryFailed(agent, "; ".join(problems))

    async def _resolve_at(
        self, node: str, agent: str, session: aiohttp.ClientSession
    ) -> tuple[str, ...]:
        url = f"{node}/v1/directory/agents/{agent}"
        try:
            async with session.get(url, timeout=self._timeout) as response:
                if response.status == 404:
                    raise DeliveryFailed(agent, "not in the node's directory")
                if response.status != 200:
                    raise DeliveryFailed(agent, f"the directory answered {response.status}")
                body = await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as error:
            raise DeliveryFailed(agent, f"the directory did not answer: {error}") from None
        try:
            signed = signed_record_from_json(body)
        except WalletError as error:
            raise DeliveryFailed(agent, f"the directory's record is invalid: {error}") from None
        problem = record_problem(signed, self._clock(), agent)
        if problem is not None:
            raise DeliveryFailed(agent, f"the directory served {problem}")
        record = signed.record
        if record.endpoints:
            return record.endpoints
        if record.mailbox:
            return (f"{node}/v1/mailbox/{record.agent}",)
        raise DeliveryFailed(agent, "the record has neither an endpoint nor a mailbox")
