"""Inputs of the state machine: ``Action*`` from the API, ``Receive*`` from peers,
``ContractReceive*`` from the chain."""

from __future__ import annotations

from dataclasses import dataclass, field

from node.state.records import Committee
from wallet.types import Address, Amount, Certificate, Hash32, SignedOrder


@dataclass(frozen=True, slots=True)
class ActionSubmitOrder:
    """A client asks this node to vote for a signed order."""

    signed: SignedOrder


@dataclass(frozen=True, slots=True)
class ReceiveCertificate:
    """A certificate arrived, from a client or a peer (the same rules apply)."""

    certificate: Certificate


@dataclass(frozen=True, slots=True)
class ContractReceiveDeposit:
    """A ``Deposited`` event of the Vault, deep enough below the chain head to credit.
    ``block_number`` and ``block_hash`` (where the log is; not part of the deposit's
    identity) are kept with the deposit cursor so that a restarted watcher scans from
    there, not from the Vault's deploy block, and still notices a reorg that replaced
    that block (node.chain.deposits, "anchor")."""

    deposit_id: int
    beneficiary: Address
    token: Address
    amount: Amount
    block_number: int | None = field(default=None, compare=False)
    block_hash: Hash32 | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class ContractReceiveNewEpoch:
    """The Vault started epoch ``committee.epoch`` (seen at a final block): its committee
    becomes known for certificates and, if it is later than the node's current epoch,
    the node's votes carry it from now on."""

    committee: Committee


@dataclass(frozen=True, slots=True)
class ContractReceiveTokenRegistration:
    """A ``TokenRegistered`` (``registered``) or ``TokenDeregistered`` event of the Vault,
    seen at a final block."""

    token: Address
    registered: bool


StateChange = (
    ActionSubmitOrder
    | ReceiveCertificate
    | ContractReceiveDeposit
    | ContractReceiveNewEpoch
    | ContractReceiveTokenRegistration
)
