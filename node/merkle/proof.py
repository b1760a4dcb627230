"""Building RFC 9162 proofs from stored perfect subtrees (transparency-dev/merkle's
``proof/proof.go``); ``wallet.merkle`` verifies them.

Theory of operation. The node stores the hash of every *perfect* subtree, node
(level, index) covering leaves ``[index * 2**level, (index + 1) * 2**level)``, as
``CompactRange.append`` completes it; it never stores a node whose range is cut by the
tree's right edge, because that node changes as the log grows. RFC 9162's PATH (2.1.3.1)
and PROOF (2.1.4.1) walk down from the root, splitting ``[lo, hi)`` at the largest power of
two ``k < hi - lo``, and take one sibling per level. Every sibling is perfect except at
most one: the right part ``[lo + k, hi)`` at the first step that goes left while ``hi`` is
still the tree size. That *ephemeral* node is recomputed from the perfect subtrees that
cover its range, one per set bit of its width, folded right to left.

Reads. A proof of ``p`` hashes costs ``p`` reads, plus ``g - 1`` when it has an ephemeral
node made of ``g`` perfect subtrees, with ``g <= popcount(size) - 1``: at most
``p + popcount(size) - 2`` reads, and at most ``2 * ceil(log2(size))`` for either kind of
proof (tests/merkle/test_round_trip.py checks this for every proof of trees up to 200
leaves and for random uint64 sizes). ``root_at`` costs ``popcount(size)`` reads. No node
is read twice.

A :class:`ProofPlan` is the pure part: which nodes to read, and how to fold them into the
proof. ``inclusion_proof`` and friends read through ``get_node`` one node at a time; a
store that prefers one batch reads ``plan.nodes`` itself and calls ``plan.rehash``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import chain

from node.merkle.errors import LeafIndexError, TreeSizeError
from wallet.merkle import EMPTY_ROOT, hash_children
from wallet.types import Hash32

__all__ = [
    "GetNode",
    "NodeID",
    "ProofPlan",
    "consistency_plan",
    "consistency_proof",
    "inclusion_plan",
    "inclusion_proof",
    "root_at",
    "root_plan",
    "subtree_nodes",
]

#: Reads the stored hash of the perfect subtree (level, index).
GetNode = Callable[[int, int], Hash32]


@dataclass(frozen=True, slots=True, order=True)
class NodeID:
    """The perfect subtree covering leaves ``[index * 2**level, (index + 1) * 2**level)``;
    level 0 holds the leaf hashes."""

    level: int
    index: int

    @property
    def begin(self) -> int:
        return self.index << self.level

    @property
    def end(self) -> int:
        return (self.index + 1) << self.level


@dataclass(frozen=True, slots=True)
class ProofPlan:
    """How to build a proof from stored nodes: one group per proof hash, in proof order
    (bottom up). A group of one node is that node's hash; a longer group is an ephemeral
    node, listed as the perfect subtrees covering it from left to right."""

    groups: tuple[tuple[NodeID, ...], ...]

    @property
    def nodes(self) -> tuple[NodeID, ...]:
        """Every node to read, in order (each exactly once)."""
        return tuple(chain.from_iterable(self.groups))

    def rehash(self, hashes: Sequence[Hash32]) -> list[Hash32]:
        """The proof, from the hashes of :attr:`nodes` in the same order."""
        nodes = self.nodes
        if len(hashes) != len(nodes):
            raise ValueError(f"got {len(hashes)} hashes for {len(nodes)} nodes")
        proof: list[Hash32] = []
        start = 0
        for group in self.groups:
            proof.append(_fold(hashes[start : start + len(group)]))
            start += len(group)
        return proof

    def fetch(self, get_node: GetNode) -> list[Hash32]:
        """The proof, reading each of :attr:`nodes` once through ``get_node``."""
        return self.rehash([get_node(node.level, node.index) for node in self.nodes])


def _fold(hashes: Sequence[Hash32]) -> Hash32:
    """MTH of adjacent perfect subtrees given left to right, each smaller than the one
    before (RFC 9162's split puts the largest power of two on the left)."""
    result = hashes[-1]
    for left in reversed(hashes[:-1]):
        result = hash_children(left, result)
    return result


def _split(width: int) -> int:
    """RFC 9162 2.1.1's k: the largest power of two smaller than ``width`` (>= 2)."""
    return 1 << ((width - 1).bit_length() - 1)


def subtree_nodes(begin: int, end: int) -> tuple[NodeID, ...]:
    """The perfect subtrees covering ``[begin, end)``, left to right, for a range that
    RFC 9162's recursion produces: ``begin`` is a multiple of the power of two at or above
    ``end - begin``. One node per set bit of ``end - begin``, largest first."""
    width = end - begin
    nodes: list[NodeID] = []
    for level in range(width.bit_length() - 1, -1, -1):
        if width >> level & 1:
            nodes.append(NodeID(level, begin >> level))
            begin += 1 << level
    return tuple(nodes)


def inclusion_plan(index: int, size: int) -> ProofPlan:
    """The nodes of PATH(index, D[size]) (RFC 9162 2.1.3.1), bottom up."""
    if not 0 <= index < size:
        raise LeafIndexError(index, size)
    groups: list[tuple[NodeID, ...]] = []
    lo, hi = 0, size
    while hi - lo > 1:
        k = _split(hi - lo)
        if index < lo + k:  # PATH(m, D[0:k]) : MTH(D[k:n])
            groups.append(subtree_nodes(lo + k, hi))
            hi = lo + k
        else:  # PATH(m - k, D[k:n]) : MTH(D[0:k])
            groups.append(subtree_nodes(lo, lo + k))
            lo += k
    groups.reverse()
    return ProofPlan(tuple(groups))


def consistency_plan(size1: int, size2: int) -> ProofPlan:
    """The nodes of PROOF(size1, D[size2]) = SUBPROOF(size1, D[size2], true)
    (RFC 9162 2.1.4.1), bottom up; empty when ``size1 == size2``."""
    if not 0 < size1 <= size2:
        raise TreeSizeError(size1, size2)
    groups: list[tuple[NodeID, ...]] = []
    lo, hi, m = 0, size2, size1  # SUBPROOF(m, D[lo:hi], b), m counted from lo
    b = True  # the old tree is D[lo:lo+m] itself, so its root is known to the verifier
    while m != hi - lo:
        k = _split(hi - lo)
        if m <= k:  # SUBPROOF(m, D[0:k], b) : MTH(D[k:n])
            groups.append(subtree_nodes(lo + k, hi))
            hi = lo + k
        else:  # SUBPROOF(m - k, D[k:n], false) : MTH(D[0:k])
            groups.append(subtree_nodes(lo, lo + k))
            lo += k
            m -= k
            b = False
    if not b:  # SUBPROOF(m, D[m], false) = {MTH(D[m])}
        groups.append(subtree_nodes(lo, hi))
    groups.reverse()
    return ProofPlan(tuple(groups))


def root_plan(size: int) -> tuple[NodeID, ...]:
    """The peaks of the tree of ``size`` leaves: fold them (right to left) for MTH."""
    if size < 0:
        raise TreeSizeError(size, size)
    return subtree_nodes(0, size)


def inclusion_proof(index: int, size: int, get_node: GetNode) -> list[Hash32]:
    """The inclusion proof of leaf ``index`` in the tree of the first ``size`` leaves
    (RFC 9162 2.1.3.1). LeafIndexError unless ``0 <= index < size``."""
    return inclusion_plan(index, size).fetch(get_node)


def consistency_proof(size1: int, size2: int, get_node: GetNode) -> list[Hash32]:
    """The consistency proof from the tree of ``size1`` leaves to the tree of ``size2``
    leaves (RFC 9162 2.1.4.1). TreeSizeError unless ``0 < size1 <= size2``."""
    return consistency_plan(size1, size2).fetch(get_node)


def root_at(size: int, get_node: GetNode) -> Hash32:
    """The Merkle Tree Hash of the first ``size`` leaves (RFC 9162 2.1.1), from
    ``popcount(size)`` stored nodes; ``EMPTY_ROOT`` for size 0."""
    nodes = root_plan(size)
    if not nodes:
        return EMPTY_ROOT
    return _fold([get_node(node.level, node.index) for node in nodes])
