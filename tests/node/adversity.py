"""Helpers of the adversity tests (test_partition.py, test_equivocation.py): deposits
that back the ledger accounts, and what "the nodes agree" means when each node logs
concurrent payments in the order it applied them (docs/protocol.md 1a)."""

from __future__ import annotations

import os
import subprocess
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager

from web3 import Web3

from contracts import load_artifact
from devnet import Devnet
from devnet.anvil import PROJECT_ROOT
from devnet.files import write_private_file
from devnet.manifest import Manifest
from devnet.nodes import node_command
from devnet.processes import stop_child
from tests.node.devnet_helpers import (
    alive,
    balance,
    call,
    deposit_on_chain,
    log_leaves,
    wait_for,
)
from wallet.codec import address_hex
from wallet.types import Address


class RunningNodes:
    """The node processes of :func:`nodes_running`; :meth:`restart` stops one (SIGTERM)
    and starts it again on its data directory, with the same arguments."""

    def __init__(
        self,
        devnet: Devnet,
        extra_args: Mapping[int, Sequence[str]],
        extra_env: Mapping[int, Mapping[str, str]],
    ) -> None:
        self.devnet, self._args, self._env = devnet, extra_args, extra_env
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self, i: int) -> subprocess.Popen[bytes]:
        m, state = self.devnet.manifest, self.devnet.state_dir
        home = state / f"node-{i}"
        home.mkdir(mode=0o700, exist_ok=True)
        write_private_file(home / "key", m.committee.members[i].private_key + "\n")  # PUBLIC
        command = node_command(m, i, home / "key", home / "data") + list(self._args.get(i, ()))
        with open(state / f"node-{i}.log", "ab") as log:
            return subprocess.Popen(
                command,
                cwd=PROJECT_ROOT,
                env={**os.environ, **self._env.get(i, {})},
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def restart(self, i: int) -> None:
        stop_child(self.processes[i])
        self.processes[i] = self.start(i)
        url = self.devnet.manifest.committee.members[i].endpoint
        wait_for(lambda: alive(url), timeout=30)


@contextmanager
def nodes_running(
    devnet: Devnet,
    extra_args: Mapping[int, Sequence[str]] | None = None,
    extra_env: Mapping[int, Mapping[str, str]] | None = None,
) -> Iterator[RunningNodes]:
    """Start every member's node of a devnet brought up without them, node ``i`` with
    ``extra_args[i]`` after the usual arguments and ``extra_env[i]`` in its environment;
    wait until all answer; stop them all on leaving."""
    nodes = RunningNodes(devnet, extra_args or {}, extra_env or {})
    members = devnet.manifest.committee.members
    try:
        for i in range(len(members)):
            nodes.processes.append(nodes.start(i))
        wait_for(lambda: all(alive(member.endpoint) for member in members), timeout=30)
        yield nodes
    finally:
        for process in nodes.processes:
            stop_child(process)


def deposit_stable(m: Manifest, amount: int) -> None:
    """Every agent of the manifest deposits ``amount`` USDF for itself; returns once every
    node credited them all (the devnet's log holds only these deposits before)."""
    w3 = Web3(Web3.HTTPProvider(m.rpc_url))
    vault = w3.eth.contract(address=m.contracts.vault, abi=load_artifact("Vault").abi)
    usdf = w3.eth.contract(address=m.contracts.stable, abi=load_artifact("FarthingUSD").abi)
    for agent in m.agents:
        deposit_on_chain(w3, agent.private_key, vault, usdf, amount)
    nodes = [member.endpoint for member in m.committee.members]
    wait_for(lambda: all(log_size(url) == len(m.agents) for url in nodes), timeout=20)


def log_size(url: str) -> int:
    return int(call(f"{url}/v1/log/head")[1]["tree_size"])


def leaves(url: str) -> Counter[bytes]:
    """The node's log entries as a multiset (its order is its own)."""
    return Counter(log_leaves(url, log_size(url)))


def balances(url: str, accounts: Sequence[Address], token: Address) -> list[int]:
    return [balance(url, address_hex(a), address_hex(token)) for a in accounts]


def agree(nodes: Sequence[str], accounts: Sequence[Address], token: Address) -> bool:
    """Every node holds the same entries and the same balances of ``accounts``."""
    first, first_balances = leaves(nodes[0]), balances(nodes[0], accounts, token)
    return all(
        leaves(url) == first and balances(url, accounts, token) == first_balances
        for url in nodes[1:]
    )
