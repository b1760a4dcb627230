"""Phase 2 of the state machine: certificates applied exactly once, in order."""

from __future__ import annotations

from dataclasses import replace

from node.state import (
    ActionSubmitOrder,
    ContractReceiveDeposit,
    EventCertificateApplied,
    EventCertificateDuplicate,
    EventCertificatePending,
    EventRefused,
    ReceiveCertificate,
    RefusalCode,
    RequestMissingCertificates,
    SendCertificateToPeers,
)
from node.state.entries import order_leaf
from tests.node.factories import (
    ALICE,
    BOB,
    CAROL,
    DOMAIN,
    MEMBERS,
    USDF,
    Node,
    certify,
    funded,
    key,
    only_refusal,
    transfer,
    withdrawal,
)
from wallet.eip712 import order_digest
from wallet.types import Amount, Epoch, Signature


def refused(node: Node, item: object) -> EventRefused:
    return only_refusal(node, ReceiveCertificate(item))  # type: ignore[arg-type]


def test_certificate_moves_the_money_and_logs_it() -> None:
    node = funded()
    signed = transfer(amount=30)
    node.step(ActionSubmitOrder(signed))
    cert = certify(signed)
    t = node.step(ReceiveCertificate(cert))
    digest = order_digest(DOMAIN, signed.order)
    assert t.events == (
        EventCertificateApplied(digest, ALICE.address, signed.order.sequence, 1),
        SendCertificateToPeers(cert, digest),
    )
    assert node.balance(ALICE) == 70 and node.balance(BOB) == 30
    alice = node.ledger.account(ALICE.address)
    assert alice.next_sequence == 1 and alice.lock is None
    assert node.ledger.applied(ALICE.address, signed.order.sequence) == digest
    assert node.ledger.log[1].leaf == order_leaf(signed.order, digest)
    assert node.ledger.log[1].certificate == cert


def test_certificate_is_applied_once() -> None:
    node = funded()
    cert = certify(transfer(amount=30))
    node.step(ReceiveCertificate(cert))
    again = node.step(ReceiveCertificate(cert))
    assert again.writes_nothing
    assert again.events == (EventCertificateDuplicate(order_digest(DOMAIN, cert.order)),)
    assert node.balance(BOB) == 30 and node.ledger.log_size() == 2


def test_certificate_applies_whatever_the_local_balance() -> None:
    node = Node()  # never saw alice's deposit
    node.step(ReceiveCertificate(certify(transfer(amount=30))))
    assert node.balance(ALICE) == -30 and node.balance(BOB) == 30
    node.step(ContractReceiveDeposit(1, ALICE.address, USDF, Amount(100)))
    assert node.balance(ALICE) == 70


def test_certificate_overrides_this_nodes_lock_on_another_order() -> None:
    node = funded()
    node.step(ActionSubmitOrder(transfer(payee=BOB)))
    other = certify(transfer(payee=CAROL))  # the quorum formed without this node
    node.step(ReceiveCertificate(other))
    assert node.balance(CAROL) == 10 and node.ledger.account(ALICE.address).lock is None


def test_withdrawal_debits_and_credits_no_one() -> None:
    node = funded()
    node.step(ReceiveCertificate(certify(withdrawal(amount=40))))
    assert node.balance(ALICE) == 60
    assert sum(a.balance(USDF) for a in node.ledger.accounts.values()) == 60


def test_certificate_ahead_waits_and_asks_for_the_missing() -> None:
    node = funded()
    c0, c1, c2 = (certify(transfer(amount=1, sequence=s)) for s in range(3))
    t = node.step(ReceiveCertificate(c2))
    assert t.events == (
        EventCertificatePending(order_digest(DOMAIN, c2.order), ALICE.address, c2.order.sequence),
        RequestMissingCertificates(ALICE.address, c0.order.sequence, c1.order.sequence),
    )
    assert node.balance(BOB) == 0
    assert node.step(ReceiveCertificate(c2)).events[0] == EventCertificateDuplicate(
        order_digest(DOMAIN, c2.order)
    )
    node.step(ReceiveCertificate(c1))  # still waiting for 0
    assert node.balance(BOB) == 0
    t = node.step(ReceiveCertificate(c0))
    applied = [e for e in t.events if isinstance(e, EventCertificateApplied)]
    assert [e.sequence for e in applied] == [0, 1, 2]
    assert [e.log_index for e in applied] == [1, 2, 3]
    assert node.balance(BOB) == 3 and node.ledger.pending_certificates == {}
    assert node.ledger.account(ALICE.address).next_sequence == 3


def test_invalid_certificates_are_refused() -> None:
    node = funded()
    signed = transfer()
    outsider = key("outsider")
    assert refused(node, certify(signed, MEMBERS[:2])).code is RefusalCode.INSUFFICIENT_QUORUM
    assert refused(node, certify(signed, [*MEMBERS[:2], outsider])).code is RefusalCode.NOT_A_MEMBER
    assert refused(node, certify(signed, epoch=Epoch(2))).code is RefusalCode.UNKNOWN_EPOCH
    good = certify(signed)
    doubled = replace(good, votes=(good.votes[0], good.votes[0], good.votes[1]))
    assert refused(node, doubled).code is RefusalCode.DUPLICATE_VOTER
    forged_vote = replace(good, votes=((good.votes[0][0], good.votes[1][1]), *good.votes[1:]))
    assert refused(node, forged_vote).code is RefusalCode.BAD_VOTE
    wrong_owner = replace(good, signed=replace(signed, signature=transfer(payer=BOB).signature))
    assert refused(node, wrong_owner).code is RefusalCode.BAD_SIGNATURE
    garbage = replace(good, signed=replace(signed, signature=Signature(b"\x00" * 65)))
    assert refused(node, garbage).code is RefusalCode.BAD_SIGNATURE
    assert node.balance(BOB) == 0 and node.ledger.log_size() == 1


def test_after_voting_only_what_this_node_did_not_check_is_verified() -> None:
    """A node that voted for the order skips the owner's signature it verified and its own
    vote; a certificate that carries other bytes in their place is still refused."""
    node = funded()  # MEMBERS[0]
    signed = transfer()
    node.step(ActionSubmitOrder(signed))
    good = certify(signed)
    mine = next(i for i, (signer, _) in enumerate(good.votes) if signer == MEMBERS[0].address)
    other = (mine + 1) % len(good.votes)
    votes = list(good.votes)
    votes[mine] = (votes[mine][0], good.votes[other][1])  # not the vote this node signed
    assert refused(node, replace(good, votes=tuple(votes))).code is RefusalCode.BAD_VOTE
    not_owners = replace(good, signed=replace(signed, signature=transfer(payer=BOB).signature))
    assert refused(node, not_owners).code is RefusalCode.BAD_SIGNATURE
    assert node.ledger.account(ALICE.address).lock is not None  # the refusals changed nothing
    node.step(ReceiveCertificate(good))
    assert node.balance(BOB) == 10


def test_second_certificate_for_one_sequence_is_evidence_not_money() -> None:
    """Only possible if more than f members equivocate; the first one stands."""
    node = funded()
    first = certify(transfer(payee=BOB))
    second = certify(transfer(payee=CAROL))
    node.step(ReceiveCertificate(first))
    event = refused(node, second)
    assert event.code is RefusalCode.CONFLICTING_CERTIFICATE
    assert event.conflicting == order_digest(DOMAIN, first.order)
    assert node.balance(CAROL) == 0
    # Likewise while the first is pending.
    node2 = funded()
    node2.step(ReceiveCertificate(certify(transfer(payee=BOB, sequence=1))))
    event = refused(node2, certify(transfer(payee=CAROL, sequence=1)))
    assert event.code is RefusalCode.CONFLICTING_CERTIFICATE


def test_transfer_to_oneself_keeps_the_balance() -> None:
    node = funded()
    node.step(ReceiveCertificate(certify(transfer(payee=ALICE, amount=40))))
    assert node.balance(ALICE) == 100
    assert node.ledger.account(ALICE.address).next_sequence == 1
