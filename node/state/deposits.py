"""Chain deposits: each credited once, in deposit id order."""

from __future__ import annotations

from node.state.changes import ContractReceiveDeposit
from node.state.entries import deposit_leaf
from node.state.events import EventDepositCredited, EventDepositDuplicate, EventRefused, RefusalCode
from node.state.records import LogEntry
from node.state.transition import Scratch


def handle_deposit(scratch: Scratch, change: ContractReceiveDeposit) -> None:
    expected = scratch.deposit_cursor()
    if change.deposit_id < expected:
        scratch.events.append(EventDepositDuplicate(change.deposit_id))
        return
    if change.deposit_id > expected:
        scratch.events.append(
            EventRefused(
                RefusalCode.DEPOSIT_GAP,
                f"deposit {change.deposit_id} arrived before deposit {expected}",
            )
        )
        return
    beneficiary = change.beneficiary
    scratch.accounts[beneficiary] = scratch.account(beneficiary).with_balance(
        change.token, change.amount
    )
    scratch.next_deposit_id = expected + 1
    scratch.deposit_block = change.block_number
    scratch.deposit_block_hash = change.block_hash
    index = scratch.log_index()
    scratch.log.append(
        LogEntry(deposit_leaf(change.deposit_id, beneficiary, change.token, change.amount))
    )
    scratch.events.append(EventDepositCredited(change.deposit_id, beneficiary, index))
