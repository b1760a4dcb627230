"""Committees per epoch, endpoints, parameters, and the rotation rule: a retired epoch's
certificates are accepted for `retirementGrace`, then only re-certified ones are."""

from __future__ import annotations

from eth_account.signers.local import LocalAccount

from tests.contracts.chain import (
    Withdrawal,
    advance_time,
    certificate,
    events,
    expect_revert,
    transact,
)
from tests.contracts.conftest import MIN_BOND, QUORUM, USDF, Deployment

ZERO = "0x" + "00" * 20
WEEK = 7 * 24 * 3600


def _addresses(accounts: list[LocalAccount]) -> list[str]:
    return [a.address for a in accounts]


def _rotate(dep: Deployment, members: list[LocalAccount], quorum: int = QUORUM) -> int:
    receipt = transact(
        dep.vault.functions.startEpoch(_addresses(members), dep.endpoints(members), quorum),
        dep.gov.address,
    )
    (started,) = events(dep.vault, receipt, "EpochStarted")
    return int(started["epoch"])


def test_initial_committee_is_readable(dep: Deployment) -> None:
    v = dep.vault
    assert v.functions.currentEpoch().call() == 1
    members, endpoints, quorum, retired_at = v.functions.committee(1).call()
    assert members == _addresses(dep.members)
    assert endpoints == dep.endpoints(dep.members)
    assert (quorum, retired_at) == (3, 0)
    assert all(v.functions.isMember(1, m.address).call() for m in dep.members)
    assert v.functions.isMember(1, dep.outsider.address).call() is False
    assert v.functions.epochAcceptance(1).call() == [True, 0]
    assert v.functions.epochAcceptance(2).call() == [False, 0]
    expect_revert(v.functions.committee(2), dep.bob.address, "UnknownEpoch", 2)


def test_start_epoch_retires_the_previous_one(dep: Deployment) -> None:
    v = dep.vault
    receipt = transact(
        v.functions.startEpoch(_addresses(dep.spare), dep.endpoints(dep.spare), 3), dep.gov.address
    )
    block_time = dep.w3.eth.get_block(receipt["blockNumber"])["timestamp"]
    assert events(v, receipt, "EpochRetired") == [{"epoch": 1, "retiredAt": block_time}]
    assert events(v, receipt, "EpochStarted") == [
        {
            "epoch": 2,
            "members": _addresses(dep.spare),
            "endpoints": dep.endpoints(dep.spare),
            "quorum": 3,
        }
    ]
    assert v.functions.currentEpoch().call() == 2
    assert v.functions.committee(1).call()[3] == block_time
    grace = v.functions.retirementGrace().call()
    assert v.functions.epochAcceptance(1).call() == [True, block_time + grace]


def test_start_epoch_refusals(dep: Deployment) -> None:
    v, gov = dep.vault, dep.gov.address
    four = _addresses(dep.spare)
    urls = dep.endpoints(dep.spare)

    def refused(
        members: list[str], endpoints: list[str], quorum: int, error: str, *args: object
    ) -> None:
        expect_revert(v.functions.startEpoch(members, endpoints, quorum), gov, error, *args)

    refused([], [], 1, "CommitteeSizeOutOfRange", 0)
    refused(four, urls[:3], 3, "LengthMismatch", 4, 3)
    refused(four, urls, 2, "QuorumOutOfRange", 2, 3, 4)
    refused(four, urls, 5, "QuorumOutOfRange", 5, 3, 4)
    refused([four[0], four[1], four[0]], urls[:3], 3, "DuplicateMember", four[0])
    refused([four[0], ZERO], urls[:2], 2, "ZeroAddress")
    refused(four, [urls[0], "", urls[2], urls[3]], 3, "EmptyEndpoint", four[1])
    refused(
        [dep.outsider.address],
        ["http://x"],
        1,
        "InsufficientBond",
        dep.outsider.address,
        0,
        MIN_BOND,
    )
    expect_revert(
        v.functions.startEpoch(four, urls, 3),
        dep.outsider.address,
        "AccessControlUnauthorizedAccount",
    )
    transact(v.functions.requestUnbond(), four[2])
    refused(four, urls, 3, "MemberUnbonding", four[2])


def test_quorum_bounds_follow_two_thirds(dep: Deployment) -> None:
    """Minimum quorum floor(2n/3)+1: n=1 -> 1, n=2 -> 2, n=3 -> 3, n=4 -> 3."""
    for n, minimum in ((1, 1), (2, 2), (3, 3), (4, 3)):
        members = dep.spare[:n]
        expect_revert(
            dep.vault.functions.startEpoch(
                _addresses(members), dep.endpoints(members), minimum - 1
            ),
            dep.gov.address,
            "QuorumOutOfRange",
        )
        _rotate(dep, members, minimum)


def test_member_moves_its_endpoint(dep: Deployment) -> None:
    v, m = dep.vault, dep.members[2]
    receipt = transact(v.functions.setEndpoint("http://10.0.0.7:8700"), m.address)
    assert events(v, receipt, "EndpointUpdated") == [
        {"epoch": 1, "member": m.address, "endpoint": "http://10.0.0.7:8700"}
    ]
    assert v.functions.committee(1).call()[1][2] == "http://10.0.0.7:8700"
    expect_revert(
        v.functions.setEndpoint("http://x"), dep.outsider.address, "NotInCurrentCommittee"
    )
    expect_revert(v.functions.setEndpoint(""), m.address, "EmptyEndpoint")


def test_parameters(dep: Deployment) -> None:
    v, gov = dep.vault, dep.gov.address
    receipt = transact(v.functions.setParameters(5, 100, 200, 1_000, dep.carol.address), gov)
    assert events(v, receipt, "ParametersUpdated") == [
        {
            "minBond": 5,
            "retirementGrace": 100,
            "unbondingDelay": 200,
            "slashRewardBps": 1_000,
            "treasury": dep.carol.address,
        }
    ]
    assert v.functions.minBond().call() == 5
    assert v.functions.treasury().call() == dep.carol.address
    expect_revert(v.functions.setParameters(5, 300, 200, 1_000, gov), gov, "InvalidParameter")
    expect_revert(v.functions.setParameters(5, 100, 200, 10_001, gov), gov, "InvalidParameter")
    expect_revert(v.functions.setParameters(5, 100, 200, 1_000, ZERO), gov, "ZeroAddress")
    expect_revert(
        v.functions.setParameters(5, 100, 200, 1_000, gov),
        dep.outsider.address,
        "AccessControlUnauthorizedAccount",
    )


def _withdrawal(dep: Deployment, sequence: int) -> Withdrawal:
    return Withdrawal(dep.alice.address, dep.bob.address, dep.usdf.address, 5 * USDF, sequence)


def test_retired_epoch_certificates_are_accepted_during_the_grace(dep: Deployment) -> None:
    v = dep.vault
    old_cert = certificate(dep.domain, _withdrawal(dep, 0), 1, dep.members)
    _rotate(dep, dep.spare)
    advance_time(dep.w3, WEEK - 60)
    transact(v.functions.redeem(old_cert), dep.bob.address)
    assert v.functions.isRedeemed(dep.alice.address, 0).call() is True


def test_after_the_grace_a_certificate_is_recertified_by_the_new_committee(dep: Deployment) -> None:
    v = dep.vault
    w = _withdrawal(dep, 0)
    old_cert = certificate(dep.domain, w, 1, dep.members)
    _rotate(dep, dep.spare)
    advance_time(dep.w3, WEEK)
    accepted_until = v.functions.epochAcceptance(1).call()[1]
    expect_revert(v.functions.redeem(old_cert), dep.bob.address, "EpochExpired", 1, accepted_until)
    # Not stranded: the current committee votes for the same Withdrawal in epoch 2.
    recertified = certificate(dep.domain, w, 2, dep.spare)
    transact(v.functions.redeem(recertified), dep.bob.address)
    # And it cannot be paid a second time through the other certificate.
    expect_revert(v.functions.redeemBatch([old_cert]), dep.bob.address, "EpochExpired")
    expect_revert(v.functions.redeem(recertified), dep.bob.address, "AlreadyRedeemed")


def test_retired_keys_cannot_sign_new_money_out(dep: Deployment) -> None:
    v = dep.vault
    _rotate(dep, dep.spare)
    advance_time(dep.w3, WEEK)
    fresh = _withdrawal(dep, 9)
    # As epoch 1 (expired) ...
    expect_revert(
        v.functions.redeem(certificate(dep.domain, fresh, 1, dep.members)),
        dep.bob.address,
        "EpochExpired",
    )
    # ... or claiming to be epoch 2's committee.
    expect_revert(
        v.functions.redeem(certificate(dep.domain, fresh, 2, dep.members)),
        dep.bob.address,
        "VoteNotByMember",
    )


def test_batch_across_two_epochs(dep: Deployment) -> None:
    v = dep.vault
    old = certificate(dep.domain, _withdrawal(dep, 0), 1, dep.members)
    _rotate(dep, dep.spare)
    new = certificate(dep.domain, _withdrawal(dep, 1), 2, dep.spare, (1, 2, 3))
    again_old = certificate(dep.domain, _withdrawal(dep, 2), 1, dep.members, (0, 2, 3))
    assert v.functions.redeemBatch([old, new, again_old]).call({"from": dep.bob.address}) == 3
    transact(v.functions.redeemBatch([old, new, again_old]), dep.bob.address)
