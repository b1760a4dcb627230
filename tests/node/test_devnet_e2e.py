"""End to end on a devnet with 4 node processes: deposit on chain, pay, withdraw and
redeem on chain; one node stopped, payments go on with the other 3."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from web3 import Web3

from contracts import load_artifact
from devnet import Devnet, DevnetConfig
from devnet.anvil import PROJECT_ROOT
from devnet.manifest import Manifest
from devnet.nodes import node_command
from wallet import wire
from wallet.codec import address_hex, parse_address
from wallet.signing import PrivateKey, sign_order, verify_checkpoint
from wallet.types import Amount, Certificate, Domain, Order, Sequence, Transfer, Withdrawal
from wallet.vault import vault_certificate

pytestmark = pytest.mark.integration
USDF = 10**6


@pytest.fixture(scope="module")
def devnet() -> Iterator[Devnet]:
    with Devnet.up(DevnetConfig(start_nodes=True, agents=2)) as net:
        yield net


def call(url: str, body: Any = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=5) as reply:
            return reply.status, json.loads(reply.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def endpoints(m: Manifest) -> list[str]:
    return [member.endpoint for member in m.committee.members]


def balance(endpoint: str, who: str, token: str) -> int:
    _, account = call(f"{endpoint}/v1/accounts/{who}")
    return int(account["balances"].get(token, "0"))


def wait_for(predicate: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def certify(m: Manifest, key: PrivateKey, order: Order, nodes: list[str]) -> Certificate:
    domain = Domain(m.chain_id, parse_address(m.contracts.vault))
    signed = sign_order(key, domain, order)
    votes = []
    for endpoint in nodes:
        try:
            status, body = call(f"{endpoint}/v1/orders", wire.signed_order_to_json(signed))
        except OSError:
            continue  # a node that is down: the quorum does without it
        if status == 200:
            votes.append(wire.vote_from_json(body["vote"]))
    assert len(votes) >= m.committee.quorum
    return Certificate(
        signed, votes[0].epoch, tuple(sorted((v.signer, v.signature) for v in votes))
    )


def test_deposit_pay_withdraw_redeem_and_a_node_down(devnet: Devnet) -> None:
    m = devnet.manifest
    w3 = Web3(Web3.HTTPProvider(m.rpc_url))
    payer, payee = m.agents[0], m.agents[1]
    account = w3.eth.account.from_key(payer.private_key)
    usdf = w3.eth.contract(address=m.contracts.stable, abi=load_artifact("FarthingUSD").abi)
    vault = w3.eth.contract(address=m.contracts.vault, abi=load_artifact("Vault").abi)

    def send(fn: Any) -> None:
        tx = fn.build_transaction(
            {"from": account.address, "nonce": w3.eth.get_transaction_count(account.address)}
        )
        tx_hash = w3.eth.send_raw_transaction(account.sign_transaction(tx).raw_transaction)
        assert w3.eth.wait_for_transaction_receipt(tx_hash)["status"] == 1

    send(usdf.functions.approve(vault.address, 1_000 * USDF))
    send(vault.functions.deposit(usdf.address, 100 * USDF, account.address))
    nodes = endpoints(m)
    wait_for(lambda: all(balance(e, account.address, usdf.address) == 100 * USDF for e in nodes))

    key = PrivateKey.from_hex(payer.private_key)
    me, token = key.address, parse_address(usdf.address)
    pay = Transfer(me, parse_address(payee.address), token, Amount(7 * USDF), Sequence(0))
    certificate = certify(m, key, pay, nodes[:3])
    for endpoint in nodes:
        assert call(f"{endpoint}/v1/certificates", wire.certificate_to_json(certificate))[0] == 200
    assert {balance(e, payee.address, usdf.address) for e in nodes} == {7 * USDF}

    # Withdraw 20 USDF to the chain and redeem the certificate there.
    out = Withdrawal(me, me, token, Amount(20 * USDF), Sequence(1))
    exit_certificate = certify(m, key, out, nodes[1:])
    for endpoint in nodes:
        call(f"{endpoint}/v1/certificates", wire.certificate_to_json(exit_certificate))
    assert {balance(e, account.address, usdf.address) for e in nodes} == {73 * USDF}
    members = [parse_address(member.address) for member in m.committee.members]
    before = usdf.functions.balanceOf(account.address).call()
    send(vault.functions.redeem(vault_certificate(exit_certificate, members)))
    assert usdf.functions.balanceOf(account.address).call() == before + 20 * USDF
    assert vault.functions.isRedeemed(account.address, 1).call() is True

    # One node stops: the other three still certify payments.
    stopped = next(p for p in m.processes if p.name == "node-3")
    os.kill(stopped.pid, signal.SIGTERM)
    wait_for(lambda: not _alive(nodes[3]))
    again = Transfer(me, parse_address(payee.address), token, Amount(1 * USDF), Sequence(2))
    certificate = certify(m, key, again, nodes)
    # Sent to one node only: the node pushes it to its peers.
    assert call(f"{nodes[0]}/v1/certificates", wire.certificate_to_json(certificate))[0] == 200
    wait_for(lambda: {balance(e, payee.address, usdf.address) for e in nodes[:3]} == {8 * USDF})

    # The stopped node comes back from its own store and catches up from its peers.
    home = devnet.state_dir / "node-3"
    command = node_command(m, 3, home / "key", home / "data")
    with open(devnet.state_dir / "node-3-restart.log", "wb") as log:
        restarted = subprocess.Popen(
            command, cwd=PROJECT_ROOT, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        wait_for(lambda: _alive(nodes[3]), timeout=30)
        wait_for(lambda: balance(nodes[3], payee.address, usdf.address) == 8 * USDF, timeout=15)
        heads = {json.dumps(call(f"{e}/v1/log/head")[1]) for e in nodes}
        assert len(heads) == 1, heads
        # Each node signs a checkpoint of its log (within its every_ms of 1 s).
        size = call(f"{nodes[0]}/v1/log/head")[1]["tree_size"]
        wait_for(lambda: call(f"{nodes[0]}/v1/log/checkpoint")[1].get("tree_size") == size)
        checkpoint, signature = wire.signed_checkpoint_from_json(
            call(f"{nodes[0]}/v1/log/checkpoint")[1]
        )
        domain = Domain(m.chain_id, parse_address(m.contracts.vault))
        assert verify_checkpoint(domain, checkpoint, signature)
        assert checkpoint.node == parse_address(m.committee.members[0].address)
        assert address_hex(me) == account.address
    finally:
        restarted.terminate()
        restarted.wait(timeout=10)


def _alive(endpoint: str) -> bool:
    try:
        call(f"{endpoint}/v1/health")
    except OSError:
        return False
    return True
