"""Vault redemption of withdrawal certificates: what pays, and every way a certificate is
refused (non-member, duplicate, short quorum, replay across epoch/chain/Vault, high s,
paid twice)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.contracts.chain import (
    Withdrawal,
    certificate,
    compact,
    domain,
    events,
    expect_revert,
    high_s,
    order_digest,
    revert_of,
    sign_digest,
    signer_bits,
    transact,
    vote,
    vote_digest,
)
from tests.contracts.conftest import USDF, Deployment

ZERO = "0x" + "00" * 20
HALF_ORDER = 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0


def _withdrawal(
    dep: Deployment, sequence: int = 0, amount: int = 10 * USDF, **kw: Any
) -> Withdrawal:
    fields = {
        "account": dep.alice.address,
        "recipient": dep.bob.address,
        "token": dep.usdf.address,
        "amount": amount,
        "sequence": sequence,
    }
    fields.update(kw)
    return Withdrawal(**fields)


def test_redeem_pays_the_recipient_once(dep: Deployment) -> None:
    v, usdf = dep.vault, dep.usdf
    w = _withdrawal(dep, sequence=4)
    vault_before = usdf.functions.balanceOf(v.address).call()
    bob_before = usdf.functions.balanceOf(dep.bob.address).call()
    assert v.functions.isRedeemed(w.account, w.sequence).call() is False

    cert = certificate(dep.domain, w, 1, dep.members)
    receipt = transact(v.functions.redeem(cert), dep.outsider.address)  # anyone may submit

    assert events(v, receipt, "Redeemed") == [{"account": w.account, "sequence": 4}]
    assert events(usdf, receipt, "Transfer") == [
        {"from": v.address, "to": dep.bob.address, "value": w.amount}
    ]
    assert usdf.functions.balanceOf(v.address).call() == vault_before - w.amount
    assert usdf.functions.balanceOf(dep.bob.address).call() == bob_before + w.amount
    assert v.functions.isRedeemed(w.account, 4).call() is True
    assert v.functions.isRedeemed(w.account, 3).call() is False
    assert v.functions.isRedeemed(w.account, 260).call() is False
    expect_revert(v.functions.redeem(cert), dep.outsider.address, "AlreadyRedeemed", w.account, 4)
    # The same (account, sequence) with any other content is refused too.
    other = certificate(dep.domain, _withdrawal(dep, sequence=4, amount=1), 1, dep.members)
    expect_revert(v.functions.redeem(other), dep.bob.address, "AlreadyRedeemed", w.account, 4)


@pytest.mark.parametrize("indexes", [(0, 1, 2), (1, 2, 3), (0, 2, 3), (0, 1, 2, 3)])
def test_any_quorum_of_members_redeems(dep: Deployment, indexes: tuple[int, ...]) -> None:
    w = _withdrawal(dep, sequence=1)
    cert = certificate(dep.domain, w, 1, dep.members, indexes)
    transact(dep.vault.functions.redeem(cert), dep.bob.address)
    assert dep.vault.functions.isRedeemed(w.account, 1).call() is True


def _cert_with_votes(
    dep: Deployment, w: Withdrawal, signers: int, votes: list[Any], epoch: int = 1
) -> tuple[Any, ...]:
    return (w.as_tuple(), epoch, signers, votes)


def test_vote_by_a_non_member_is_refused(dep: Deployment) -> None:
    w = _withdrawal(dep)
    votes = [vote(dep.domain, m, w, 1) for m in (dep.members[0], dep.members[1], dep.outsider)]
    cert = _cert_with_votes(dep, w, signer_bits((0, 1, 2)), votes)
    expect_revert(
        dep.vault.functions.redeem(cert),
        dep.bob.address,
        "VoteNotByMember",
        2,
        dep.members[2].address,
        dep.outsider.address,
    )


def test_duplicated_member_is_refused(dep: Deployment) -> None:
    w = _withdrawal(dep)
    m0 = dep.members[0]
    votes = [vote(dep.domain, m, w, 1) for m in (m0, m0, dep.members[2])]
    cert = _cert_with_votes(dep, w, signer_bits((0, 1, 2)), votes)
    expect_revert(
        dep.vault.functions.redeem(cert),
        dep.bob.address,
        "VoteNotByMember",
        1,
        dep.members[1].address,
        m0.address,
    )
    # The bitmap names each member once, so the repeated vote lands on another member's bit.
    cert = _cert_with_votes(dep, w, signer_bits((0, 2)), votes)
    expect_revert(
        dep.vault.functions.redeem(cert),
        dep.bob.address,
        "VoteNotByMember",
        1,
        dep.members[2].address,
        m0.address,
    )


def test_fewer_than_quorum_is_refused(dep: Deployment) -> None:
    w = _withdrawal(dep)
    cert = certificate(dep.domain, w, 1, dep.members, (0, 3))
    expect_revert(dep.vault.functions.redeem(cert), dep.bob.address, "InsufficientQuorum", 2, 3)
    cert = _cert_with_votes(dep, w, 0, [])
    expect_revert(dep.vault.functions.redeem(cert), dep.bob.address, "InsufficientQuorum", 0, 3)


def test_signers_bitmap_must_match_the_votes(dep: Deployment) -> None:
    w = _withdrawal(dep)
    votes = [vote(dep.domain, dep.members[i], w, 1) for i in (0, 1, 2)]
    expect_revert(
        dep.vault.functions.redeem(_cert_with_votes(dep, w, signer_bits((0, 1, 2, 3)), votes)),
        dep.bob.address,
        "VoteCountMismatch",
    )
    expect_revert(
        dep.vault.functions.redeem(_cert_with_votes(dep, w, signer_bits((0, 1, 2, 4)), votes)),
        dep.bob.address,
        "SignerOutOfRange",
        signer_bits((0, 1, 2, 4)),
        4,
    )
    # Votes out of index order do not match the members the bitmap names.
    shuffled = [votes[1], votes[0], votes[2]]
    expect_revert(
        dep.vault.functions.redeem(_cert_with_votes(dep, w, signer_bits((0, 1, 2)), shuffled)),
        dep.bob.address,
        "VoteNotByMember",
        0,
    )


def test_votes_for_another_order_are_refused(dep: Deployment) -> None:
    signed = _withdrawal(dep, amount=10 * USDF)
    claimed = _withdrawal(dep, amount=11 * USDF)
    votes = [vote(dep.domain, dep.members[i], signed, 1) for i in (0, 1, 2)]
    cert = _cert_with_votes(dep, claimed, signer_bits((0, 1, 2)), votes)
    expect_revert(dep.vault.functions.redeem(cert), dep.bob.address, "VoteNotByMember", 0)


def test_replay_from_another_epoch_chain_or_vault_is_refused(dep: Deployment) -> None:
    w = _withdrawal(dep)
    foreign_domains = {
        "chain": domain(dep.chain_id + 1, dep.vault.address),
        "vault": domain(dep.chain_id, dep.usdf.address),
        "name": domain(dep.chain_id, dep.vault.address, name="Farthing2"),
    }
    for dom in foreign_domains.values():
        cert = certificate(dom, w, 1, dep.members)
        expect_revert(dep.vault.functions.redeem(cert), dep.bob.address, "VoteNotByMember", 0)
    # Votes of epoch 2 presented as epoch 1 (the Vote signs the epoch).
    votes = [vote(dep.domain, dep.members[i], w, 2) for i in (0, 1, 2)]
    cert = _cert_with_votes(dep, w, signer_bits((0, 1, 2)), votes, epoch=1)
    expect_revert(dep.vault.functions.redeem(cert), dep.bob.address, "VoteNotByMember", 0)
    # An epoch that does not exist (yet), and epoch 0.
    for epoch in (0, 2):
        cert = certificate(dep.domain, w, epoch, dep.members)
        expect_revert(dep.vault.functions.redeem(cert), dep.bob.address, "UnknownEpoch", epoch)


def test_replay_on_another_vault_deployment_is_refused(dep: Deployment) -> None:
    """A second Vault with the very same committee does not accept the first one's votes."""
    from tests.contracts.chain import deploy
    from tests.contracts.conftest import MIN_BOND

    g = dep.gov.address
    other = deploy(dep.w3, "Vault", g, g, dep.far.address, MIN_BOND)
    transact(other.functions.registerToken(dep.usdf.address), g)
    for m in dep.members:
        transact(dep.far.functions.approve(other.address, MIN_BOND), m.address)
        transact(other.functions.bond(m.address, MIN_BOND), m.address)
    transact(
        other.functions.startEpoch([m.address for m in dep.members], dep.endpoints(dep.members), 3),
        g,
    )
    transact(dep.usdf.functions.approve(other.address, 100 * USDF), dep.alice.address)
    transact(
        other.functions.deposit(dep.usdf.address, 100 * USDF, dep.alice.address), dep.alice.address
    )
    w = _withdrawal(dep)
    cert = certificate(dep.domain, w, 1, dep.members)  # voted for the first Vault
    expect_revert(other.functions.redeem(cert), dep.bob.address, "VoteNotByMember", 0)
    other_cert = certificate(domain(dep.chain_id, other.address), w, 1, dep.members)
    transact(other.functions.redeem(other_cert), dep.bob.address)


def test_high_s_signatures_are_refused(dep: Deployment) -> None:
    w = _withdrawal(dep)
    digest = vote_digest(dep.domain, order_digest(dep.domain, w), 1)
    good = [compact(sign_digest(dep.members[i], digest)) for i in (0, 1, 2)]
    # An s above n/2 in the compact form's 255 bits: refused by the EIP-2 check.
    r = good[1][0]
    too_high = (r, (HALF_ORDER + 1).to_bytes(32, "big"))
    cert = _cert_with_votes(dep, w, signer_bits((0, 1, 2)), [good[0], too_high, good[2]])
    expect_revert(dep.vault.functions.redeem(cert), dep.bob.address, "HighSVoteSignature", 1)
    # The malleated (n - s) twin of a real vote, in compact form, is refused as well:
    # its top bit collides with the compact v bit, so it cannot recover to the member.
    twin = compact(high_s(sign_digest(dep.members[1], digest)))
    cert = _cert_with_votes(dep, w, signer_bits((0, 1, 2)), [good[0], twin, good[2]])
    assert revert_of(dep.vault.functions.redeem(cert), dep.bob.address).name in {
        "VoteNotByMember",
        "InvalidVoteSignature",
        "HighSVoteSignature",
    }
    transact(
        dep.vault.functions.redeem(_cert_with_votes(dep, w, signer_bits((0, 1, 2)), good)),
        dep.bob.address,
    )


def test_unrecoverable_signature_is_refused(dep: Deployment) -> None:
    w = _withdrawal(dep)
    votes = [vote(dep.domain, dep.members[i], w, 1) for i in (0, 1, 2)]
    votes[2] = (b"\x00" * 32, votes[2][1])
    cert = _cert_with_votes(dep, w, signer_bits((0, 1, 2)), votes)
    expect_revert(dep.vault.functions.redeem(cert), dep.bob.address, "InvalidVoteSignature", 2)


def test_zero_amount_or_recipient_is_refused(dep: Deployment) -> None:
    cert = certificate(dep.domain, _withdrawal(dep, amount=0), 1, dep.members)
    expect_revert(dep.vault.functions.redeem(cert), dep.bob.address, "ZeroAmount")
    cert = certificate(dep.domain, _withdrawal(dep, recipient=ZERO), 1, dep.members)
    expect_revert(dep.vault.functions.redeem(cert), dep.bob.address, "ZeroAddress")


def test_failed_payout_leaves_the_withdrawal_redeemable(dep: Deployment) -> None:
    v, usdf = dep.vault, dep.usdf
    held = usdf.functions.balanceOf(v.address).call()
    w = _withdrawal(dep, amount=held + 1)
    cert = certificate(dep.domain, w, 1, dep.members)
    expect_revert(v.functions.redeem(cert), dep.bob.address, "ERC20InsufficientBalance")
    assert v.functions.isRedeemed(w.account, w.sequence).call() is False
    transact(v.functions.deposit(usdf.address, 1, dep.bob.address), dep.bob.address)
    transact(v.functions.redeem(cert), dep.bob.address)
    assert usdf.functions.balanceOf(v.address).call() == 0


def test_redeem_batch_pays_each_and_skips_the_paid(dep: Deployment) -> None:
    v, usdf = dep.vault, dep.usdf
    ws = [_withdrawal(dep, sequence=s, amount=(s + 1) * USDF) for s in range(3)]
    certs = [certificate(dep.domain, w, 1, dep.members) for w in ws]
    transact(v.functions.redeem(certs[1]), dep.bob.address)  # front-run one of them
    bob_before = usdf.functions.balanceOf(dep.bob.address).call()

    batch = [*certs, certs[0]]  # and repeat one inside the batch
    assert v.functions.redeemBatch(batch).call({"from": dep.outsider.address}) == 2
    receipt = transact(v.functions.redeemBatch(batch), dep.outsider.address)

    assert events(v, receipt, "Redeemed") == [
        {"account": dep.alice.address, "sequence": 0},
        {"account": dep.alice.address, "sequence": 2},
    ]
    assert events(v, receipt, "RedemptionSkipped") == [
        {"account": dep.alice.address, "sequence": 1},
        {"account": dep.alice.address, "sequence": 0},
    ]
    assert usdf.functions.balanceOf(dep.bob.address).call() == bob_before + 1 * USDF + 3 * USDF
    assert v.functions.redeemBatch(certs).call({"from": dep.outsider.address}) == 0


def test_redeem_batch_is_all_or_nothing_on_an_invalid_certificate(dep: Deployment) -> None:
    v = dep.vault
    good = certificate(dep.domain, _withdrawal(dep, sequence=0), 1, dep.members)
    bad = certificate(dep.domain, _withdrawal(dep, sequence=1), 1, dep.members, (0, 1))
    expect_revert(v.functions.redeemBatch([good, bad]), dep.bob.address, "InsufficientQuorum", 2, 3)
    expect_revert(v.functions.redeemBatch([]), dep.bob.address, "EmptyBatch")
    assert v.functions.isRedeemed(dep.alice.address, 0).call() is False


def test_many_accounts_and_tokens_in_one_batch(dep: Deployment) -> None:
    from tests.contracts.conftest import FAR

    v = dep.vault
    ws = [
        _withdrawal(dep, sequence=0),
        _withdrawal(dep, account=dep.bob.address, recipient=dep.carol.address, sequence=0),
        _withdrawal(dep, token=dep.far.address, amount=2 * FAR, sequence=1),
    ]
    far_before = dep.far.functions.balanceOf(dep.bob.address).call()
    transact(
        v.functions.redeemBatch([certificate(dep.domain, w, 1, dep.members) for w in ws]),
        dep.gov.address,
    )
    assert all(v.functions.isRedeemed(w.account, w.sequence).call() for w in ws)
    assert dep.far.functions.balanceOf(dep.bob.address).call() == far_before + 2 * FAR
