"""Phase 2: applying a certificate, exactly once, in sequence order."""

from __future__ import annotations

from dataclasses import replace

from node.state.entries import order_leaf
from node.state.events import (
    EventCertificateApplied,
    EventCertificateDuplicate,
    EventCertificatePending,
    EventRefused,
    RefusalCode,
    RequestMissingCertificates,
    SendCertificateToPeers,
)
from node.state.records import LogEntry, NodeContext
from node.state.transition import Scratch
from wallet.eip712 import order_digest, vote_digest
from wallet.errors import InvalidSignature
from wallet.signing import recover
from wallet.types import Certificate, Hash32, Sequence, Transfer


def handle_certificate(scratch: Scratch, context: NodeContext, certificate: Certificate) -> None:
    order = certificate.order
    owner, sequence = order.owner, order.sequence
    digest = order_digest(context.domain, order)

    # Cheap checks first: a certificate seen before is not verified again.
    applied = scratch.applied_digest(owner, sequence)
    if applied == digest:
        scratch.events.append(EventCertificateDuplicate(digest))
        return
    pending = scratch.pending(owner, sequence)
    if pending is not None and order_digest(context.domain, pending.order) == digest:
        scratch.events.append(EventCertificateDuplicate(digest))
        return

    refusal = _verify(scratch, context, certificate, digest)
    if refusal is not None:
        scratch.events.append(refusal)
        return
    existing = applied if applied is not None else _pending_digest(context, pending)
    if existing is not None:
        # Two valid certificates for one (account, sequence): more than f members of an
        # epoch equivocated. Keep the first; report the second as evidence.
        scratch.events.append(
            EventRefused(
                RefusalCode.CONFLICTING_CERTIFICATE,
                f"another certificate is applied or pending at sequence {sequence}",
                existing,
            )
        )
        return

    next_sequence = scratch.account(owner).next_sequence
    if sequence < next_sequence:  # unreachable while the records are consistent
        scratch.events.append(
            EventRefused(RefusalCode.SEQUENCE_USED, f"sequence {sequence} is already applied")
        )
        return
    if sequence > next_sequence:
        scratch.pending_added[(owner, sequence)] = certificate
        scratch.events.append(EventCertificatePending(digest, owner, sequence))
        scratch.events.append(
            RequestMissingCertificates(owner, next_sequence, Sequence(sequence - 1))
        )
        return
    _apply(scratch, certificate, digest)
    # Certificates that were waiting for this one follow, in order.
    following = Sequence(sequence + 1)
    while (waiting := scratch.pending(owner, following)) is not None:
        scratch.pending_removed.add((owner, following))
        scratch.pending_added.pop((owner, following), None)
        _apply(scratch, waiting, order_digest(context.domain, waiting.order))
        following = Sequence(following + 1)


def _pending_digest(context: NodeContext, pending: Certificate | None) -> Hash32 | None:
    return None if pending is None else order_digest(context.domain, pending.order)


def _verify(
    scratch: Scratch, context: NodeContext, certificate: Certificate, digest: Hash32
) -> EventRefused | None:
    """The refusal for an invalid certificate, or None when it is valid."""
    committee = scratch.committee(certificate.epoch)
    if committee is None:
        return EventRefused(RefusalCode.UNKNOWN_EPOCH, f"epoch {certificate.epoch} is unknown")
    order = certificate.order
    if order.amount <= 0:
        return EventRefused(RefusalCode.ZERO_AMOUNT, "the amount must be positive")
    signers = [signer for signer, _ in certificate.votes]
    if len(set(signers)) != len(signers):
        return EventRefused(RefusalCode.DUPLICATE_VOTER, "a member voted twice")
    members = set(committee.members)
    outsiders = [s for s in signers if s not in members]
    if outsiders:
        return EventRefused(
            RefusalCode.NOT_A_MEMBER,
            f"0x{outsiders[0].hex()} is not a member of epoch {certificate.epoch}",
        )
    if len(signers) < committee.quorum:
        return EventRefused(
            RefusalCode.INSUFFICIENT_QUORUM,
            f"{len(signers)} votes, the quorum of epoch {certificate.epoch} is {committee.quorum}",
        )
    # What this node checked or made when it voted for this order needs no second check:
    # the owner's signature it verified, and its own vote (the same bytes, compared).
    lock = scratch.account(order.owner).lock
    if lock is not None and (lock.sequence, lock.order_digest) != (order.sequence, digest):
        lock = None  # a lock on another order says nothing about this one
    try:
        owner_checked = lock is not None and lock.signed.signature == certificate.signed.signature
        if not owner_checked and recover(digest, certificate.signed.signature) != order.owner:
            return EventRefused(RefusalCode.BAD_SIGNATURE, "the signature is not the owner's")
        vote = vote_digest(context.domain, digest, certificate.epoch)
        for signer, signature in certificate.votes:
            if (
                lock is not None
                and signer == context.node
                and (lock.epoch, lock.vote_signature) == (certificate.epoch, signature)
            ):
                continue
            if recover(vote, signature) != signer:
                return EventRefused(
                    RefusalCode.BAD_VOTE, f"the vote of 0x{signer.hex()} is invalid"
                )
    except InvalidSignature as exc:
        return EventRefused(RefusalCode.BAD_SIGNATURE, f"a signature is malformed: {exc}")
    return None


def _apply(scratch: Scratch, certificate: Certificate, digest: Hash32) -> None:
    """Debit the owner, advance its sequence, release its lock, credit the payee (a
    withdrawal leaves the ledger), mark the certificate applied and log it."""
    order = certificate.order
    owner = order.owner
    account = scratch.account(owner)
    account = replace(
        account.with_balance(order.token, -order.amount),
        next_sequence=Sequence(order.sequence + 1),
        lock=None,
    )
    scratch.accounts[owner] = account
    if isinstance(order, Transfer):
        scratch.accounts[order.payee] = scratch.account(order.payee).with_balance(
            order.token, order.amount
        )
    scratch.applied[(owner, order.sequence)] = digest
    index = scratch.log_index()
    scratch.log.append(LogEntry(order_leaf(order, digest), certificate))
    scratch.events.append(EventCertificateApplied(digest, owner, order.sequence, index))
    scratch.events.append(SendCertificateToPeers(certificate, digest))
