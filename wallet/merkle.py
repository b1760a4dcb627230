"""Verifying the node's Merkle log: RFC 9162 (Certificate Transparency v2) section 2.1.

This is the verification half of the log's Merkle code (like transparency-dev/merkle's
``proof/verify.go``); the node builds trees and proofs in ``node.merkle``. A wallet checks a
receipt offline with it, a witness checks two checkpoints of a peer with it. It does no I/O
and needs only :mod:`hashlib` (and the wallet's types and errors).

The hasher (RFC 9162 2.1.1, whose prefixes separate leaves from nodes): SHA-256,
``hash_leaf(d) = SHA-256(0x00 || d)``, ``hash_children(l, r) = SHA-256(0x01 || l || r)``,
and the empty tree's root is ``SHA-256()``.

Errors carry data, and all of them are refusals of bad input (whoever sent the proof or the
roots is at fault; retrying the same call never succeeds)::

    WalletError (wallet.errors)
     └── MerkleProofError (ValueError)  a proof, or what it is checked against, is wrong
          ├── MalformedHashError        (field, length): not bytes, or not 32 of them
          ├── InvalidSizeError          (field, value): an index or size that is not an
          │                             int in [0, 2**64)
          ├── IndexOutOfRangeError      (index, tree_size): index >= tree_size
          ├── ConsistencyRangeError     (size1, size2): neither 0 < size1 <= size2 nor
          │                             size1 == size2 == 0
          ├── ProofLengthError          (expected, got): the proof has the wrong length
          └── RootMismatchError         (expected, calculated, tree_size): a root differs

Checks happen in that order: shapes of the arguments, then the ranges, then the proof's
length, then the roots; the vectors in ``tests/merkle/vectors`` pin this order.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from wallet.errors import WalletError
from wallet.types import Hash32

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "LEAF_PREFIX",
    "MAX_TREE_SIZE",
    "NODE_PREFIX",
    "ConsistencyRangeError",
    "IndexOutOfRangeError",
    "InvalidSizeError",
    "MalformedHashError",
    "MerkleProofError",
    "ProofLengthError",
    "RootMismatchError",
    "consistency_proof_length",
    "hash_children",
    "hash_leaf",
    "inclusion_proof_length",
    "root_from_consistency_proof",
    "root_from_inclusion_proof",
    "verify_consistency",
    "verify_inclusion",
]

#: Domain separation (RFC 9162 2.1.1): a leaf's hash input starts with 0x00 ...
LEAF_PREFIX = b"\x00"
#: ... and an interior node's with 0x01, so no leaf can pose as a node.
NODE_PREFIX = b"\x01"
#: SHA-256 digests are 32 bytes.
HASH_SIZE = 32
#: The Merkle Tree Hash of the empty list: SHA-256 of the empty string (RFC 9162 2.1.1).
EMPTY_ROOT = Hash32(hashlib.sha256(b"").digest())
#: Tree sizes and indexes are uint64 on the wire (RFC 9162 4.1).
MAX_TREE_SIZE = 2**64 - 1


# ---------------------------------------------------------------------------------------
# Errors


class MerkleProofError(WalletError, ValueError):
    """The root of this module's errors: a proof did not verify, or could not be read.

    Subclasses keep their data in attributes and in ``args`` (so they pickle), and format
    the message in ``__str__``.
    """


class MalformedHashError(MerkleProofError):
    """``field`` (``"leaf_hash"``, ``"root"``, ``"proof[3]"``, ``"proof"`` ...) is not a
    32-byte ``bytes``; ``length`` is its length, or None when it is not bytes at all."""

    def __init__(self, field: str, length: int | None) -> None:
        super().__init__(field, length)
        self.field = field
        self.length = length

    def __str__(self) -> str:
        what = "not bytes" if self.length is None else f"{self.length} bytes"
        return f"{self.field} must be {HASH_SIZE} bytes, got {what}"


class InvalidSizeError(MerkleProofError):
    """``field`` (an index or a tree size) is not an ``int`` in ``[0, 2**64)``."""

    def __init__(self, field: str, value: object) -> None:
        super().__init__(field, value)
        self.field = field
        self.value = value

    def __str__(self) -> str:
        return f"{self.field} must be an integer in [0, 2**64), got {self.value!r}"


class IndexOutOfRangeError(MerkleProofError):
    """A leaf ``index`` that the tree of ``tree_size`` leaves does not have."""

    def __init__(self, index: int, tree_size: int) -> None:
        super().__init__(index, tree_size)
        self.index = index
        self.tree_size = tree_size

    def __str__(self) -> str:
        return f"leaf index {self.index} is not below tree size {self.tree_size}"


class ConsistencyRangeError(MerkleProofError):
    """No consistency proof exists from ``size1`` to ``size2``: RFC 9162 defines them for
    ``0 < size1 <= size2`` (``size1 == size2 == 0`` is also accepted, with equal roots)."""

    def __init__(self, size1: int, size2: int) -> None:
        super().__init__(size1, size2)
        self.size1 = size1
        self.size2 = size2

    def __str__(self) -> str:
        return f"no consistency proof from tree size {self.size1} to {self.size2}"


class ProofLengthError(MerkleProofError):
    """The proof has ``got`` hashes where the index and sizes call for ``expected``."""

    def __init__(self, expected: int, got: int) -> None:
        super().__init__(expected, got)
        self.expected = expected
        self.got = got

    def __str__(self) -> str:
        return f"proof has {self.got} hashes, expected {self.expected}"


class RootMismatchError(MerkleProofError):
    """The root ``calculated`` from the proof for the tree of ``tree_size`` leaves is not
    the ``expected`` one (the root the caller trusts, e.g. from a signed checkpoint)."""

    def __init__(self, expected: bytes, calculated: bytes, tree_size: int) -> None:
        super().__init__(expected, calculated, tree_size)
        self.expected = expected
        self.calculated = calculated
        self.tree_size = tree_size

    def __str__(self) -> str:
        return (
            f"root of tree size {self.tree_size} calculated from the proof is "
            f"{self.calculated.hex()}, expected {self.expected.hex()}"
        )


# ---------------------------------------------------------------------------------------
# The hasher (RFC 9162 2.1.1)


def hash_leaf(data: bytes) -> Hash32:
    """MTH({d}) = SHA-256(0x00 || d): the hash of one log entry."""
    return Hash32(hashlib.sha256(LEAF_PREFIX + data).digest())


def hash_children(left: bytes, right: bytes) -> Hash32:
    """SHA-256(0x01 || left || right): the hash of an interior node."""
    return Hash32(hashlib.sha256(NODE_PREFIX + left + right).digest())


# ---------------------------------------------------------------------------------------
# Proof lengths (from the shape of the tree alone, as transparency-dev's decompInclProof)


def inclusion_proof_length(index: int, tree_size: int) -> int:
    """The number of hashes in the inclusion proof of leaf ``index`` in a tree of
    ``tree_size`` leaves (IndexOutOfRangeError unless ``0 <= index < tree_size``).

    The path to ``index`` splits from the path to the last leaf ``tree_size - 1`` at
    level ``inner``; below it every level gives one sibling, above it only the levels where
    the path turns right have a (left) sibling.
    """
    index = _check_size("index", index)
    tree_size = _check_size("tree_size", tree_size)
    if index >= tree_size:
        raise IndexOutOfRangeError(index, tree_size)
    inner = (index ^ (tree_size - 1)).bit_length()
    return inner + (index >> inner).bit_count()


def consistency_proof_length(size1: int, size2: int) -> int:
    """The number of hashes in the consistency proof from ``size1`` to ``size2``
    (ConsistencyRangeError unless ``0 < size1 <= size2`` or ``size1 == size2 == 0``).

    It is the inclusion proof of the last perfect subtree of the old tree (the one ending
    at leaf ``size1 - 1``) in the new tree, plus that subtree's hash itself unless it is
    the whole old tree (``size1`` a power of two), whose root the verifier already has.
    """
    size1 = _check_size("size1", size1)
    size2 = _check_size("size2", size2)
    if size1 > size2 or (size1 == 0 and size2 > 0):
        raise ConsistencyRangeError(size1, size2)
    if size1 == size2:
        return 0
    shift = (size1 & -size1).bit_length() - 1  # trailing zeros of size1
    inner = ((size1 - 1) ^ (size2 - 1)).bit_length()
    border = ((size1 - 1) >> inner).bit_count()
    seed = 0 if size1 == 1 << shift else 1
    return seed + (inner - shift) + border


# ---------------------------------------------------------------------------------------
# Argument checks


def _check_hash(field: str, value: object) -> bytes:
    if not isinstance(value, bytes):
        raise MalformedHashError(field, None)
    if len(value) != HASH_SIZE:
        raise MalformedHashError(field, len(value))
    return value


def _check_proof(proof: object) -> list[bytes]:
    if isinstance(proof, bytes | bytearray | memoryview | str) or not isinstance(proof, Sequence):
        raise MalformedHashError("proof", None)
    return [_check_hash(f"proof[{i}]", item) for i, item in enumerate(proof)]


def _check_size(field: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_TREE_SIZE:
        raise InvalidSizeError(field, value)
    return value


# ---------------------------------------------------------------------------------------
# Inclusion (RFC 9162 2.1.3.2)


def root_from_inclusion_proof(
    leaf_hash: Hash32, index: int, tree_size: int, proof: Sequence[Hash32]
) -> Hash32:
    """The root that ``proof`` implies for leaf ``index`` with ``leaf_hash`` in a tree of
    ``tree_size`` leaves: RFC 9162 2.1.3.2 steps 1 to 4, and the ``sn == 0`` test of
    step 5. Compare it with a trusted root, or call :func:`verify_inclusion`.

    Raises MalformedHashError, InvalidSizeError, IndexOutOfRangeError, ProofLengthError.
    """
    r = _check_hash("leaf_hash", leaf_hash)
    path = _check_proof(proof)
    index = _check_size("index", index)
    tree_size = _check_size("tree_size", tree_size)
    # 1. leaf_index >= tree_size fails.
    if index >= tree_size:
        raise IndexOutOfRangeError(index, tree_size)
    # 2. fn = leaf_index, sn = tree_size - 1;  3. r = hash.
    fn, sn = index, tree_size - 1
    # 4. For each value p in the inclusion_path array:
    for p in path:
        # a. If sn is 0, stop and fail (the path is too long).
        if sn == 0:
            raise ProofLengthError(inclusion_proof_length(index, tree_size), len(path))
        # b. p is a left sibling where fn is a right child, or where fn is the last node
        #    of its level (then skip the levels where fn has no sibling at all) ...
        if fn & 1 or fn == sn:
            r = hash_children(p, r)
            while not (fn & 1 or fn == 0):
                fn >>= 1
                sn >>= 1
        # ... otherwise a right sibling.
        else:
            r = hash_children(r, p)
        # c. Go up one level.
        fn >>= 1
        sn >>= 1
    # 5. sn must be 0 (the path reached the root; else it is too short).
    if sn != 0:
        raise ProofLengthError(inclusion_proof_length(index, tree_size), len(path))
    return Hash32(r)


def verify_inclusion(
    leaf_hash: Hash32, index: int, tree_size: int, proof: Sequence[Hash32], root: Hash32
) -> None:
    """Check that ``proof`` proves leaf ``index`` with ``leaf_hash`` is in the tree of
    ``tree_size`` leaves with ``root`` (RFC 9162 2.1.3.2). Returns None, or raises a
    :class:`MerkleProofError` (RootMismatchError if every shape is right but the hashes
    do not lead to ``root``)."""
    expected = _check_hash("root", root)
    calculated = root_from_inclusion_proof(leaf_hash, index, tree_size, proof)
    if calculated != expected:
        raise RootMismatchError(expected, calculated, tree_size)


# ---------------------------------------------------------------------------------------
# Consistency (RFC 9162 2.1.4.2)


def root_from_consistency_proof(
    size1: int, size2: int, proof: Sequence[Hash32], root1: Hash32
) -> Hash32:
    """The root of the size-``size2`` tree that ``proof`` implies, given that the
    size-``size1`` tree has ``root1``: RFC 9162 2.1.4.2 including step 7's checks of
    ``sn == 0`` and of ``fr == first_hash`` (RootMismatchError with ``tree_size=size1``).

    ``size1 == size2`` needs an empty proof and gives ``root1``. A proof from the empty
    tree is meaningless (every tree extends it) and is refused, as transparency-dev does.

    Raises MalformedHashError, InvalidSizeError, ConsistencyRangeError, ProofLengthError,
    RootMismatchError.
    """
    first_hash = _check_hash("root1", root1)
    path = _check_proof(proof)
    first = _check_size("size1", size1)
    second = _check_size("size2", size2)
    if first > second or (first == 0 and second > 0):
        raise ConsistencyRangeError(first, second)
    if first == second:
        if path:
            raise ProofLengthError(0, len(path))
        return Hash32(first_hash)
    # 1. An empty consistency_path fails.
    if not path:
        raise ProofLengthError(consistency_proof_length(first, second), 0)
    # 2. If first is an exact power of 2, prepend first_hash.
    if first & (first - 1) == 0:
        path = [first_hash, *path]
    # 3. fn = first - 1, sn = second - 1.
    fn, sn = first - 1, second - 1
    # 4. While LSB(fn) is set, right-shift fn and sn.
    while fn & 1:
        fn >>= 1
        sn >>= 1
    # 5. fr = sr = the first value of the path.
    fr = sr = path[0]
    # 6. For each subsequent value c:
    for c in path[1:]:
        # a. If sn is 0, stop and fail (the path is too long).
        if sn == 0:
            raise ProofLengthError(consistency_proof_length(first, second), len(proof))
        # b. c is a left sibling: it is in both trees ...
        if fn & 1 or fn == sn:
            fr = hash_children(c, fr)
            sr = hash_children(c, sr)
            while not (fn & 1 or fn == 0):
                fn >>= 1
                sn >>= 1
        # ... otherwise a right sibling, only in the new tree.
        else:
            sr = hash_children(sr, c)
        # c. Go up one level.
        fn >>= 1
        sn >>= 1
    # 7. sn must be 0 (else the path is too short) and fr must be first_hash.
    if sn != 0:
        raise ProofLengthError(consistency_proof_length(first, second), len(proof))
    if fr != first_hash:
        raise RootMismatchError(first_hash, fr, first)
    return Hash32(sr)


def verify_consistency(
    size1: int, size2: int, proof: Sequence[Hash32], root1: Hash32, root2: Hash32
) -> None:
    """Check that the tree of ``size1`` leaves with ``root1`` is a prefix of the tree of
    ``size2`` leaves with ``root2`` (RFC 9162 2.1.4.2). Returns None, or raises a
    :class:`MerkleProofError`; a RootMismatchError's ``tree_size`` says which root failed.
    """
    expected = _check_hash("root2", root2)
    calculated = root_from_consistency_proof(size1, size2, proof, root1)
    if calculated != expected:
        raise RootMismatchError(expected, calculated, size2)
