"""Construct, then verify: trees built with CompactRange into a DictNodeStore, proofs built
by node.merkle.proof, checked by wallet.merkle and against the naive reference."""

from __future__ import annotations

import math
from collections.abc import Callable
from itertools import pairwise

from hypothesis import given, settings
from hypothesis import strategies as st

from node.merkle import (
    CompactRange,
    DictNodeStore,
    NodeID,
    consistency_plan,
    consistency_proof,
    inclusion_plan,
    inclusion_proof,
    root_at,
)
from tests.merkle import reference
from wallet import merkle
from wallet.types import Hash32

LEAVES = st.lists(st.binary(max_size=6), min_size=1, max_size=48)
HUGE_SIZES = st.integers(min_value=1, max_value=merkle.MAX_TREE_SIZE)


def build(leaves: list[bytes]) -> tuple[CompactRange, DictNodeStore]:
    tree, store = CompactRange(), DictNodeStore()
    for data in leaves:
        tree.append(merkle.hash_leaf(data), store.put)
    return tree, store


def counting(store: DictNodeStore, reads: list[NodeID]) -> Callable[[int, int], Hash32]:
    def get_node(level: int, index: int) -> Hash32:
        reads.append(NodeID(level, index))
        return store.get_node(level, index)

    return get_node


def read_bound(size: int) -> int:
    """The bound of the brief: O(log n) reads, at most 2 * ceil(log2(n)) + 2."""
    return 2 * math.ceil(math.log2(size)) + 2 if size > 1 else 2


@settings(max_examples=60, deadline=None)
@given(LEAVES)
def test_the_root_of_every_prefix_is_the_reference_mth(leaves: list[bytes]) -> None:
    tree, store = CompactRange(), DictNodeStore()
    for size, data in enumerate(leaves, start=1):
        tree.append(merkle.hash_leaf(data), store.put)
        expected = reference.mth(leaves[:size])
        assert tree.size == size
        assert tree.root() == expected
        assert len(tree.peaks) == size.bit_count()
    # Every past root, from the grown store, reading popcount(size) nodes.
    for size in range(len(leaves) + 1):
        reads: list[NodeID] = []
        assert root_at(size, counting(store, reads)) == reference.mth(leaves[:size])
        assert len(reads) == size.bit_count()


@settings(max_examples=40, deadline=None)
@given(LEAVES)
def test_the_store_holds_every_perfect_subtree_and_nothing_else(leaves: list[bytes]) -> None:
    _, store = build(leaves)
    n = len(leaves)
    expected = {
        (level, index): reference.mth(leaves[index << level : (index + 1) << level])
        for level in range(n.bit_length())
        for index in range(n >> level)
    }
    assert store.nodes == expected


@settings(max_examples=100, deadline=None)
@given(st.data())
def test_inclusion_proofs_verify_and_equal_the_reference(data: st.DataObject) -> None:
    leaves = data.draw(LEAVES)
    size = data.draw(st.integers(1, len(leaves)), label="size")  # a past size too
    index = data.draw(st.integers(0, size - 1), label="index")
    _, store = build(leaves)
    reads: list[NodeID] = []
    proof = inclusion_proof(index, size, counting(store, reads))
    assert proof == reference.path(index, leaves[:size])
    leaf = merkle.hash_leaf(leaves[index])
    merkle.verify_inclusion(leaf, index, size, proof, Hash32(reference.mth(leaves[:size])))
    assert len(reads) <= read_bound(size)
    assert len(set(reads)) == len(reads)
    assert all(node.end <= size for node in reads)  # nothing appended after size


@settings(max_examples=100, deadline=None)
@given(st.data())
def test_consistency_proofs_verify_and_equal_the_reference(data: st.DataObject) -> None:
    leaves = data.draw(LEAVES)
    size2 = data.draw(st.integers(1, len(leaves)), label="size2")
    size1 = data.draw(st.integers(1, size2), label="size1")
    _, store = build(leaves)
    reads: list[NodeID] = []
    proof = consistency_proof(size1, size2, counting(store, reads))
    assert proof == reference.proof(size1, leaves[:size2])
    root1, root2 = reference.mth(leaves[:size1]), reference.mth(leaves[:size2])
    merkle.verify_consistency(size1, size2, proof, Hash32(root1), Hash32(root2))
    assert merkle.root_from_consistency_proof(size1, size2, proof, Hash32(root1)) == root2
    assert len(reads) <= read_bound(size2)
    assert len(set(reads)) == len(reads)
    assert all(node.end <= size2 for node in reads)


def test_every_proof_of_small_trees_equals_the_reference() -> None:
    leaves = [b"%d" % i for i in range(33)]
    _, store = build(leaves)
    for size in range(1, len(leaves) + 1):
        for index in range(size):
            expected = reference.path(index, leaves[:size])
            assert inclusion_proof(index, size, store.get_node) == expected, (index, size)
        for size1 in range(1, size + 1):
            expected = reference.proof(size1, leaves[:size])
            assert consistency_proof(size1, size, store.get_node) == expected, (size1, size)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_inclusion_plans_of_huge_trees(data: st.DataObject) -> None:
    """Pure plans, no hashing: any uint64 size. The proof's nodes and the leaf tile
    [0, size) exactly, and the reads stay within the documented bound."""
    size = data.draw(HUGE_SIZES, label="size")
    index = data.draw(st.integers(0, size - 1), label="index")
    plan = inclusion_plan(index, size)
    assert len(plan.groups) == merkle.inclusion_proof_length(index, size)
    ranges = sorted([(index, index + 1)] + [(node.begin, node.end) for node in plan.nodes])
    assert ranges[0][0] == 0
    assert ranges[-1][1] == size
    assert all(a[1] == b[0] for a, b in pairwise(ranges))
    ephemeral = sum(len(group) - 1 for group in plan.groups)
    assert ephemeral <= max(size.bit_count() - 2, 0)
    assert len(plan.nodes) <= 2 * math.ceil(math.log2(size))


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_consistency_plans_of_huge_trees(data: st.DataObject) -> None:
    size2 = data.draw(HUGE_SIZES, label="size2")
    size1 = data.draw(st.integers(1, size2), label="size1")
    plan = consistency_plan(size1, size2)
    assert len(plan.groups) == merkle.consistency_proof_length(size1, size2)
    nodes = plan.nodes
    assert len(set(nodes)) == len(nodes)
    assert all(node.end <= size2 for node in nodes)
    ephemeral = sum(len(group) - 1 for group in plan.groups)
    assert ephemeral <= max(size2.bit_count() - 2, 0)
    assert len(nodes) <= 2 * math.ceil(math.log2(size2))


def test_every_proof_of_trees_up_to_200_leaves_reads_at_most_2_log2_n_nodes() -> None:
    for size in range(1, 201):
        bound = 2 * math.ceil(math.log2(size))
        for index in range(size):
            assert len(inclusion_plan(index, size).nodes) <= bound, (index, size)
        for size1 in range(1, size + 1):
            assert len(consistency_plan(size1, size).nodes) <= bound, (size1, size)


@settings(max_examples=60, deadline=None)
@given(LEAVES, st.lists(st.binary(max_size=6), max_size=20))
def test_the_frontier_survives_a_restart(before: list[bytes], after: list[bytes]) -> None:
    tree, store = build(before)
    saved = tree.to_bytes()
    assert len(saved) == 9 + 32 * len(before).bit_count()
    restored = CompactRange.from_bytes(saved)
    assert restored == tree
    assert restored.root() == tree.root()
    assert restored.to_bytes() == saved
    # The restored frontier goes on exactly as the original, and as a full rebuild.
    other = DictNodeStore()
    for data in after:
        tree.append(merkle.hash_leaf(data), store.put)
        restored.append(merkle.hash_leaf(data), other.put)
        assert restored == tree
    rebuilt, full = build(before + after)
    assert restored == rebuilt
    assert restored.root() == reference.mth(before + after)
    assert {**store.nodes} == full.nodes
    assert other.nodes.items() <= full.nodes.items()


@given(LEAVES)
def test_append_visits_each_completed_node_once_leaf_first(leaves: list[bytes]) -> None:
    tree = CompactRange()
    visited: list[tuple[int, int]] = []

    def visit(level: int, index: int, _hash: Hash32) -> None:
        visited.append((level, index))

    for size, data in enumerate(leaves):
        visited.clear()
        tree.append(merkle.hash_leaf(data), visit)
        # Leaf `size` completes the nodes of levels 0 .. trailing ones of `size`.
        levels = (~size & (size + 1)).bit_length()
        assert visited == [(level, size >> level) for level in range(levels)]
