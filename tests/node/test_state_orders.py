"""Phase 1 of the state machine: votes and the per-(account, sequence) lock."""

from __future__ import annotations

from dataclasses import replace

import pytest

from node.state import (
    ActionSubmitOrder,
    EventRefused,
    RefusalCode,
    SendVote,
)
from tests.node.factories import (
    ALICE,
    BOB,
    CAROL,
    DOMAIN,
    EPOCH,
    FAR,
    USDF,
    Node,
    funded,
    only_refusal,
    transfer,
    withdrawal,
)
from wallet.eip712 import order_digest, vote_digest
from wallet.signing import recover, sign_order
from wallet.types import Address, Amount, Signature, Withdrawal


def refusal(node: Node, item: object) -> EventRefused:
    return only_refusal(node, ActionSubmitOrder(item))  # type: ignore[arg-type]


def test_vote_signs_the_order_and_locks_the_sequence() -> None:
    node = funded()
    signed = transfer(amount=10)
    t = node.step(ActionSubmitOrder(signed))
    (event,) = t.events
    assert isinstance(event, SendVote)
    digest = order_digest(DOMAIN, signed.order)
    assert event.vote.order == digest and event.vote.epoch == EPOCH
    assert event.vote.signer == node.me.address
    assert recover(vote_digest(DOMAIN, digest, EPOCH), event.vote.signature) == node.me.address
    lock = node.ledger.account(ALICE.address).lock
    assert lock is not None and lock.order_digest == digest and lock.sequence == 0
    # Voting moves no money: that happens on the certificate.
    assert node.balance(ALICE) == 100 and node.balance(BOB) == 0


def test_same_order_again_gets_the_same_vote_and_writes_nothing() -> None:
    node = funded()
    signed = transfer()
    first = node.step(ActionSubmitOrder(signed)).events[0]
    again = node.step(ActionSubmitOrder(signed))
    assert again.events == (first,)
    assert again.writes_nothing


def test_conflicting_order_is_refused_with_the_locked_digest() -> None:
    node = funded()
    node.step(ActionSubmitOrder(transfer(payee=BOB)))
    locked = order_digest(DOMAIN, transfer(payee=BOB).order)
    event = refusal(node, transfer(payee=CAROL))
    assert event.code is RefusalCode.CONFLICTING_ORDER
    assert event.conflicting == locked
    # A withdrawal at the same sequence conflicts too: they share the sequence.
    assert refusal(node, withdrawal()).code is RefusalCode.CONFLICTING_ORDER


@pytest.mark.parametrize(
    ("make", "code"),
    [
        (lambda: transfer(sequence=1), RefusalCode.SEQUENCE_AHEAD),
        (lambda: transfer(amount=101), RefusalCode.INSUFFICIENT_BALANCE),
        (lambda: transfer(amount=0), RefusalCode.ZERO_AMOUNT),
        (lambda: transfer(token=Address(b"\x07" * 20)), RefusalCode.UNKNOWN_TOKEN),
        (lambda: transfer(token=FAR), RefusalCode.INSUFFICIENT_BALANCE),
    ],
)
def test_refusals(make: object, code: RefusalCode) -> None:
    assert refusal(funded(), make()).code is code  # type: ignore[operator]


def test_signature_must_be_the_owners() -> None:
    node = funded()
    signed = transfer()
    by_bob = replace(signed, signature=BOB.unsafe_sign_digest(order_digest(DOMAIN, signed.order)))
    assert refusal(node, by_bob).code is RefusalCode.BAD_SIGNATURE
    garbage = replace(signed, signature=Signature(b"\x01" * 65))
    assert refusal(node, garbage).code is RefusalCode.BAD_SIGNATURE
    other_domain = sign_order(ALICE, replace(DOMAIN, chain_id=1), signed.order)
    assert refusal(node, other_domain).code is RefusalCode.BAD_SIGNATURE


def test_withdrawal_to_the_zero_address_is_refused() -> None:
    node = funded()
    order = Withdrawal(
        ALICE.address, Address(bytes(20)), USDF, Amount(5), withdrawal().order.sequence
    )
    assert refusal(node, sign_order(ALICE, DOMAIN, order)).code is RefusalCode.ZERO_RECIPIENT


def test_used_sequence_is_refused() -> None:
    from node.state import ReceiveCertificate
    from tests.node.factories import certify

    node = funded()
    node.step(ReceiveCertificate(certify(transfer(sequence=0))))
    assert refusal(node, transfer(sequence=0, amount=3)).code is RefusalCode.SEQUENCE_USED
    assert isinstance(node.step(ActionSubmitOrder(transfer(sequence=1))).events[0], SendVote)
