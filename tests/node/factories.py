"""Factories for the state-machine tests: keys, signed orders, certificates, a node."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from node.state import (
    Committee,
    ContractReceiveDeposit,
    EventRefused,
    MemoryLedger,
    NodeContext,
    Transition,
    transition,
)
from node.state.changes import StateChange
from wallet.eip712 import order_digest
from wallet.signing import PrivateKey, sign_order, sign_vote
from wallet.types import (
    Address,
    Amount,
    Certificate,
    Domain,
    Epoch,
    Sequence,
    SignedOrder,
    Transfer,
    Withdrawal,
)

DOMAIN = Domain(
    chain_id=31337, vault=Address(bytes.fromhex("cf7ed3acca5a467e9e704c703e8d87f634fb0fc9"))
)
USDF = Address(bytes.fromhex("5fbdb2315678afecb367f032d93f642f64180aa3"))
FAR = Address(bytes.fromhex("e7f1725e7734ce288f8367e1bb143e90bb3f0512"))
EPOCH = Epoch(1)


def key(name: str) -> PrivateKey:
    """A deterministic TEST key derived from ``name`` (never for real funds)."""
    return PrivateKey(hashlib.sha256(b"farthing test key " + name.encode()).digest())


ALICE, BOB, CAROL = key("alice"), key("bob"), key("carol")
MEMBERS = [key(f"member {i}") for i in range(4)]
COMMITTEE = Committee(EPOCH, tuple(m.address for m in MEMBERS), 3)


def transfer(
    payer: PrivateKey = ALICE,
    payee: PrivateKey = BOB,
    amount: int = 10,
    sequence: int = 0,
    token: Address = USDF,
) -> SignedOrder:
    order = Transfer(payer.address, payee.address, token, Amount(amount), Sequence(sequence))
    return sign_order(payer, DOMAIN, order)


def withdrawal(account: PrivateKey = ALICE, amount: int = 10, sequence: int = 0) -> SignedOrder:
    order = Withdrawal(account.address, account.address, USDF, Amount(amount), Sequence(sequence))
    return sign_order(account, DOMAIN, order)


def certify(
    signed: SignedOrder, voters: list[PrivateKey] | None = None, epoch: Epoch = EPOCH
) -> Certificate:
    digest = order_digest(DOMAIN, signed.order)
    votes = [
        sign_vote(m, DOMAIN, digest, epoch) for m in (voters if voters is not None else MEMBERS[:3])
    ]
    return Certificate(signed, epoch, tuple(sorted((v.signer, v.signature) for v in votes)))


@dataclass
class Node:
    """One simulated node: an in-memory ledger and its context."""

    me: PrivateKey = field(default_factory=lambda: MEMBERS[0])
    ledger: MemoryLedger = field(default_factory=lambda: MemoryLedger([COMMITTEE]))

    @property
    def context(self) -> NodeContext:
        return NodeContext(
            domain=DOMAIN,
            node=self.me.address,
            tokens=frozenset({USDF, FAR}),
            current_epoch=EPOCH,
            sign=self.me.unsafe_sign_digest,
        )

    def step(self, change: StateChange) -> Transition:
        """Run the transition and commit it, as the shell does."""
        t = transition(self.ledger, self.context, change)
        self.ledger.commit(t)
        return t

    def balance(self, who: PrivateKey, token: Address = USDF) -> int:
        return self.ledger.account(who.address).balance(token)


def funded(amount: int = 100) -> Node:
    """A node on which ALICE has deposited ``amount`` USDF (deposit id 1)."""
    node = Node()
    node.step(ContractReceiveDeposit(1, ALICE.address, USDF, Amount(amount)))
    return node


def only_refusal(node: Node, change: StateChange) -> EventRefused:
    """Steps ``change``, asserting it is refused and writes nothing; returns the refusal."""
    t = node.step(change)
    assert t.writes_nothing
    (event,) = t.events
    assert isinstance(event, EventRefused)
    return event
