"""The node's pure core: the ledger rules as a deterministic state machine.

Rule 1: nothing in this package does I/O. No sockets, files, LevelDB, clocks or randomness;
time and chain heights come in as data. (``tests/test_layering.py`` checks the imports.)

Rule 2: a transition reads state only through a :class:`~node.state.view.LedgerView`
snapshot and returns everything it changes as a :class:`~node.state.transition.Transition`:
the records to write (one atomic batch) and the events for the shell to perform *after*
the batch is committed (send a vote, gossip a certificate, fetch what is missing).

Theory of operation
-------------------
The ledger's state does not fit in memory forever (the log and the set of applied
certificates grow without bound), so the state machine is not handed the whole state.
The shell gives it a view of the store (LevelDB, plus the writes of the batch being
built), and :func:`~node.state.transition.transition` reads the few records an input
touches (an account or two, a lock, an applied marker), applies the protocol's rules and
returns the new records. The same input on the same records always gives the same output.

Inputs (state changes) are named by where they come from: ``Action*`` (the node's API),
``Receive*`` (a peer), ``ContractReceive*`` (the chain). Outputs are ``Send*`` (to a
client or peers), ``Request*`` (ask peers for something) and ``Event*`` (to log and count).

The rules (docs/protocol.md, "Ledger rules"):

* vote for an order only when its owner signed it, its sequence is the account's next one,
  the token is registered, the amount is positive and covered by the balance, and no other
  order holds the lock at that (account, sequence); the same order again gets the same
  vote back;
* apply a certificate (a quorum of distinct members of a known epoch, and the owner's
  signature) exactly once, whatever the local balance; one ahead of the account's sequence
  waits, and the missing ones are requested;
* credit each chain deposit once, in deposit id order;
* learn from the chain (``ContractReceiveNewEpoch``, ``ContractReceiveTokenRegistration``)
  a new epoch's committee (stored before any certificate of it is checked), the current
  epoch (votes carry it; a node outside its committee votes for nothing) and the token
  set (a deregistered token is voted on for withdrawals only); these set a new
  :class:`NodeContext` the writer uses for every later change;
* every applied certificate and deposit appends one entry to the log.
"""

from node.state.changes import (
    ActionSubmitOrder,
    ContractReceiveDeposit,
    ContractReceiveNewEpoch,
    ContractReceiveTokenRegistration,
    ReceiveCertificate,
    StateChange,
)
from node.state.events import (
    Event,
    EventCertificateApplied,
    EventCertificateDuplicate,
    EventCertificatePending,
    EventCommitteeStored,
    EventDepositCredited,
    EventDepositDuplicate,
    EventEpochChanged,
    EventRefused,
    EventTokensChanged,
    RefusalCode,
    RequestMissingCertificates,
    SendCertificateToPeers,
    SendVote,
)
from node.state.records import AccountRecord, Committee, Lock, LogEntry, NodeContext
from node.state.transition import Transition, transition
from node.state.view import LedgerView, MemoryLedger

__all__ = [
    "AccountRecord",
    "ActionSubmitOrder",
    "Committee",
    "ContractReceiveDeposit",
    "ContractReceiveNewEpoch",
    "ContractReceiveTokenRegistration",
    "Event",
    "EventCertificateApplied",
    "EventCertificateDuplicate",
    "EventCertificatePending",
    "EventCommitteeStored",
    "EventDepositCredited",
    "EventDepositDuplicate",
    "EventEpochChanged",
    "EventRefused",
    "EventTokensChanged",
    "LedgerView",
    "Lock",
    "LogEntry",
    "MemoryLedger",
    "NodeContext",
    "ReceiveCertificate",
    "RefusalCode",
    "RequestMissingCertificates",
    "SendCertificateToPeers",
    "SendVote",
    "StateChange",
    "Transition",
    "transition",
]
