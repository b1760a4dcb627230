"""A wallet process SIGKILLed between signing a payment and its confirmation, on a real
devnet (anvil, 4 node processes): started again on the same data directory, the wallet
finishes the SAME payment (the same signed order, the same digest, at the same
sequence), signs nothing else, and the payee is credited exactly once on every node.

The wallet runs in a subprocess (tests/wallet/wallet_pay_once.py, the real
:class:`wallet.client.Wallet` and its journal). It dies at one of three points:

* ``no-quorum``: two nodes stop answering (SIGSTOP) just before the order is sent; the
  two others vote for it (and lock the sequence); the wallet, still waiting for a
  quorum, is SIGKILLed; then the stopped nodes go on (SIGCONT) and vote too;
* ``before-send``: the journal holds the signed order, no node has seen it;
* ``before-delivery``: the certificate is formed and journaled, no node has it.

It is started again either with ``Wallet.resume()`` or by asking for the very same
payment again (``pay_final`` with the same payee, amount and token, as an agent or a
shell user does after a crash): both finish the journaled order and pay nothing more.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from web3 import Web3

from contracts import load_artifact
from devnet import Devnet, DevnetConfig
from devnet.anvil import PROJECT_ROOT
from node.state.entries import order_leaf
from tests.node.devnet_helpers import (
    balance,
    call,
    deposit_on_chain,
    domain_of,
    endpoints,
    log_leaves,
    node_pid,
    wait_for,
)
from wallet import wire
from wallet.codec import address_hex, hash_hex, parse_address
from wallet.eip712 import order_digest
from wallet.types import Domain, SignedOrder, Transfer

pytestmark = pytest.mark.integration

USDF = 10**6
DEPOSIT = 10 * USDF
CASES = [
    (how, again)
    for how in ("no-quorum", "before-send", "before-delivery")
    for again in ("resume", "pay-again")
]
PAYEE = len(CASES)  # agents 0..5 pay (one per case), agent 6 is paid
STOPPED = (2, 3)  # the nodes that stop answering in the no-quorum case
SCRIPT = "tests.wallet.wallet_pay_once"


@pytest.fixture(scope="module")
def devnet() -> Iterator[Devnet]:
    with Devnet.up(DevnetConfig(start_nodes=True, agents=PAYEE + 1)) as net:
        yield net


def _journal(directory: Path) -> dict[int, dict[str, Any]]:
    """The wallet's journal files, by sequence (read directly: the process holding it
    may be alive)."""
    return {int(p.stem): json.loads(p.read_text()) for p in sorted(directory.glob("*.json"))}


def _pending(endpoint: str, who: str) -> Any:
    return call(f"{endpoint}/v1/accounts/{who}")[1]["pending_order"]


def _kill_the_wallet(
    how: str, command: list[str], env: dict[str, str], gate: Path, journal: Path, m: Any
) -> None:
    """Runs the paying wallet and sees it die at ``how``'s point."""
    nodes = endpoints(m)
    env = {**env}
    if how == "before-send":
        env["FARTHING_TEST_DIE_AT"] = "post_order"
    elif how == "before-delivery":
        env["FARTHING_TEST_DIE_AT"] = "post_certificate"
    else:
        gate.mkdir()
        env["FARTHING_TEST_GATE"] = str(gate)
    stopped: list[int] = []
    process = subprocess.Popen(
        command,
        cwd=PROJECT_ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        if how == "no-quorum":
            wait_for(lambda: (gate / "signed").exists() or process.poll() is not None, 60)
            assert process.poll() is None, process.communicate()
            for index in STOPPED:
                pid = node_pid(m, index)
                os.kill(pid, signal.SIGSTOP)
                stopped.append(pid)
            (gate / "go").touch()
            # The two nodes still answering vote for the journaled order (and lock it).
            wait_for(lambda: 0 in _journal(journal), 30)
            signed = _journal(journal)[0]["signed_order"]
            who = address_hex(wire.signed_order_from_json(signed).order.owner)
            running = [n for i, n in enumerate(nodes) if i not in STOPPED]
            wait_for(lambda: all(_pending(n, who) == signed for n in running), 30)
            assert process.poll() is None  # still waiting for a quorum
            process.kill()
        _, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
        for pid in stopped:
            os.kill(pid, signal.SIGCONT)
    assert process.returncode == -signal.SIGKILL, err.decode()


@pytest.mark.parametrize(("how", "again"), CASES, ids=[f"{h}-{a}" for h, a in CASES])
def test_a_killed_wallet_finishes_the_same_payment(
    devnet: Devnet, tmp_path: Path, how: str, again: str
) -> None:
    m = devnet.manifest
    nodes = endpoints(m)
    payer_index = CASES.index((how, again))
    payer, payee = m.agents[payer_index], m.agents[PAYEE]
    w3 = Web3(Web3.HTTPProvider(m.rpc_url))
    vault = w3.eth.contract(address=m.contracts.vault, abi=load_artifact("Vault").abi)
    usdf = w3.eth.contract(address=m.contracts.stable, abi=load_artifact("FarthingUSD").abi)
    deposit_on_chain(w3, payer.private_key, vault, usdf, DEPOSIT)
    token = m.contracts.stable
    wait_for(lambda: all(balance(e, payer.address, token) == DEPOSIT for e in nodes), 30)
    payee_before = [balance(e, payee.address, token) for e in nodes]
    amount = 1_000 + payer_index

    data = tmp_path / "wallet"
    manifest = str(devnet.state_dir / "manifest.json")
    journal = data / "journal" / address_hex(parse_address(payer.address))
    pay = [sys.executable, "-m", SCRIPT, manifest, str(data), str(payer_index)]
    pay += [payee.address, str(amount), "--timeout", "60"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("FARTHING_TEST_")}
    _kill_the_wallet(how, pay, env, tmp_path / "gate", journal, m)

    # What the dead wallet left: the signed order at sequence 0 (certified before
    # delivery), applied nowhere; locked by the nodes that saw it.
    left = _journal(journal)
    assert list(left) == [0]
    assert left[0]["state"] == ("certified" if how == "before-delivery" else "signed")
    signed = wire.signed_order_from_json(left[0]["signed_order"])
    domain = domain_of(m)
    digest = hash_hex(order_digest(domain, signed.order))
    for endpoint in nodes:
        assert call(f"{endpoint}/v1/certificates/{digest}")[0] == 404
        if how == "before-send":
            assert _pending(endpoint, payer.address) is None

    # Started again on the same data directory.
    command = [*pay, "--resume"] if again == "resume" else pay
    done = subprocess.run(
        command,
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "private_key" not in done.stdout + done.stderr
    assert json.loads(done.stdout.splitlines()[-1]) == {"digest": digest, "sequence": 0}

    # The journal holds that one order, confirmed; nothing at a later sequence.
    after = _journal(journal)
    assert list(after) == [0]
    assert after[0]["state"] == "confirmed"
    assert wire.signed_order_from_json(after[0]["signed_order"]) == signed
    _check_applied_once(nodes, domain, signed, digest, amount, payee_before, payer.address)


def _check_applied_once(
    nodes: list[str],
    domain: Domain,
    signed: SignedOrder,
    digest: str,
    amount: int,
    payee_before: list[int],
    payer: str,
) -> None:
    order = signed.order
    assert isinstance(order, Transfer)
    wait_for(lambda: all(call(f"{e}/v1/certificates/{digest}")[0] == 200 for e in nodes), 30)
    token = address_hex(order.token)
    payee = address_hex(order.payee)
    leaf = order_leaf(order, order_digest(domain, order))
    for endpoint, before in zip(nodes, payee_before, strict=True):
        _, found = call(f"{endpoint}/v1/certificates/{digest}")
        assert wire.certificate_from_json(found["certificate"]).signed == signed
        _, account = call(f"{endpoint}/v1/accounts/{payer}")
        assert account["next_sequence"] == 1, endpoint
        assert account["pending_order"] is None, endpoint
        assert balance(endpoint, payer, token) == DEPOSIT - amount, endpoint
        assert balance(endpoint, payee, token) == before + amount, endpoint
        size = call(f"{endpoint}/v1/log/head")[1]["tree_size"]
        assert log_leaves(endpoint, size).count(leaf) == 1, endpoint
