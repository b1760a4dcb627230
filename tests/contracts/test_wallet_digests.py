"""The wallet's hand-written EIP-712 encoder against the deployed Vault: the domain
separator, the type hashes and the digests of both order kinds and of votes are the ones
the Vault computes on chain (so the votes a node signs with ``wallet`` redeem)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings

from tests.contracts.conftest import Deployment
from tests.wallet.reference import epochs, hashes, orders
from wallet import eip712
from wallet.codec import parse_address
from wallet.eip712 import domain_separator, order_digest, vote_digest
from wallet.types import (
    UINT64_MAX,
    UINT256_MAX,
    ZERO_HASH,
    Address,
    Amount,
    Domain,
    Epoch,
    Hash32,
    Order,
    Sequence,
    Transfer,
    Withdrawal,
)
from wallet.vault import vault_order

A, B, T = Address(b"\xaa" * 20), Address(b"\xbb" * 20), Address(b"\x70" * 20)
ZERO, FF = Address(bytes(20)), Address(b"\xff" * 20)

BOUNDARY_ORDERS: list[Order] = [
    Transfer(A, B, T, Amount(0), Sequence(0)),
    Transfer(A, B, T, Amount(1), Sequence(1), Hash32(b"\x01" * 32)),
    Transfer(FF, FF, FF, Amount(UINT256_MAX), Sequence(UINT64_MAX), Hash32(b"\xff" * 32)),
    Transfer(ZERO, ZERO, ZERO, Amount(0), Sequence(0), ZERO_HASH),
    Withdrawal(A, B, T, Amount(0), Sequence(0)),
    Withdrawal(A, A, T, Amount(10**6), Sequence(7)),
    Withdrawal(FF, FF, FF, Amount(UINT256_MAX), Sequence(UINT64_MAX)),
]


def wallet_domain(dep: Deployment) -> Domain:
    return Domain(dep.chain_id, parse_address(dep.vault.address))


def check_order(dep: Deployment, order: Order, epoch: Epoch) -> None:
    domain = wallet_domain(dep)
    vault = dep.vault.functions
    digest = order_digest(domain, order)
    assert vault.orderDigest(vault_order(order)).call() == digest
    if isinstance(order, Withdrawal):
        as_withdrawal = vault_order(order)[1:6]
        assert vault.withdrawalDigest(as_withdrawal).call() == digest
    assert vault.voteDigest(digest, epoch).call() == vote_digest(domain, digest, epoch)


def test_domain_separator_and_type_hashes(dep: Deployment) -> None:
    vault = dep.vault.functions
    assert vault.domainSeparator().call() == domain_separator(wallet_domain(dep))
    assert vault.TRANSFER_TYPEHASH().call() == eip712.TRANSFER_TYPEHASH
    assert vault.WITHDRAWAL_TYPEHASH().call() == eip712.WITHDRAWAL_TYPEHASH
    assert vault.VOTE_TYPEHASH().call() == eip712.VOTE_TYPEHASH


@pytest.mark.parametrize("order", BOUNDARY_ORDERS)
@pytest.mark.parametrize("epoch", [0, 1, UINT64_MAX])
def test_boundary_digests_match_the_vault(dep: Deployment, order: Order, epoch: int) -> None:
    check_order(dep, order, Epoch(epoch))


@settings(
    max_examples=25,
    deadline=None,
    # The views are read-only, so sharing the per-test chain snapshot is harmless.
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(order=orders, epoch=epochs, other=hashes)
def test_random_digests_match_the_vault(
    dep: Deployment, order: Order, epoch: Epoch, other: Hash32
) -> None:
    check_order(dep, order, epoch)
    vault = dep.vault.functions
    assert vault.voteDigest(other, epoch).call() == vote_digest(wallet_domain(dep), other, epoch)
