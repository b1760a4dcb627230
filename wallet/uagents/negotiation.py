"""The farthing-negotiation protocol: its message models, the quote hash, the delivery
receipt. Pure: no I/O, no clock (docs/protocol.md 6.7 is the specification).

Conventions of every model (declared without docstrings: a docstring would change the
digest, see :mod:`.models`):

- amounts are decimal strings of an integer in the token's base units, canonical (no
  sign, no leading zero, no exponent, below 2**256), e.g. ``"2500"``;
- tokens and accounts are ``0x`` + 40 hex digits (any case; hashed in lower case);
- hashes and transaction ids are ``0x`` + 64 lower-case hex digits;
- times are unix seconds.

Flow (:mod:`.sessions` enforces it): the buyer sends :class:`QuoteRequest`; the seller
answers :class:`Quote` or :class:`DeclineRequest`; the buyer answers :class:`AcceptQuote`,
:class:`CounterOffer` (the seller answers a new :class:`Quote` or
:class:`DeclineRequest`) or :class:`RejectQuote`. After the accept, payment follows
AgentPaymentProtocol (:mod:`.payment`), the Transfer's ``reference`` being
:func:`quote_hash` of the accepted quote; in metered mode the buyer then sends one
:class:`ServiceRequest` per payment. Either side may send :class:`CloseSession`.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Final

from pydantic import v1 as pydantic_v1

from wallet.codec import address_hex, parse_address, parse_hash32
from wallet.errors import InvalidReceipt, InvalidSignature
from wallet.signing import PrivateKey, recover
from wallet.types import UINT256_MAX, Address, Hash32, Signature
from wallet.uagents.models import Model, protocol_digest

NEGOTIATION_PROTOCOL_NAME: Final = "farthing-negotiation"
NEGOTIATION_PROTOCOL_VERSION: Final = "0.1.0"
#: ``Funds.payment_method`` of a Farthing payment.
PAYMENT_METHOD: Final = "farthing"
QUOTE_TAG: Final = b"farthing-quote-v1"
RECEIPT_TAG: Final = b"farthing-delivery-receipt-v1"

_AMOUNT = re.compile(r"(0|[1-9][0-9]{0,77})")
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")
_HASH = re.compile(r"0x[0-9a-f]{64}")


def _amount(value: str) -> str:
    if not _AMOUNT.fullmatch(value) or int(value) > UINT256_MAX:
        raise ValueError("expected a canonical decimal integer of base units below 2**256")
    return value


def _address(value: str) -> str:
    if not _ADDRESS.fullmatch(value):
        raise ValueError("expected 0x and 40 hex digits")
    return value


def _hash(value: str) -> str:
    if not _HASH.fullmatch(value):
        raise ValueError("expected 0x and 64 lower-case hex digits")
    return value


def _quote_id(value: str) -> str:
    if not 1 <= len(value) <= 128 or not value.isascii() or not value.isprintable():
        raise ValueError("expected 1 to 128 printable ASCII characters")
    return value


def _uint64(value: int) -> int:
    if not 0 <= value <= 2**64 - 1:
        raise ValueError("expected an integer from 0 to 2**64 - 1")
    return value


def _positive(value: int) -> int:
    if not 1 <= value <= 2**64 - 1:
        raise ValueError("expected an integer from 1 to 2**64 - 1")
    return value


# Comments, not docstrings: a docstring would change the digest.
# The buyer asks for ``units`` of ``service``, paying at most ``max_unit_price`` per unit.
class QuoteRequest(Model):
    service: str
    units: int
    max_unit_price: str
    token: str

    _v_units = pydantic_v1.validator("units", allow_reuse=True)(_positive)
    _v_price = pydantic_v1.validator("max_unit_price", allow_reuse=True)(_amount)
    _v_token = pydantic_v1.validator("token", allow_reuse=True)(_address)


# The seller's offer: ``units`` at ``unit_price`` each, paid to ``payee`` in ``token``,
# valid while now < ``expires``. ``metered``: one payment of ``unit_price`` per request
# (at most ``units`` requests); otherwise one payment of ``units * unit_price``.
class Quote(Model):
    quote_id: str
    service: str
    units: int
    unit_price: str
    token: str
    payee: str
    expires: int
    terms: str
    metered: bool

    _v_units = pydantic_v1.validator("units", allow_reuse=True)(_positive)
    _v_price = pydantic_v1.validator("unit_price", allow_reuse=True)(_amount)
    _v_addr = pydantic_v1.validator("token", "payee", allow_reuse=True)(_address)
    _v_id = pydantic_v1.validator("quote_id", allow_reuse=True)(_quote_id)
    _v_expires = pydantic_v1.validator("expires", allow_reuse=True)(_uint64)


# The buyer proposes another price (and number of units) for quote ``quote_id``.
class CounterOffer(Model):
    quote_id: str
    units: int
    unit_price: str

    _v_units = pydantic_v1.validator("units", allow_reuse=True)(_positive)
    _v_price = pydantic_v1.validator("unit_price", allow_reuse=True)(_amount)


# The buyer accepts quote ``quote_id`` whose hash (``quote_hash``) it computed.
class AcceptQuote(Model):
    quote_id: str
    quote_hash: str

    _v_hash = pydantic_v1.validator("quote_hash", allow_reuse=True)(_hash)


# The buyer refuses quote ``quote_id``; the session ends.
class RejectQuote(Model):
    quote_id: str
    reason: str | None = None


# The seller refuses to quote (or to answer a counter offer); the session ends.
class DeclineRequest(Model):
    reason: str | None = None


# Metered mode: one request, paid by the completed payment ``transaction_id``.
class ServiceRequest(Model):
    quote_hash: str
    transaction_id: str
    body: str

    _v_hashes = pydantic_v1.validator("quote_hash", "transaction_id", allow_reuse=True)(_hash)


# Either side ends the session.
class CloseSession(Model):
    reason: str | None = None


# The seller's signed statement that it delivered content hashing to ``content_hash``
# for the payment ``transaction_id`` (a certificate digest) under ``quote_hash``.
class DeliveryReceipt(Model):
    quote_hash: str
    transaction_id: str
    content_hash: str
    seller: str
    signature: str

    _v_hashes = pydantic_v1.validator(
        "quote_hash", "transaction_id", "content_hash", allow_reuse=True
    )(_hash)
    _v_seller = pydantic_v1.validator("seller", allow_reuse=True)(_address)


NEGOTIATION_INTERACTIONS: Final[dict[type[Model], frozenset[type[Model]]]] = {
    QuoteRequest: frozenset({Quote, DeclineRequest}),
    Quote: frozenset({AcceptQuote, CounterOffer, RejectQuote}),
    CounterOffer: frozenset({Quote, DeclineRequest}),
    AcceptQuote: frozenset(),
    RejectQuote: frozenset(),
    DeclineRequest: frozenset(),
    ServiceRequest: frozenset({DeliveryReceipt}),
    DeliveryReceipt: frozenset(),
    CloseSession: frozenset(),
}
#: The messages each role receives.
NEGOTIATION_ROLES: Final[dict[str, frozenset[type[Model]]]] = {
    "seller": frozenset(
        {QuoteRequest, CounterOffer, AcceptQuote, RejectQuote, ServiceRequest, CloseSession}
    ),
    "buyer": frozenset({Quote, DeclineRequest, DeliveryReceipt, CloseSession}),
}


def negotiation_protocol_digest(role: str | None = None) -> str:
    """The protocol digest of farthing-negotiation, whole or for one role's side."""
    return protocol_digest(NEGOTIATION_INTERACTIONS, roles=NEGOTIATION_ROLES, role=role)


# ---------------------------------------------------------------- the quote hash


def canonical_quote(quote: Quote) -> bytes:
    """The hashed encoding of a quote: JSON of all its fields, keys sorted, no whitespace,
    ASCII only (non-ASCII escaped as ``\\uXXXX``), ``token`` and ``payee`` in lower case."""
    fields = {
        "expires": quote.expires,
        "metered": quote.metered,
        "payee": quote.payee.lower(),
        "quote_id": quote.quote_id,
        "service": quote.service,
        "terms": quote.terms,
        "token": quote.token.lower(),
        "unit_price": quote.unit_price,
        "units": quote.units,
    }
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def quote_hash(quote: Quote) -> Hash32:
    """``SHA-256("farthing-quote-v1" ‖ 0x00 ‖ canonical_quote(quote))``: the accepted
    quote's id for both sides and the ``reference`` of the Transfers paying it."""
    return Hash32(hashlib.sha256(QUOTE_TAG + b"\x00" + canonical_quote(quote)).digest())


def quote_amount(quote: Quote) -> int:
    """What one payment under ``quote`` is: ``unit_price`` (metered) or
    ``units * unit_price``."""
    price = int(quote.unit_price)
    return price if quote.metered else price * quote.units


def hex32(value: bytes) -> str:
    """``0x`` + 64 lower-case hex digits (quote hashes, transaction ids)."""
    return "0x" + value.hex()


# ---------------------------------------------------------------- the delivery receipt


@dataclass(frozen=True, slots=True)
class Delivery:
    """What a delivery receipt binds: the accepted quote's hash, the payment
    certificate's digest (the order's EIP-712 digest) and the delivered content's hash
    (SHA-256 of the bytes delivered)."""

    quote_hash: Hash32
    transaction_id: Hash32
    content_hash: Hash32
    seller: Address


def delivery_digest(delivery: Delivery) -> Hash32:
    """``SHA-256("farthing-delivery-receipt-v1" ‖ 0x00 ‖ quote_hash ‖ transaction_id ‖
    content_hash ‖ seller)`` (32, 32, 32 and 20 bytes)."""
    body = (
        RECEIPT_TAG
        + b"\x00"
        + delivery.quote_hash
        + delivery.transaction_id
        + delivery.content_hash
        + delivery.seller
    )
    return Hash32(hashlib.sha256(body).digest())


def sign_delivery(
    key: PrivateKey, quote: Hash32, transaction_id: Hash32, content: bytes
) -> DeliveryReceipt:
    """The seller's receipt for ``content`` delivered under ``quote`` and paid by the
    certificate with digest ``transaction_id``."""
    delivery = Delivery(
        quote, transaction_id, Hash32(hashlib.sha256(content).digest()), key.address
    )
    signature = key.unsafe_sign_digest(delivery_digest(delivery))
    return DeliveryReceipt(
        quote_hash=hex32(quote),
        transaction_id=hex32(transaction_id),
        content_hash=hex32(delivery.content_hash),
        seller=address_hex(key.address),
        signature="0x" + signature.hex(),
    )


def verify_delivery(
    receipt: DeliveryReceipt,
    *,
    seller: Address,
    quote: Hash32,
    transaction_id: Hash32,
    content: bytes | None = None,
) -> None:
    """Checks that ``receipt`` is ``seller``'s signature over this quote hash, this
    certificate digest and (when given) the hash of ``content``. Raises
    :class:`InvalidReceipt` naming what does not match."""
    delivery = Delivery(
        parse_hash32(receipt.quote_hash, field="quote_hash"),
        parse_hash32(receipt.transaction_id, field="transaction_id"),
        parse_hash32(receipt.content_hash, field="content_hash"),
        parse_address(receipt.seller, field="seller"),
    )
    if delivery.seller != seller:
        raise InvalidReceipt("the delivery receipt names another seller")
    if delivery.quote_hash != quote:
        raise InvalidReceipt("the delivery receipt is for another quote")
    if delivery.transaction_id != transaction_id:
        raise InvalidReceipt("the delivery receipt is for another payment")
    if content is not None and hashlib.sha256(content).digest() != delivery.content_hash:
        raise InvalidReceipt("the delivery receipt is for other content")
    text = receipt.signature
    if not re.fullmatch(r"0x[0-9a-f]{130}", text):
        raise InvalidReceipt("the delivery receipt's signature is not 0x and 130 hex digits")
    try:
        signer = recover(delivery_digest(delivery), Signature(bytes.fromhex(text[2:])))
    except InvalidSignature as exc:
        raise InvalidReceipt(f"the delivery receipt's signature is not valid ({exc})") from None
    if signer != seller:
        raise InvalidReceipt("the delivery receipt is not signed by the seller")
