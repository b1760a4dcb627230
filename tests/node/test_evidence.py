"""Equivocating votes caught by the node: the pure rule (node.state.equivocation), the
store's records, and GET /v1/log/evidence, through the real API on LevelDB."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest
import pytest_asyncio

from node.evidence import EquivocationWatch, EvidenceReporter
from node.state import ReceiveCertificate
from node.state.equivocation import equivocations
from tests.node.factories import (
    ALICE,
    BOB,
    CAROL,
    DOMAIN,
    EPOCH,
    MEMBERS,
    certify,
    transfer,
)
from tests.node.test_api import Running, get, post, serving
from wallet import wire
from wallet.chain import SlashResult, TransactionInfo
from wallet.eip712 import order_digest
from wallet.errors import (
    ChainUnavailable,
    TransactionRejected,
    TransactionReverted,
    TransactionUnconfirmed,
)
from wallet.signing import PrivateKey, check_equivocation, sign_vote
from wallet.types import Address, Epoch, Equivocation, Hash32


def test_members_in_both_certificates_with_valid_votes_are_evidence() -> None:
    held = certify(transfer(payee=BOB, amount=10), MEMBERS[:3])
    other = certify(transfer(payee=CAROL, amount=10), [MEMBERS[2], MEMBERS[3]])
    (found,) = equivocations(DOMAIN, held, other)
    assert found.member == MEMBERS[2].address
    assert (found.first, found.second) == (held.order, other.order)
    assert check_equivocation(DOMAIN, found) is None


def test_no_evidence_without_a_conflict_or_a_valid_second_vote() -> None:
    held = certify(transfer(payee=BOB), MEMBERS[:3])
    assert equivocations(DOMAIN, held, held) == []  # the same order
    later = certify(transfer(payee=CAROL, sequence=1), MEMBERS[:3])
    assert equivocations(DOMAIN, held, later) == []  # another sequence
    other = certify(transfer(payee=CAROL), [MEMBERS[3]])
    assert equivocations(DOMAIN, held, other) == []  # no member in both
    # A vote that is not the member's signature of the other order proves nothing.
    forged = certify(transfer(payee=CAROL), [MEMBERS[1]])
    stolen = dict(held.votes)[MEMBERS[1].address]
    forged = replace(forged, votes=((MEMBERS[1].address, stolen),))
    assert equivocations(DOMAIN, held, forged) == []


def test_check_equivocation_says_what_is_wrong() -> None:
    held = certify(transfer(payee=BOB), MEMBERS[:3])
    other = certify(transfer(payee=CAROL), MEMBERS[:1])
    (good,) = equivocations(DOMAIN, held, other)
    assert check_equivocation(DOMAIN, replace(good, second=good.first)) == (
        "the two orders are the same order"
    )
    moved = transfer(payee=CAROL, sequence=5).order
    assert "one account and sequence" in str(
        check_equivocation(DOMAIN, replace(good, second=moved))
    )
    assert check_equivocation(DOMAIN, replace(good, second_epoch=Epoch(2))) == (
        "the second vote is not the member's signature"
    )
    assert wire.equivocation_from_json(wire.equivocation_to_json(good)) == good


#: What the API fixture's EquivocationWatch handed on as new (node.app: to the reporter).
HANDED: list[Equivocation] = []


@pytest_asyncio.fixture
async def api(tmp_path: Path) -> AsyncIterator[Running]:
    """The node API with the node's EquivocationWatch, as node.app wires it."""
    HANDED.clear()
    watch = lambda store: EquivocationWatch(store, DOMAIN, on_new=HANDED.append).observe  # noqa: E731
    async with serving(tmp_path, watch) as api:
        yield api


@pytest.mark.asyncio
async def test_a_short_certificate_against_an_applied_one_is_kept_as_evidence(
    api: Running,
) -> None:
    applied = certify(transfer(payer=ALICE, payee=BOB, amount=10), MEMBERS[:3])
    status, body = await post(api, "/v1/certificates", wire.certificate_to_json(applied))
    assert (status, body["status"]) == (200, "applied")
    # Member 2 also voted for another order of Alice at sequence 0; member 3 for it too.
    other = transfer(payer=ALICE, payee=CAROL, amount=10)
    digest = order_digest(DOMAIN, other.order)
    votes = [sign_vote(m, DOMAIN, digest, EPOCH) for m in (MEMBERS[2], MEMBERS[3])]
    short = certify(other, [MEMBERS[2], MEMBERS[3]])
    assert {s for s, _ in short.votes} == {v.signer for v in votes}
    status, body = await post(api, "/v1/certificates", wire.certificate_to_json(short))
    assert (status, body["code"]) == (422, "insufficient_quorum")  # still refused
    # Again (and through the batch): one record per member and sequence.
    status, body = await post(
        api, "/v1/certificates/batch", {"certificates": [wire.certificate_to_json(short)]}
    )
    assert body["results"][0]["error"]["code"] == "insufficient_quorum"
    status, body = await get(api, "/v1/log/evidence")
    assert status == 200 and body["evidence"] == []
    (kept,) = [wire.equivocation_from_json(e) for e in body["equivocations"]]
    assert kept.member == MEMBERS[2].address and kept.first == applied.order
    assert kept.second == other.order and check_equivocation(DOMAIN, kept) is None
    assert [kept] == HANDED  # handed on once, when first kept
    assert ReceiveCertificate(short).certificate == short


# ---------------------------------------------------------------- taking it to the Vault


def _evidence(member: int, payee: PrivateKey = BOB) -> Equivocation:
    held = certify(transfer(payee=payee, amount=10), MEMBERS)
    other = certify(transfer(payee=CAROL, amount=10), [MEMBERS[member]])
    (found,) = equivocations(DOMAIN, held, other)
    return found


class FakeVault:
    """``VaultClient.slash_equivocation`` scripted: each call takes the next outcome (an
    exception to raise, or None for a slash), then answers NothingToSlash."""

    def __init__(self, outcomes: list[BaseException | None]) -> None:
        self.outcomes = outcomes
        self.calls: list[Equivocation] = []
        self.slashed: set[Address] = set()

    async def slash(self, evidence: Equivocation) -> SlashResult:
        self.calls.append(evidence)
        outcome = self.outcomes.pop(0) if self.outcomes else None
        if outcome is not None:
            raise outcome
        if evidence.member in self.slashed:
            return SlashResult(evidence.member, 0, 0, None)
        self.slashed.add(evidence.member)
        return SlashResult(evidence.member, 100, 10, TransactionInfo(Hash32(bytes(32)), 5, 1, 0))


async def _settle(reporter: EvidenceReporter) -> None:
    """Runs the reporter until its queue is worked off."""
    task = asyncio.create_task(reporter.run())
    try:
        for _ in range(100):
            await asyncio.sleep(0)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@pytest.mark.asyncio
async def test_the_reporter_retries_what_a_retry_may_cure_and_reports_a_member_once() -> None:
    vault = FakeVault(
        [
            ChainUnavailable("the RPC is down"),
            TransactionUnconfirmed("no receipt yet", tx_hash=bytes(32)),
            TransactionRejected("insufficient funds for gas"),
        ]
    )
    sleeps: list[float] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    reporter = EvidenceReporter(vault.slash, retry_initial=1.0, retry_max=1.5, sleep=sleep)
    first, again = _evidence(2), _evidence(2, payee=ALICE)
    assert first != again and first.member == again.member
    reporter.submit(first)
    reporter.submit(again)  # the same member: skipped once it is reported
    await _settle(reporter)
    assert sleeps == [1.0, 1.5, 1.5]  # backed off, capped
    assert vault.calls == [first] * 4
    assert reporter.reported[first.member].slashed_now
    reporter.submit(_evidence(2, payee=MEMBERS[0]))  # after: not even queued
    await _settle(reporter)
    assert len(vault.calls) == 4


@pytest.mark.asyncio
async def test_the_reporter_drops_what_the_vault_refuses_and_goes_on() -> None:
    refused = TransactionReverted("Vault.slashEquivocation reverted: InvalidVoteSignature(0)")
    vault = FakeVault([refused, RuntimeError("a bug below")])
    reporter = EvidenceReporter(vault.slash)
    reporter.submit(_evidence(2))
    reporter.submit(_evidence(1))
    reporter.submit(_evidence(3))
    await _settle(reporter)
    assert [e.member for e in vault.calls] == [MEMBERS[i].address for i in (2, 1, 3)]
    assert set(reporter.reported) == {MEMBERS[3].address}  # 2 and 1 may be tried again
    vault.slashed.add(MEMBERS[2].address)  # meanwhile slashed by another node
    reporter.submit(_evidence(2))
    await _settle(reporter)
    assert not reporter.reported[MEMBERS[2].address].slashed_now
