"""Helpers of the devnet integration tests (test_devnet_e2e.py, test_devnet_kill.py,
test_chaos.py, tests/wallet/test_wallet_kill.py): JSON over HTTP to the nodes, waiting,
certifying an order, chain transactions and deposits, reading a node's log, and
SIGKILLing and restarting a node from its own key and data directory."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from typing import Any

from web3 import Web3

from devnet import Devnet
from devnet.anvil import PROJECT_ROOT
from devnet.manifest import Manifest
from devnet.nodes import node_command
from devnet.processes import stop_child
from wallet import wire
from wallet.codec import parse_address
from wallet.signing import PrivateKey, sign_order
from wallet.types import Certificate, Domain, Order, SignedOrder, Vote


def call(url: str, body: Any = None) -> tuple[int, Any]:
    """GET ``url`` (or POST ``body`` as JSON): the status and the decoded JSON reply."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=5) as reply:
            return reply.status, json.loads(reply.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def endpoints(m: Manifest) -> list[str]:
    return [member.endpoint for member in m.committee.members]


def domain_of(m: Manifest) -> Domain:
    return Domain(m.chain_id, parse_address(m.contracts.vault))


def balance(endpoint: str, who: str, token: str) -> int:
    _, account = call(f"{endpoint}/v1/accounts/{who}")
    return int(account["balances"].get(token, "0"))


def wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def alive(endpoint: str) -> bool:
    """Whether the node at ``endpoint`` answers at all."""
    try:
        call(f"{endpoint}/v1/health")
    except OSError:
        return False
    return True


def certificate_of(signed: SignedOrder, votes: Sequence[Vote]) -> Certificate:
    """The certificate of ``signed`` with ``votes`` (all of one epoch)."""
    return Certificate(
        signed, votes[0].epoch, tuple(sorted((v.signer, v.signature) for v in votes))
    )


def certify(m: Manifest, key: PrivateKey, order: Order, nodes: list[str]) -> Certificate:
    """Sign ``order``, collect the votes of ``nodes`` (those down are skipped) and form
    its certificate (at least a quorum of votes)."""
    signed = sign_order(key, domain_of(m), order)
    votes = []
    for endpoint in nodes:
        try:
            status, body = call(f"{endpoint}/v1/orders", wire.signed_order_to_json(signed))
        except OSError:
            continue  # a node that is down: the quorum does without it
        if status == 200:
            votes.append(wire.vote_from_json(body["vote"]))
    assert len(votes) >= m.committee.quorum
    return certificate_of(signed, votes)


def send_transaction(w3: Web3, private_key: str, fn: Any) -> None:
    """Sign and send the contract call ``fn`` from ``private_key``'s account; wait until
    it is mined and check that it succeeded."""
    account = w3.eth.account.from_key(private_key)
    tx = fn.build_transaction(
        {"from": account.address, "nonce": w3.eth.get_transaction_count(account.address)}
    )
    tx_hash = w3.eth.send_raw_transaction(account.sign_transaction(tx).raw_transaction)
    assert w3.eth.wait_for_transaction_receipt(tx_hash)["status"] == 1


def restart_node(devnet: Devnet, index: int) -> subprocess.Popen[bytes]:
    """Start node ``index`` again from its own key file, data directory and port (the
    caller stops it: :func:`devnet.processes.stop_child`)."""
    home = devnet.state_dir / f"node-{index}"
    command = node_command(devnet.manifest, index, home / "key", home / "data")
    with open(devnet.state_dir / f"node-{index}-restart.log", "ab") as log:
        return subprocess.Popen(
            command,
            cwd=PROJECT_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def log_leaves(endpoint: str, size: int) -> list[bytes]:
    """The first ``size`` leaves of the node's log, a page at a time."""
    leaves: list[bytes] = []
    while len(leaves) < size:
        end = min(size, len(leaves) + 1_000)
        status, page = call(f"{endpoint}/v1/log/entries?start={len(leaves)}&end={end}")
        assert status == 200, page
        leaves += [bytes.fromhex(e["leaf"][2:]) for e in page["entries"]]
    return leaves


def deposit_on_chain(w3: Web3, private_key: str, vault: Any, token: Any, amount: int) -> None:
    """The key's account approves the Vault and deposits ``amount`` of ``token`` (web3
    contracts) for itself: two transactions, each waited for."""
    account = w3.eth.account.from_key(private_key)
    send_transaction(w3, private_key, token.functions.approve(vault.address, amount))
    send_transaction(
        w3, private_key, vault.functions.deposit(token.address, amount, account.address)
    )


def node_pid(m: Manifest, index: int) -> int:
    """The pid of the devnet's own process of node ``index``."""
    return next(p.pid for p in m.processes if p.name == f"node-{index}")


class NodeProcesses:
    """The devnet's node processes as a test kills and restarts them: :meth:`kill`
    SIGKILLs node ``index``'s current process (the devnet's own, or one
    :meth:`restart` started) by its pid and reaps it; :meth:`stop` stops every process
    this object started (call it in a ``finally``)."""

    def __init__(self, devnet: Devnet) -> None:
        self._devnet = devnet
        self._restarted: dict[int, subprocess.Popen[bytes]] = {}
        self._dead: set[int] = set()

    def kill(self, index: int) -> None:
        assert index not in self._dead, f"node {index} is down already"
        process = self._restarted.pop(index, None)
        if process is not None:
            process.kill()
            process.wait()
        else:
            pid = node_pid(self._devnet.manifest, index)
            os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)  # our child: reaped (Devnet.down finds it gone)
        self._dead.add(index)

    def restart(self, index: int) -> None:
        assert index in self._dead, f"node {index} runs"
        self._restarted[index] = restart_node(self._devnet, index)
        self._dead.discard(index)

    def pid(self, index: int) -> int:
        """The pid of node ``index``'s current process."""
        assert index not in self._dead, f"node {index} is down"
        process = self._restarted.get(index)
        return node_pid(self._devnet.manifest, index) if process is None else process.pid

    @property
    def down(self) -> set[int]:
        return set(self._dead)

    def stop(self) -> None:
        for process in self._restarted.values():
            stop_child(process)
        self._restarted.clear()
