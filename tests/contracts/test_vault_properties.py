"""Property test: across random deposits, redemptions (single, batch, replayed, invalid),
bonds and slashes, the Vault's token balances equal what came in minus what went out,
and no (account, sequence) is ever paid twice."""

from __future__ import annotations

from typing import Any, ClassVar

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule
from web3.exceptions import ContractCustomError

from tests.contracts.chain import (
    TransferOrder,
    Withdrawal,
    certificate,
    decode_revert,
    evm_revert,
    evm_snapshot,
    order_tuple,
    transact,
    vote,
)
from tests.contracts.conftest import Deployment

ACCOUNTS = range(3)  # alice, bob, carol as ledger accounts
SEQUENCES = st.integers(min_value=0, max_value=3)


class VaultMachine(RuleBasedStateMachine):
    dep: ClassVar[Deployment]

    def __init__(self) -> None:
        super().__init__()
        d = self.dep
        self.snapshot = evm_snapshot(d.w3)
        self.tokens = [d.usdf, d.far]
        self.start = {t.address: t.functions.balanceOf(d.vault.address).call() for t in self.tokens}
        self.deposited = dict.fromkeys(self.start, 0)
        self.paid_out = dict.fromkeys(self.start, 0)
        self.bonded = 0
        self.slashed = 0
        self.paid: dict[tuple[str, int], int] = {}
        self.bonds = {m.address: d.vault.functions.bonds(m.address).call()[0] for m in d.members}
        self.people = [d.alice, d.bob, d.carol]

    def teardown(self) -> None:
        evm_revert(self.dep.w3, self.snapshot)

    @initialize()
    def fund_carol(self) -> None:
        d = self.dep
        transact(d.usdf.functions.mint(d.carol.address, 1_000 * 10**6), d.gov.address)
        transact(d.usdf.functions.approve(d.vault.address, 2**256 - 1), d.carol.address)

    # ------------------------------------------------------------ rules

    @rule(who=st.sampled_from([0, 1]), token=st.sampled_from([0, 1]), amount=st.integers(1, 10**9))
    def deposit(self, who: int, token: int, amount: int) -> None:
        d, t = self.dep, self.tokens[token]
        sender = self.people[who].address
        transact(d.vault.functions.deposit(t.address, amount, sender), sender)
        self.deposited[t.address] += amount

    def _withdrawal(
        self, account: int, sequence: int, token: int, amount: int, to: int
    ) -> Withdrawal:
        return Withdrawal(
            self.people[account].address,
            self.people[to].address,
            self.tokens[token].address,
            amount,
            sequence,
        )

    def _expect_paid_or_refused(self, ws: list[Withdrawal], call: Any, batch: bool) -> None:
        vault_has = {
            t.address: t.functions.balanceOf(self.dep.vault.address).call() for t in self.tokens
        }
        new, seen = [], set()
        for w in ws:
            key = (w.account, w.sequence)
            if key not in self.paid and key not in seen:
                new.append(w)
                seen.add(key)
        needs = dict.fromkeys(vault_has, 0)
        for w in new:
            needs[w.token] += w.amount
        affordable = all(needs[t] <= vault_has[t] for t in needs)
        try:
            transact(call, self.dep.outsider.address)
        except ContractCustomError as exc:
            error = decode_revert(str(exc.data)).name
            if not batch and not new:
                assert error == "AlreadyRedeemed"
            else:
                assert not affordable and error == "ERC20InsufficientBalance", error
            return
        assert affordable and (new or batch), "paid something it must not"
        for w in new:
            self.paid[(w.account, w.sequence)] = w.amount
            self.paid_out[w.token] += w.amount

    @rule(
        account=st.sampled_from(ACCOUNTS),
        sequence=SEQUENCES,
        token=st.sampled_from([0, 1]),
        amount=st.integers(1, 10**9),
        to=st.sampled_from(ACCOUNTS),
    )
    def redeem(self, account: int, sequence: int, token: int, amount: int, to: int) -> None:
        w = self._withdrawal(account, sequence, token, amount, to)
        cert = certificate(self.dep.domain, w, 1, self.dep.members)
        self._expect_paid_or_refused([w], self.dep.vault.functions.redeem(cert), batch=False)

    @rule(
        items=st.lists(
            st.tuples(
                st.sampled_from(ACCOUNTS), SEQUENCES, st.sampled_from([0, 1]), st.integers(1, 10**8)
            ),
            min_size=1,
            max_size=4,
        )
    )
    def redeem_batch(self, items: list[tuple[int, int, int, int]]) -> None:
        ws = [self._withdrawal(a, s, t, amt, 2) for a, s, t, amt in items]
        certs = [certificate(self.dep.domain, w, 1, self.dep.members, (1, 2, 3)) for w in ws]
        self._expect_paid_or_refused(ws, self.dep.vault.functions.redeemBatch(certs), batch=True)

    @rule(
        account=st.sampled_from(ACCOUNTS),
        sequence=SEQUENCES,
        amount=st.integers(1, 10**6),
        corruption=st.sampled_from(["short", "outsider", "epoch"]),
    )
    def redeem_invalid(self, account: int, sequence: int, amount: int, corruption: str) -> None:
        d = self.dep
        w = self._withdrawal(account, sequence, 0, amount, 1)
        if corruption == "short":
            cert = certificate(d.domain, w, 1, d.members, (0, 1))
        elif corruption == "outsider":
            committee = [d.members[0], d.outsider, d.members[2]]
            cert = certificate(d.domain, w, 1, committee)
        else:
            cert = (w.as_tuple(), 1, 0b111, [vote(d.domain, d.members[i], w, 2) for i in range(3)])
        before = d.usdf.functions.balanceOf(d.vault.address).call()
        try:
            transact(d.vault.functions.redeem(cert), d.outsider.address)
        except ContractCustomError:
            pass
        else:
            raise AssertionError("an invalid certificate paid out")
        assert d.usdf.functions.balanceOf(d.vault.address).call() == before

    @rule(member=st.sampled_from(range(4)), amount=st.integers(1, 10**18))
    def bond(self, member: int, amount: int) -> None:
        d, m = self.dep, self.dep.members[member]
        if d.vault.functions.bonds(m.address).call()[2]:
            return
        transact(d.vault.functions.bond(m.address, amount), m.address)
        self.bonded += amount
        self.bonds[m.address] += amount

    @rule(member=st.sampled_from(range(4)), sequence=SEQUENCES)
    def slash(self, member: int, sequence: int) -> None:
        d, m = self.dep, self.dep.members[member]
        a = TransferOrder(d.alice.address, d.bob.address, d.usdf.address, 1, sequence)
        b = TransferOrder(d.alice.address, d.carol.address, d.usdf.address, 1, sequence)
        evidence = (
            m.address,
            order_tuple(a),
            1,
            vote(d.domain, m, a, 1),
            order_tuple(b),
            1,
            vote(d.domain, m, b, 1),
        )
        if self.bonds[m.address] == 0:
            return
        transact(d.vault.functions.slashEquivocation(*evidence), d.outsider.address)
        self.slashed += self.bonds[m.address]
        self.bonds[m.address] = 0

    # ------------------------------------------------------------ invariants

    @invariant()
    def balances_are_conserved(self) -> None:
        d = self.dep
        for t in self.tokens:
            expected = self.start[t.address] + self.deposited[t.address] - self.paid_out[t.address]
            if t.address == d.far.address:
                expected += self.bonded - self.slashed
            assert t.functions.balanceOf(d.vault.address).call() == expected

    @invariant()
    def paid_ones_are_marked(self) -> None:
        for account, sequence in self.paid:
            assert self.dep.vault.functions.isRedeemed(account, sequence).call() is True


def test_vault_accounting_state_machine(dep: Deployment) -> None:
    VaultMachine.dep = dep
    machine_test = VaultMachine.TestCase
    machine_test.settings = settings(max_examples=20, stateful_step_count=10, deadline=None)
    machine_test("runTest").runTest()
