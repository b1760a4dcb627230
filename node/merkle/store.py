"""An in-memory node store: the reference for the node's LevelDB store, and the store of
the tests and the benchmark.

The contract a store keeps: ``put`` is a ``VisitNode`` for ``CompactRange.append`` (it
receives every perfect node, leaves included, once), and ``get_node`` is a ``GetNode`` for
``node.merkle.proof`` (it returns what ``put`` stored, and raises MissingNodeError for a
node never stored). A persistent store writes the nodes of one append, and the frontier
(``CompactRange.to_bytes``), in one batch.
"""

from __future__ import annotations

from node.merkle.errors import MissingNodeError
from wallet.types import Hash32

__all__ = ["DictNodeStore"]


class DictNodeStore:
    """Node hashes in a dict keyed by (level, index)."""

    __slots__ = ("nodes",)

    def __init__(self) -> None:
        self.nodes: dict[tuple[int, int], Hash32] = {}

    def put(self, level: int, index: int, node_hash: Hash32) -> None:
        self.nodes[level, index] = node_hash

    def get_node(self, level: int, index: int) -> Hash32:
        try:
            return self.nodes[level, index]
        except KeyError:
            raise MissingNodeError(level, index) from None

    def __len__(self) -> int:
        return len(self.nodes)
