"""Helpers of the adversity tests (test_partition.py, test_equivocation.py): deposits
that back the ledger accounts, and what "the nodes agree" means when each node logs
concurrent payments in the order it applied them (docs/protocol.md 1a)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from web3 import Web3

from contracts import load_artifact
from devnet.manifest import Manifest
from tests.node.devnet_helpers import balance, call, send_transaction, wait_for
from wallet.codec import address_hex
from wallet.types import Address


def deposit_stable(m: Manifest, amount: int) -> None:
    """Every agent of the manifest deposits ``amount`` USDF for itself; returns once every
    node credited them all (the devnet's log holds only these deposits before)."""
    w3 = Web3(Web3.HTTPProvider(m.rpc_url))
    vault = w3.eth.contract(address=m.contracts.vault, abi=load_artifact("Vault").abi)
    usdf = w3.eth.contract(address=m.contracts.stable, abi=load_artifact("FarthingUSD").abi)
    for agent in m.agents:
        send_transaction(w3, agent.private_key, usdf.functions.approve(vault.address, amount))
        send_transaction(
            w3, agent.private_key, vault.functions.deposit(usdf.address, amount, agent.address)
        )
    nodes = [member.endpoint for member in m.committee.members]
    wait_for(lambda: all(log_size(url) == len(m.agents) for url in nodes), timeout=20)


def log_size(url: str) -> int:
    return int(call(f"{url}/v1/log/head")[1]["tree_size"])


def leaves(url: str) -> Counter[str]:
    """The node's log entries as a multiset (its order is its own)."""
    status, page = call(f"{url}/v1/log/entries?start=0&end={log_size(url)}")
    assert status == 200, page
    return Counter(entry["leaf"] for entry in page["entries"])


def balances(url: str, accounts: Sequence[Address], token: Address) -> list[int]:
    return [balance(url, address_hex(a), address_hex(token)) for a in accounts]


def agree(nodes: Sequence[str], accounts: Sequence[Address], token: Address) -> bool:
    """Every node holds the same entries and the same balances of ``accounts``."""
    first, first_balances = leaves(nodes[0]), balances(nodes[0], accounts, token)
    return all(
        leaves(url) == first and balances(url, accounts, token) == first_balances
        for url in nodes[1:]
    )
