"""FarthingUSD (USDF): metadata, minter role, EIP-2612 permit and EIP-3009 authorizations."""

from __future__ import annotations

import os
from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import keccak

from tests.contracts.chain import (
    TOKEN_TYPES,
    advance_time,
    domain,
    events,
    expect_revert,
    high_s,
    latest_timestamp,
    sign_digest,
    transact,
    typed_digest,
)
from tests.contracts.conftest import USDF, Deployment

ZERO = "0x0000000000000000000000000000000000000000"
MINTER_ROLE = keccak(text="MINTER_ROLE")
#: OpenZeppelin's draft ERC-3009 reads a window as block numbers when BOTH bounds carry bit 47.
BLOCK_RANGE_FLAG = 1 << 47


def usdf_domain(dep: Deployment) -> dict[str, Any]:
    return domain(dep.chain_id, dep.usdf.address, name="Farthing USD")


# ---------------------------------------------------------------- signing helpers


def permit_args(
    dep: Deployment,
    owner: LocalAccount,
    spender: str,
    value: int,
    *,
    deadline: int | None = None,
    nonce: int | None = None,
    signer: LocalAccount | None = None,
    dom: dict[str, Any] | None = None,
) -> tuple[Any, ...]:
    """Arguments of ``permit`` for ``owner``'s approval, signed by ``signer`` (the owner)."""
    if deadline is None:
        deadline = latest_timestamp(dep.w3) + 3600
    if nonce is None:
        nonce = dep.usdf.functions.nonces(owner.address).call()
    message = {
        "owner": owner.address,
        "spender": spender,
        "value": value,
        "nonce": nonce,
        "deadline": deadline,
    }
    digest = typed_digest(dom or usdf_domain(dep), "Permit", message, types=TOKEN_TYPES)
    r, s, v = sign_digest(signer or owner, digest)
    return (owner.address, spender, value, deadline, v, r, s)


def permit_digest(
    dep: Deployment, owner: str, spender: str, value: int, nonce: int, deadline: int
) -> bytes:
    message = {
        "owner": owner,
        "spender": spender,
        "value": value,
        "nonce": nonce,
        "deadline": deadline,
    }
    return typed_digest(usdf_domain(dep), "Permit", message, types=TOKEN_TYPES)


def new_nonce() -> bytes:
    return os.urandom(32)


def authorization(
    dep: Deployment,
    payer: LocalAccount,
    to: str,
    value: int,
    *,
    kind: str = "TransferWithAuthorization",
    valid_after: int = 0,
    valid_before: int | None = None,
    nonce: bytes | None = None,
    signer: LocalAccount | None = None,
) -> tuple[Any, ...]:
    """Arguments (from, to, value, validAfter, validBefore, nonce, v, r, s) of an ERC-3009
    ``kind`` authorization by ``payer``, signed by ``signer`` (the payer unless given)."""
    if valid_before is None:
        valid_before = latest_timestamp(dep.w3) + 3600
    message = {
        "from": payer.address,
        "to": to,
        "value": value,
        "validAfter": valid_after,
        "validBefore": valid_before,
        "nonce": nonce or new_nonce(),
    }
    digest = typed_digest(usdf_domain(dep), kind, message, types=TOKEN_TYPES)
    r, s, v = sign_digest(signer or payer, digest)
    return (payer.address, to, value, valid_after, valid_before, message["nonce"], v, r, s)


def cancellation(
    dep: Deployment, authorizer: LocalAccount, nonce: bytes, signer: LocalAccount | None = None
) -> tuple[Any, ...]:
    digest = typed_digest(
        usdf_domain(dep),
        "CancelAuthorization",
        {"authorizer": authorizer.address, "nonce": nonce},
        types=TOKEN_TYPES,
    )
    r, s, v = sign_digest(signer or authorizer, digest)
    return (authorizer.address, nonce, v, r, s)


def balance(dep: Deployment, address: str) -> int:
    return int(dep.usdf.functions.balanceOf(address).call())


# ---------------------------------------------------------------- metadata and roles


def test_metadata(dep: Deployment) -> None:
    usdf = dep.usdf.functions
    assert usdf.name().call() == "Farthing USD"
    assert usdf.symbol().call() == "USDF"
    assert usdf.decimals().call() == 6
    # ERC-5267: the EIP-712 domain wallets must sign permits and authorizations under.
    _fields, name, version, chain_id, verifying, _salt, _ext = usdf.eip712Domain().call()
    assert (name, version, chain_id, verifying) == (
        "Farthing USD",
        "1",
        dep.chain_id,
        dep.usdf.address,
    )
    assert usdf.hasRole(MINTER_ROLE, dep.gov.address).call()
    assert not usdf.hasRole(MINTER_ROLE, dep.alice.address).call()


def test_minter_mints_with_a_transfer_event(dep: Deployment) -> None:
    supply = dep.usdf.functions.totalSupply().call()
    receipt = transact(dep.usdf.functions.mint(dep.outsider.address, 123 * USDF), dep.gov.address)
    assert events(dep.usdf, receipt, "Transfer") == [
        {"from": ZERO, "to": dep.outsider.address, "value": 123 * USDF}
    ]
    assert balance(dep, dep.outsider.address) == 123 * USDF
    assert dep.usdf.functions.totalSupply().call() == supply + 123 * USDF


@pytest.mark.parametrize("who", ["alice", "outsider"])
def test_non_minter_can_neither_mint_nor_burn(dep: Deployment, who: str) -> None:
    account = getattr(dep, who).address
    expect_revert(
        dep.usdf.functions.mint(account, USDF),
        account,
        "AccessControlUnauthorizedAccount",
        account,
        MINTER_ROLE,
    )
    expect_revert(
        dep.usdf.functions.burn(0),
        account,
        "AccessControlUnauthorizedAccount",
        account,
        MINTER_ROLE,
    )


def test_minter_burns_its_own_balance(dep: Deployment) -> None:
    gov = dep.gov.address
    transact(dep.usdf.functions.mint(gov, 100 * USDF), gov)
    supply = dep.usdf.functions.totalSupply().call()
    receipt = transact(dep.usdf.functions.burn(40 * USDF), gov)
    assert events(dep.usdf, receipt, "Transfer") == [{"from": gov, "to": ZERO, "value": 40 * USDF}]
    assert balance(dep, gov) == 60 * USDF
    assert dep.usdf.functions.totalSupply().call() == supply - 40 * USDF
    # A minter burns only what it holds, never someone else's balance.
    expect_revert(
        dep.usdf.functions.burn(60 * USDF + 1),
        gov,
        "ERC20InsufficientBalance",
        gov,
        60 * USDF,
        60 * USDF + 1,
    )


def test_granted_minter_role_is_effective_and_revocable(dep: Deployment) -> None:
    bob = dep.bob.address
    transact(dep.usdf.functions.grantRole(MINTER_ROLE, bob), dep.gov.address)
    transact(dep.usdf.functions.mint(bob, 7), bob)
    transact(dep.usdf.functions.revokeRole(MINTER_ROLE, bob), dep.gov.address)
    expect_revert(
        dep.usdf.functions.mint(bob, 7), bob, "AccessControlUnauthorizedAccount", bob, MINTER_ROLE
    )


# ---------------------------------------------------------------- EIP-2612 permit


def test_permit_sets_allowance_emits_approval_and_bumps_nonce(dep: Deployment) -> None:
    alice, bob = dep.alice, dep.bob.address
    assert dep.usdf.functions.nonces(alice.address).call() == 0
    args = permit_args(dep, alice, bob, 300 * USDF)
    # Anyone may submit a permit: the outsider pays the gas.
    receipt = transact(dep.usdf.functions.permit(*args), dep.outsider.address)
    assert events(dep.usdf, receipt, "Approval") == [
        {"owner": alice.address, "spender": bob, "value": 300 * USDF}
    ]
    assert dep.usdf.functions.allowance(alice.address, bob).call() == 300 * USDF
    assert dep.usdf.functions.nonces(alice.address).call() == 1
    # The allowance is real: bob spends part of it.
    transact(dep.usdf.functions.transferFrom(alice.address, bob, 100 * USDF), bob)
    assert dep.usdf.functions.allowance(alice.address, bob).call() == 200 * USDF


def test_permit_with_an_expired_deadline(dep: Deployment) -> None:
    deadline = latest_timestamp(dep.w3) - 1
    args = permit_args(dep, dep.alice, dep.bob.address, USDF, deadline=deadline)
    expect_revert(
        dep.usdf.functions.permit(*args), dep.outsider.address, "ERC2612ExpiredSignature", deadline
    )
    assert dep.usdf.functions.nonces(dep.alice.address).call() == 0


def test_permit_signature_cannot_be_reused(dep: Deployment) -> None:
    alice, bob = dep.alice, dep.bob.address
    args = permit_args(dep, alice, bob, USDF)
    transact(dep.usdf.functions.permit(*args), dep.outsider.address)
    # The contract now hashes nonce 1, so the old signature recovers to some other address.
    _owner, _spender, value, deadline, v, r, s = args
    recovered = Account._recover_hash(
        permit_digest(dep, alice.address, bob, value, 1, deadline), vrs=(v, r, s)
    )
    assert recovered != alice.address
    expect_revert(
        dep.usdf.functions.permit(*args),
        dep.outsider.address,
        "ERC2612InvalidSigner",
        recovered,
        alice.address,
    )


def test_permit_signed_by_someone_else(dep: Deployment) -> None:
    args = permit_args(dep, dep.alice, dep.bob.address, USDF, signer=dep.bob)
    expect_revert(
        dep.usdf.functions.permit(*args),
        dep.bob.address,
        "ERC2612InvalidSigner",
        dep.bob.address,
        dep.alice.address,
    )
    assert dep.usdf.functions.allowance(dep.alice.address, dep.bob.address).call() == 0


def test_permit_signed_for_another_token_is_refused(dep: Deployment) -> None:
    """A FAR permit (same owner, spender, value, nonce) does not open a USDF allowance."""
    alice, bob = dep.alice, dep.bob.address
    far_domain = domain(dep.chain_id, dep.far.address, name="Farthing")
    args = permit_args(dep, alice, bob, USDF, dom=far_domain)
    _owner, _spender, value, deadline, v, r, s = args
    recovered = Account._recover_hash(
        permit_digest(dep, alice.address, bob, value, 0, deadline), vrs=(v, r, s)
    )
    expect_revert(
        dep.usdf.functions.permit(*args), bob, "ERC2612InvalidSigner", recovered, alice.address
    )


def test_permit_with_a_high_s_signature_is_refused(dep: Deployment) -> None:
    owner, spender, value, deadline, v, r, s = permit_args(dep, dep.alice, dep.bob.address, USDF)
    r2, s2, v2 = high_s((r, s, v))
    expect_revert(
        dep.usdf.functions.permit(owner, spender, value, deadline, v2, r2, s2),
        dep.bob.address,
        "ECDSAInvalidSignatureS",
        s2,
    )


# ---------------------------------------------------------------- EIP-3009 authorizations


def test_transfer_with_authorization_submitted_by_a_third_party(dep: Deployment) -> None:
    alice, bob, relayer = dep.alice.address, dep.bob.address, dep.outsider.address
    args = authorization(dep, dep.alice, bob, 250 * USDF)
    nonce = args[5]
    before = {a: balance(dep, a) for a in (alice, bob, relayer)}
    assert not dep.usdf.functions.authorizationState(alice, nonce).call()

    receipt = transact(dep.usdf.functions.transferWithAuthorization(*args), relayer)

    assert events(dep.usdf, receipt, "AuthorizationUsed") == [{"authorizer": alice, "nonce": nonce}]
    assert events(dep.usdf, receipt, "Transfer") == [
        {"from": alice, "to": bob, "value": 250 * USDF}
    ]
    assert balance(dep, alice) == before[alice] - 250 * USDF
    assert balance(dep, bob) == before[bob] + 250 * USDF
    assert balance(dep, relayer) == before[relayer]
    assert dep.usdf.functions.authorizationState(alice, nonce).call()
    # The same authorization again is refused, whoever submits it.
    for sender in (relayer, bob, alice):
        expect_revert(
            dep.usdf.functions.transferWithAuthorization(*args),
            sender,
            "ERC3009UsedAuthorization",
            alice,
            nonce,
        )


def test_expired_authorization(dep: Deployment) -> None:
    valid_before = latest_timestamp(dep.w3) - 1
    args = authorization(dep, dep.alice, dep.bob.address, USDF, valid_before=valid_before)
    expect_revert(
        dep.usdf.functions.transferWithAuthorization(*args),
        dep.outsider.address,
        "ERC3009InvalidAuthorizationTime",
        0,
        valid_before,
    )
    assert not dep.usdf.functions.authorizationState(dep.alice.address, args[5]).call()


def test_authorization_not_yet_valid_becomes_usable_later(dep: Deployment) -> None:
    now = latest_timestamp(dep.w3)
    valid_after, valid_before = now + 3600, now + 7200
    args = authorization(
        dep, dep.alice, dep.bob.address, USDF, valid_after=valid_after, valid_before=valid_before
    )
    fn = dep.usdf.functions.transferWithAuthorization(*args)
    expect_revert(
        fn, dep.outsider.address, "ERC3009InvalidAuthorizationTime", valid_after, valid_before
    )
    # The refusal was about time only: inside the window the same signature works.
    advance_time(dep.w3, 3601)
    bob_before = balance(dep, dep.bob.address)
    transact(fn, dep.outsider.address)
    assert balance(dep, dep.bob.address) == bob_before + USDF
    # And after the window it would not have.
    advance_time(dep.w3, 3600)
    late = authorization(
        dep, dep.alice, dep.bob.address, USDF, valid_after=valid_after, valid_before=valid_before
    )
    expect_revert(
        dep.usdf.functions.transferWithAuthorization(*late),
        dep.outsider.address,
        "ERC3009InvalidAuthorizationTime",
        valid_after,
        valid_before,
    )


def test_authorization_signed_by_someone_else(dep: Deployment) -> None:
    args = authorization(dep, dep.alice, dep.bob.address, USDF, signer=dep.bob)
    expect_revert(
        dep.usdf.functions.transferWithAuthorization(*args),
        dep.bob.address,
        "ERC3009InvalidSignature",
    )
    assert not dep.usdf.functions.authorizationState(dep.alice.address, args[5]).call()


@pytest.mark.parametrize("field", ["to", "value", "validAfter", "validBefore", "nonce"])
def test_tampered_authorization_is_refused(dep: Deployment, field: str) -> None:
    payer, to, value, after, before, nonce, v, r, s = authorization(
        dep, dep.alice, dep.bob.address, 10 * USDF
    )
    tampered = {
        "to": (payer, dep.outsider.address, value, after, before, nonce),
        "value": (payer, to, 1_000 * USDF, after, before, nonce),
        "validAfter": (payer, to, value, 1, before, nonce),
        "validBefore": (payer, to, value, after, before + 1, nonce),
        "nonce": (payer, to, value, after, before, new_nonce()),
    }[field]
    expect_revert(
        dep.usdf.functions.transferWithAuthorization(*tampered, v, r, s),
        dep.outsider.address,
        "ERC3009InvalidSignature",
    )


def test_authorization_with_a_high_s_signature_is_refused(dep: Deployment) -> None:
    *fields, v, r, s = authorization(dep, dep.alice, dep.bob.address, USDF)
    r2, s2, v2 = high_s((r, s, v))
    expect_revert(
        dep.usdf.functions.transferWithAuthorization(*fields, v2, r2, s2),
        dep.outsider.address,
        "ECDSAInvalidSignatureS",
        s2,
    )


def test_receive_with_authorization_only_by_the_payee(dep: Deployment) -> None:
    alice, bob = dep.alice.address, dep.bob.address
    args = authorization(dep, dep.alice, bob, 40 * USDF, kind="ReceiveWithAuthorization")
    nonce = args[5]
    # Front-running protection: nobody but the payee may submit it.
    for sender in (dep.outsider.address, alice):
        expect_revert(
            dep.usdf.functions.receiveWithAuthorization(*args), sender, "ERC20InvalidReceiver", bob
        )
    before = balance(dep, alice), balance(dep, bob)
    receipt = transact(dep.usdf.functions.receiveWithAuthorization(*args), bob)
    assert events(dep.usdf, receipt, "AuthorizationUsed") == [{"authorizer": alice, "nonce": nonce}]
    assert events(dep.usdf, receipt, "Transfer") == [{"from": alice, "to": bob, "value": 40 * USDF}]
    assert (balance(dep, alice), balance(dep, bob)) == (
        before[0] - 40 * USDF,
        before[1] + 40 * USDF,
    )
    expect_revert(
        dep.usdf.functions.receiveWithAuthorization(*args),
        bob,
        "ERC3009UsedAuthorization",
        alice,
        nonce,
    )


def test_transfer_and_receive_authorizations_are_not_interchangeable(dep: Deployment) -> None:
    bob = dep.bob.address
    receive = authorization(dep, dep.alice, bob, USDF, kind="ReceiveWithAuthorization")
    # A third party cannot strip the payee-only restriction by resubmitting as a transfer...
    expect_revert(
        dep.usdf.functions.transferWithAuthorization(*receive),
        dep.outsider.address,
        "ERC3009InvalidSignature",
    )
    transfer = authorization(dep, dep.alice, bob, USDF)
    # ...nor the payee use a transfer authorization as a receive one.
    expect_revert(
        dep.usdf.functions.receiveWithAuthorization(*transfer), bob, "ERC3009InvalidSignature"
    )


def test_cancel_authorization_consumes_the_nonce(dep: Deployment) -> None:
    alice = dep.alice.address
    args = authorization(dep, dep.alice, dep.bob.address, USDF)
    nonce = args[5]
    receipt = transact(
        dep.usdf.functions.cancelAuthorization(*cancellation(dep, dep.alice, nonce)),
        dep.outsider.address,
    )
    assert events(dep.usdf, receipt, "AuthorizationCanceled") == [
        {"authorizer": alice, "nonce": nonce}
    ]
    assert events(dep.usdf, receipt, "AuthorizationUsed") == []
    assert dep.usdf.functions.authorizationState(alice, nonce).call()
    expect_revert(
        dep.usdf.functions.transferWithAuthorization(*args),
        dep.outsider.address,
        "ERC3009UsedAuthorization",
        alice,
        nonce,
    )


def test_cancelling_twice_or_after_use_is_refused(dep: Deployment) -> None:
    alice = dep.alice.address
    nonce = new_nonce()
    cancel = dep.usdf.functions.cancelAuthorization(*cancellation(dep, dep.alice, nonce))
    transact(cancel, alice)
    expect_revert(cancel, alice, "ERC3009UsedAuthorization", alice, nonce)

    used = authorization(dep, dep.alice, dep.bob.address, USDF)
    transact(dep.usdf.functions.transferWithAuthorization(*used), dep.outsider.address)
    expect_revert(
        dep.usdf.functions.cancelAuthorization(*cancellation(dep, dep.alice, used[5])),
        alice,
        "ERC3009UsedAuthorization",
        alice,
        used[5],
    )


def test_cancellation_signed_by_someone_else(dep: Deployment) -> None:
    nonce = new_nonce()
    cancel = cancellation(dep, dep.alice, nonce, signer=dep.bob)
    expect_revert(
        dep.usdf.functions.cancelAuthorization(*cancel), dep.bob.address, "ERC3009InvalidSignature"
    )
    assert not dep.usdf.functions.authorizationState(dep.alice.address, nonce).call()


def test_nonces_are_per_authorizer(dep: Deployment) -> None:
    nonce = new_nonce()
    for payer in (dep.alice, dep.bob):
        args = authorization(dep, payer, dep.carol.address, USDF, nonce=nonce)
        transact(dep.usdf.functions.transferWithAuthorization(*args), dep.outsider.address)
        assert dep.usdf.functions.authorizationState(payer.address, nonce).call()
    assert not dep.usdf.functions.authorizationState(dep.carol.address, nonce).call()


def test_authorization_beyond_the_balance(dep: Deployment) -> None:
    alice = dep.alice.address
    held = balance(dep, alice)
    args = authorization(dep, dep.alice, dep.bob.address, held + 1)
    expect_revert(
        dep.usdf.functions.transferWithAuthorization(*args),
        dep.outsider.address,
        "ERC20InsufficientBalance",
        alice,
        held,
        held + 1,
    )
    # The failed transfer did not burn the nonce.
    assert not dep.usdf.functions.authorizationState(alice, args[5]).call()


def test_window_with_bit_47_on_both_bounds_counts_blocks(dep: Deployment) -> None:
    """Documents a quirk of OpenZeppelin's draft ERC-3009 that wallets must know: when both
    validAfter and validBefore carry bit 47 the window is in block numbers, not seconds."""
    block = dep.w3.eth.block_number
    after, before = BLOCK_RANGE_FLAG | 0, BLOCK_RANGE_FLAG | (block + 10)
    args = authorization(
        dep, dep.alice, dep.bob.address, USDF, valid_after=after, valid_before=before
    )
    # As a timestamp, validAfter = 2**47 is millions of years away: success means blocks.
    transact(dep.usdf.functions.transferWithAuthorization(*args), dep.outsider.address)
    # A block-number window that has closed.
    stale = authorization(
        dep,
        dep.alice,
        dep.bob.address,
        USDF,
        valid_after=after,
        valid_before=BLOCK_RANGE_FLAG | block,
    )
    expect_revert(
        dep.usdf.functions.transferWithAuthorization(*stale),
        dep.outsider.address,
        "ERC3009InvalidAuthorizationTime",
        after,
        BLOCK_RANGE_FLAG | block,
    )
