"""The node's persistent state on LevelDB (the imperative shell's store)."""

from node.store.ledger import LedgerStore

__all__ = ["LedgerStore"]
