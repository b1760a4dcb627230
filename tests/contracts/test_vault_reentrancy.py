"""The Vault cannot be re-entered through a malicious token's transfer hooks.

ReentrantToken (EVIL) is a test harness: once armed, its next transfer or transferFrom calls
a target with a payload and records whether that call succeeded and what it returned. Each
test arms it to call back into a guarded Vault entry point during the Vault's own token
movement, and checks that (1) the outer call did its work exactly once, (2) the inner call
failed with ReentrancyGuardReentrantCall(), and, where it can be shown, (3) the very same
payload succeeds when it is not re-entrant, so the guard is what stopped it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from eth_account.signers.local import LocalAccount
from eth_utils import keccak
from web3.contract import Contract

from tests.contracts.chain import (
    Withdrawal,
    advance_time,
    certificate,
    deploy,
    domain,
    events,
    expect_revert,
    order_tuple,
    transact,
    vote,
)
from tests.contracts.conftest import Deployment

EVIL = 10**18
REENTRANT_CALL = keccak(text="ReentrancyGuardReentrantCall()")[:4]
MAX = 2**256 - 1
DAY = 24 * 3600


@pytest.fixture
def evil(dep: Deployment) -> Iterator[Contract]:
    """EVIL deployed and registered in the Vault; alice holds some and approved the Vault."""
    token = deploy(dep.w3, "ReentrantToken", dep.gov.address)
    transact(dep.vault.functions.registerToken(token.address), dep.gov.address)
    transact(token.functions.mint(dep.alice.address, 10_000 * EVIL), dep.alice.address)
    transact(token.functions.approve(dep.vault.address, MAX), dep.alice.address)
    yield token
    # Impersonation (see act_as_token) is node state that evm_revert does not undo.
    dep.w3.provider.make_request("anvil_stopImpersonatingAccount", [token.address])  # type: ignore[arg-type]


def act_as_token(dep: Deployment, token: Contract, spender: str, amount: int = 1_000 * EVIL) -> str:
    """Lets the token contract itself send transactions (anvil impersonation), gives it
    ``amount`` of its own tokens and approves ``spender``: a re-entrant call, whose sender is
    the token, then has everything it needs to succeed but for the guard."""
    w3, me = dep.w3, token.address
    w3.provider.make_request("anvil_impersonateAccount", [me])  # type: ignore[arg-type]
    w3.provider.make_request("anvil_setBalance", [me, hex(10**20)])  # type: ignore[arg-type]
    transact(token.functions.mint(me, amount), me)
    transact(token.functions.approve(spender, MAX), me)
    return me


def arm(dep: Deployment, token: Contract, target: Contract, fn: str, *args: Any) -> None:
    payload = target.encode_abi(fn, args=list(args))
    transact(token.functions.arm(target.address, payload), dep.outsider.address)
    assert token.functions.armed().call()


def assert_reentry_blocked(token: Contract, attempts: int = 1) -> None:
    t = token.functions
    assert not t.armed().call()
    assert t.attempts().call() == attempts
    assert t.lastCallSucceeded().call() is False
    assert t.lastCallResult().call() == REENTRANT_CALL


def fund_vault(dep: Deployment, token: Contract, amount: int) -> None:
    transact(
        dep.vault.functions.deposit(token.address, amount, dep.alice.address), dep.alice.address
    )


def balance(token: Contract, address: str) -> int:
    return int(token.functions.balanceOf(address).call())


def cert(
    dep: Deployment, token: Contract, recipient: str, amount: int, sequence: int
) -> tuple[Any, ...]:
    w = Withdrawal(dep.alice.address, recipient, token.address, amount, sequence)
    return certificate(dep.domain, w, epoch=1, committee=dep.members, indexes=(0, 1, 2))


# ---------------------------------------------------------------- (a) deposit


def test_deposit_cannot_be_reentered(dep: Deployment, evil: Contract) -> None:
    vault, alice, bob = dep.vault, dep.alice.address, dep.bob.address
    me = act_as_token(dep, evil, vault.address)
    first_id = vault.functions.nextDepositId().call()
    arm(dep, evil, vault, "deposit", evil.address, 50 * EVIL, bob)

    receipt = transact(vault.functions.deposit(evil.address, 100 * EVIL, alice), alice)

    assert events(vault, receipt, "Deposited") == [
        {
            "id": first_id,
            "beneficiary": alice,
            "token": evil.address,
            "amount": 100 * EVIL,
            "depositor": alice,
        }
    ]
    assert vault.functions.nextDepositId().call() == first_id + 1
    assert balance(evil, vault.address) == 100 * EVIL
    assert balance(evil, me) == 1_000 * EVIL
    assert_reentry_blocked(evil)

    # Control: the same payload, not re-entrant (triggered by a plain transfer), succeeds.
    arm(dep, evil, vault, "deposit", evil.address, 50 * EVIL, bob)
    receipt = transact(evil.functions.transfer(bob, 1), alice)
    assert evil.functions.lastCallSucceeded().call() is True
    assert events(vault, receipt, "Deposited") == [
        {
            "id": first_id + 1,
            "beneficiary": bob,
            "token": evil.address,
            "amount": 50 * EVIL,
            "depositor": me,
        }
    ]
    assert balance(evil, vault.address) == 150 * EVIL


# ---------------------------------------------------------------- (b) redeem


def test_redeem_cannot_be_reentered_with_a_second_certificate(
    dep: Deployment, evil: Contract
) -> None:
    vault, alice, bob, carol = dep.vault, dep.alice.address, dep.bob.address, dep.carol.address
    fund_vault(dep, evil, 500 * EVIL)
    first = cert(dep, evil, bob, 100 * EVIL, sequence=1)
    second = cert(dep, evil, carol, 70 * EVIL, sequence=2)
    arm(dep, evil, vault, "redeem", second)

    receipt = transact(vault.functions.redeem(first), dep.outsider.address)

    assert events(vault, receipt, "Redeemed") == [{"account": alice, "sequence": 1}]
    assert events(evil, receipt, "Transfer") == [
        {"from": vault.address, "to": bob, "value": 100 * EVIL}
    ]
    assert_reentry_blocked(evil)
    assert balance(evil, bob) == 100 * EVIL
    assert balance(evil, carol) == 0
    assert balance(evil, vault.address) == 400 * EVIL
    assert vault.functions.isRedeemed(alice, 1).call()
    assert not vault.functions.isRedeemed(alice, 2).call()

    # The blocked certificate was not consumed: it pays normally, exactly once.
    receipt = transact(vault.functions.redeem(second), dep.outsider.address)
    assert events(vault, receipt, "Redeemed") == [{"account": alice, "sequence": 2}]
    assert balance(evil, carol) == 70 * EVIL
    assert balance(evil, vault.address) == 330 * EVIL
    expect_revert(vault.functions.redeem(second), dep.outsider.address, "AlreadyRedeemed", alice, 2)
    expect_revert(vault.functions.redeem(first), dep.outsider.address, "AlreadyRedeemed", alice, 1)
    assert balance(evil, vault.address) == 330 * EVIL


# ---------------------------------------------------------------- (c) redeemBatch, cross-function


INNER_CALLS = [
    "redeem-same",
    "redeem-other",
    "redeemBatch-other",
    "redeemBatch-both",
    "deposit",
    "bond",
    "withdrawBond",
]


def inner_call(
    dep: Deployment, evil: Contract, name: str, first: Any, second: Any
) -> tuple[str, tuple[Any, ...]]:
    return {
        "redeem-same": ("redeem", (first,)),  # the classic double spend
        "redeem-other": ("redeem", (second,)),
        "redeemBatch-other": ("redeemBatch", ([second],)),
        "redeemBatch-both": ("redeemBatch", ([first, second],)),
        "deposit": ("deposit", (evil.address, 10 * EVIL, dep.bob.address)),
        "bond": ("bond", (dep.members[0].address, 1)),
        "withdrawBond": ("withdrawBond", (dep.bob.address,)),
    }[name]


@pytest.mark.parametrize("outer", ["redeem", "redeemBatch"])
@pytest.mark.parametrize("inner", INNER_CALLS)
def test_payout_cannot_reenter_a_guarded_entry_point(
    dep: Deployment, evil: Contract, outer: str, inner: str
) -> None:
    vault, alice, bob, carol = dep.vault, dep.alice.address, dep.bob.address, dep.carol.address
    act_as_token(dep, evil, vault.address)
    fund_vault(dep, evil, 500 * EVIL)
    first = cert(dep, evil, bob, 100 * EVIL, sequence=7)
    second = cert(dep, evil, carol, 70 * EVIL, sequence=8)
    next_id = vault.functions.nextDepositId().call()
    fn, args = inner_call(dep, evil, inner, first, second)
    arm(dep, evil, vault, fn, *args)

    call = (
        vault.functions.redeem(first) if outer == "redeem" else vault.functions.redeemBatch([first])
    )
    receipt = transact(call, dep.outsider.address)

    assert_reentry_blocked(evil)
    assert events(vault, receipt, "Redeemed") == [{"account": alice, "sequence": 7}]
    assert events(vault, receipt, "RedemptionSkipped") == []
    assert events(vault, receipt, "Deposited") == []
    assert events(vault, receipt, "Bonded") == []
    assert balance(evil, bob) == 100 * EVIL
    assert balance(evil, carol) == 0
    assert balance(evil, vault.address) == 400 * EVIL
    assert vault.functions.nextDepositId().call() == next_id
    assert not vault.functions.isRedeemed(alice, 8).call()

    # Afterwards a batch with both pays only the one not yet paid.
    receipt = transact(vault.functions.redeemBatch([first, second]), dep.outsider.address)
    assert events(vault, receipt, "RedemptionSkipped") == [{"account": alice, "sequence": 7}]
    assert events(vault, receipt, "Redeemed") == [{"account": alice, "sequence": 8}]
    assert balance(evil, carol) == 70 * EVIL
    assert balance(evil, vault.address) == 330 * EVIL


def test_redeem_batch_cannot_be_reentered_mid_batch(dep: Deployment, evil: Contract) -> None:
    """The hook fires on the first payout of a two-item batch and tries to redeem the second
    item ahead of it: blocked, and the batch still pays both exactly once."""
    vault, alice, bob, carol = dep.vault, dep.alice.address, dep.bob.address, dep.carol.address
    fund_vault(dep, evil, 500 * EVIL)
    first = cert(dep, evil, bob, 100 * EVIL, sequence=1)
    second = cert(dep, evil, carol, 70 * EVIL, sequence=2)
    arm(dep, evil, vault, "redeem", second)

    receipt = transact(vault.functions.redeemBatch([first, second]), dep.outsider.address)

    assert_reentry_blocked(evil)
    assert events(vault, receipt, "Redeemed") == [
        {"account": alice, "sequence": 1},
        {"account": alice, "sequence": 2},
    ]
    assert events(vault, receipt, "RedemptionSkipped") == []
    assert (balance(evil, bob), balance(evil, carol)) == (100 * EVIL, 70 * EVIL)
    assert balance(evil, vault.address) == 330 * EVIL


# ------------------------------------------------------- (c) bonds, with EVIL as bond token


@pytest.fixture
def evil_vault(dep: Deployment, evil: Contract) -> Contract:
    """A second Vault whose bond token is EVIL, so that bond payouts run the hook."""
    vault = deploy(dep.w3, "Vault", dep.gov.address, dep.gov.address, evil.address, 1)
    transact(evil.functions.approve(vault.address, MAX), dep.alice.address)
    return vault


def bond_of(vault: Contract, member: str) -> tuple[int, int, bool]:
    amount, requested_at, slashed = vault.functions.bonds(member).call()
    return amount, requested_at, slashed


def test_bond_cannot_be_reentered(dep: Deployment, evil: Contract, evil_vault: Contract) -> None:
    alice = dep.alice.address
    me = act_as_token(dep, evil, evil_vault.address)
    arm(dep, evil, evil_vault, "bond", alice, 5 * EVIL)

    receipt = transact(evil_vault.functions.bond(alice, 10 * EVIL), alice)

    assert events(evil_vault, receipt, "Bonded") == [
        {"member": alice, "payer": alice, "amount": 10 * EVIL, "total": 10 * EVIL}
    ]
    assert_reentry_blocked(evil)
    assert bond_of(evil_vault, alice)[0] == 10 * EVIL
    assert balance(evil, evil_vault.address) == 10 * EVIL

    # Control: the same payload, not re-entrant, bonds 5 more paid by the token.
    arm(dep, evil, evil_vault, "bond", alice, 5 * EVIL)
    transact(evil.functions.transfer(dep.bob.address, 1), alice)
    assert evil.functions.lastCallSucceeded().call() is True
    assert bond_of(evil_vault, alice)[0] == 15 * EVIL
    assert balance(evil, me) == 995 * EVIL


def test_withdraw_bond_cannot_be_reentered(
    dep: Deployment, evil: Contract, evil_vault: Contract
) -> None:
    """The token contract is itself the bonded member and re-enters withdrawBond from its
    own payout, trying to be paid twice out of alice's bond that sits in the same Vault."""
    alice, bob = dep.alice.address, dep.bob.address
    me = act_as_token(dep, evil, evil_vault.address)
    transact(evil_vault.functions.bond(alice, 1_000 * EVIL), alice)
    transact(evil_vault.functions.bond(me, 100 * EVIL), me)
    transact(evil_vault.functions.requestUnbond(), me)
    advance_time(dep.w3, 14 * DAY + 1)
    arm(dep, evil, evil_vault, "withdrawBond", bob)

    receipt = transact(evil_vault.functions.withdrawBond(bob), me)

    assert events(evil_vault, receipt, "BondWithdrawn") == [
        {"member": me, "to": bob, "amount": 100 * EVIL}
    ]
    assert_reentry_blocked(evil)
    assert balance(evil, bob) == 100 * EVIL
    assert balance(evil, evil_vault.address) == 1_000 * EVIL
    assert bond_of(evil_vault, me) == (0, 0, False)
    assert bond_of(evil_vault, alice)[0] == 1_000 * EVIL
    expect_revert(evil_vault.functions.withdrawBond(bob), me, "UnbondNotRequested", me)


def test_slash_reward_payout_cannot_be_reentered(
    dep: Deployment, evil: Contract, evil_vault: Contract
) -> None:
    """The reporter's reward transfer re-enters slashEquivocation with the same evidence."""
    member: LocalAccount = dep.members[0]
    reporter, treasury = dep.outsider.address, dep.gov.address
    transact(evil.functions.mint(member.address, 1_000 * EVIL), member.address)
    transact(evil.functions.approve(evil_vault.address, MAX), member.address)
    transact(evil_vault.functions.bond(member.address, 1_000 * EVIL), member.address)
    transact(evil_vault.functions.bond(dep.alice.address, 500 * EVIL), dep.alice.address)

    dom = domain(dep.chain_id, evil_vault.address)
    a = Withdrawal(dep.alice.address, dep.bob.address, evil.address, 1 * EVIL, 3)
    b = Withdrawal(dep.alice.address, dep.carol.address, evil.address, 1 * EVIL, 3)
    evidence = (
        member.address,
        order_tuple(a),
        1,
        vote(dom, member, a, 1),
        order_tuple(b),
        1,
        vote(dom, member, b, 1),
    )
    arm(dep, evil, evil_vault, "slashEquivocation", *evidence)

    receipt = transact(evil_vault.functions.slashEquivocation(*evidence), reporter)

    reward = 1_000 * EVIL * 5_000 // 10_000
    assert events(evil_vault, receipt, "Slashed") == [
        {"member": member.address, "reporter": reporter, "amount": 1_000 * EVIL, "reward": reward}
    ]
    assert_reentry_blocked(evil)
    assert balance(evil, reporter) == reward
    assert balance(evil, treasury) == 1_000 * EVIL - reward
    assert balance(evil, evil_vault.address) == 500 * EVIL  # alice's bond is untouched
    assert bond_of(evil_vault, member.address) == (0, 0, True)
    expect_revert(
        evil_vault.functions.slashEquivocation(*evidence),
        reporter,
        "NothingToSlash",
        member.address,
    )
