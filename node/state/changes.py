"""Inputs of the state machine: ``Action*`` from the API, ``Receive*`` from peers,
``ContractReceive*`` from the chain."""

from __future__ import annotations

from dataclasses import dataclass

from wallet.types import Address, Amount, Certificate, SignedOrder


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
    """A ``Deposited`` event of the Vault, deep enough below the chain head to credit."""

    deposit_id: int
    beneficiary: Address
    token: Address
    amount: Amount


StateChange = ActionSubmitOrder | ReceiveCertificate | ContractReceiveDeposit
