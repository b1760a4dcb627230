"""Witnessing, the pure rules (node.witness) over real logs and real keys: every verdict
of :func:`check`, the proof it asks for, who is witnessed, which received cosignatures
are kept; and the witnessing records' round trip through the store."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest

from node.state import ContractReceiveDeposit, transition
from node.store import LedgerStore
from node.witness import (
    Accepted,
    Evidence,
    EvidenceKind,
    ForkReport,
    Rejected,
    SignedCheckpoint,
    Unchanged,
    Witnessed,
    check,
    check_cosignature,
    is_witnessable_by,
    proof_range,
    report_to_json,
    witnessed_to_json,
)
from tests.node.factories import ALICE, DOMAIN, MEMBERS, USDF, Node
from wallet import wire
from wallet.eip712 import cosignature_digest
from wallet.merkle import verify_consistency
from wallet.signing import PrivateKey, sign_checkpoint, sign_cosignature, verify_checkpoint
from wallet.types import Amount, Checkpoint, Cosignature, Hash32

WITNESS, PEER, OTHER = MEMBERS[0], MEMBERS[1], MEMBERS[2]
COMMITTEE_MEMBERS = [m.address for m in MEMBERS]


def grow(store: LedgerStore, n: int, amount: int = 1) -> None:
    """Append ``n`` deposit entries of ``amount`` (another amount: another history)."""
    context = Node().context
    for _ in range(n):
        change = ContractReceiveDeposit(
            store.next_deposit_id(), ALICE.address, USDF, Amount(amount)
        )
        store.commit(transition(store, context, change))


def signed(
    store: LedgerStore, size: int, timestamp: int, key: PrivateKey = PEER
) -> SignedCheckpoint:
    """``key``'s signed checkpoint of ``store``'s first ``size`` entries."""
    checkpoint = Checkpoint(key.address, size, store.root_at(size), timestamp)
    return checkpoint, sign_checkpoint(key, DOMAIN, checkpoint)


@pytest.fixture
def honest(tmp_path: Path) -> Iterator[LedgerStore]:
    """The peer's true log: 12 entries."""
    store = LedgerStore(tmp_path / "honest", DOMAIN, sync=False)
    grow(store, 12)
    yield store
    store.close()


@pytest.fixture
def forked(tmp_path: Path) -> Iterator[LedgerStore]:
    """Another history under the same key: the first 5 entries agree, then it differs."""
    store = LedgerStore(tmp_path / "forked", DOMAIN, sync=False)
    grow(store, 5)
    grow(store, 7, amount=2)
    yield store
    store.close()


# ---------------------------------------------------------------- check: accepted


def test_the_first_checkpoint_is_accepted_on_trust(honest: LedgerStore) -> None:
    new = signed(honest, 3, 1_000)
    assert proof_range(None, new[0]) is None
    assert check(DOMAIN, PEER.address, None, new, None) == Accepted(new)


def test_a_larger_consistent_checkpoint_is_accepted(honest: LedgerStore) -> None:
    last, new = signed(honest, 3, 1_000), signed(honest, 12, 2_000)
    assert proof_range(last[0], new[0]) == (3, 12)
    proof = honest.consistency_proof(3, 12)
    assert check(DOMAIN, PEER.address, last, new, proof) == Accepted(new)


def test_a_larger_tree_with_an_equal_timestamp_is_accepted(honest: LedgerStore) -> None:
    last, new = signed(honest, 3, 1_000), signed(honest, 4, 1_000)
    proof = honest.consistency_proof(3, 4)
    assert isinstance(check(DOMAIN, PEER.address, last, new, proof), Accepted)


# ---------------------------------------------------------------- check: unchanged


def test_the_same_tree_again_is_unchanged(honest: LedgerStore) -> None:
    last, again = signed(honest, 7, 1_000), signed(honest, 7, 5_000)
    assert proof_range(last[0], again[0]) is None
    assert isinstance(check(DOMAIN, PEER.address, last, again, None), Unchanged)


def test_an_older_consistent_checkpoint_is_unchanged(honest: LedgerStore) -> None:
    last, stale = signed(honest, 12, 2_000), signed(honest, 3, 1_000)
    assert proof_range(last[0], stale[0]) == (3, 12)
    verdict = check(DOMAIN, PEER.address, last, stale, honest.consistency_proof(3, 12))
    assert isinstance(verdict, Unchanged) and "older" in verdict.reason


# ---------------------------------------------------------------- check: evidence


def assert_is_proof_of_fork(evidence: Evidence) -> None:
    """What a third party checks: both checkpoints are validly signed by the node, and
    the two trees cannot both be its log (same size and other roots, or no proof)."""
    (a, sig_a), (b, sig_b) = evidence.first, evidence.second
    assert a.node == b.node == evidence.node
    assert verify_checkpoint(DOMAIN, a, sig_a) and verify_checkpoint(DOMAIN, b, sig_b)
    assert a.tree_size <= b.tree_size
    if evidence.kind is EvidenceKind.SAME_SIZE:
        assert a.tree_size == b.tree_size and a.root != b.root
    else:
        with pytest.raises(ValueError, match="root"):
            verify_consistency(a.tree_size, b.tree_size, evidence.proof, a.root, b.root)


def test_two_roots_for_one_size_are_evidence(honest: LedgerStore, forked: LedgerStore) -> None:
    last, other = signed(honest, 9, 1_000), signed(forked, 9, 2_000)
    verdict = check(DOMAIN, PEER.address, last, other, None)
    assert isinstance(verdict, Evidence) and verdict.kind is EvidenceKind.SAME_SIZE
    assert (verdict.first, verdict.second, verdict.proof) == (last, other, ())
    assert "two roots for tree size 9" in verdict.detail
    assert_is_proof_of_fork(verdict)


def test_a_rewritten_history_is_evidence(honest: LedgerStore, forked: LedgerStore) -> None:
    """The peer signed 9 entries of its true log, then rewrote entries 5.. and signed 12:
    the best proof the rewritten log can give from 9 to 12 does not verify."""
    last, rewritten = signed(honest, 9, 1_000), signed(forked, 12, 2_000)
    proof = forked.consistency_proof(9, 12)
    verdict = check(DOMAIN, PEER.address, last, rewritten, proof)
    assert isinstance(verdict, Evidence) and verdict.kind is EvidenceKind.INCONSISTENT
    assert (verdict.first, verdict.second, verdict.proof) == (last, rewritten, tuple(proof))
    assert "from size 9 to 12 does not verify" in verdict.detail
    assert_is_proof_of_fork(verdict)


def test_a_tampered_or_truncated_proof_is_evidence(honest: LedgerStore) -> None:
    last, new = signed(honest, 3, 1_000), signed(honest, 12, 2_000)
    proof = honest.consistency_proof(3, 12)
    tampered = [Hash32(bytes([proof[0][0] ^ 1]) + proof[0][1:]), *proof[1:]]
    for bad in (tampered, proof[:-1], [*proof, proof[0]], []):
        verdict = check(DOMAIN, PEER.address, last, new, bad)
        assert isinstance(verdict, Evidence) and verdict.kind is EvidenceKind.INCONSISTENT


def test_an_older_inconsistent_checkpoint_is_evidence(
    honest: LedgerStore, forked: LedgerStore
) -> None:
    last, older = signed(honest, 12, 2_000), signed(forked, 7, 3_000)
    verdict = check(DOMAIN, PEER.address, last, older, honest.consistency_proof(7, 12))
    assert isinstance(verdict, Evidence) and (verdict.first, verdict.second) == (older, last)
    assert_is_proof_of_fork(verdict)


def test_the_agreeing_prefix_of_a_fork_is_not_evidence(
    honest: LedgerStore, forked: LedgerStore
) -> None:
    """The first 5 entries agree: a checkpoint of 5 followed by the fork's 12 proves
    nothing (the fork extends it); only trees that disagree are evidence."""
    last, rewritten = signed(honest, 5, 1_000), signed(forked, 12, 2_000)
    verdict = check(DOMAIN, PEER.address, last, rewritten, forked.consistency_proof(5, 12))
    assert verdict == Accepted(rewritten)


# ---------------------------------------------------------------- check: rejected


def test_bad_replies_are_rejected(honest: LedgerStore) -> None:
    last = signed(honest, 3, 1_000)
    proof = honest.consistency_proof(3, 12)
    others = signed(honest, 12, 2_000, key=OTHER)
    checkpoint, _ = signed(honest, 12, 2_000)
    other_signature = sign_checkpoint(
        OTHER, DOMAIN, dataclasses.replace(checkpoint, node=OTHER.address)
    )
    forged = (checkpoint, other_signature)  # PEER's checkpoint, OTHER's signature
    empty = signed(honest, 0, 2_000)
    cases = {
        "not of the peer": (others, proof),
        "signature is not the node's": (forged, proof),
        "empty log": (empty, None),
    }
    for reason, (new, given) in cases.items():
        verdict = check(DOMAIN, PEER.address, last, new, given)
        assert isinstance(verdict, Rejected) and reason in verdict.reason, reason
    # Nothing changes that on first use either.
    assert isinstance(check(DOMAIN, PEER.address, None, others, None), Rejected)
    assert isinstance(check(DOMAIN, PEER.address, None, forged, None), Rejected)


def test_a_larger_tree_signed_earlier_is_rejected(honest: LedgerStore) -> None:
    last, new = signed(honest, 3, 5_000), signed(honest, 12, 4_999)
    verdict = check(DOMAIN, PEER.address, last, new, honest.consistency_proof(3, 12))
    assert isinstance(verdict, Rejected) and "earlier timestamp" in verdict.reason


def test_check_needs_the_proof_it_asks_for(honest: LedgerStore) -> None:
    with pytest.raises(ValueError, match="needs the consistency proof"):
        check(DOMAIN, PEER.address, signed(honest, 3, 1), signed(honest, 4, 2), None)


# ---------------------------------------------------------------- who is witnessed


def test_only_other_committee_members_are_witnessed() -> None:
    def at(node: object) -> Checkpoint:
        return Checkpoint(node, 1, Hash32(bytes(32)), 0)  # type: ignore[arg-type]

    me, peer = WITNESS.address, PEER.address
    assert is_witnessable_by(at(peer), None, me, COMMITTEE_MEMBERS) is None
    assert is_witnessable_by(at(peer), peer, me, COMMITTEE_MEMBERS) is None
    assert "not of" in (is_witnessable_by(at(peer), OTHER.address, me, COMMITTEE_MEMBERS) or "")
    assert "own" in (is_witnessable_by(at(me), None, me, COMMITTEE_MEMBERS) or "")
    stranger = ALICE.address
    assert "not a committee member" in (
        is_witnessable_by(at(stranger), None, me, COMMITTEE_MEMBERS) or ""
    )


# ---------------------------------------------------------------- cosignatures received


def test_received_cosignatures_are_checked(honest: LedgerStore) -> None:
    """PEER receives a cosignature of its log (``honest``, 12 entries) by WITNESS."""
    ours = honest.root_at(7)
    good = Cosignature(WITNESS.address, PEER.address, 7, ours, 9_000)

    def refusal(c: Cosignature, our_root: Hash32 | None = ours, by: PrivateKey = WITNESS) -> str:
        signature = by.unsafe_sign_digest(cosignature_digest(DOMAIN, c))
        found = check_cosignature(DOMAIN, PEER.address, COMMITTEE_MEMBERS, c, signature, our_root)
        return "accepted" if found is None else found

    assert refusal(good) == "accepted"
    assert "another node" in refusal(dataclasses.replace(good, node=OTHER.address))
    for witness in (PEER, ALICE):  # the node itself, a stranger
        stranger = dataclasses.replace(good, witness=witness.address)
        assert "not another member" in refusal(stranger, by=witness)
    assert "not the witness's" in refusal(good, by=OTHER)
    assert "no tree of size 7" in refusal(good, None)
    assert "root at size 7" in refusal(good, honest.root_at(6))


# ---------------------------------------------------------------- store round trip


def test_witnessing_records_round_trip_through_the_store(
    tmp_path: Path, honest: LedgerStore, forked: LedgerStore
) -> None:
    store = LedgerStore(tmp_path / "witness", DOMAIN, sync=False)
    last = signed(honest, 9, 1_000)
    cosignature = Cosignature(WITNESS.address, PEER.address, 9, last[0].root, 1_500)
    record = Witnessed(last, cosignature, sign_cosignature(WITNESS, DOMAIN, cosignature))
    verdict = check(
        DOMAIN, PEER.address, last, signed(forked, 12, 2_000), forked.consistency_proof(9, 12)
    )
    assert isinstance(verdict, Evidence)
    report = ForkReport(verdict, "http://127.0.0.1:8701/ünïcode", 2_100)
    received = Cosignature(OTHER.address, WITNESS.address, 1, Hash32(b"\x07" * 32), 3)
    received_signature = sign_cosignature(OTHER, DOMAIN, received)

    assert store.witnessed(PEER.address) is None and store.evidence(PEER.address) is None
    store.put_witnessed(record)
    assert store.put_evidence(report) is True
    assert store.put_evidence(dataclasses.replace(report, found_at=9)) is False  # the first stays
    store.put_cosignature(received, received_signature)
    store.close()

    reopened = LedgerStore(tmp_path / "witness", DOMAIN, sync=False)
    assert reopened.witnessed(PEER.address) == record and reopened.all_witnessed() == [record]
    assert reopened.evidence(PEER.address) == report and reopened.all_evidence() == [report]
    assert reopened.cosignature(OTHER.address) == (received, received_signature)
    assert reopened.all_cosignatures() == [(received, received_signature)]
    assert reopened.witnessed(OTHER.address) is None
    reopened.close()

    # Their JSON: wire objects inside.
    body = witnessed_to_json(record)
    assert wire.signed_checkpoint_from_json(body["checkpoint"]) == last
    assert wire.signed_cosignature_from_json(body["cosignature"]) == (cosignature, record.signature)
    evidence = report_to_json(report)
    assert evidence["kind"] == "inconsistent" and evidence["found_at"] == 2_100
    assert wire.signed_checkpoint_from_json(evidence["second"]) == verdict.second
    assert len(evidence["proof"]) == len(verdict.proof) > 0
