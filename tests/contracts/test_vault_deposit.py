"""Vault deposits: ids, events, token registry, permit."""

from __future__ import annotations

from eth_account.signers.local import LocalAccount

from tests.contracts.chain import (
    TOKEN_TYPES,
    domain,
    events,
    expect_revert,
    latest_timestamp,
    sign_digest,
    transact,
    typed_digest,
)
from tests.contracts.conftest import USDF, Deployment

ZERO = "0x" + "00" * 20


def test_deposit_moves_tokens_and_emits_increasing_ids(dep: Deployment) -> None:
    v, usdf, bob = dep.vault, dep.usdf, dep.bob
    first_id = v.functions.nextDepositId().call()
    vault_before = usdf.functions.balanceOf(v.address).call()
    bob_before = usdf.functions.balanceOf(bob.address).call()

    r1 = transact(v.functions.deposit(usdf.address, 7 * USDF, dep.alice.address), bob.address)
    r2 = transact(v.functions.deposit(dep.far.address, 3, bob.address), bob.address)

    (e1,) = events(v, r1, "Deposited")
    (e2,) = events(v, r2, "Deposited")
    assert e1 == {
        "id": first_id,
        "beneficiary": dep.alice.address,
        "token": usdf.address,
        "amount": 7 * USDF,
        "depositor": bob.address,
    }
    assert e2["id"] == first_id + 1 and e2["token"] == dep.far.address and e2["amount"] == 3
    assert v.functions.nextDepositId().call() == first_id + 2
    assert usdf.functions.balanceOf(v.address).call() == vault_before + 7 * USDF
    assert usdf.functions.balanceOf(bob.address).call() == bob_before - 7 * USDF


def test_deposit_refusals(dep: Deployment) -> None:
    v, usdf, bob = dep.vault, dep.usdf, dep.bob
    expect_revert(v.functions.deposit(usdf.address, 0, bob.address), bob.address, "ZeroAmount")
    expect_revert(v.functions.deposit(usdf.address, 1, ZERO), bob.address, "ZeroAddress")
    expect_revert(
        v.functions.deposit(dep.feed.address, 1, bob.address),
        bob.address,
        "TokenNotRegistered",
        dep.feed.address,
    )
    # carol holds USDF but gave the Vault no allowance
    expect_revert(
        v.functions.deposit(usdf.address, 1, dep.carol.address),
        dep.carol.address,
        "ERC20InsufficientAllowance",
        v.address,
        0,
        1,
    )
    too_much = usdf.functions.balanceOf(bob.address).call() + 1
    expect_revert(
        v.functions.deposit(usdf.address, too_much, bob.address),
        bob.address,
        "ERC20InsufficientBalance",
    )


def test_token_registry(dep: Deployment) -> None:
    v, gov, usdf = dep.vault, dep.gov.address, dep.usdf
    expect_revert(v.functions.registerToken(usdf.address), gov, "TokenAlreadyRegistered")
    expect_revert(v.functions.registerToken(ZERO), gov, "ZeroAddress")
    expect_revert(
        v.functions.registerToken(dep.feed.address),
        dep.outsider.address,
        "AccessControlUnauthorizedAccount",
    )
    receipt = transact(v.functions.deregisterToken(usdf.address), gov)
    assert events(v, receipt, "TokenDeregistered") == [{"token": usdf.address}]
    assert v.functions.isTokenRegistered(usdf.address).call() is False
    expect_revert(
        v.functions.deposit(usdf.address, 1, dep.bob.address),
        dep.bob.address,
        "TokenNotRegistered",
    )
    expect_revert(v.functions.deregisterToken(usdf.address), gov, "TokenNotRegistered")
    receipt = transact(v.functions.registerToken(usdf.address), gov)
    assert events(v, receipt, "TokenRegistered") == [{"token": usdf.address}]


def _permit(
    dep: Deployment, owner: LocalAccount, value: int, deadline: int
) -> tuple[int, bytes, bytes]:
    usdf = dep.usdf
    nonce = usdf.functions.nonces(owner.address).call()
    dom = domain(dep.chain_id, usdf.address, name="Farthing USD")
    digest = typed_digest(
        dom,
        "Permit",
        {
            "owner": owner.address,
            "spender": dep.vault.address,
            "value": value,
            "nonce": nonce,
            "deadline": deadline,
        },
        {"Permit": TOKEN_TYPES["Permit"]},
    )
    r, s, v = sign_digest(owner, digest)
    return v, r, s


def test_deposit_with_permit_in_one_transaction(dep: Deployment) -> None:
    v, usdf, carol = dep.vault, dep.usdf, dep.carol
    transact(usdf.functions.mint(carol.address, 50 * USDF), dep.gov.address)
    sig_v, r, s = _permit(dep, carol, 20 * USDF, latest_timestamp(dep.w3) + 3600)
    receipt = transact(
        v.functions.depositWithPermit(
            usdf.address, 20 * USDF, carol.address, latest_timestamp(dep.w3) + 3600, sig_v, r, s
        ),
        carol.address,
    )
    (event,) = events(v, receipt, "Deposited")
    assert event["amount"] == 20 * USDF and event["beneficiary"] == carol.address
    assert usdf.functions.allowance(carol.address, v.address).call() == 0
    assert usdf.functions.nonces(carol.address).call() == 1


def test_deposit_with_expired_or_reused_permit(dep: Deployment) -> None:
    v, usdf, carol = dep.vault, dep.usdf, dep.carol
    transact(usdf.functions.mint(carol.address, 50 * USDF), dep.gov.address)
    past = latest_timestamp(dep.w3) - 1
    sig_v, r, s = _permit(dep, carol, 5 * USDF, past)
    expect_revert(
        v.functions.depositWithPermit(usdf.address, 5 * USDF, carol.address, past, sig_v, r, s),
        carol.address,
        "PermitFailed",
        usdf.address,
    )
    deadline = latest_timestamp(dep.w3) + 3600
    sig_v, r, s = _permit(dep, carol, 5 * USDF, deadline)
    call = v.functions.depositWithPermit(
        usdf.address, 5 * USDF, carol.address, deadline, sig_v, r, s
    )
    transact(call, carol.address)
    # The same permit again: its nonce is used and no allowance is left.
    expect_revert(call, carol.address, "PermitFailed", usdf.address)


def test_front_run_permit_does_not_block_the_deposit(dep: Deployment) -> None:
    """Someone submits the permit first; the deposit still goes through on the allowance."""
    v, usdf, carol = dep.vault, dep.usdf, dep.carol
    transact(usdf.functions.mint(carol.address, 50 * USDF), dep.gov.address)
    deadline = latest_timestamp(dep.w3) + 3600
    sig_v, r, s = _permit(dep, carol, 5 * USDF, deadline)
    transact(
        usdf.functions.permit(carol.address, v.address, 5 * USDF, deadline, sig_v, r, s),
        dep.outsider.address,
    )
    receipt = transact(
        v.functions.depositWithPermit(usdf.address, 5 * USDF, carol.address, deadline, sig_v, r, s),
        carol.address,
    )
    assert events(v, receipt, "Deposited")[0]["amount"] == 5 * USDF


def test_deposit_with_permit_of_unregistered_token(dep: Deployment) -> None:
    expect_revert(
        dep.vault.functions.depositWithPermit(
            dep.feed.address, 1, dep.bob.address, 0, 27, b"\x00" * 32, b"\x00" * 32
        ),
        dep.bob.address,
        "TokenNotRegistered",
    )
