"""Child process for test_store_crash.py: writes deposits, transfers and withdrawals to a
store until it is killed, resuming from whatever the store holds."""

from __future__ import annotations

import sys
from pathlib import Path

from node.state import ContractReceiveDeposit, ReceiveCertificate, transition
from node.store import LedgerStore
from tests.node.factories import (
    ALICE,
    BOB,
    COMMITTEE,
    DOMAIN,
    USDF,
    Node,
    certify,
    transfer,
    withdrawal,
)
from wallet.types import Amount

DEPOSIT = 1_000


def main(path: str) -> None:
    store = LedgerStore(Path(path), DOMAIN, sync=False)
    store.put_committee(COMMITTEE)
    context = Node().context
    while True:
        deposit_id = store.next_deposit_id()
        store.commit(
            transition(
                store,
                context,
                ContractReceiveDeposit(deposit_id, ALICE.address, USDF, Amount(DEPOSIT)),
            )
        )
        sequence = store.account(ALICE.address).next_sequence
        store.commit(
            transition(
                store, context, ReceiveCertificate(certify(transfer(ALICE, BOB, 3, sequence)))
            )
        )
        bob_sequence = store.account(BOB.address).next_sequence
        store.commit(
            transition(
                store, context, ReceiveCertificate(certify(withdrawal(BOB, 1, bob_sequence)))
            )
        )
        print(deposit_id, flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
