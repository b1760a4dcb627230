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


@contextmanager
def nodes_running(
    devnet: Devnet,
    extra_args: Mapping[int, Sequence[str]] | None = None,
    extra_env: Mapping[int, Mapping[str, str]] | None = None,
) -> Iterator[list[subprocess.Popen[bytes]]]:
    """Start every member's node of a devnet brought up without them, node ``i`` with
    ``extra_args[i]`` after the usual arguments and ``extra_env[i]`` in its environment;
    wait until all answer; stop them all on leaving."""
    m = devnet.manifest
    processes: list[subprocess.Popen[bytes]] = []
    try:
        for i, member in enumerate(m.committee.members):
            home = devnet.state_dir / f"node-{i}"
            home.mkdir(mode=0o700, exist_ok=True)
            write_private_file(home / "key", member.private_key + "\n")  # a PUBLIC test key
            command = node_command(m, i, home / "key", home / "data")
            command += list((extra_args or {}).get(i, ()))
            env = {**os.environ, **(extra_env or {}).get(i, {})}
            with open(devnet.state_dir / f"node-{i}.log", "ab") as log:
                processes.append(
                    subprocess.Popen(
                        command,
                        cwd=PROJECT_ROOT,
                        env=env,
                        stdin=subprocess.DEVNULL,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                )
        urls = [member.endpoint for member in m.committee.members]
        wait_for(lambda: all(alive(url) for url in urls), timeout=30)
        yield processes
    finally:
        for process in processes:
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
