"""The node's Merkle log (RFC 9162 2.1), construction side; ``wallet.merkle`` verifies.

Rule 1: nothing here does I/O or reads a clock; stores come in as callables
(``visit`` to write a node, ``get_node`` to read one).
Rule 2: hashing is ``wallet.merkle``'s (one hasher for both sides).

- :mod:`node.merkle.compact`: ``CompactRange``, the O(log n) frontier that appends leaves
  and reports each completed perfect node to the caller to store.
- :mod:`node.merkle.proof`: inclusion and consistency proofs, and roots of past sizes,
  from O(log n) stored nodes.
- :mod:`node.merkle.store`: ``DictNodeStore``, the in-memory reference store.
"""

from node.merkle.compact import FRONTIER_VERSION, CompactRange, VisitNode
from node.merkle.errors import (
    FrontierFormatError,
    LeafIndexError,
    MerkleTreeError,
    MissingNodeError,
    TreeSizeError,
)
from node.merkle.proof import (
    GetNode,
    NodeID,
    ProofPlan,
    consistency_plan,
    consistency_proof,
    inclusion_plan,
    inclusion_proof,
    root_at,
    root_plan,
    subtree_nodes,
)
from node.merkle.store import DictNodeStore

__all__ = [
    "FRONTIER_VERSION",
    "CompactRange",
    "DictNodeStore",
    "FrontierFormatError",
    "GetNode",
    "LeafIndexError",
    "MerkleTreeError",
    "MissingNodeError",
    "NodeID",
    "ProofPlan",
    "TreeSizeError",
    "VisitNode",
    "consistency_plan",
    "consistency_proof",
    "inclusion_plan",
    "inclusion_proof",
    "root_at",
    "root_plan",
    "subtree_nodes",
]
