"""FarthingToken (FAR): metadata, the supply cap, the minter role and EIP-2612 permit."""

from __future__ import annotations

from typing import Any

import pytest
from eth_account.signers.local import LocalAccount
from eth_utils import keccak

from tests.contracts.chain import (
    TOKEN_TYPES,
    deploy,
    deploy_revert_of,
    domain,
    events,
    expect_revert,
    latest_timestamp,
    sign_digest,
    transact,
    typed_digest,
)
from tests.contracts.conftest import FAR, FAR_CAP, Deployment

ZERO = "0x0000000000000000000000000000000000000000"
MINTER_ROLE = keccak(text="MINTER_ROLE")


def far_permit(
    dep: Deployment, owner: LocalAccount, spender: str, value: int, deadline: int
) -> tuple[Any, ...]:
    message = {
        "owner": owner.address,
        "spender": spender,
        "value": value,
        "nonce": dep.far.functions.nonces(owner.address).call(),
        "deadline": deadline,
    }
    dom = domain(dep.chain_id, dep.far.address, name="Farthing")
    r, s, v = sign_digest(owner, typed_digest(dom, "Permit", message, types=TOKEN_TYPES))
    return (owner.address, spender, value, deadline, v, r, s)


def test_metadata(dep: Deployment) -> None:
    far = dep.far.functions
    assert far.name().call() == "Farthing"
    assert far.symbol().call() == "FAR"
    assert far.decimals().call() == 18
    assert far.cap().call() == FAR_CAP
    _fields, name, version, chain_id, verifying, _salt, _ext = far.eip712Domain().call()
    assert (name, version, chain_id, verifying) == ("Farthing", "1", dep.chain_id, dep.far.address)


def test_mint_up_to_the_cap_and_not_one_unit_more(dep: Deployment) -> None:
    far, gov, outsider = dep.far.functions, dep.gov.address, dep.outsider.address
    room = FAR_CAP - far.totalSupply().call()
    assert room > 0
    expect_revert(far.mint(outsider, room + 1), gov, "ERC20ExceededCap", FAR_CAP + 1, FAR_CAP)

    receipt = transact(far.mint(outsider, room), gov)
    assert events(dep.far, receipt, "Transfer") == [{"from": ZERO, "to": outsider, "value": room}]
    assert far.totalSupply().call() == FAR_CAP
    assert far.balanceOf(outsider).call() == room
    expect_revert(far.mint(dep.alice.address, 1), gov, "ERC20ExceededCap", FAR_CAP + 1, FAR_CAP)
    # Transfers still work at the cap; only minting is bounded.
    transact(far.transfer(dep.alice.address, FAR), outsider)
    assert far.totalSupply().call() == FAR_CAP


@pytest.mark.parametrize("who", ["alice", "outsider"])
def test_non_minter_cannot_mint(dep: Deployment, who: str) -> None:
    account = getattr(dep, who).address
    expect_revert(
        dep.far.functions.mint(account, FAR),
        account,
        "AccessControlUnauthorizedAccount",
        account,
        MINTER_ROLE,
    )


def test_zero_cap_is_refused_at_deployment(dep: Deployment) -> None:
    gov = dep.gov.address
    revert = deploy_revert_of(dep.w3, "FarthingToken", gov, gov, 0)
    assert (revert.name, revert.args) == ("ERC20InvalidCap", (0,))
    assert deploy(dep.w3, "FarthingToken", gov, gov, 1).functions.cap().call() == 1


def test_permit_sets_allowance(dep: Deployment) -> None:
    alice, bob = dep.alice, dep.bob.address
    args = far_permit(dep, alice, bob, 5 * FAR, latest_timestamp(dep.w3) + 600)
    receipt = transact(dep.far.functions.permit(*args), dep.outsider.address)
    assert events(dep.far, receipt, "Approval") == [
        {"owner": alice.address, "spender": bob, "value": 5 * FAR}
    ]
    assert dep.far.functions.allowance(alice.address, bob).call() == 5 * FAR
    assert dep.far.functions.nonces(alice.address).call() == 1


def test_permit_with_an_expired_deadline(dep: Deployment) -> None:
    deadline = latest_timestamp(dep.w3) - 1
    args = far_permit(dep, dep.alice, dep.bob.address, FAR, deadline)
    expect_revert(
        dep.far.functions.permit(*args), dep.outsider.address, "ERC2612ExpiredSignature", deadline
    )
    assert dep.far.functions.allowance(dep.alice.address, dep.bob.address).call() == 0
    assert dep.far.functions.nonces(dep.alice.address).call() == 0
