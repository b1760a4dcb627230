"""The node's errors: one root, split by whose fault it is and whether retrying helps.

    NodeError
    ├── NodeConfigError        the operator's setup is wrong (fix it, then start again)
    │   ├── DataDirLockedError      another node process holds the data directory
    │   ├── RpcUnreachableError     the chain's JSON-RPC URL does not answer
    │   ├── WrongChainError         the RPC URL serves another chain than configured
    │   └── VaultNotFoundError      no Farthing Vault at the configured address
    ├── ChainReadError         a JSON-RPC read failed or timed out (transient: retry later)
    │   └── VaultCallError          a Vault view call reverted or returned nothing
    │       └── UnknownEpochError       the Vault has no committee for that epoch
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


class RpcUnreachableError(NodeConfigError):
    """The chain's JSON-RPC URL does not answer (or does not speak Ethereum JSON-RPC)."""


class WrongChainError(NodeConfigError):
    """The JSON-RPC URL serves a chain whose id is not the configured one."""


class VaultNotFoundError(NodeConfigError):
    """There is no contract at the configured Vault address, or it is not a Farthing Vault."""


class ChainReadError(NodeError):
    """A JSON-RPC read failed or timed out. Transient: the caller retries later."""


class VaultCallError(ChainReadError):
    """A view call of the Vault reverted or returned no data."""


class UnknownEpochError(VaultCallError, LookupError):
    """The Vault has no committee registered for the epoch asked for."""


class NodeStoreError(NodeError):
    """The store cannot be used safely."""


class CorruptRecordError(NodeStoreError, ValueError):
    """A stored record does not decode."""
