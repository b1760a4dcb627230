"""The errors of the node's Merkle code, with their data::

    MerkleTreeError                          the root of node.merkle's errors
     ├── LeafIndexError (+ ValueError)       (index, tree_size): no such leaf; the caller's
     │                                       fault (a client asked for it), recoverable
     ├── TreeSizeError (+ ValueError)        (size1, size2): no such proof or root; the
     │                                       caller's fault, recoverable
     ├── FrontierFormatError (+ ValueError)  (reason): stored frontier bytes do not decode;
     │                                       a corrupt store, unrecoverable
     └── MissingNodeError (+ LookupError)    (level, index): the store lacks a node it must
                                             have; a corrupt store (or a size beyond the
                                             log), unrecoverable

When the node gets its package error root, ``MerkleTreeError`` should derive from it.
"""

from __future__ import annotations

__all__ = [
    "FrontierFormatError",
    "LeafIndexError",
    "MerkleTreeError",
    "MissingNodeError",
    "TreeSizeError",
]


class MerkleTreeError(Exception):
    """The root of the errors of :mod:`node.merkle`."""


class LeafIndexError(MerkleTreeError, ValueError):
    """An inclusion proof was asked for leaf ``index`` of a tree of ``tree_size`` leaves,
    which has no such leaf."""

    def __init__(self, index: int, tree_size: int) -> None:
        super().__init__(index, tree_size)
        self.index = index
        self.tree_size = tree_size

    def __str__(self) -> str:
        return f"no leaf {self.index} in a tree of {self.tree_size} leaves"


class TreeSizeError(MerkleTreeError, ValueError):
    """A consistency proof was asked for from ``size1`` to ``size2`` outside
    ``0 < size1 <= size2``, or a root for a negative size (then ``size1 == size2``)."""

    def __init__(self, size1: int, size2: int) -> None:
        super().__init__(size1, size2)
        self.size1 = size1
        self.size2 = size2

    def __str__(self) -> str:
        if self.size1 == self.size2:
            return f"no tree of size {self.size1}"
        return f"no consistency proof from tree size {self.size1} to {self.size2}"


class FrontierFormatError(MerkleTreeError, ValueError):
    """Bytes given to :meth:`CompactRange.from_bytes` are not a serialized frontier."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason

    def __str__(self) -> str:
        return f"not a serialized Merkle frontier: {self.reason}"


class MissingNodeError(MerkleTreeError, LookupError):
    """The node store has no hash for the perfect subtree (``level``, ``index``)."""

    def __init__(self, level: int, index: int) -> None:
        super().__init__(level, index)
        self.level = level
        self.index = index

    def __str__(self) -> str:
        return f"no stored Merkle node at level {self.level}, index {self.index}"
