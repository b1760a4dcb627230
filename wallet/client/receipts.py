"""Receipts and their offline verification.

A :class:`Receipt` proves that a payment is final and that one committee member's log
holds it: the certificate (the owner's signature and a quorum of votes), the index of
its entry in that node's log, an RFC 9162 inclusion proof, and the node's signed
checkpoint (tree head) the proof leads to. :func:`verify_receipt` checks all of it with
nothing but the committee(s) and the EIP-712 domain: no network.

Which node's checkpoint: the one whose log the index and proof are about, named in the
receipt (``node``). Log indices are per node (every node orders its log itself), so the
checkpoint must be signed by exactly that node, and that node must be a member of a known
committee. The certificate itself may be of another epoch than the node's membership
(a node of epoch 2 logs certificates of epoch 1).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final, TypedDict, assert_never

from wallet import wire
from wallet.client.network import Committee, committees_by_epoch
from wallet.codec import address_hex, hash_hex, parse_address, parse_hash32
from wallet.eip712 import order_digest, vote_digest
from wallet.errors import EncodingError, InvalidReceipt
from wallet.merkle import MerkleProofError, hash_leaf, verify_inclusion
from wallet.signing import verify, verify_checkpoint, verify_order
from wallet.types import (
    Address,
    Certificate,
    Checkpoint,
    Domain,
    Epoch,
    Hash32,
    Order,
    Signature,
    Transfer,
    Withdrawal,
)

#: Leaf kinds of the log (docs/protocol.md "Log entries").
TRANSFER_LEAF: Final = b"\x01"
WITHDRAWAL_LEAF: Final = b"\x02"


def log_leaf(domain: Domain, order: Order) -> bytes:
    """The log entry's leaf bytes of an applied order: kind ‖ its EIP-712 digest."""
    if isinstance(order, Transfer):
        return TRANSFER_LEAF + order_digest(domain, order)
    if isinstance(order, Withdrawal):
        return WITHDRAWAL_LEAF + order_digest(domain, order)
    assert_never(order)


def verify_certificate(
    certificate: Certificate,
    committees: Committee | Iterable[Committee] | Mapping[Epoch, Committee],
    domain: Domain,
) -> None:
    """Checks that ``certificate`` is final: its epoch's committee is known, the owner's
    signature is valid, and at least the quorum of distinct members signed
    ``Vote{digest, epoch}``. Raises :class:`InvalidReceipt` saying what is wrong."""
    known = committees if isinstance(committees, Mapping) else committees_by_epoch(committees)
    committee = known.get(certificate.epoch)
    if committee is None:
        raise InvalidReceipt(f"no committee known for epoch {certificate.epoch}")
    if not verify_order(domain, certificate.signed):
        raise InvalidReceipt("the owner's signature of the order is not valid")
    digest = order_digest(domain, certificate.order)
    members = set(committee.members)
    voters: set[Address] = set()
    for signer, signature in certificate.votes:
        if signer not in members:
            raise InvalidReceipt(f"voter {address_hex(signer)} is not a member")
        if signer in voters:
            raise InvalidReceipt(f"member {address_hex(signer)} voted twice")
        if not verify(vote_digest(domain, digest, certificate.epoch), signature, signer):
            raise InvalidReceipt(f"the vote of {address_hex(signer)} is not valid")
        voters.add(signer)
    if len(voters) < committee.quorum:
        raise InvalidReceipt(f"{len(voters)} votes, the quorum is {committee.quorum}")


@dataclass(frozen=True, slots=True)
class Receipt:
    """A final payment and the proof that node ``node`` logged it at ``log_index``: an
    inclusion ``proof`` into the tree of ``checkpoint`` (signed by ``node``:
    ``checkpoint_signature``)."""

    certificate: Certificate
    node: Address
    log_index: int
    proof: tuple[Hash32, ...]
    checkpoint: Checkpoint
    checkpoint_signature: Signature


def verify_receipt(
    receipt: Receipt,
    committees: Committee | Iterable[Committee] | Mapping[Epoch, Committee],
    domain: Domain,
) -> None:
    """Checks a receipt offline; returns None or raises :class:`InvalidReceipt`.

    1. the certificate (:func:`verify_certificate`);
    2. the checkpoint is the receipt's node's, that node is a member of one of
       ``committees``, and its signature is valid;
    3. the inclusion proof leads from the order's log leaf at ``log_index`` to the
       checkpoint's root (which also means ``log_index < tree_size``).
    """
    known = committees if isinstance(committees, Mapping) else committees_by_epoch(committees)
    verify_certificate(receipt.certificate, known, domain)
    checkpoint = receipt.checkpoint
    if checkpoint.node != receipt.node:
        raise InvalidReceipt("the checkpoint is another node's")
    if not any(receipt.node in c.members for c in known.values()):
        raise InvalidReceipt(f"node {address_hex(receipt.node)} is not a committee member")
    if not verify_checkpoint(domain, checkpoint, receipt.checkpoint_signature):
        raise InvalidReceipt("the checkpoint's signature is not the node's")
    leaf = hash_leaf(log_leaf(domain, receipt.certificate.order))
    try:
        verify_inclusion(
            leaf, receipt.log_index, checkpoint.tree_size, receipt.proof, checkpoint.root
        )
    except MerkleProofError as exc:
        raise InvalidReceipt(f"the inclusion proof does not verify ({exc})") from None


# ---------------------------------------------------------------- JSON (to keep or send)


class ReceiptJSON(TypedDict):
    certificate: wire.CertificateJSON
    node: str
    log_index: int
    proof: list[str]
    checkpoint: wire.SignedCheckpointJSON


def receipt_to_json(receipt: Receipt) -> ReceiptJSON:
    """The receipt as JSON (the wire format's certificate and signed checkpoint)."""
    return {
        "certificate": wire.certificate_to_json(receipt.certificate),
        "node": address_hex(receipt.node),
        "log_index": receipt.log_index,
        "proof": [hash_hex(h) for h in receipt.proof],
        "checkpoint": wire.signed_checkpoint_to_json(
            receipt.checkpoint, receipt.checkpoint_signature
        ),
    }


def receipt_from_json(obj: object) -> Receipt:
    """The receipt of :func:`receipt_to_json`'s JSON; raises :class:`EncodingError` when
    malformed (whether it is valid is :func:`verify_receipt`'s question)."""
    keys = ReceiptJSON.__required_keys__
    if not isinstance(obj, dict) or obj.keys() != keys:
        raise EncodingError("receipt", f"expected an object with the keys {', '.join(keys)}")
    index, proof = obj["log_index"], obj["proof"]
    if type(index) is not int or not 0 <= index < 2**64:
        raise EncodingError("log_index", "expected an integer from 0 to 2**64 - 1")
    if not isinstance(proof, list) or len(proof) > 64:
        raise EncodingError("proof", "expected an array of at most 64 hashes")
    node = obj["node"]
    if not isinstance(node, str) or not all(isinstance(h, str) for h in proof):
        raise EncodingError("receipt", "expected node and proof hashes as strings")
    checkpoint, signature = wire.signed_checkpoint_from_json(obj["checkpoint"])
    return Receipt(
        wire.certificate_from_json(obj["certificate"]),
        parse_address(node, field="node"),
        index,
        tuple(parse_hash32(h, field="proof") for h in proof),
        checkpoint,
        signature,
    )
