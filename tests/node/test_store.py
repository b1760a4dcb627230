"""The LevelDB store against the in-memory reference: same records after the same
transitions, atomic batches, restart without replay, proofs that verify."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from node.errors import DataDirLockedError
from node.state import ContractReceiveDeposit, MemoryLedger, ReceiveCertificate, transition
from node.state.changes import StateChange
from node.store import LedgerStore
from node.store import ledger as ledger_module
from node.store.codec import decode_account, decode_certificate, encode_account, encode_certificate
from tests.node.factories import (
    ALICE,
    BOB,
    CAROL,
    COMMITTEE,
    DOMAIN,
    FAR,
    USDF,
    Node,
    certify,
    key,
    transfer,
    withdrawal,
)
from wallet.merkle import hash_leaf, verify_consistency, verify_inclusion
from wallet.types import Amount, Hash32


def scenario() -> list[StateChange]:
    return [
        ContractReceiveDeposit(1, ALICE.address, USDF, Amount(100)),
        ContractReceiveDeposit(2, BOB.address, FAR, Amount(7)),
        ReceiveCertificate(certify(transfer(ALICE, BOB, 30, 0))),
        ReceiveCertificate(certify(transfer(ALICE, CAROL, 5, 2))),  # pending
        ReceiveCertificate(certify(withdrawal(ALICE, 10, 1))),  # fills the gap
        ReceiveCertificate(certify(transfer(BOB, ALICE, 3, 0, token=FAR))),
        ContractReceiveDeposit(3, CAROL.address, USDF, Amount(1)),
    ]


def run(view: MemoryLedger | LedgerStore, changes: list[StateChange]) -> None:
    context = Node().context
    for change in changes:
        view.commit(transition(view, context, change))


def open_store(path: Path) -> LedgerStore:
    store = LedgerStore(path, DOMAIN, sync=False)
    store.put_committee(COMMITTEE)
    return store


def test_store_matches_the_reference_and_survives_a_restart(tmp_path: Path) -> None:
    reference = MemoryLedger([COMMITTEE])
    run(reference, scenario())
    store = open_store(tmp_path)
    run(store, scenario())
    store.close()

    store = LedgerStore(tmp_path, DOMAIN)  # reopened: nothing is replayed
    for who in (ALICE, BOB, CAROL):
        assert store.account(who.address) == reference.account(who.address)
    assert store.next_deposit_id() == reference.next_deposit_id() == 4
    assert store.log_size() == len(reference.log) == 7
    assert store.committee(COMMITTEE.epoch) == COMMITTEE
    for (owner, sequence), digest in reference.applied_digests.items():
        assert store.applied(owner, sequence) == digest
        index, certificate = store.certificate(digest)  # type: ignore[misc]
        assert reference.log[index].certificate == certificate
    leaves = [e.leaf for e in reference.log]
    assert [store.leaf(i) for i in range(len(leaves))] == leaves
    # Proofs from the store verify against its root with the wallet's verifier.
    root = store.root()
    for i, leaf in enumerate(leaves):
        verify_inclusion(
            hash_leaf(leaf), i, len(leaves), store.inclusion_proof(i, len(leaves)), root
        )
    store.close()


def test_old_roots_stay_consistent(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    changes = scenario()
    roots = []
    context = Node().context
    for change in changes:
        store.commit(transition(store, context, change))
        roots.append((store.log_size(), store.root()))
    size2, root2 = roots[-1]
    for size1, root1 in roots:
        if 0 < size1 <= size2:
            verify_consistency(size1, size2, store.consistency_proof(size1, size2), root1, root2)
    store.close()


def test_a_second_process_cannot_open_the_data_dir(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    with pytest.raises(DataDirLockedError, match="in use by another node process"):
        LedgerStore(tmp_path, DOMAIN)
    store.close()


def test_refusals_write_nothing(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    run(store, scenario())
    before = {bytes(k): bytes(v) for k, v in store._db}
    run(
        store,
        [
            ReceiveCertificate(certify(transfer(ALICE, BOB, 30, 0))),  # duplicate
            ContractReceiveDeposit(9, ALICE.address, USDF, Amount(1)),
        ],
    )  # gap
    assert {bytes(k): bytes(v) for k, v in store._db} == before
    store.close()


@settings(max_examples=60, deadline=None)
@given(
    amount=st.integers(1, 2**256 - 1),
    sequence=st.integers(0, 2**64 - 1),
    balances=st.dictionaries(st.sampled_from([USDF, FAR]), st.integers(-(2**256) + 1, 2**256 - 1)),
    with_lock=st.booleans(),
)
def test_codec_round_trips(
    amount: int, sequence: int, balances: dict[bytes, int], with_lock: bool
) -> None:
    from dataclasses import replace

    from node.state.records import AccountRecord, Lock, frozen_balances
    from wallet.types import Epoch, Hash32, Sequence, Signature

    signed = transfer(amount=1)
    signed = replace(
        signed, order=replace(signed.order, amount=Amount(amount), sequence=Sequence(sequence))
    )
    cert = certify(signed)
    assert decode_certificate(encode_certificate(cert)) == cert
    lock = (
        Lock(Sequence(sequence), Hash32(b"\x05" * 32), signed, Epoch(3), Signature(b"\x06" * 65))
        if with_lock
        else None
    )
    account = AccountRecord(
        Sequence(sequence), frozen_balances({k: v for k, v in balances.items() if v}), lock
    )  # type: ignore[misc]
    assert decode_account(encode_account(account)) == account


def test_the_account_cache_is_bounded_and_follows_commits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ledger_module, "ACCOUNT_CACHE_SIZE", 2)
    store = open_store(tmp_path)
    payers = [key(f"payer {i}") for i in range(5)]
    run(
        store,
        [ContractReceiveDeposit(i + 1, p.address, USDF, Amount(7)) for i, p in enumerate(payers)],
    )
    assert [store.account(p.address).balance(USDF) for p in payers] == [7] * 5
    assert len(store._accounts) == 2
    run(store, [ContractReceiveDeposit(6, payers[4].address, USDF, Amount(1))])
    assert store.account(payers[4].address).balance(USDF) == 8  # the cached one was replaced
    store.close()
    reopened = open_store(tmp_path)
    assert [reopened.account(p.address).balance(USDF) for p in payers] == [7, 7, 7, 7, 8]
    reopened.close()


def test_the_last_deposits_block_is_kept_as_the_watchers_anchor(tmp_path: Path) -> None:
    """The block (number and hash) of the last credited deposit survives a restart, so a
    restarted deposit watcher still checks that block (node.chain.deposits, "anchor")."""
    store = open_store(tmp_path)
    assert store.deposit_anchor() is None and store.deposit_block() is None
    run(store, [ContractReceiveDeposit(1, ALICE.address, USDF, Amount(5), block_number=7)])
    assert store.deposit_block() == 7
    assert store.deposit_anchor() is None  # no hash given: nothing to check against
    block_hash = Hash32(bytes(range(32)))
    run(
        store,
        [
            ContractReceiveDeposit(
                2, BOB.address, USDF, Amount(6), block_number=9, block_hash=block_hash
            )
        ],
    )
    store.close()
    reopened = open_store(tmp_path)
    assert reopened.deposit_anchor() == (2, 9, block_hash)
    assert reopened.deposit_block() == 9
    # A refused deposit (a gap) moves neither.
    run(reopened, [ContractReceiveDeposit(5, BOB.address, USDF, Amount(1), block_number=20)])
    assert reopened.deposit_anchor() == (2, 9, block_hash)
    reopened.close()
