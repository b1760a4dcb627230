"""Witnessing on a devnet with 4 node processes: after a deposit, every node has accepted
and countersigned the other three's checkpoints of the same log, each node holds the
other three's cosignatures of its own, and nobody has evidence."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from web3 import Web3

from contracts import load_artifact
from devnet import Devnet, DevnetConfig
from tests.node.devnet_helpers import (
    balance,
    call,
    domain_of,
    endpoints,
    send_transaction,
    wait_for,
)
from wallet import wire
from wallet.codec import parse_address
from wallet.signing import verify_checkpoint, verify_cosignature

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def devnet() -> Iterator[Devnet]:
    with Devnet.up(DevnetConfig(start_nodes=True, agents=1)) as net:
        yield net


def test_nodes_witness_each_other(devnet: Devnet) -> None:
    m = devnet.manifest
    w3 = Web3(Web3.HTTPProvider(m.rpc_url))
    payer = m.agents[0]
    usdf = w3.eth.contract(address=m.contracts.stable, abi=load_artifact("FarthingUSD").abi)
    vault = w3.eth.contract(address=m.contracts.vault, abi=load_artifact("Vault").abi)

    def send(fn: Any) -> None:
        send_transaction(w3, payer.private_key, fn)

    send(usdf.functions.approve(vault.address, 10**6))
    send(vault.functions.deposit(usdf.address, 10**6, payer.address))
    nodes = endpoints(m)
    wait_for(lambda: all(balance(e, payer.address, usdf.address) == 10**6 for e in nodes))
    members = {parse_address(member.address) for member in m.committee.members}
    domain = domain_of(m)

    def witnessed(endpoint: str) -> list[Any]:
        records: list[Any] = call(f"{endpoint}/v1/log/witnesses")[1]["witnessed"]
        return records

    # Each node signs within 1 s and its peers witness it within a round or two (2 s).
    wait_for(lambda: all(len(witnessed(e)) == 3 for e in nodes), timeout=30)
    wait_for(
        lambda: all(len(call(f"{e}/v1/log/cosignatures")[1]["cosignatures"]) == 3 for e in nodes),
        timeout=30,
    )
    for index, endpoint in enumerate(nodes):
        me = parse_address(m.committee.members[index].address)
        seen = set()
        for record in witnessed(endpoint):
            checkpoint, signature = wire.signed_checkpoint_from_json(record["checkpoint"])
            cosignature, cosig = wire.signed_cosignature_from_json(record["cosignature"])
            assert verify_checkpoint(domain, checkpoint, signature)
            assert verify_cosignature(domain, cosignature, cosig) and cosignature.witness == me
            assert (cosignature.node, cosignature.root) == (checkpoint.node, checkpoint.root)
            seen.add(checkpoint.node)
        assert seen == members - {me}
        for body in call(f"{endpoint}/v1/log/cosignatures")[1]["cosignatures"]:
            cosignature, cosig = wire.signed_cosignature_from_json(body)
            assert cosignature.node == me and verify_cosignature(domain, cosignature, cosig)
        assert call(f"{endpoint}/v1/log/evidence")[1] == {"evidence": [], "equivocations": []}
