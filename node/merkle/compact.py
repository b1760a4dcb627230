"""The log's growing edge: a compact range over ``[0, size)`` (transparency-dev/merkle's
``compact.Range``), holding only the O(log n) hashes needed to keep appending.

Theory of operation. A tree of ``size`` leaves (RFC 9162 2.1.1) splits into perfect
subtrees, one per set bit of ``size``, largest (leftmost) first: 13 = 8 + 4 + 1 leaves are
covered by the nodes (3, 0), (2, 2) and (0, 12), where node (level, i) covers the leaves
``[i * 2**level, (i + 1) * 2**level)``. Those roots are the *peaks*. Appending a leaf is
binary increment: the new leaf merges with the peaks of levels 0, 1, 2 ... for as long as
``size`` has those bits set, each merge completing one new perfect node, and the result
becomes the new lowest peak. The root of the whole tree folds the peaks from the right
(RFC 9162's split at the largest power of two less than n puts the biggest perfect
subtree on the left each time).

The range does no I/O: :meth:`CompactRange.append` hands each completed node
(level, index, hash), the leaf itself first, to the caller's ``visit``, and the caller
stores it (``DictNodeStore.put`` in tests, a LevelDB batch in the node). Those stored
perfect nodes are all that ``node.merkle.proof`` needs. :meth:`CompactRange.to_bytes`
gives the frontier to persist next to them so a restart does not replay the log.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from node.merkle.errors import FrontierFormatError
from wallet.merkle import EMPTY_ROOT, HASH_SIZE, MAX_TREE_SIZE, hash_children
from wallet.types import Hash32

__all__ = ["FRONTIER_VERSION", "CompactRange", "VisitNode"]

#: Receives each node an append completes: (level, index, hash).
VisitNode = Callable[[int, int, Hash32], None]

#: The first byte of a serialized frontier.
FRONTIER_VERSION = 1
_HEADER = 1 + 8  # version, size as a big-endian uint64


class CompactRange:
    """The peaks of the tree of the first ``size`` leaves, highest level first.

    Mutable by design (it is the node's accumulator); everything it learns leaves through
    ``visit``. Appending costs at most ``log2(size + 1)`` node hashes, 1 on average.
    """

    __slots__ = ("_peaks", "_size")

    def __init__(self, size: int = 0, peaks: Iterable[Hash32] = ()) -> None:
        peaks = list(peaks)
        if not 0 <= size <= MAX_TREE_SIZE:
            raise ValueError(f"tree size {size} is not in [0, 2**64)")
        if len(peaks) != size.bit_count():
            raise ValueError(
                f"a tree of {size} leaves has {size.bit_count()} peaks, not {len(peaks)}"
            )
        if any(len(peak) != HASH_SIZE for peak in peaks):
            raise ValueError(f"peaks must be {HASH_SIZE}-byte hashes")
        self._size = size
        self._peaks = peaks

    @property
    def size(self) -> int:
        """The number of leaves appended so far."""
        return self._size

    @property
    def peaks(self) -> tuple[Hash32, ...]:
        """The roots of the perfect subtrees covering ``[0, size)``, highest level
        (leftmost) first: one per set bit of ``size``."""
        return tuple(self._peaks)

    def append(self, leaf_hash: Hash32, visit: VisitNode) -> None:
        """Append the leaf with hash ``leaf_hash`` (see ``wallet.merkle.hash_leaf``) as
        leaf number ``size``. Calls ``visit(0, size, leaf_hash)`` and then
        ``visit(level, index, hash)`` for each perfect node it completes, bottom up."""
        if len(leaf_hash) != HASH_SIZE:
            raise ValueError(f"leaf hash must be {HASH_SIZE} bytes, got {len(leaf_hash)}")
        if self._size == MAX_TREE_SIZE:
            raise ValueError("the tree is full (2**64 - 1 leaves)")
        index = self._size
        visit(0, index, leaf_hash)
        node = leaf_hash
        level = 0
        while index & 1:  # the peak of this level is the left sibling: merge
            node = hash_children(self._peaks.pop(), node)
            index >>= 1
            level += 1
            visit(level, index, node)
        self._peaks.append(node)
        self._size += 1

    def root(self) -> Hash32:
        """The Merkle Tree Hash of ``[0, size)`` (RFC 9162 2.1.1): the peaks folded from
        the right; ``EMPTY_ROOT`` for the empty tree. Costs ``popcount(size) - 1`` hashes."""
        if not self._peaks:
            return EMPTY_ROOT
        root = self._peaks[-1]
        for peak in reversed(self._peaks[:-1]):
            root = hash_children(peak, root)
        return root

    def to_bytes(self) -> bytes:
        """The frontier as ``version (1 byte) || size (uint64, big-endian) || peaks``
        (32 bytes each, highest level first): ``9 + 32 * popcount(size)`` bytes."""
        return bytes([FRONTIER_VERSION]) + self._size.to_bytes(8, "big") + b"".join(self._peaks)

    @classmethod
    def from_bytes(cls, data: bytes) -> CompactRange:
        """The inverse of :meth:`to_bytes`; FrontierFormatError if ``data`` is not one."""
        if len(data) < _HEADER:
            raise FrontierFormatError(f"{len(data)} bytes is shorter than the header")
        if data[0] != FRONTIER_VERSION:
            raise FrontierFormatError(f"unknown version {data[0]}")
        size = int.from_bytes(data[1:_HEADER], "big")
        count = size.bit_count()
        if len(data) != _HEADER + HASH_SIZE * count:
            raise FrontierFormatError(
                f"a tree of {size} leaves needs {_HEADER + HASH_SIZE * count} bytes, "
                f"got {len(data)}"
            )
        peaks = [
            Hash32(data[start : start + HASH_SIZE])
            for start in range(_HEADER, len(data), HASH_SIZE)
        ]
        return cls(size, peaks)

    def copy(self) -> CompactRange:
        return CompactRange(self._size, self._peaks)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CompactRange):
            return NotImplemented
        return self._size == other._size and self._peaks == other._peaks

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return f"CompactRange(size={self._size}, peaks=[{', '.join(p.hex() for p in self._peaks)}])"
