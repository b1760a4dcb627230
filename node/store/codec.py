"""Binary encodings of the node's stored records (internal to the node; the wire formats
of the API are JSON, docs/protocol.md).

All integers are big-endian. Layouts:

    order        kind (1: 0x01 transfer, 0x02 withdrawal) ‖ owner (20) ‖ counterparty (20)
                 ‖ token (20) ‖ amount (32) ‖ sequence (8) [‖ reference (32), transfers]
    signed order order ‖ signature (65)
    certificate  epoch (8) ‖ vote count (1) ‖ (member (20) ‖ signature (65))* ‖ signed order
    lock         sequence (8) ‖ epoch (8) ‖ digest (32) ‖ vote signature (65) ‖ signed order
    account      next sequence (8) ‖ token count (2) ‖ (token (20) ‖ balance, signed (33))*
                 ‖ lock flag (1) [‖ lock]
"""

from __future__ import annotations

from node.errors import CorruptRecordError
from node.state.records import AccountRecord, Lock, frozen_balances
from wallet.types import (
    Address,
    Amount,
    Certificate,
    Epoch,
    Hash32,
    Order,
    Sequence,
    Signature,
    SignedOrder,
    Transfer,
    Withdrawal,
)

_TRANSFER, _WITHDRAWAL = 0x01, 0x02
_ORDER_FIXED = 1 + 20 + 20 + 20 + 32 + 8
_SIGNATURE = 65


class _Reader:
    __slots__ = ("data", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, n: int) -> bytes:
        end = self.pos + n
        if end > len(self.data):
            raise CorruptRecordError(f"record ends at {len(self.data)} bytes, needed {end}")
        chunk = self.data[self.pos : end]
        self.pos = end
        return chunk

    def uint(self, n: int) -> int:
        return int.from_bytes(self.take(n), "big")

    def end(self) -> None:
        if self.pos != len(self.data):
            raise CorruptRecordError(f"{len(self.data) - self.pos} trailing bytes")


def encode_order(order: Order) -> bytes:
    tail: bytes
    if isinstance(order, Transfer):
        head = bytes([_TRANSFER]) + order.payer + order.payee
        tail = order.reference
    else:
        head = bytes([_WITHDRAWAL]) + order.account + order.recipient
        tail = b""
    return (
        head
        + order.token
        + order.amount.to_bytes(32, "big")
        + order.sequence.to_bytes(8, "big")
        + tail
    )


def _read_order(r: _Reader) -> Order:
    kind = r.uint(1)
    owner, counterparty, token = Address(r.take(20)), Address(r.take(20)), Address(r.take(20))
    amount, sequence = Amount(r.uint(32)), Sequence(r.uint(8))
    if kind == _TRANSFER:
        return Transfer(owner, counterparty, token, amount, sequence, Hash32(r.take(32)))
    if kind == _WITHDRAWAL:
        return Withdrawal(owner, counterparty, token, amount, sequence)
    raise CorruptRecordError(f"unknown order kind {kind}")


def encode_signed_order(signed: SignedOrder) -> bytes:
    return encode_order(signed.order) + signed.signature


def _read_signed_order(r: _Reader) -> SignedOrder:
    order = _read_order(r)
    return SignedOrder(order, Signature(r.take(_SIGNATURE)))


def encode_certificate(certificate: Certificate) -> bytes:
    votes = b"".join(member + signature for member, signature in certificate.votes)
    return (
        certificate.epoch.to_bytes(8, "big")
        + len(certificate.votes).to_bytes(1, "big")
        + votes
        + encode_signed_order(certificate.signed)
    )


def _read_certificate(r: _Reader) -> Certificate:
    epoch = Epoch(r.uint(8))
    count = r.uint(1)
    votes = tuple((Address(r.take(20)), Signature(r.take(_SIGNATURE))) for _ in range(count))
    return Certificate(_read_signed_order(r), epoch, votes)


def decode_certificate(data: bytes) -> Certificate:
    r = _Reader(data)
    certificate = _read_certificate(r)
    r.end()
    return certificate


def encode_account(account: AccountRecord) -> bytes:
    parts = [account.next_sequence.to_bytes(8, "big"), len(account.balances).to_bytes(2, "big")]
    for token in sorted(account.balances):
        parts.append(token + account.balances[token].to_bytes(33, "big", signed=True))
    lock = account.lock
    if lock is None:
        parts.append(b"\x00")
    else:
        parts += [
            b"\x01",
            lock.sequence.to_bytes(8, "big"),
            lock.epoch.to_bytes(8, "big"),
            lock.order_digest,
            lock.vote_signature,
            encode_signed_order(lock.signed),
        ]
    return b"".join(parts)


def decode_account(data: bytes) -> AccountRecord:
    r = _Reader(data)
    next_sequence = Sequence(r.uint(8))
    balances: dict[Address, int] = {}
    for _ in range(r.uint(2)):
        token = Address(r.take(20))
        balances[token] = int.from_bytes(r.take(33), "big", signed=True)
    flag = r.uint(1)
    lock: Lock | None = None
    if flag == 1:
        sequence, epoch = Sequence(r.uint(8)), Epoch(r.uint(8))
        digest, vote_signature = Hash32(r.take(32)), Signature(r.take(_SIGNATURE))
        lock = Lock(sequence, digest, _read_signed_order(r), epoch, vote_signature)
    elif flag != 0:
        raise CorruptRecordError(f"bad lock flag {flag}")
    r.end()
    return AccountRecord(next_sequence, frozen_balances(balances), lock)
