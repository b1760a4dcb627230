"""End to end on a devnet with 4 node processes: deposit on chain, pay, withdraw and
redeem on chain; one node stopped, payments go on with the other 3."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from typing import Any

import pytest
from web3 import Web3

from contracts import load_artifact
from devnet import Devnet, DevnetConfig
from devnet.processes import stop_child
from tests.node.devnet_helpers import (
    alive,
    balance,
    call,
    certify,
    domain_of,
    endpoints,
    restart_node,
    send_transaction,
    wait_for,
)
from wallet import wire
from wallet.codec import address_hex, parse_address
from wallet.signing import PrivateKey, verify_checkpoint
from wallet.types import Amount, Sequence, Transfer, Withdrawal
from wallet.vault import vault_certificate

pytestmark = pytest.mark.integration
USDF = 10**6


@pytest.fixture(scope="module")
def devnet() -> Iterator[Devnet]:
    with Devnet.up(DevnetConfig(start_nodes=True, agents=2)) as net:
        yield net


def test_deposit_pay_withdraw_redeem_and_a_node_down(devnet: Devnet) -> None:
    m = devnet.manifest
    w3 = Web3(Web3.HTTPProvider(m.rpc_url))
    payer, payee = m.agents[0], m.agents[1]
    account = w3.eth.account.from_key(payer.private_key)
    usdf = w3.eth.contract(address=m.contracts.stable, abi=load_artifact("FarthingUSD").abi)
    vault = w3.eth.contract(address=m.contracts.vault, abi=load_artifact("Vault").abi)

    def send(fn: Any) -> None:
        send_transaction(w3, payer.private_key, fn)

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
    wait_for(lambda: not alive(nodes[3]))
    again = Transfer(me, parse_address(payee.address), token, Amount(1 * USDF), Sequence(2))
    certificate = certify(m, key, again, nodes)
    # Sent to one node only: the node pushes it to its peers.
    assert call(f"{nodes[0]}/v1/certificates", wire.certificate_to_json(certificate))[0] == 200
    wait_for(lambda: {balance(e, payee.address, usdf.address) for e in nodes[:3]} == {8 * USDF})

    # The stopped node comes back from its own store and catches up from its peers.
    restarted = restart_node(devnet, 3)
    try:
        wait_for(lambda: alive(nodes[3]), timeout=30)
        wait_for(lambda: balance(nodes[3], payee.address, usdf.address) == 8 * USDF, timeout=15)
        heads = {json.dumps(call(f"{e}/v1/log/head")[1]) for e in nodes}
        assert len(heads) == 1, heads
        # Each node signs a checkpoint of its log (within its every_ms of 1 s).
        size = call(f"{nodes[0]}/v1/log/head")[1]["tree_size"]
        wait_for(lambda: call(f"{nodes[0]}/v1/log/checkpoint")[1].get("tree_size") == size)
        checkpoint, signature = wire.signed_checkpoint_from_json(
            call(f"{nodes[0]}/v1/log/checkpoint")[1]
        )
        assert verify_checkpoint(domain_of(m), checkpoint, signature)
        assert checkpoint.node == parse_address(m.committee.members[0].address)
        assert address_hex(me) == account.address
    finally:
        stop_child(restarted)
