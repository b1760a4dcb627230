"""The refusals: wallet.merkle turns every bad input into a MerkleProofError with data
(never an IndexError, TypeError or AssertionError), node.merkle says whose fault it is."""

from __future__ import annotations

import ast
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from node.merkle import (
    CompactRange,
    DictNodeStore,
    FrontierFormatError,
    LeafIndexError,
    MerkleTreeError,
    MissingNodeError,
    ProofPlan,
    TreeSizeError,
    consistency_plan,
    inclusion_plan,
    inclusion_proof,
    root_at,
    root_plan,
)
from tests.merkle import reference
from wallet import merkle
from wallet.errors import WalletError
from wallet.types import Hash32

LEAVES = [b"%d" % i for i in range(11)]
HASHES = [merkle.hash_leaf(d) for d in LEAVES]
ROOTS = [Hash32(reference.mth(LEAVES[:n])) for n in range(len(LEAVES) + 1)]
H = Hash32(bytes(range(32)))


def _inclusion(index: int, size: int) -> list[Hash32]:
    return [Hash32(h) for h in reference.path(index, LEAVES[:size])]


def _consistency(size1: int, size2: int) -> list[Hash32]:
    return [Hash32(h) for h in reference.proof(size1, LEAVES[:size2])]


# ---------------------------------------------------------------------------------------
# wallet.merkle


def test_the_errors_are_wallet_errors_and_value_errors() -> None:
    for cls in (
        merkle.MalformedHashError,
        merkle.InvalidSizeError,
        merkle.IndexOutOfRangeError,
        merkle.ConsistencyRangeError,
        merkle.ProofLengthError,
        merkle.RootMismatchError,
    ):
        assert issubclass(cls, merkle.MerkleProofError)
    assert issubclass(merkle.MerkleProofError, WalletError)
    assert issubclass(merkle.MerkleProofError, ValueError)


@pytest.mark.parametrize(
    "error",
    [
        merkle.MalformedHashError("proof[2]", 31),
        merkle.MalformedHashError("root", None),
        merkle.InvalidSizeError("index", -1),
        merkle.IndexOutOfRangeError(7, 7),
        merkle.ConsistencyRangeError(5, 3),
        merkle.ProofLengthError(4, 5),
        merkle.RootMismatchError(bytes(32), bytes([1]) * 32, 9),
    ],
)
def test_errors_pickle_and_print_their_data(error: merkle.MerkleProofError) -> None:
    copy = pickle.loads(pickle.dumps(error))  # noqa: S301 (our own bytes)
    assert type(copy) is type(error)
    assert copy.args == error.args
    assert vars(copy) == vars(error)
    assert str(copy) == str(error)
    assert str(error)


def test_root_mismatch_says_which_root() -> None:
    proof = _consistency(3, 7)
    with pytest.raises(merkle.RootMismatchError) as old:
        merkle.verify_consistency(3, 7, proof, ROOTS[4], ROOTS[7])
    assert (old.value.expected, old.value.tree_size) == (ROOTS[4], 3)
    with pytest.raises(merkle.RootMismatchError) as new:
        merkle.verify_consistency(3, 7, proof, ROOTS[3], ROOTS[8])
    assert (new.value.expected, new.value.calculated, new.value.tree_size) == (
        ROOTS[8],
        ROOTS[7],
        7,
    )
    with pytest.raises(merkle.RootMismatchError) as leaf:
        merkle.verify_inclusion(HASHES[1], 2, 5, _inclusion(2, 5), ROOTS[5])
    assert (leaf.value.expected, leaf.value.tree_size) == (ROOTS[5], 5)


def test_proof_length_errors_say_what_was_expected() -> None:
    proof = _inclusion(2, 11)
    with pytest.raises(merkle.ProofLengthError) as long:
        merkle.verify_inclusion(HASHES[2], 2, 11, [*proof, H], ROOTS[11])
    assert (long.value.expected, long.value.got) == (len(proof), len(proof) + 1)
    with pytest.raises(merkle.ProofLengthError) as short:
        merkle.verify_inclusion(HASHES[2], 2, 11, proof[:-1], ROOTS[11])
    assert (short.value.expected, short.value.got) == (len(proof), len(proof) - 1)
    with pytest.raises(merkle.ProofLengthError) as empty:
        merkle.verify_consistency(4, 11, [], ROOTS[4], ROOTS[11])
    assert (empty.value.expected, empty.value.got) == (len(_consistency(4, 11)), 0)
    with pytest.raises(merkle.ProofLengthError) as equal:
        merkle.verify_consistency(5, 5, [H], ROOTS[5], ROOTS[5])
    assert (equal.value.expected, equal.value.got) == (0, 1)


@pytest.mark.parametrize(
    ("changes", "field", "length"),
    [
        ({"leaf_hash": "ab" * 32}, "leaf_hash", None),
        ({"leaf_hash": bytearray(32)}, "leaf_hash", None),
        ({"leaf_hash": b""}, "leaf_hash", 0),
        ({"root": None}, "root", None),
        ({"root": bytes(33)}, "root", 33),
        ({"proof": "ab" * 32}, "proof", None),
        ({"proof": bytes(32)}, "proof", None),
        ({"proof": None}, "proof", None),
        ({"proof": {H}}, "proof", None),
        ({"proof": [H, H.hex()]}, "proof[1]", None),
        ({"proof": (H, bytes(31))}, "proof[1]", 31),
        ({"proof": [memoryview(H)]}, "proof[0]", None),
    ],
)
def test_malformed_hashes(changes: dict[str, Any], field: str, length: int | None) -> None:
    args: dict[str, Any] = {
        "leaf_hash": HASHES[0],
        "index": 0,
        "tree_size": 2,
        "proof": [HASHES[1]],
        "root": ROOTS[2],
    }
    merkle.verify_inclusion(**args)
    with pytest.raises(merkle.MalformedHashError) as error:
        merkle.verify_inclusion(**{**args, **changes})
    assert (error.value.field, error.value.length) == (field, length)


@pytest.mark.parametrize("bad", [-1, True, 1.0, "1", None, 2**64])
def test_invalid_sizes_and_indexes(bad: Any) -> None:
    calls: list[tuple[str, Callable[[], None]]] = [
        ("index", lambda: merkle.verify_inclusion(HASHES[0], bad, 2, [HASHES[1]], ROOTS[2])),
        ("tree_size", lambda: merkle.verify_inclusion(HASHES[0], 0, bad, [HASHES[1]], ROOTS[2])),
        ("size1", lambda: merkle.verify_consistency(bad, 2, [], ROOTS[1], ROOTS[2])),
        ("size2", lambda: merkle.verify_consistency(1, bad, [], ROOTS[1], ROOTS[2])),
    ]
    for field, call in calls:
        with pytest.raises(merkle.InvalidSizeError) as error:
            call()
        assert (error.value.field, error.value.value) == (field, bad)


def test_the_largest_tree_sizes_are_fine() -> None:
    size = merkle.MAX_TREE_SIZE
    index = size - 1
    length = merkle.inclusion_proof_length(index, size)
    assert length == 63  # the last leaf is the last of 64 peaks: one hash per other peak
    with pytest.raises(merkle.RootMismatchError):
        merkle.verify_inclusion(H, index, size, [H] * length, H)
    with pytest.raises(merkle.ProofLengthError):
        merkle.verify_inclusion(H, index, size, [H] * (length + 1), H)
    assert merkle.consistency_proof_length(2**63, size) == 1  # MTH(D[2**63:size])
    with pytest.raises(merkle.RootMismatchError):
        merkle.verify_consistency(2**63, size, [H], H, H)
    with pytest.raises(merkle.ProofLengthError):
        merkle.verify_consistency(2**63 + 1, size, [H] * 63, H, H)


def test_the_length_helpers_check_their_arguments() -> None:
    assert merkle.consistency_proof_length(0, 0) == 0
    with pytest.raises(merkle.ConsistencyRangeError):
        merkle.consistency_proof_length(0, 4)
    with pytest.raises(merkle.ConsistencyRangeError):
        merkle.consistency_proof_length(5, 4)
    with pytest.raises(merkle.IndexOutOfRangeError):
        merkle.inclusion_proof_length(4, 4)
    with pytest.raises(merkle.InvalidSizeError):
        merkle.inclusion_proof_length(-1, 4)


def test_inclusion_ranges() -> None:
    with pytest.raises(merkle.IndexOutOfRangeError) as error:
        merkle.verify_inclusion(HASHES[3], 3, 3, [], ROOTS[3])
    assert (error.value.index, error.value.tree_size) == (3, 3)
    with pytest.raises(merkle.IndexOutOfRangeError):
        merkle.verify_inclusion(merkle.EMPTY_ROOT, 0, 0, [], merkle.EMPTY_ROOT)


@pytest.mark.parametrize(("size1", "size2"), [(3, 2), (1, 0), (0, 1), (0, 8)])
def test_consistency_ranges(size1: int, size2: int) -> None:
    with pytest.raises(merkle.ConsistencyRangeError) as error:
        merkle.verify_consistency(size1, size2, [], merkle.EMPTY_ROOT, merkle.EMPTY_ROOT)
    assert (error.value.size1, error.value.size2) == (size1, size2)


def test_equal_sizes_need_equal_roots_and_no_proof() -> None:
    merkle.verify_consistency(0, 0, [], merkle.EMPTY_ROOT, merkle.EMPTY_ROOT)
    merkle.verify_consistency(6, 6, [], ROOTS[6], ROOTS[6])
    assert merkle.root_from_consistency_proof(6, 6, [], ROOTS[6]) == ROOTS[6]
    with pytest.raises(merkle.RootMismatchError):
        merkle.verify_consistency(6, 6, [], ROOTS[6], ROOTS[5])


def test_root_from_inclusion_proof_computes_without_a_root() -> None:
    assert merkle.root_from_inclusion_proof(HASHES[4], 4, 9, _inclusion(4, 9)) == ROOTS[9]
    assert merkle.root_from_inclusion_proof(HASHES[0], 0, 1, []) == HASHES[0] == ROOTS[1]


def test_the_same_proof_verifies_for_a_tree_of_the_same_shape() -> None:
    # RFC 9162's verifier checks hashes in the shape (index, size) gives them: leaf 0 of 3
    # has the shape of leaf 0 of 4, so this "verifies", against a root no genuine tree of
    # 4 leaves has (its right child would be a leaf hash, which a node hash never equals).
    merkle.verify_inclusion(HASHES[0], 0, 4, _inclusion(0, 3), ROOTS[3])
    assert _inclusion(0, 3) != _inclusion(0, 4)


# ---------------------------------------------------------------------------------------
# node.merkle


def test_node_errors() -> None:
    assert issubclass(LeafIndexError, MerkleTreeError)
    assert issubclass(LeafIndexError, ValueError)
    assert issubclass(TreeSizeError, ValueError)
    assert issubclass(FrontierFormatError, ValueError)
    assert issubclass(MissingNodeError, LookupError)
    for error in (
        LeafIndexError(3, 3),
        TreeSizeError(0, 5),
        TreeSizeError(-1, -1),
        FrontierFormatError("short"),
        MissingNodeError(2, 7),
    ):
        copy = pickle.loads(pickle.dumps(error))  # noqa: S301 (our own bytes)
        assert (type(copy), vars(copy), str(copy)) == (type(error), vars(error), str(error))


@pytest.mark.parametrize(("index", "size"), [(0, 0), (3, 3), (-1, 4)])
def test_inclusion_plans_refuse_leaves_the_tree_lacks(index: int, size: int) -> None:
    with pytest.raises(LeafIndexError) as error:
        inclusion_plan(index, size)
    assert (error.value.index, error.value.tree_size) == (index, size)


@pytest.mark.parametrize(("size1", "size2"), [(0, 0), (0, 3), (4, 3), (-1, 2)])
def test_consistency_plans_refuse_sizes(size1: int, size2: int) -> None:
    with pytest.raises(TreeSizeError):
        consistency_plan(size1, size2)
    with pytest.raises(TreeSizeError):
        root_plan(-1)


def test_consistency_from_a_size_to_itself_is_empty() -> None:
    assert consistency_plan(5, 5) == ProofPlan(())


def test_a_store_missing_a_node_says_which() -> None:
    store = DictNodeStore()
    tree = CompactRange()
    for leaf in HASHES[:5]:
        tree.append(leaf, store.put)
    assert len(store) == 5 + 2 + 1
    with pytest.raises(MissingNodeError) as error:
        inclusion_proof(0, 6, store.get_node)  # a size beyond the log
    assert (error.value.level, error.value.index) == (1, 2)  # leaves [4, 6)
    with pytest.raises(MissingNodeError):
        root_at(6, store.get_node)


def test_rehash_needs_one_hash_per_node() -> None:
    plan = inclusion_plan(0, 3)
    with pytest.raises(ValueError, match="2 nodes"):
        plan.rehash([H])


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "shorter than the header"),
        (bytes(8), "shorter than the header"),
        (b"\x02" + bytes(8), "unknown version 2"),
        (b"\x01" + (3).to_bytes(8, "big") + bytes(32), "needs 73 bytes, got 41"),
        (b"\x01" + (0).to_bytes(8, "big") + bytes(1), "needs 9 bytes, got 10"),
    ],
)
def test_corrupt_frontiers_are_refused(data: bytes, reason: str) -> None:
    with pytest.raises(FrontierFormatError) as error:
        CompactRange.from_bytes(data)
    assert reason in error.value.reason


def test_the_empty_frontier() -> None:
    empty = CompactRange()
    assert empty.to_bytes() == b"\x01" + bytes(8)
    assert CompactRange.from_bytes(empty.to_bytes()) == empty
    assert empty.root() == merkle.EMPTY_ROOT
    assert empty != "CompactRange()"
    assert "size=0" in repr(empty)


def test_compact_range_refuses_impossible_states() -> None:
    with pytest.raises(ValueError, match="peaks"):
        CompactRange(3, [H])
    with pytest.raises(ValueError, match="32-byte"):
        CompactRange(1, [Hash32(b"short")])
    with pytest.raises(ValueError, match="2\\*\\*64"):
        CompactRange(-1)
    with pytest.raises(ValueError, match="32 bytes"):
        CompactRange().append(Hash32(b"short"), DictNodeStore().put)
    full = CompactRange(merkle.MAX_TREE_SIZE, [H] * 64)
    with pytest.raises(ValueError, match="full"):
        full.append(H, DictNodeStore().put)


def test_copy_is_independent() -> None:
    tree = CompactRange()
    tree.append(H, DictNodeStore().put)
    copy = tree.copy()
    copy.append(H, DictNodeStore().put)
    assert (tree.size, copy.size) == (1, 2)


# ---------------------------------------------------------------------------------------
# Purity: node.merkle is part of the node's pure core.

PURE_IMPORTS = {
    "__future__",
    "collections.abc",
    "dataclasses",
    "itertools",
    "node.merkle.compact",
    "node.merkle.errors",
    "node.merkle.proof",
    "node.merkle.store",
    "wallet.merkle",
    "wallet.types",
}


def test_node_merkle_imports_nothing_that_does_io() -> None:
    package = Path(__file__).resolve().parents[2] / "node" / "merkle"
    imported: set[str] = set()
    for path in package.glob("*.py"):
        for item in ast.walk(ast.parse(path.read_text())):
            if isinstance(item, ast.Import):
                imported.update(alias.name for alias in item.names)
            elif isinstance(item, ast.ImportFrom) and item.module:
                imported.add(item.module)
    assert imported <= PURE_IMPORTS


def test_wallet_merkle_imports_only_hashlib_and_the_wallet_basics() -> None:
    path = Path(merkle.__file__)
    imported: set[str] = set()
    for item in ast.walk(ast.parse(path.read_text())):
        if isinstance(item, ast.Import):
            imported.update(alias.name for alias in item.names)
        elif isinstance(item, ast.ImportFrom) and item.module:
            imported.add(item.module)
    assert imported == {
        "__future__",
        "hashlib",
        "collections.abc",
        "wallet.errors",
        "wallet.types",
    }
