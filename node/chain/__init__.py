"""The node's chain side (part of the async shell): reading the Vault through a JSON-RPC
URL and following its deposits.

The Vault's reading and its values (log decoding, block ranges, the registered token set,
:class:`~wallet.chain.CommitteeInfo`, :class:`~wallet.chain.VaultInfo`) live once, in
:mod:`wallet.chain`; the node imports them.

* :mod:`node.chain.deposits` is pure: which deposits are final and in what order, and
  the state machine's input for each.
* :class:`ChainReader` (:mod:`node.chain.reader`) is :class:`wallet.chain.VaultReader`
  with the node's errors (:mod:`node.errors`), and the start-up check of the RPC URL and
  the Vault address.
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
    deposit_change,
    is_final,
    last_final_block,
)
from node.chain.reader import ChainReader, committee_of
from node.chain.watcher import DepositSource, DepositWatcher, WatcherConfig

__all__ = [
    "DEVNET_CONFIRMATIONS",
    "ChainReader",
    "DepositBatch",
    "DepositSource",
    "DepositWatcher",
    "FinalDeposits",
    "WatchCursor",
    "WatcherConfig",
    "committee_of",
    "compute_final_deposits",
    "deposit_change",
    "is_final",
    "last_final_block",
]
