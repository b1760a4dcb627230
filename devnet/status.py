"""What a running devnet looks like on chain, as data, as a table and as JSON.

Private keys never appear here: only addresses.
"""

from __future__ import annotations

import json
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eth_typing import ChecksumAddress
from web3 import Web3

from devnet.deploy import contract_at
from devnet.errors import StaleManifestError
from devnet.manifest import Contracts, Manifest


@dataclass(frozen=True, slots=True)
class Token:
    address: ChecksumAddress
    symbol: str
    decimals: int


@dataclass(frozen=True, slots=True)
class Price:
    """The feed's latest round: ``answer`` in units of 10**-decimals USD."""

    description: str
    answer: int
    decimals: int
    round_id: int
    updated_at: int


@dataclass(frozen=True, slots=True)
class NodeHealth:
    """What a member's ledger node says about itself (``up`` False: it did not answer)."""

    up: bool
    log_size: int | None = None
    checkpoint_size: int | None = None


@dataclass(frozen=True, slots=True)
class MemberStatus:
    address: ChecksumAddress
    endpoint: str
    bond: int  # FAR base units
    node: NodeHealth = NodeHealth(up=False)


def _get_json(url: str, timeout: float) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as reply:  # noqa: S310 (loopback URL)
        return json.loads(reply.read())


def read_node_health(endpoint: str, timeout: float = 1.0) -> NodeHealth:
    """Ask a node for its health and latest checkpoint; a silent node is ``up=False``."""
    try:
        health = _get_json(f"{endpoint}/v1/health", timeout)
    except (OSError, ValueError):
        return NodeHealth(up=False)
    try:
        checkpoint = _get_json(f"{endpoint}/v1/log/checkpoint", timeout)
        checkpoint_size = int(checkpoint["tree_size"])
    except (OSError, ValueError, KeyError, TypeError):
        checkpoint_size = None  # none signed yet (404), or no answer
    log_size = health.get("log_size") if isinstance(health, dict) else None
    return NodeHealth(
        up=True,
        log_size=log_size if isinstance(log_size, int) else None,
        checkpoint_size=checkpoint_size,
    )


@dataclass(frozen=True, slots=True)
class AgentStatus:
    address: ChecksumAddress
    stable: int  # USDF base units
    native: int  # FAR base units
    eth: int  # wei


@dataclass(frozen=True, slots=True)
class ProcessStatus:
    name: str
    pid: int
    running: bool


@dataclass(frozen=True, slots=True)
class DevnetStatus:
    """A snapshot of the devnet: from the manifest, the pid file and the chain."""

    state_dir: Path
    rpc_url: str
    chain_id: int
    block_number: int
    contracts: Contracts
    stable: Token
    native: Token
    price: Price
    epoch: int
    quorum: int
    members: tuple[MemberStatus, ...]
    agents: tuple[AgentStatus, ...]
    processes: tuple[ProcessStatus, ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready; token amounts are strings of base units (they exceed 2**53)."""
        return {
            "state_dir": str(self.state_dir),
            "rpc_url": self.rpc_url,
            "chain_id": self.chain_id,
            "block_number": self.block_number,
            "contracts": {
                "vault": self.contracts.vault,
                "stable": self.contracts.stable,
                "native": self.contracts.native,
                "price_feed": self.contracts.price_feed,
            },
            "tokens": {
                "stable": {"symbol": self.stable.symbol, "decimals": self.stable.decimals},
                "native": {"symbol": self.native.symbol, "decimals": self.native.decimals},
            },
            "price": {
                "description": self.price.description,
                "answer": str(self.price.answer),
                "decimals": self.price.decimals,
                "round_id": str(self.price.round_id),
                "updated_at": self.price.updated_at,
            },
            "epoch": self.epoch,
            "quorum": self.quorum,
            "members": [
                {
                    "address": m.address,
                    "endpoint": m.endpoint,
                    "bond": str(m.bond),
                    "node": {
                        "up": m.node.up,
                        "log_size": m.node.log_size,
                        "checkpoint_size": m.node.checkpoint_size,
                    },
                }
                for m in self.members
            ],
            "agents": [
                {
                    "address": a.address,
                    "stable": str(a.stable),
                    "native": str(a.native),
                    "eth": str(a.eth),
                }
                for a in self.agents
            ],
            "processes": [
                {"name": p.name, "pid": p.pid, "running": p.running} for p in self.processes
            ],
        }


def _token(w3: Web3, name: str, address: ChecksumAddress) -> Token:
    contract = contract_at(w3, name, address)
    return Token(address, contract.functions.symbol().call(), contract.functions.decimals().call())


def read_status(
    w3: Web3, manifest: Manifest, state_dir: Path, processes: tuple[ProcessStatus, ...]
) -> DevnetStatus:
    """Read the devnet's state from the chain; :class:`StaleManifestError` if the chain there
    is not the one ``manifest`` describes (anvil was restarted, or another chain)."""
    chain_id = w3.eth.chain_id
    if chain_id != manifest.chain_id:
        raise StaleManifestError(
            f"the chain at {manifest.rpc_url} has chain id {chain_id}, the manifest says "
            f"{manifest.chain_id}: run `devnet down` and `devnet up`"
        )
    c = manifest.contracts
    if not w3.eth.get_code(c.vault):
        raise StaleManifestError(
            f"no Vault code at {c.vault} on {manifest.rpc_url} (the chain was restarted?): "
            "run `devnet down` and `devnet up`"
        )
    vault = contract_at(w3, "Vault", c.vault)
    stable = contract_at(w3, "FarthingUSD", c.stable)
    native = contract_at(w3, "FarthingToken", c.native)
    feed = contract_at(w3, "PriceFeed", c.price_feed)

    epoch: int = vault.functions.currentEpoch().call()
    members, endpoints, quorum, _retired_at = vault.functions.committee(epoch).call()
    round_id, answer, _started, updated_at, _answered = feed.functions.latestRoundData().call()
    return DevnetStatus(
        state_dir=state_dir,
        rpc_url=manifest.rpc_url,
        chain_id=chain_id,
        block_number=w3.eth.block_number,
        contracts=c,
        stable=_token(w3, "FarthingUSD", c.stable),
        native=_token(w3, "FarthingToken", c.native),
        price=Price(
            description=feed.functions.description().call(),
            answer=answer,
            decimals=feed.functions.decimals().call(),
            round_id=round_id,
            updated_at=updated_at,
        ),
        epoch=epoch,
        quorum=quorum,
        members=tuple(
            MemberStatus(
                member,
                endpoint,
                vault.functions.bonds(member).call()[0],
                read_node_health(endpoint),
            )
            for member, endpoint in zip(members, endpoints, strict=True)
        ),
        agents=tuple(
            AgentStatus(
                agent.address,
                stable.functions.balanceOf(agent.address).call(),
                native.functions.balanceOf(agent.address).call(),
                w3.eth.get_balance(agent.address),
            )
            for agent in manifest.agents
        ),
        processes=processes,
    )


def format_units(amount: int, decimals: int, places: int = 2) -> str:
    """``amount`` base units as an exact decimal number, with at least ``places``
    decimals and no other trailing zeros: ``format_units(2_500_000, 6) == "2.50"``."""
    sign = "-" if amount < 0 else ""
    whole, frac = divmod(abs(amount), 10**decimals)
    digits = str(frac).rjust(decimals, "0").rstrip("0") if decimals else ""
    digits = digits.ljust(places, "0")
    return f"{sign}{whole}.{digits}" if digits else f"{sign}{whole}"


def _count(value: int | None) -> str:
    return "-" if value is None else str(value)


def format_status(status: DevnetStatus) -> str:
    """A readable multi-line table of ``status`` (addresses only, no keys)."""
    s, n, p = status.stable, status.native, status.price
    running = ", ".join(
        f"{proc.name} (pid {proc.pid}, {'running' if proc.running else 'NOT RUNNING'})"
        for proc in status.processes
    )
    lines = [
        f"devnet at {status.rpc_url}  (state dir {status.state_dir})",
        f"  chain id     {status.chain_id}",
        f"  block        {status.block_number}",
        f"  processes    {running or 'none recorded'}",
        "contracts",
        f"  vault        {status.contracts.vault}",
        f"  stable       {s.address}  {s.symbol}, {s.decimals} decimals",
        f"  native       {n.address}  {n.symbol}, {n.decimals} decimals",
        f"  price_feed   {status.contracts.price_feed}  {p.description}",
        f"price          {format_units(p.answer, p.decimals)} USD per {n.symbol}"
        f"  (round {p.round_id})",
        f"committee      epoch {status.epoch}, quorum {status.quorum} of {len(status.members)}",
        f"  {'member':<42}  {'bond (' + n.symbol + ')':>14}  {'node':<5} {'log':>6}"
        f" {'signed':>6}  endpoint",
    ]
    lines += [
        f"  {m.address:<42}  {format_units(m.bond, n.decimals):>14}"
        f"  {'up' if m.node.up else 'down':<5} {_count(m.node.log_size):>6}"
        f" {_count(m.node.checkpoint_size):>6}  {m.endpoint}"
        for m in status.members
    ]
    lines += [
        "agents",
        f"  {'address':<42}  {s.symbol:>14}  {n.symbol:>14}  {'ETH':>14}",
    ]
    lines += [
        f"  {a.address:<42}  {format_units(a.stable, s.decimals):>14}"
        f"  {format_units(a.native, n.decimals):>14}  {format_units(a.eth, 18):>14}"
        for a in status.agents
    ]
    return "\n".join(lines)
