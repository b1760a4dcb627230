"""The node follows the Vault after start, on a devnet with 4 node processes: governance
rotates the committee (a member leaves, then comes back) and the nodes accept the new
epoch's certificates and report it; governance registers a new token, which is deposited
and paid, then deregisters it, after which it can only be withdrawn.

Keys are the devnet's PUBLIC TEST KEYS (anvil's mnemonic)."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from eth_account import Account
from web3 import Web3
from web3.contract import Contract

from contracts import load_artifact
from devnet import Devnet, DevnetConfig
from devnet.manifest import Manifest
from wallet import wire
from wallet.codec import parse_address
from wallet.signing import PrivateKey, sign_order
from wallet.types import Amount, Certificate, Domain, Order, Sequence, Transfer, Withdrawal
from wallet.vault import vault_certificate

pytestmark = pytest.mark.integration
UNIT = 10**6


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


def wait_for(predicate: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


class Chain:
    """Transactions on the devnet, signed with its public test keys."""

    def __init__(self, m: Manifest) -> None:
        self.m = m
        self.w3 = Web3(Web3.HTTPProvider(m.rpc_url))
        self.vault = self.w3.eth.contract(address=m.contracts.vault, abi=load_artifact("Vault").abi)
        self.nodes = [member.endpoint for member in m.committee.members]

    def send(self, private_key: str, tx: dict[str, Any]) -> Any:
        account = Account.from_key(private_key)
        tx = {
            **tx,
            "from": account.address,
            "nonce": self.w3.eth.get_transaction_count(account.address),
        }
        tx.setdefault("gas", 5_000_000)
        signed = account.sign_transaction(tx)
        receipt = self.w3.eth.wait_for_transaction_receipt(
            self.w3.eth.send_raw_transaction(signed.raw_transaction), timeout=10
        )
        assert receipt["status"] == 1, receipt
        return receipt

    def call_fn(self, private_key: str, fn: Any) -> Any:
        sender = Account.from_key(private_key).address
        return self.send(private_key, fn.build_transaction({"from": sender, "nonce": 0}))

    def governance(self, fn: Any) -> Any:
        return self.call_fn(self.m.governance.private_key, fn)

    def deposit(self, agent: int, token: Contract, amount: int) -> None:
        key = self.m.agents[agent].private_key
        self.call_fn(key, token.functions.approve(self.vault.address, amount))
        self.call_fn(
            key, self.vault.functions.deposit(token.address, amount, self.m.agents[agent].address)
        )

    def committee(self, endpoint: str) -> dict[str, Any]:
        status, body = call(f"{endpoint}/v1/committee")
        assert status == 200
        return dict(body)

    def balance(self, endpoint: str, who: str, token: str) -> int:
        _, account = call(f"{endpoint}/v1/accounts/{who}")
        return int(account["balances"].get(token, "0"))

    def submit(self, endpoint: str, key: PrivateKey, order: Order) -> tuple[int, Any]:
        domain = Domain(self.m.chain_id, parse_address(self.m.contracts.vault))
        return call(
            f"{endpoint}/v1/orders", wire.signed_order_to_json(sign_order(key, domain, order))
        )

    def certify(self, key: PrivateKey, order: Order, nodes: list[str]) -> Certificate:
        domain = Domain(self.m.chain_id, parse_address(self.m.contracts.vault))
        signed = sign_order(key, domain, order)
        votes = []
        for endpoint in nodes:
            status, body = call(f"{endpoint}/v1/orders", wire.signed_order_to_json(signed))
            assert status == 200, body
            votes.append(wire.vote_from_json(body["vote"]))
        assert len({v.epoch for v in votes}) == 1
        return Certificate(
            signed, votes[0].epoch, tuple(sorted((v.signer, v.signature) for v in votes))
        )

    def apply_everywhere(self, certificate: Certificate) -> None:
        for endpoint in self.nodes:
            status, body = call(
                f"{endpoint}/v1/certificates", wire.certificate_to_json(certificate)
            )
            assert status == 200, (endpoint, body)


def test_a_rotation_is_followed_by_every_node(devnet: Devnet) -> None:
    m = devnet.manifest
    chain = Chain(m)
    nodes = chain.nodes
    members = [member.address for member in m.committee.members]
    usdf = chain.w3.eth.contract(address=m.contracts.stable, abi=load_artifact("FarthingUSD").abi)
    payer, payee = m.agents[0], m.agents[1]
    chain.deposit(0, usdf, 100 * UNIT)
    wait_for(
        lambda: all(chain.balance(e, payer.address, usdf.address) == 100 * UNIT for e in nodes)
    )
    start = chain.committee(nodes[0])["epoch"]

    # Epoch start+1: node 3 leaves the committee (3 members, quorum 3).
    chain.governance(chain.vault.functions.startEpoch(members[:3], nodes[:3], 3))
    wait_for(lambda: all(chain.committee(e)["epoch"] == start + 1 for e in nodes))
    assert chain.committee(nodes[3]) == {"epoch": start + 1, "quorum": 3, "members": members[:3]}

    key = PrivateKey.from_hex(payer.private_key)
    token = parse_address(usdf.address)
    pay = Transfer(key.address, parse_address(payee.address), token, Amount(5 * UNIT), Sequence(0))
    status, body = chain.submit(nodes[3], key, pay)
    assert (status, body["code"]) == (422, "not_voting")
    certificate = chain.certify(key, pay, nodes[:3])
    assert certificate.epoch == start + 1
    chain.apply_everywhere(certificate)  # node 3 still applies certificates
    assert {chain.balance(e, payee.address, usdf.address) for e in nodes} == {5 * UNIT}

    # Epoch start+2: node 3 is back.
    chain.governance(chain.vault.functions.startEpoch(members, nodes, 3))
    wait_for(lambda: all(chain.committee(e)["epoch"] == start + 2 for e in nodes))
    again = Transfer(key.address, parse_address(payee.address), token, Amount(UNIT), Sequence(1))
    certificate = chain.certify(key, again, nodes[1:])
    assert certificate.epoch == start + 2
    chain.apply_everywhere(certificate)
    assert {chain.balance(e, payee.address, usdf.address) for e in nodes} == {6 * UNIT}


def test_a_new_token_is_registered_deposited_paid_then_only_withdrawn(devnet: Devnet) -> None:
    m = devnet.manifest
    chain = Chain(m)
    nodes = chain.nodes
    gov = m.governance
    artifact = load_artifact("FarthingUSD")
    factory = chain.w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
    receipt = chain.send(
        gov.private_key,
        factory.constructor(gov.address).build_transaction({"from": gov.address, "nonce": 0}),
    )
    new = chain.w3.eth.contract(address=receipt["contractAddress"], abi=artifact.abi)
    payer, payee = m.agents[0], m.agents[1]
    chain.governance(new.functions.mint(payer.address, 50 * UNIT))
    chain.governance(chain.vault.functions.registerToken(new.address))
    chain.deposit(0, new, 50 * UNIT)
    wait_for(lambda: all(chain.balance(e, payer.address, new.address) == 50 * UNIT for e in nodes))

    key = PrivateKey.from_hex(payer.private_key)
    token = parse_address(new.address)
    _, account = call(f"{nodes[0]}/v1/accounts/{payer.address}")
    sequence = int(account["next_sequence"])
    pay = Transfer(
        key.address, parse_address(payee.address), token, Amount(UNIT), Sequence(sequence)
    )
    # The deposit watcher and the chain follower poll independently: wait until the
    # nodes vote on the new token (a refusal locks nothing; a vote is given again).
    wait_for(lambda: all(chain.submit(e, key, pay)[0] == 200 for e in nodes[:3]))
    chain.apply_everywhere(chain.certify(key, pay, nodes[:3]))
    assert {chain.balance(e, payee.address, new.address) for e in nodes} == {UNIT}

    # Deregistered: a transfer is refused (an account with no balance in it, so that a
    # vote given before a node saw the change locks nothing that matters) ...
    chain.governance(chain.vault.functions.deregisterToken(new.address))
    other = PrivateKey.from_hex(payee.private_key)
    probe = Transfer(other.address, key.address, token, Amount(1_000 * UNIT), Sequence(0))
    wait_for(
        lambda: all(chain.submit(e, other, probe)[1].get("code") == "unknown_token" for e in nodes)
    )

    # ... and a withdrawal is still certified and paid by the Vault.
    out = Withdrawal(key.address, key.address, token, Amount(20 * UNIT), Sequence(sequence + 1))
    certificate = chain.certify(key, out, nodes[:3])
    chain.apply_everywhere(certificate)
    committee = chain.committee(nodes[0])
    assert committee["epoch"] == certificate.epoch
    before = new.functions.balanceOf(payer.address).call()
    redeem = chain.vault.functions.redeem(
        vault_certificate(certificate, [parse_address(a) for a in committee["members"]])
    )
    chain.call_fn(payer.private_key, redeem)
    assert new.functions.balanceOf(payer.address).call() == before + 20 * UNIT
