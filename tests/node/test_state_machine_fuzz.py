"""Several simulated nodes under honest and adversarial inputs (Raiden's fuzz style):
conflicting orders, replays, certificates out of order and to some nodes only, deposits
that lag, and one Byzantine node that votes for anything. Invariants after every step:
per node and token, balances sum to credited deposits minus applied withdrawals; at most
one certificate per (account, sequence) anywhere; logs only grow; once everything is
delivered, all nodes agree."""

from __future__ import annotations

import random

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from node.state import (
    ActionSubmitOrder,
    ContractReceiveDeposit,
    ReceiveCertificate,
    RequestMissingCertificates,
    SendVote,
)
from tests.node.factories import ALICE, BOB, CAROL, DOMAIN, EPOCH, FAR, MEMBERS, USDF, Node
from wallet.eip712 import order_digest
from wallet.signing import PrivateKey, sign_order, sign_vote
from wallet.types import Amount, Certificate, Sequence, Transfer, Withdrawal

CLIENTS = [ALICE, BOB, CAROL]
TOKENS = [USDF, FAR]
BYZANTINE = 3  # node index that signs any vote asked of it


class Network(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.nodes = [Node(me=m) for m in MEMBERS]
        self.deposits: list[ContractReceiveDeposit] = []
        self.delivered_deposits = [0] * len(self.nodes)
        self.certificates: dict[tuple[bytes, int], Certificate] = {}
        self.inboxes: list[list[Certificate]] = [[] for _ in self.nodes]
        self.next_sequence = {c.address: 0 for c in CLIENTS}
        self.log_sizes = [0] * len(self.nodes)
        # Like the wallet: an order that got no certificate is retried, never replaced.
        self.unfinished: dict[bytes, object] = {}

    # ------------------------------------------------------------ inputs

    @initialize()
    def fund_everyone(self) -> None:
        for client in range(len(CLIENTS)):
            for token in TOKENS:
                self.deposit(client, token, 500, None)

    @rule(
        client=st.sampled_from(range(3)),
        token=st.sampled_from(TOKENS),
        amount=st.integers(100, 1_000),
        lagging=st.sampled_from([None, 0, 1, 2, 3]),
    )
    def deposit(self, client: int, token: bytes, amount: int, lagging: int | None) -> None:
        """A chain deposit, seen at once by every node but (maybe) one that lags."""
        deposit_id = len(self.deposits) + 1
        beneficiary = CLIENTS[client].address
        self.deposits.append(ContractReceiveDeposit(deposit_id, beneficiary, token, Amount(amount)))  # type: ignore[arg-type]
        for i in range(len(self.nodes)):
            if i != lagging:
                self.deliver_deposit(i)

    @rule(node=st.sampled_from(range(4)))
    def deliver_deposit(self, node: int) -> None:
        """The deposits a node has not seen reach it, in id order."""
        n = self.delivered_deposits[node]
        while n < len(self.deposits):
            self.nodes[node].step(self.deposits[n])
            n += 1
        self.delivered_deposits[node] = n

    def _vote(self, voters: list[int], signed: object) -> list[tuple[bytes, bytes]]:
        votes = []
        for i in voters:
            if i == BYZANTINE:
                vote = sign_vote(MEMBERS[i], DOMAIN, order_digest(DOMAIN, signed.order), EPOCH)  # type: ignore[attr-defined]
                votes.append((vote.signer, vote.signature))
                continue
            t = self.nodes[i].step(ActionSubmitOrder(signed))  # type: ignore[arg-type]
            for e in t.events:
                if isinstance(e, SendVote):
                    votes.append((e.vote.signer, e.vote.signature))
        return votes

    @rule(
        payer=st.sampled_from(range(3)),
        payee=st.sampled_from(range(3)),
        token=st.sampled_from(TOKENS),
        amount=st.integers(1, 60),
        withdraw=st.booleans(),
        voters=st.lists(st.sampled_from(range(4)), min_size=2, max_size=4, unique=True),
        seed=st.integers(0, 2**16),
    )
    def pay(
        self,
        payer: int,
        payee: int,
        token: bytes,
        amount: int,
        withdraw: bool,
        voters: list[int],
        seed: int,
    ) -> None:
        key: PrivateKey = CLIENTS[payer]
        sequence = Sequence(self.next_sequence[key.address])
        order: Transfer | Withdrawal
        if withdraw:
            order = Withdrawal(key.address, key.address, token, Amount(amount), sequence)  # type: ignore[arg-type]
        else:
            order = Transfer(key.address, CLIENTS[payee].address, token, Amount(amount), sequence)  # type: ignore[arg-type]
        signed = self.unfinished.get(key.address) or sign_order(key, DOMAIN, order)
        votes = self._vote(voters, signed)
        if len(votes) < 3:
            self.unfinished[key.address] = signed
            return  # no certificate yet; the locks stay where they were taken
        self.unfinished.pop(key.address, None)
        cert = Certificate(signed, EPOCH, tuple(sorted(votes)))  # type: ignore[arg-type]
        k = (key.address, sequence)
        assert k not in self.certificates, "two certificates for one (account, sequence)"
        self.certificates[k] = cert
        self.next_sequence[key.address] = sequence + 1
        # Deliver to a random subset now; the others get it later (gossip).
        rng = random.Random(seed)
        for i, node in enumerate(self.nodes):
            (node.step(ReceiveCertificate(cert)) if rng.random() < 0.5 else None)
            self.inboxes[i].append(cert)

    @rule(node=st.sampled_from(range(4)), pick=st.integers(0, 10_000))
    def gossip(self, node: int, pick: int) -> None:
        """Deliver one certificate, in any order, possibly again."""
        inbox = self.inboxes[node]
        if inbox:
            t = self.nodes[node].step(ReceiveCertificate(inbox[pick % len(inbox)]))
            for e in t.events:
                if isinstance(e, RequestMissingCertificates):
                    for s in range(e.first, e.last + 1):
                        missing = self.certificates.get((e.account, s))
                        if missing is not None:
                            self.nodes[node].step(ReceiveCertificate(missing))

    @rule(payer=st.sampled_from(range(3)), node=st.sampled_from(range(3)))
    def conflicting_order(self, payer: int, node: int) -> None:
        """The owner signs a second order at its current sequence and sends it to one node."""
        key = CLIENTS[payer]
        sequence = Sequence(self.next_sequence[key.address])
        order = Transfer(key.address, key.address, USDF, Amount(1), sequence)
        self._vote([node], sign_order(key, DOMAIN, order))

    # ------------------------------------------------------------ invariants

    @invariant()
    def balances_match_deposits_minus_withdrawals(self) -> None:
        for i, node in enumerate(self.nodes):
            credited = self.deposits[: self.delivered_deposits[i]]
            for token in TOKENS:
                total = sum(a.balance(token) for a in node.ledger.accounts.values())
                withdrawn = sum(
                    c.order.amount
                    for (account, sequence), c in self.certificates.items()
                    if isinstance(c.order, Withdrawal)
                    and c.order.token == token
                    and node.ledger.applied(account, Sequence(sequence)) is not None
                )
                assert total == sum(d.amount for d in credited if d.token == token) - withdrawn

    @invariant()
    def applied_certificates_are_the_ones_formed(self) -> None:
        for node in self.nodes:
            for (account, sequence), digest in node.ledger.applied_digests.items():
                assert digest == order_digest(DOMAIN, self.certificates[(account, sequence)].order)

    @invariant()
    def logs_only_grow(self) -> None:
        for i, node in enumerate(self.nodes):
            size = node.ledger.log_size()
            assert size >= self.log_sizes[i]
            self.log_sizes[i] = size

    @rule()
    def deliver_everything(self) -> None:
        """Heal the network: every node gets every deposit and certificate; all agree."""
        for i, node in enumerate(self.nodes):
            while self.delivered_deposits[i] < len(self.deposits):
                node.step(self.deposits[self.delivered_deposits[i]])
                self.delivered_deposits[i] += 1
            for cert in self.certificates.values():
                node.step(ReceiveCertificate(cert))
        reference = self.nodes[0].ledger
        for node in self.nodes[1:]:
            for client in CLIENTS:
                mine = node.ledger.account(client.address)
                theirs = reference.account(client.address)
                assert dict(mine.balances) == dict(theirs.balances)
                assert mine.next_sequence == theirs.next_sequence
            assert node.ledger.pending_certificates == {}


def test_network_of_simulated_nodes() -> None:
    case = Network.TestCase
    case.settings = settings(max_examples=100, stateful_step_count=50, deadline=None)
    case("runTest").runTest()
