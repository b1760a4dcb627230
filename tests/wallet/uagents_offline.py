"""A real uagents 0.26.1 ``Agent`` kept off the network, for the interop scripts
(tests/wallet/uagents_seller.py, uagents_buyer.py), which run it in a subprocess.

Out of the box an Agent contacts the Fetch ledger when it is built, posts its status to
the Almanac API, reports events and binds 0.0.0.0. :func:`offline_agent` binds 127.0.0.1,
builds no Almanac contract, posts no status, reports no events, points its Agentverse at
a closed loopback port and resolves peers from a fixed map. ``uagents`` is imported
here, when called, not by the test process (its import warns, and pytest makes warnings
errors).
"""

from __future__ import annotations

import socket
from typing import Any


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def offline_agent(name: str, port: int, seed: str, peers: dict[str, str]) -> Any:
    """A uagents Agent named ``name`` serving 127.0.0.1:``port``, its key derived from
    ``seed``, reaching ``peers`` ({agent address: /submit URL}) only."""
    import uagents.agent
    import uagents.asgi
    from uagents import Agent
    from uagents.resolver import RulesBasedResolver

    uagents.asgi.HOST = "127.0.0.1"
    uagents.agent.get_almanac_contract = lambda *args, **kwargs: None  # type: ignore[assignment]

    async def no_status(self: Any, active: bool) -> None:
        return None

    uagents.agent.Agent._update_agent_status = no_status  # type: ignore[method-assign]
    return Agent(
        name=name,
        port=port,
        seed=seed,
        agentverse=f"http://127.0.0.1:{_closed_port()}",
        resolve=RulesBasedResolver(peers),
        report_events=False,
        enable_agent_inspector=False,
        shutdown_timeout=2.0,
        mark_inactive_on_shutdown=False,
    )
