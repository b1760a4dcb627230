"""The node's chain side (part of the async shell): reading the Vault through a JSON-RPC
URL and following its deposits.

* :mod:`node.chain.logs` and :mod:`node.chain.deposits` are pure: log decoding, block
  ranges, the registered token set, and which deposits are final and in what order.
* :class:`ChainReader` (:mod:`node.chain.reader`) does the JSON-RPC reads and the
  start-up check of the RPC URL and the Vault address.
* :class:`DepositWatcher` (:mod:`node.chain.watcher`) is the thin loop that turns the
  Vault's ``Deposited`` logs into :class:`~node.state.changes.ContractReceiveDeposit`\\ s.
* :class:`~node.chain.follower.ChainFollower` (:mod:`node.chain.follower`) follows the
  Vault after start: new epochs, endpoints, token (de)registrations.
"""

from node.chain.deposits import (
    DEVNET_CONFIRMATIONS,
    DepositBatch,
    FinalDeposits,
    WatchCursor,
    compute_final_deposits,
    is_final,
    last_final_block,
)
from node.chain.logs import DEFAULT_MAX_SPAN, BlockRange, DepositLog, TokenEvent
from node.chain.reader import ChainReader, CommitteeInfo, VaultInfo, redact_url
from node.chain.watcher import DepositSource, DepositWatcher, WatcherConfig

__all__ = [
    "DEFAULT_MAX_SPAN",
    "DEVNET_CONFIRMATIONS",
    "BlockRange",
    "ChainReader",
    "CommitteeInfo",
    "DepositBatch",
    "DepositLog",
    "DepositSource",
    "DepositWatcher",
    "FinalDeposits",
    "TokenEvent",
    "VaultInfo",
    "WatchCursor",
    "WatcherConfig",
    "compute_final_deposits",
    "is_final",
    "last_final_block",
    "redact_url",
]
