"""Witnessing the peers' checkpoints: the pure rules (docs/protocol.md, "Between nodes").

Rule 1: nothing here does I/O or reads a clock. The shell (:mod:`node.peers.witness`)
fetches, stores, signs and logs; it hands this module what it fetched and the time as
data, and gets back a verdict.

Rule 2: the Merkle arithmetic is :mod:`wallet.merkle`'s (the same verifier a wallet uses
for receipts); it is not written twice.

Theory of operation
-------------------
For each peer P the witness keeps the last checkpoint of P it accepted (``last``). Every
round it fetches P's latest signed checkpoint (``new``) and, when the sizes differ, a
consistency proof between the two trees from P (:func:`proof_range` says which). Then
:func:`check` decides:

* :class:`Accepted`: ``new`` is P's, validly signed, extends ``last`` (the proof from
  ``last`` to ``new`` verifies) and its timestamp does not go back. The shell stores it as
  P's ``last`` and countersigns it (a :class:`~wallet.types.Cosignature`).
* :class:`Unchanged`: ``new`` states nothing new (the same tree again, or an older
  checkpoint that the proof shows consistent with ``last``).
* :class:`Evidence`: two checkpoints validly signed by P that cannot both be true: the
  same size with different roots (self-contained: anyone can check the two signatures),
  or two sizes for which P's own proof does not verify (anyone can ask P again: an honest
  log can always prove consistency between two of its checkpoints). Kept and reported.
* :class:`Rejected`: a bad reply (another node's checkpoint, a bad signature, an empty
  tree, a timestamp that goes back): logged, nothing stored, nothing signed.

Trust on first use: the first checkpoint of P is accepted without a proof (there is
nothing to check it against); from then on P can only extend it.
"""

from __future__ import annotations

import enum
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from wallet import wire
from wallet.codec import address_hex, hash_hex
from wallet.merkle import MerkleProofError, verify_consistency
from wallet.signing import verify_checkpoint, verify_cosignature
from wallet.types import Address, Checkpoint, Cosignature, Domain, Hash32, Signature

#: A node's checkpoint with its signature (as the API serves it).
SignedCheckpoint = tuple[Checkpoint, Signature]


class EvidenceKind(enum.Enum):
    """Why two checkpoints of one node cannot both be true (the JSON ``kind``)."""

    SAME_SIZE = "same_size_different_root"
    INCONSISTENT = "inconsistent"


@dataclass(frozen=True, slots=True)
class Accepted:
    """Store ``checkpoint`` as the peer's last and countersign it."""

    checkpoint: SignedCheckpoint


@dataclass(frozen=True, slots=True)
class Unchanged:
    """Nothing new to countersign; ``reason`` says why."""

    reason: str


@dataclass(frozen=True, slots=True)
class Rejected:
    """A reply not to be used; ``reason`` is for the log."""

    reason: str


@dataclass(frozen=True, slots=True)
class Evidence:
    """Two checkpoints of ``node``, both validly signed by it, that no single append-only
    log can have produced. ``first`` is the smaller tree (or, at equal sizes, the one
    accepted earlier); ``proof`` is what ``node`` served as the consistency proof from
    ``first`` to ``second`` (empty at equal sizes); ``detail`` says what failed."""

    node: Address
    kind: EvidenceKind
    first: SignedCheckpoint
    second: SignedCheckpoint
    proof: tuple[Hash32, ...]
    detail: str


Verdict = Accepted | Unchanged | Evidence | Rejected


@dataclass(frozen=True, slots=True)
class Witnessed:
    """What this node keeps per peer: the peer's last accepted checkpoint and this node's
    signed cosignature of it."""

    checkpoint: SignedCheckpoint
    cosignature: Cosignature
    signature: Signature


@dataclass(frozen=True, slots=True)
class ForkReport:
    """Evidence as kept: with the URL it was fetched from and when (Unix ms, the
    witness's clock)."""

    evidence: Evidence
    url: str
    found_at: int


# ---------------------------------------------------------------- witnessing a peer


def is_witnessable_by(
    checkpoint: Checkpoint, expected: Address | None, me: Address, members: Collection[Address]
) -> str | None:
    """Why a checkpoint fetched from a peer's URL is not one this node witnesses, or None.

    ``expected`` is the node that URL belongs to when it is known (the committee's
    endpoints); with ``--peer`` URLs it is None and any other member of the committee
    will do. Only members are witnessed: that bounds what a stranger can make this node
    store."""
    if expected is not None and checkpoint.node != expected:
        return f"a checkpoint of {address_hex(checkpoint.node)}, not of {address_hex(expected)}"
    if checkpoint.node == me:
        return "this node's own checkpoint"
    if checkpoint.node not in members:
        return f"a checkpoint of {address_hex(checkpoint.node)}, not a committee member"
    return None


def proof_range(last: Checkpoint | None, new: Checkpoint) -> tuple[int, int] | None:
    """The ``(first, second)`` of the consistency proof :func:`check` needs, smaller tree
    first, or None when it needs none (no ``last``, equal sizes, or an empty tree)."""
    if last is None or last.tree_size == new.tree_size or new.tree_size == 0:
        return None
    return min(last.tree_size, new.tree_size), max(last.tree_size, new.tree_size)


def screen(domain: Domain, peer: Address, new: SignedCheckpoint) -> Rejected | None:
    """The checks of ``new`` alone (is it ``peer``'s, validly signed, of a non-empty
    tree): the shell runs them before it fetches a proof, :func:`check` again."""
    checkpoint, signature = new
    if checkpoint.node != peer:
        return Rejected(f"a checkpoint of {address_hex(checkpoint.node)}, not of the peer")
    if not verify_checkpoint(domain, checkpoint, signature):
        return Rejected("the checkpoint's signature is not the node's")
    if checkpoint.tree_size == 0:
        return Rejected("a checkpoint of the empty log (nodes never sign one)")
    return None


def check(
    domain: Domain,
    peer: Address,
    last: SignedCheckpoint | None,
    new: SignedCheckpoint,
    proof: Sequence[Hash32] | None,
) -> Verdict:
    """The verdict on ``new``, a signed checkpoint fetched from ``peer``, given ``last``,
    the peer's checkpoint accepted before (None the first time), and ``proof``, the peer's
    consistency proof for :func:`proof_range` (None when that is None).

    ``last`` came out of this node's own store: its signature is not checked again."""
    rejected = screen(domain, peer, new)
    if rejected is not None:
        return rejected
    checkpoint = new[0]
    if last is None:
        return Accepted(new)
    before = last[0]
    if before.tree_size == checkpoint.tree_size:
        if before.root == checkpoint.root:
            return Unchanged("the same tree as the last checkpoint")
        return Evidence(
            peer,
            EvidenceKind.SAME_SIZE,
            last,
            new,
            (),
            f"two roots for tree size {checkpoint.tree_size}: "
            f"{hash_hex(before.root)} and {hash_hex(checkpoint.root)}",
        )
    if proof is None:
        raise ValueError("check needs the consistency proof of proof_range")
    first, second = (last, new) if before.tree_size < checkpoint.tree_size else (new, last)
    try:
        verify_consistency(
            first[0].tree_size, second[0].tree_size, proof, first[0].root, second[0].root
        )
    except MerkleProofError as exc:
        return Evidence(
            peer,
            EvidenceKind.INCONSISTENT,
            first,
            second,
            tuple(proof),
            f"the consistency proof from size {first[0].tree_size} to "
            f"{second[0].tree_size} does not verify: {exc}",
        )
    if checkpoint.tree_size < before.tree_size:
        return Unchanged("an older checkpoint than the last, consistent with it")
    if checkpoint.timestamp < before.timestamp:
        return Rejected(
            f"a larger tree with an earlier timestamp ({checkpoint.timestamp} ms, "
            f"the last was {before.timestamp} ms)"
        )
    return Accepted(new)


# ---------------------------------------------------------------- cosignatures received


def check_cosignature(
    domain: Domain,
    me: Address,
    members: Collection[Address],
    cosignature: Cosignature,
    signature: Signature,
    our_root: Hash32 | None,
) -> str | None:
    """Why a cosignature a peer posted for this node's log is refused, or None.

    ``our_root`` is this node's root at ``cosignature.tree_size`` (None when the log is
    not that large, or the size is 0). Only the committee's members witness (which bounds
    what is stored: the latest cosignature per witness)."""
    if cosignature.node != me:
        return "a cosignature of another node's log"
    if cosignature.witness == me or cosignature.witness not in members:
        return "the witness is not another member of the committee"
    if not verify_cosignature(domain, cosignature, signature):
        return "the signature is not the witness's"
    if our_root is None:
        return f"this node's log has no tree of size {cosignature.tree_size}"
    if our_root != cosignature.root:
        return f"this node's root at size {cosignature.tree_size} is {hash_hex(our_root)}"
    return None


# ---------------------------------------------------------------- JSON (node API)


def witnessed_to_json(record: Witnessed) -> dict[str, Any]:
    """``{"checkpoint": signed checkpoint, "cosignature": signed cosignature}``."""
    return {
        "checkpoint": wire.signed_checkpoint_to_json(*record.checkpoint),
        "cosignature": wire.signed_cosignature_to_json(record.cosignature, record.signature),
    }


def report_to_json(report: ForkReport) -> dict[str, Any]:
    """``{"node", "kind", "first", "second", "proof", "detail", "url", "found_at"}``."""
    evidence = report.evidence
    return {
        "node": address_hex(evidence.node),
        "kind": evidence.kind.value,
        "first": wire.signed_checkpoint_to_json(*evidence.first),
        "second": wire.signed_checkpoint_to_json(*evidence.second),
        "proof": [hash_hex(h) for h in evidence.proof],
        "detail": evidence.detail,
        "url": report.url,
        "found_at": report.found_at,
    }
