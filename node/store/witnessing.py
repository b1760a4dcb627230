"""Binary encodings of the witnessing records (node.witness) in the node's store.

All integers big-endian. Layouts:

    signed checkpoint   node (20) ‖ tree size (8) ‖ root (32) ‖ timestamp ms (8)
                        ‖ signature (65)                       (as ``m ‖ "checkpoint"``)
    signed cosignature  witness (20) ‖ node (20) ‖ tree size (8) ‖ root (32)
                        ‖ timestamp ms (8) ‖ signature (65)
    witnessed           signed checkpoint ‖ signed cosignature
    fork report         kind (1: 0x01 same size, 0x02 inconsistent) ‖ found at ms (8)
                        ‖ first signed checkpoint ‖ second signed checkpoint
                        ‖ proof length (1) ‖ hashes (32 each) ‖ URL length (2) ‖ URL
                        (UTF-8) ‖ detail (UTF-8, the rest)
"""

from __future__ import annotations

from node.errors import CorruptRecordError
from node.store.codec import _Reader
from node.witness import Evidence, EvidenceKind, ForkReport, SignedCheckpoint, Witnessed
from wallet.types import Address, Checkpoint, Cosignature, Hash32, Signature

_KINDS = {EvidenceKind.SAME_SIZE: 1, EvidenceKind.INCONSISTENT: 2}
_KIND_OF = {code: kind for kind, code in _KINDS.items()}


def _u64(value: int) -> bytes:
    return value.to_bytes(8, "big")


def encode_signed_checkpoint(signed: SignedCheckpoint) -> bytes:
    checkpoint, signature = signed
    return (
        checkpoint.node
        + _u64(checkpoint.tree_size)
        + checkpoint.root
        + _u64(checkpoint.timestamp)
        + signature
    )


def _read_signed_checkpoint(r: _Reader) -> SignedCheckpoint:
    checkpoint = Checkpoint(Address(r.take(20)), r.uint(8), Hash32(r.take(32)), r.uint(8))
    return checkpoint, Signature(r.take(65))


def encode_signed_cosignature(cosignature: Cosignature, signature: Signature) -> bytes:
    return (
        cosignature.witness
        + cosignature.node
        + _u64(cosignature.tree_size)
        + cosignature.root
        + _u64(cosignature.timestamp)
        + signature
    )


def _read_signed_cosignature(r: _Reader) -> tuple[Cosignature, Signature]:
    cosignature = Cosignature(
        Address(r.take(20)), Address(r.take(20)), r.uint(8), Hash32(r.take(32)), r.uint(8)
    )
    return cosignature, Signature(r.take(65))


def decode_signed_cosignature(data: bytes) -> tuple[Cosignature, Signature]:
    r = _Reader(data)
    found = _read_signed_cosignature(r)
    r.end()
    return found


def encode_witnessed(record: Witnessed) -> bytes:
    return encode_signed_checkpoint(record.checkpoint) + encode_signed_cosignature(
        record.cosignature, record.signature
    )


def decode_witnessed(data: bytes) -> Witnessed:
    r = _Reader(data)
    checkpoint = _read_signed_checkpoint(r)
    cosignature, signature = _read_signed_cosignature(r)
    r.end()
    return Witnessed(checkpoint, cosignature, signature)


def encode_report(report: ForkReport) -> bytes:
    evidence = report.evidence
    url = report.url[:1024].encode()  # a URL from the configuration; bounded all the same
    return b"".join(
        (
            bytes([_KINDS[evidence.kind]]),
            _u64(report.found_at),
            encode_signed_checkpoint(evidence.first),
            encode_signed_checkpoint(evidence.second),
            bytes([len(evidence.proof)]),
            *evidence.proof,
            len(url).to_bytes(2, "big"),
            url,
            evidence.detail.encode(),
        )
    )


def decode_report(data: bytes) -> ForkReport:
    r = _Reader(data)
    code = r.uint(1)
    if code not in _KIND_OF:
        raise CorruptRecordError(f"unknown evidence kind {code}")
    found_at = r.uint(8)
    first, second = _read_signed_checkpoint(r), _read_signed_checkpoint(r)
    proof = tuple(Hash32(r.take(32)) for _ in range(r.uint(1)))
    try:
        url = r.take(r.uint(2)).decode()
        detail = r.take(len(data) - r.pos).decode()
    except UnicodeDecodeError:
        raise CorruptRecordError("a fork report's text is not UTF-8") from None
    evidence = Evidence(first[0].node, _KIND_OF[code], first, second, proof, detail)
    return ForkReport(evidence, url, found_at)
