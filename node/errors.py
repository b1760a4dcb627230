"""The node's errors: one root, split by whose fault it is and whether retrying helps.

    NodeError
    ├── NodeConfigError        the operator's setup is wrong (fix it, then start again)
    │   └── DataDirLockedError      another node process holds the data directory
    └── NodeStoreError         the store is unusable (a bug or a damaged disk; no retry)
        └── CorruptRecordError      a record does not decode

A peer's or client's bad input is not an exception: the state machine refuses it with a
:class:`~node.state.events.RefusalCode`, and the API maps that to a 4xx reply.
"""

from __future__ import annotations


class NodeError(Exception):
    """The root of the node's errors."""


class NodeConfigError(NodeError):
    """The node's configuration or environment is wrong; it says what to do."""


class DataDirLockedError(NodeConfigError):
    """Another process has the LevelDB directory open."""


class NodeStoreError(NodeError):
    """The store cannot be used safely."""


class CorruptRecordError(NodeStoreError, ValueError):
    """A stored record does not decode."""
