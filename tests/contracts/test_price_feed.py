"""PriceFeed: the AggregatorV3-compatible FAR / USD price, published by the updater role."""

from __future__ import annotations

import pytest
from eth_utils import keccak

from tests.contracts.chain import (
    advance_time,
    deploy_revert_of,
    events,
    expect_revert,
    transact,
)
from tests.contracts.conftest import PRICE, Deployment

UPDATER_ROLE = keccak(text="UPDATER_ROLE")
DEFAULT_ADMIN_ROLE = b"\x00" * 32
UINT80_MAX = 2**80 - 1


def block_timestamp(dep: Deployment, block_number: int) -> int:
    return int(dep.w3.eth.get_block(block_number)["timestamp"])


def test_metadata(dep: Deployment) -> None:
    feed = dep.feed.functions
    assert feed.decimals().call() == 8
    assert feed.description().call() == "FAR / USD"
    assert feed.version().call() == 1


def test_initial_round_after_deployment(dep: Deployment) -> None:
    # The constructor published round 1; its NewRound log fixes the deployment block.
    (log,) = dep.feed.events.NewRound().get_logs(from_block=0)
    deployed_at = block_timestamp(dep, log["blockNumber"])
    assert dict(log["args"]) == {
        "roundId": 1,
        "startedBy": dep.gov.address,
        "startedAt": deployed_at,
    }
    round_id, answer, started_at, updated_at, answered_in = (
        dep.feed.functions.latestRoundData().call()
    )
    assert (round_id, answer, answered_in) == (1, PRICE, 1)
    assert answer == 250_000_000
    assert started_at == updated_at == deployed_at
    assert dep.feed.functions.getRoundData(1).call() == [1, PRICE, deployed_at, deployed_at, 1]
    assert dep.feed.functions.latestRound().call() == 1


def test_updater_publishes_a_new_round(dep: Deployment) -> None:
    (_, _, _, first_at, _) = dep.feed.functions.latestRoundData().call()
    advance_time(dep.w3, 60)
    receipt = transact(dep.feed.functions.updateAnswer(310_000_000), dep.gov.address)
    now = block_timestamp(dep, receipt["blockNumber"])
    assert now > first_at

    assert events(dep.feed, receipt, "NewRound") == [
        {"roundId": 2, "startedBy": dep.gov.address, "startedAt": now}
    ]
    assert events(dep.feed, receipt, "AnswerUpdated") == [
        {"current": 310_000_000, "roundId": 2, "updatedAt": now}
    ]
    assert dep.feed.functions.latestRoundData().call() == [2, 310_000_000, now, now, 2]
    assert dep.feed.functions.getRoundData(2).call() == [2, 310_000_000, now, now, 2]
    # The old round is kept as it was.
    assert dep.feed.functions.getRoundData(1).call() == [1, PRICE, first_at, first_at, 1]
    assert dep.feed.functions.latestRound().call() == 2


@pytest.mark.parametrize("answer", [0, -1, -PRICE, -(2**255)])
def test_non_positive_answer_is_refused(dep: Deployment, answer: int) -> None:
    expect_revert(
        dep.feed.functions.updateAnswer(answer), dep.gov.address, "NonPositiveAnswer", answer
    )
    assert dep.feed.functions.latestRound().call() == 1


def test_non_positive_initial_answer_is_refused(dep: Deployment) -> None:
    gov = dep.gov.address
    revert = deploy_revert_of(dep.w3, "PriceFeed", gov, gov, 8, "FAR / USD", 0)
    assert (revert.name, revert.args) == ("NonPositiveAnswer", (0,))


@pytest.mark.parametrize("who", ["alice", "outsider"])
def test_non_updater_cannot_update(dep: Deployment, who: str) -> None:
    account = getattr(dep, who).address
    expect_revert(
        dep.feed.functions.updateAnswer(PRICE),
        account,
        "AccessControlUnauthorizedAccount",
        account,
        UPDATER_ROLE,
    )


@pytest.mark.parametrize("round_id", [0, 2, UINT80_MAX])
def test_unknown_round_has_no_data(dep: Deployment, round_id: int) -> None:
    expect_revert(
        dep.feed.functions.getRoundData(round_id), dep.alice.address, "NoDataPresent", round_id
    )


def test_role_admin_grants_and_revokes_the_updater_role(dep: Deployment) -> None:
    bob, gov = dep.bob.address, dep.gov.address
    assert dep.feed.functions.getRoleAdmin(UPDATER_ROLE).call() == DEFAULT_ADMIN_ROLE
    # Only the role admin may grant it.
    expect_revert(
        dep.feed.functions.grantRole(UPDATER_ROLE, bob),
        bob,
        "AccessControlUnauthorizedAccount",
        bob,
        DEFAULT_ADMIN_ROLE,
    )

    receipt = transact(dep.feed.functions.grantRole(UPDATER_ROLE, bob), gov)
    assert events(dep.feed, receipt, "RoleGranted") == [
        {"role": UPDATER_ROLE, "account": bob, "sender": gov}
    ]
    receipt = transact(dep.feed.functions.updateAnswer(199_000_000), bob)
    assert events(dep.feed, receipt, "NewRound")[0]["startedBy"] == bob
    assert dep.feed.functions.latestRoundData().call()[:2] == [2, 199_000_000]

    transact(dep.feed.functions.revokeRole(UPDATER_ROLE, bob), gov)
    expect_revert(
        dep.feed.functions.updateAnswer(PRICE),
        bob,
        "AccessControlUnauthorizedAccount",
        bob,
        UPDATER_ROLE,
    )
