"""What the node learns from the Vault after start, in the state machine: a new epoch's
committee and current epoch, a token (de)registered; the deposit block kept with the
cursor."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest

from node.state import (
    ActionSubmitOrder,
    Committee,
    ContractReceiveDeposit,
    ContractReceiveNewEpoch,
    ContractReceiveTokenRegistration,
    EventCertificateApplied,
    EventCommitteeStored,
    EventDepositCredited,
    EventEpochChanged,
    EventRefused,
    EventTokensChanged,
    MemoryLedger,
    NodeContext,
    ReceiveCertificate,
    RefusalCode,
    SendVote,
    Transition,
    transition,
)
from node.state.changes import StateChange
from node.store import LedgerStore
from node.writer import Writer
from tests.node.factories import (
    ALICE,
    BOB,
    COMMITTEE,
    DOMAIN,
    MEMBERS,
    USDF,
    certify,
    key,
    transfer,
)
from wallet.signing import PrivateKey, sign_order
from wallet.types import Address, Amount, Epoch, Sequence, Withdrawal

NEW_TOKEN = Address(b"\x77" * 20)
OUTSIDER = key("member 4")
#: Epoch 2: member 0 leaves, a new member joins; quorum 3 of 4.
EPOCH_2 = Committee(Epoch(2), (*(m.address for m in MEMBERS[1:]), OUTSIDER.address), 3)
VOTERS_2 = [*MEMBERS[1:3], OUTSIDER]


@dataclass
class Node:
    """A simulated node whose context moves as its transitions say (as the writer does)."""

    me: PrivateKey = field(default_factory=lambda: MEMBERS[1])
    ledger: MemoryLedger = field(default_factory=lambda: MemoryLedger([COMMITTEE]))
    context: NodeContext = field(init=False)

    def __post_init__(self) -> None:
        self.context = NodeContext(
            domain=DOMAIN,
            node=self.me.address,
            tokens=frozenset({USDF}),
            current_epoch=Epoch(1),
            sign=self.me.unsafe_sign_digest,
        )

    def step(self, change: StateChange) -> Transition:
        t = transition(self.ledger, self.context, change)
        self.ledger.commit(t)
        if t.context is not None:
            self.context = t.context
        return t

    def fund(self, amount: int = 100, token: Address = USDF) -> None:
        deposit_id = self.ledger.next_deposit_id()
        self.step(ContractReceiveDeposit(deposit_id, ALICE.address, token, Amount(amount)))


def refusal(t: Transition) -> RefusalCode:
    assert t.writes_nothing and t.context is None
    (event,) = t.events
    assert isinstance(event, EventRefused)
    return event.code


def vote_of(t: Transition) -> SendVote:
    (event,) = t.events
    assert isinstance(event, SendVote)
    return event


# ---------------------------------------------------------------- epochs


def test_a_new_epoch_stores_its_committee_and_moves_the_votes_to_it() -> None:
    node = Node()
    node.fund()
    pay = transfer(ALICE, BOB, 10, 0)
    early = certify(pay, VOTERS_2, Epoch(2))
    assert refusal(node.step(ReceiveCertificate(early))) is RefusalCode.UNKNOWN_EPOCH

    t = node.step(ContractReceiveNewEpoch(EPOCH_2))
    assert t.committees == (EPOCH_2,) and not t.log
    assert t.events == (EventCommitteeStored(Epoch(2)), EventEpochChanged(Epoch(2), True))
    assert t.context is not None and t.context.current_epoch == 2 and t.context.member
    assert node.ledger.committee(Epoch(2)) == EPOCH_2

    assert vote_of(node.step(ActionSubmitOrder(pay))).vote.epoch == 2
    applied = node.step(ReceiveCertificate(early))
    assert isinstance(applied.events[0], EventCertificateApplied)
    assert node.ledger.account(BOB.address).balance(USDF) == 10


def test_certificates_of_the_retired_epoch_still_apply() -> None:
    node = Node()
    node.fund()
    node.step(ContractReceiveNewEpoch(EPOCH_2))
    old = certify(transfer(ALICE, BOB, 10, 0), MEMBERS[:3], Epoch(1))
    assert isinstance(node.step(ReceiveCertificate(old)).events[0], EventCertificateApplied)


def test_the_new_committees_rules_apply_to_its_certificates() -> None:
    node = Node()
    node.fund()
    node.step(ContractReceiveNewEpoch(EPOCH_2))
    pay = transfer(ALICE, BOB, 10, 0)
    # Member 0 left in epoch 2: its vote no longer counts there.
    stale = certify(pay, MEMBERS[:3], Epoch(2))
    assert refusal(node.step(ReceiveCertificate(stale))) is RefusalCode.NOT_A_MEMBER


def test_the_same_epoch_again_changes_nothing_and_an_older_one_never_moves_back() -> None:
    node = Node()
    node.step(ContractReceiveNewEpoch(EPOCH_2))
    again = node.step(ContractReceiveNewEpoch(EPOCH_2))
    assert again.writes_nothing and again.context is None and again.events == ()
    # The committee of epoch 1 is known; an unknown older one is stored, epoch stays 2.
    assert node.step(ContractReceiveNewEpoch(COMMITTEE)).writes_nothing
    node.ledger.committees.pop(Epoch(1))
    t = node.step(ContractReceiveNewEpoch(COMMITTEE))
    assert t.committees == (COMMITTEE,) and t.context is None
    assert node.context.current_epoch == 2


def test_another_committee_for_a_stored_epoch_is_refused() -> None:
    node = Node()
    forged = replace(COMMITTEE, quorum=4)
    assert refusal(node.step(ContractReceiveNewEpoch(forged))) is RefusalCode.COMMITTEE_CONFLICT
    assert node.ledger.committee(Epoch(1)) == COMMITTEE


def test_epochs_that_jump_move_to_the_latest() -> None:
    node = Node()
    epoch_3 = replace(EPOCH_2, epoch=Epoch(3))
    node.step(ContractReceiveNewEpoch(EPOCH_2))
    node.step(ContractReceiveNewEpoch(epoch_3))
    assert node.context.current_epoch == 3
    assert node.ledger.committee(Epoch(2)) == EPOCH_2


def test_a_node_left_out_stops_voting_but_applies_certificates() -> None:
    node = Node(me=MEMBERS[0])
    node.fund()
    t = node.step(ContractReceiveNewEpoch(EPOCH_2))
    assert EventEpochChanged(Epoch(2), False) in t.events
    assert not node.context.member
    pay = transfer(ALICE, BOB, 10, 0)
    assert refusal(node.step(ActionSubmitOrder(pay))) is RefusalCode.NOT_VOTING
    applied = node.step(ReceiveCertificate(certify(pay, VOTERS_2, Epoch(2))))
    assert isinstance(applied.events[0], EventCertificateApplied)
    # Back in a later committee: it votes again.
    epoch_3 = Committee(Epoch(3), tuple(m.address for m in MEMBERS), 3)
    node.step(ContractReceiveNewEpoch(epoch_3))
    vote = vote_of(node.step(ActionSubmitOrder(transfer(ALICE, BOB, 10, 1))))
    assert node.context.member and vote.vote.epoch == 3


def test_a_lock_of_an_older_epoch_is_voted_again_in_the_current_one() -> None:
    node = Node()
    node.fund()
    pay = transfer(ALICE, BOB, 10, 0)
    first = vote_of(node.step(ActionSubmitOrder(pay))).vote
    assert first.epoch == 1
    node.step(ContractReceiveNewEpoch(EPOCH_2))
    t = node.step(ActionSubmitOrder(pay))
    second = vote_of(t).vote
    assert second.epoch == 2 and second.order == first.order
    lock = node.ledger.account(ALICE.address).lock
    assert lock is not None and lock.epoch == 2 and lock.order_digest == first.order
    # Asked again in epoch 2: the same vote, nothing written.
    again = node.step(ActionSubmitOrder(pay))
    assert vote_of(again).vote == second and again.writes_nothing
    # Still one order per sequence, across epochs.
    other = transfer(ALICE, BOB, 11, 0)
    assert refusal(node.step(ActionSubmitOrder(other))) is RefusalCode.CONFLICTING_ORDER


# ---------------------------------------------------------------- tokens


def withdrawal_of(token: Address, amount: int = 5, sequence: int = 0) -> ActionSubmitOrder:
    order = Withdrawal(ALICE.address, ALICE.address, token, Amount(amount), Sequence(sequence))
    return ActionSubmitOrder(sign_order(ALICE, DOMAIN, order))


def test_a_registered_token_is_voted_on() -> None:
    node = Node()
    assert (
        refusal(node.step(ActionSubmitOrder(transfer(token=NEW_TOKEN))))
        is RefusalCode.UNKNOWN_TOKEN
    )
    t = node.step(ContractReceiveTokenRegistration(NEW_TOKEN, True))
    assert t.writes_nothing and t.events == (EventTokensChanged(NEW_TOKEN, True),)
    assert node.context.tokens == {USDF, NEW_TOKEN}
    node.fund(50, NEW_TOKEN)
    vote_of(node.step(ActionSubmitOrder(transfer(amount=20, token=NEW_TOKEN))))
    # Registering it again (a replayed log) changes nothing.
    again = node.step(ContractReceiveTokenRegistration(NEW_TOKEN, True))
    assert again.context is None and again.events == ()


def test_a_deregistered_token_can_only_leave() -> None:
    node = Node()
    node.fund(100, USDF)
    pay = transfer(ALICE, BOB, 10, 0)
    certificate = certify(pay)  # formed before the deregistration
    t = node.step(ContractReceiveTokenRegistration(USDF, False))
    assert t.events == (EventTokensChanged(USDF, False),)
    assert node.context.tokens == frozenset() and node.context.withdraw_only == {USDF}

    assert refusal(node.step(ActionSubmitOrder(pay))) is RefusalCode.UNKNOWN_TOKEN
    assert isinstance(node.step(ReceiveCertificate(certificate)).events[0], EventCertificateApplied)
    assert vote_of(node.step(withdrawal_of(USDF, 5, 1))).vote.epoch == 1
    # A deposit made before the deregistration is still credited.
    late = node.step(ContractReceiveDeposit(2, BOB.address, USDF, Amount(3)))
    assert isinstance(late.events[0], EventDepositCredited)

    node.step(ContractReceiveTokenRegistration(USDF, True))
    assert node.context.tokens == {USDF} and node.context.withdraw_only == frozenset()


def test_a_never_registered_token_cannot_be_withdrawn() -> None:
    node = Node()
    assert refusal(node.step(withdrawal_of(NEW_TOKEN))) is RefusalCode.UNKNOWN_TOKEN


# ---------------------------------------------------------------- deposit block


def test_the_block_of_the_last_credited_deposit_is_kept_with_the_cursor() -> None:
    node = Node()
    t = node.step(ContractReceiveDeposit(1, ALICE.address, USDF, Amount(5), block_number=42))
    assert t.deposit_block == 42 and node.ledger.deposit_block == 42
    duplicate = node.step(ContractReceiveDeposit(1, ALICE.address, USDF, Amount(5), 50))
    assert duplicate.writes_nothing and node.ledger.deposit_block == 42
    # The block is not part of a deposit's identity.
    assert ContractReceiveDeposit(1, ALICE.address, USDF, Amount(5), 1) == (
        ContractReceiveDeposit(1, ALICE.address, USDF, Amount(5), 2)
    )


# ---------------------------------------------------------------- through the writer


@pytest.mark.asyncio
async def test_the_writer_orders_a_new_epoch_with_the_changes_of_its_batch(
    tmp_path: Path,
) -> None:
    store = LedgerStore(tmp_path, DOMAIN, sync=False)
    store.put_committee(COMMITTEE)
    node = Node()
    writer = Writer(store, node.context)
    pay = transfer(ALICE, BOB, 10, 0)
    changes: list[StateChange] = [
        ContractReceiveDeposit(1, ALICE.address, USDF, Amount(100), block_number=7),
        ReceiveCertificate(certify(pay, VOTERS_2, Epoch(2))),  # before: unknown epoch
        ContractReceiveNewEpoch(EPOCH_2),
        ActionSubmitOrder(transfer(ALICE, BOB, 10, 0)),  # after: an epoch-2 vote
        ReceiveCertificate(certify(pay, VOTERS_2, Epoch(2))),  # after: applied
    ]
    async with asyncio.TaskGroup() as group:
        runner = group.create_task(writer.run())
        results = await asyncio.gather(*(writer.apply(c) for c in changes))
        runner.cancel()
    assert refusal(results[1]) is RefusalCode.UNKNOWN_EPOCH
    assert vote_of(results[3]).vote.epoch == 2
    assert isinstance(results[4].events[0], EventCertificateApplied)
    assert writer.context.current_epoch == 2
    assert store.committee(Epoch(2)) == EPOCH_2
    assert store.deposit_block() == 7
    store.close()
    reopened = LedgerStore(tmp_path, DOMAIN, sync=False)
    assert reopened.committee(Epoch(2)) == EPOCH_2 and reopened.deposit_block() == 7
    reopened.close()
