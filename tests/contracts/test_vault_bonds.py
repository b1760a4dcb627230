"""Member bonds: bonding, unbonding after the delay, and slashing on proof of equivocation
(two votes by one member for different orders at one (account, sequence))."""

from __future__ import annotations

from typing import Any

from eth_account.signers.local import LocalAccount

from tests.contracts.chain import (
    TransferOrder,
    Withdrawal,
    advance_time,
    compact,
    events,
    expect_revert,
    high_s,
    order_digest,
    order_tuple,
    sign_digest,
    transact,
    vote,
    vote_digest,
)
from tests.contracts.conftest import FAR, MIN_BOND, USDF, Deployment

ZERO = "0x" + "00" * 20
DAY = 24 * 3600


def test_bond_adds_to_a_members_bond(dep: Deployment) -> None:
    v, far, payer, member = dep.vault, dep.far, dep.alice, dep.members[0]
    before = v.functions.bonds(member.address).call()
    receipt = transact(v.functions.bond(member.address, 5 * FAR), payer.address)
    assert events(v, receipt, "Bonded") == [
        {
            "member": member.address,
            "payer": payer.address,
            "amount": 5 * FAR,
            "total": before[0] + 5 * FAR,
        }
    ]
    assert v.functions.bonds(member.address).call()[0] == MIN_BOND + 5 * FAR
    assert far.functions.balanceOf(v.address).call() >= MIN_BOND * 8 + 5 * FAR
    expect_revert(v.functions.bond(member.address, 0), payer.address, "ZeroAmount")
    expect_revert(v.functions.bond(ZERO, 1), payer.address, "ZeroAddress")


def test_unbonding_waits_for_the_delay(dep: Deployment) -> None:
    v, far = dep.vault, dep.far
    spare = dep.spare[0]
    expect_revert(v.functions.requestUnbond(), dep.members[0].address, "StillInCurrentCommittee")
    expect_revert(v.functions.requestUnbond(), dep.outsider.address, "NoBond")
    expect_revert(v.functions.withdrawBond(spare.address), spare.address, "UnbondNotRequested")

    receipt = transact(v.functions.requestUnbond(), spare.address)
    requested_at = dep.w3.eth.get_block(receipt["blockNumber"])["timestamp"]
    delay = v.functions.unbondingDelay().call()
    assert events(v, receipt, "UnbondRequested") == [
        {"member": spare.address, "availableAt": requested_at + delay}
    ]
    expect_revert(
        v.functions.withdrawBond(spare.address),
        spare.address,
        "UnbondingPending",
        spare.address,
        requested_at + delay,
    )
    advance_time(dep.w3, delay)
    expect_revert(v.functions.withdrawBond(ZERO), spare.address, "ZeroAddress")
    before = far.functions.balanceOf(dep.carol.address).call()
    receipt = transact(v.functions.withdrawBond(dep.carol.address), spare.address)
    assert events(v, receipt, "BondWithdrawn") == [
        {"member": spare.address, "to": dep.carol.address, "amount": MIN_BOND}
    ]
    assert far.functions.balanceOf(dep.carol.address).call() == before + MIN_BOND
    assert v.functions.bonds(spare.address).call() == [0, 0, False]
    expect_revert(v.functions.withdrawBond(spare.address), spare.address, "UnbondNotRequested")


def _transfer(dep: Deployment, payee: str, sequence: int = 3, amount: int = USDF) -> TransferOrder:
    return TransferOrder(dep.alice.address, payee, dep.usdf.address, amount, sequence, b"\x01" * 32)


def _evidence(
    dep: Deployment, member: LocalAccount, a: Any, b: Any, epoch_a: int = 1, epoch_b: int = 1
) -> tuple[Any, ...]:
    return (
        member.address,
        order_tuple(a),
        epoch_a,
        vote(dep.domain, member, a, epoch_a),
        order_tuple(b),
        epoch_b,
        vote(dep.domain, member, b, epoch_b),
    )


def test_equivocation_slashes_the_whole_bond(dep: Deployment) -> None:
    v, far, member, reporter = dep.vault, dep.far, dep.members[1], dep.outsider
    a = _transfer(dep, dep.bob.address)
    b = _transfer(dep, dep.carol.address)
    reporter_before = far.functions.balanceOf(reporter.address).call()
    treasury_before = far.functions.balanceOf(dep.gov.address).call()

    receipt = transact(
        v.functions.slashEquivocation(*_evidence(dep, member, a, b)), reporter.address
    )

    reward = MIN_BOND * 5_000 // 10_000
    assert events(v, receipt, "Slashed") == [
        {
            "member": member.address,
            "reporter": reporter.address,
            "amount": MIN_BOND,
            "reward": reward,
        }
    ]
    assert far.functions.balanceOf(reporter.address).call() == reporter_before + reward
    assert far.functions.balanceOf(dep.gov.address).call() == treasury_before + MIN_BOND - reward
    assert v.functions.bonds(member.address).call() == [0, 0, True]
    # Once slashed: nothing more to slash, no new bond, no seat in a committee.
    expect_revert(
        v.functions.slashEquivocation(*_evidence(dep, member, a, b)),
        reporter.address,
        "NothingToSlash",
    )
    expect_revert(v.functions.bond(member.address, MIN_BOND), member.address, "MemberSlashed")
    members = [dep.members[0].address, member.address, dep.members[2].address]
    expect_revert(
        v.functions.startEpoch(members, dep.endpoints(dep.members[:3]), 3),
        dep.gov.address,
        "MemberSlashed",
    )


def test_transfer_against_withdrawal_and_across_epochs_is_equivocation(dep: Deployment) -> None:
    v, member = dep.vault, dep.members[0]
    a = _transfer(dep, dep.bob.address, sequence=7)
    b = Withdrawal(dep.alice.address, dep.alice.address, dep.usdf.address, USDF, 7)
    transact(
        v.functions.setParameters(MIN_BOND, 7 * DAY, 14 * DAY, 2_500, dep.carol.address),
        dep.gov.address,
    )
    receipt = transact(
        v.functions.slashEquivocation(*_evidence(dep, member, a, b, 1, 2)), dep.bob.address
    )
    assert events(v, receipt, "Slashed")[0]["reward"] == MIN_BOND // 4


def test_what_is_not_equivocation(dep: Deployment) -> None:
    v, member, reporter = dep.vault, dep.members[0], dep.outsider.address
    a = _transfer(dep, dep.bob.address, sequence=3)
    same = _transfer(dep, dep.bob.address, sequence=3)
    next_seq = _transfer(dep, dep.carol.address, sequence=4)
    other_account = TransferOrder(dep.bob.address, dep.carol.address, dep.usdf.address, USDF, 3)
    for b in (same, next_seq, other_account):
        expect_revert(
            v.functions.slashEquivocation(*_evidence(dep, member, a, b)),
            reporter,
            "NotEquivocation",
        )
    # The same order voted in two epochs is not equivocation either.
    expect_revert(
        v.functions.slashEquivocation(*_evidence(dep, member, a, a, 1, 2)),
        reporter,
        "NotEquivocation",
    )


def test_evidence_must_carry_the_members_own_votes(dep: Deployment) -> None:
    v, member, other = dep.vault, dep.members[0], dep.members[1]
    a = _transfer(dep, dep.bob.address)
    b = _transfer(dep, dep.carol.address)
    evidence = list(_evidence(dep, member, a, b))
    evidence[6] = vote(dep.domain, other, b, 1)  # the second vote is someone else's
    expect_revert(
        v.functions.slashEquivocation(*evidence), dep.bob.address, "InvalidVoteSignature", 1
    )
    evidence = list(_evidence(dep, member, a, b))
    digest = vote_digest(dep.domain, order_digest(dep.domain, a), 1)
    r, _ = compact(sign_digest(member, digest))
    evidence[3] = (
        r,
        (0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A1).to_bytes(32, "big"),
    )
    expect_revert(
        v.functions.slashEquivocation(*evidence), dep.bob.address, "HighSVoteSignature", 0
    )
    evidence = list(_evidence(dep, member, a, b))
    evidence[3] = compact(high_s(sign_digest(member, digest)))
    expect_revert(
        v.functions.slashEquivocation(*evidence), dep.bob.address, "InvalidVoteSignature", 0
    )
    assert v.functions.bonds(member.address).call()[0] == MIN_BOND


def test_withdrawal_order_with_a_reference_is_invalid(dep: Deployment) -> None:
    v, member = dep.vault, dep.members[0]
    a = _transfer(dep, dep.bob.address)
    w = Withdrawal(dep.alice.address, dep.alice.address, dep.usdf.address, USDF, 3)
    evidence = list(_evidence(dep, member, a, w))
    evidence[4] = (*evidence[4][:6], b"\x02" * 32)
    expect_revert(v.functions.slashEquivocation(*evidence), dep.bob.address, "InvalidOrder")


def test_digest_views_match_eth_account(dep: Deployment) -> None:
    """The Vault's EIP-712 digests equal eth-account's, for both order kinds and a vote."""
    v = dep.vault
    t = _transfer(dep, dep.bob.address, sequence=2**64 - 1, amount=2**256 - 1)
    w = Withdrawal(dep.alice.address, dep.carol.address, dep.far.address, 12345, 0)
    assert v.functions.orderDigest(order_tuple(t)).call() == order_digest(dep.domain, t)
    assert v.functions.orderDigest(order_tuple(w)).call() == order_digest(dep.domain, w)
    assert v.functions.withdrawalDigest(w.as_tuple()).call() == order_digest(dep.domain, w)
    order = order_digest(dep.domain, w)
    assert v.functions.voteDigest(order, 7).call() == vote_digest(dep.domain, order, 7)
