"""Equivocating votes caught by the node: the pure rule (node.state.equivocation), the
store's records, and GET /v1/log/evidence, through the real API on LevelDB."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest
import pytest_asyncio

from node.evidence import EquivocationWatch
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
from wallet.eip712 import order_digest
from wallet.signing import check_equivocation, sign_vote
from wallet.types import Epoch


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


@pytest_asyncio.fixture
async def api(tmp_path: Path) -> AsyncIterator[Running]:
    """The node API with the node's EquivocationWatch, as node.app wires it."""
    async with serving(tmp_path, lambda store: EquivocationWatch(store, DOMAIN).observe) as api:
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
    assert ReceiveCertificate(short).certificate == short
