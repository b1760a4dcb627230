"""Chain deposits in the state machine: once each, in id order, logged."""

from __future__ import annotations

from node.state import (
    ContractReceiveDeposit,
    EventDepositCredited,
    EventDepositDuplicate,
    EventRefused,
    RefusalCode,
)
from node.state.entries import deposit_leaf
from tests.node.factories import ALICE, BOB, FAR, USDF, Node
from wallet.types import Amount


def test_deposits_credit_once_in_order() -> None:
    node = Node()
    t1 = node.step(ContractReceiveDeposit(1, ALICE.address, USDF, Amount(50)))
    assert t1.events == (EventDepositCredited(1, ALICE.address, 0),)
    assert node.balance(ALICE) == 50
    assert node.ledger.log[0].leaf == deposit_leaf(1, ALICE.address, USDF, 50)

    again = node.step(ContractReceiveDeposit(1, ALICE.address, USDF, Amount(50)))
    assert again.events == (EventDepositDuplicate(1),) and again.writes_nothing
    assert node.balance(ALICE) == 50

    gap = node.step(ContractReceiveDeposit(3, BOB.address, FAR, Amount(7)))
    assert gap.writes_nothing
    assert isinstance(gap.events[0], EventRefused) and gap.events[0].code is RefusalCode.DEPOSIT_GAP

    node.step(ContractReceiveDeposit(2, BOB.address, FAR, Amount(7)))
    node.step(ContractReceiveDeposit(3, BOB.address, FAR, Amount(8)))
    assert node.balance(BOB, FAR) == 15
    assert node.ledger.next_deposit_id() == 4
    assert node.ledger.log_size() == 3


def test_deposit_leaf_layout() -> None:
    leaf = deposit_leaf(258, ALICE.address, USDF, 2**256 - 1)
    assert leaf[0] == 0 and leaf[1:9] == (258).to_bytes(8, "big")
    assert leaf[9:29] == ALICE.address and leaf[29:49] == USDF
    assert leaf[49:] == b"\xff" * 32 and len(leaf) == 81
