"""The uAgents envelope (uagents-core 0.4.12), byte for byte: JSON, signed digest,
``sig1...`` signatures.

An envelope is one JSON object with these fields, in this order, nulls included::

    version          int      1
    sender           str      agent1... (65 characters)
    target           str      agent1... (65 characters)
    session          str      a version-4 UUID, lower case with hyphens
    schema_digest    str      "model:" + 64 hex digits (wallet.uagents.models)
    protocol_digest  str|null "proto:" + 64 hex digits
    payload          str|null standard base64 (with padding) of the message's JSON text
    expires          int|null unix seconds
    nonce            int|null
    signature        str|null "sig1..." (113 characters)

The signed digest is SHA-256 over the plain concatenation (no separators, no lengths) of
sender, target, str(session), schema_digest, the payload's base64 text as sent (if not
null), then expires and nonce as 8-byte big-endian integers (each only if not null).
``version``, ``protocol_digest`` and ``signature`` are not covered.

The signature is secp256k1 ECDSA over that digest: 64 bytes ``r ‖ s`` in bech32 with the
prefix ``sig``. uagents-core signs with python-ecdsa, a random k and no low-s
normalisation, so about half of its signatures have ``s > n/2``; libsecp256k1 (coincurve)
refuses those. :func:`verify_envelope` therefore replaces such an ``s`` by ``n - s`` (the
same signature's other form: ECDSA cannot tell them apart) and verifies the result with
libsecp256k1 against the sender's public key. Farthing signs with libsecp256k1 (RFC 6979,
always low s), which uagents-core accepts. The replay key is the signed digest, never the
signature, so the two forms of one signature are one envelope (:mod:`.replay`).

Farthing is stricter than uagents on input (:func:`envelope_from_json`): unknown keys, a
wrong JSON type, a non-canonical base64 payload, a session that is not a version-4 UUID,
integers outside uint64, upper-case addresses or signatures, and senders or targets that
are not ``agent1`` addresses (the unsigned ``user...`` senders uagents tolerates) are
refused with :class:`~wallet.errors.EncodingError` naming the field. Absent optional
fields read as null, as uagents reads them.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import uuid
from dataclasses import dataclass, replace
from typing import Any, Final, TypedDict

import coincurve
from coincurve.ecdsa import cdata_to_der, deserialize_compact

from wallet.bech32 import bech32_decode, bech32_encode
from wallet.codec import SECP256K1_N
from wallet.errors import EncodingError, InvalidKey, InvalidSignature
from wallet.jsontext import TooDeep, loads_bounded
from wallet.keys import agent_address, parse_agent_address
from wallet.signing import PrivateKey
from wallet.types import Hash32

#: The only envelope version uagents-core 0.4.12 writes.
ENVELOPE_VERSION: Final = 1
#: The bech32 prefix of an envelope signature.
SIGNATURE_PREFIX: Final = "sig"
#: Every ``sig1...`` signature has this many characters (64 bytes).
SIGNATURE_LENGTH: Final = 113
#: The envelope's JSON keys, in the order uagents writes them.
FIELDS: Final = (
    "version",
    "sender",
    "target",
    "session",
    "schema_digest",
    "protocol_digest",
    "payload",
    "expires",
    "nonce",
    "signature",
)
_REQUIRED: Final = frozenset(FIELDS[:5])
_UINT64_MAX: Final = 2**64 - 1
_HALF_N: Final = SECP256K1_N // 2
_SCHEMA_DIGEST = re.compile(r"model:[0-9a-f]{64}")
_PROTOCOL_DIGEST = re.compile(r"proto:[0-9a-f]{64}")
_UUID_TEXT = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)


class EnvelopeJSON(TypedDict):
    """An envelope as JSON (the keys in wire order)."""

    version: int
    sender: str
    target: str
    session: str
    schema_digest: str
    protocol_digest: str | None
    payload: str | None
    expires: int | None
    nonce: int | None
    signature: str | None


@dataclass(frozen=True, slots=True)
class Envelope:
    """One uAgents envelope. Build it with :func:`make_envelope` (which checks every
    field) or read it with :func:`envelope_from_json`; sign it with :func:`sign_envelope`."""

    version: int
    sender: str
    target: str
    session: uuid.UUID
    schema_digest: str
    protocol_digest: str | None = None
    payload: str | None = None
    expires: int | None = None
    nonce: int | None = None
    signature: str | None = None


# ---------------------------------------------------------------- field checks


def _int(value: object, field: str, maximum: int = _UINT64_MAX) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise EncodingError(field, f"expected an integer, got {type(value).__name__}")
    if not 0 <= value <= maximum:
        raise EncodingError(field, f"out of range 0..{maximum}")
    return value


def _str(value: object, field: str) -> str:
    if not isinstance(value, str):
        raise EncodingError(field, f"expected a string, got {type(value).__name__}")
    return value


def _agent(value: object, field: str) -> str:
    text = _str(value, field)
    parse_agent_address(text, field=field)
    if text != text.lower():  # it is signed as sent: keep the one form uagents writes
        raise EncodingError(field, "an agent address is written in lower case")
    return text


def parse_session(value: object, *, field: str = "session") -> uuid.UUID:
    """A session as uagents sends it: a version-4 UUID written with hyphens (36
    characters; upper case is read too, and written back in lower case)."""
    if isinstance(value, uuid.UUID):
        session = value
    else:
        text = _str(value, field)
        if not _UUID_TEXT.fullmatch(text):
            raise EncodingError(field, "expected a UUID written as 8-4-4-4-12 hex digits")
        session = uuid.UUID(text)
    if session.version != 4:
        raise EncodingError(field, "expected a version-4 (random) UUID")
    return session


def _digest_text(value: object, field: str, pattern: re.Pattern[str], what: str) -> str:
    text = _str(value, field)
    if not pattern.fullmatch(text):
        raise EncodingError(field, f"expected {what} + 64 lower-case hex digits")
    return text


def _payload(value: object, field: str = "payload") -> str:
    text = _str(value, field)
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise EncodingError(field, "not standard base64") from None
    if base64.b64encode(raw).decode() != text:
        raise EncodingError(field, "not canonical base64 (padding or trailing bits)")
    return text


def parse_envelope_signature(value: object, *, field: str = "signature") -> bytes:
    """The 64 bytes ``r ‖ s`` of a ``sig1...`` signature (r and s in 1..n-1; s may be
    high). Raises :class:`EncodingError` naming ``field``."""
    text = _str(value, field)
    if len(text) != SIGNATURE_LENGTH:
        raise EncodingError(field, f"a signature is {SIGNATURE_LENGTH} characters, got {len(text)}")
    _, raw = bech32_decode(text, hrp=SIGNATURE_PREFIX, field=field)
    if len(raw) != 64:
        raise EncodingError(field, f"a signature is 64 bytes, got {len(raw)}")
    r, s = int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big")
    if not (0 < r < SECP256K1_N and 0 < s < SECP256K1_N):
        raise EncodingError(field, "r and s must be in 1..n-1")
    return raw


def make_envelope(
    *,
    sender: str,
    target: str,
    session: uuid.UUID | str,
    schema_digest: str,
    protocol_digest: str | None = None,
    payload: str | None = None,
    expires: int | None = None,
    nonce: int | None = None,
    signature: str | None = None,
    version: int = ENVELOPE_VERSION,
) -> Envelope:
    """An envelope whose every field is checked as :func:`envelope_from_json` checks it.
    Generate a session with ``uuid.uuid4()``; ``payload`` is base64 text
    (:func:`wallet.uagents.models.encode_payload` makes it from a message)."""
    return Envelope(
        version=_int(version, "version"),
        sender=_agent(sender, "sender"),
        target=_agent(target, "target"),
        session=parse_session(session),
        schema_digest=_digest_text(schema_digest, "schema_digest", _SCHEMA_DIGEST, "model:"),
        protocol_digest=None
        if protocol_digest is None
        else _digest_text(protocol_digest, "protocol_digest", _PROTOCOL_DIGEST, "proto:"),
        payload=None if payload is None else _payload(payload),
        expires=None if expires is None else _int(expires, "expires"),
        nonce=None if nonce is None else _int(nonce, "nonce"),
        signature=None if signature is None else _signature_text(signature),
    )


def _signature_text(value: object) -> str:
    parse_envelope_signature(value)
    text = str(value)
    if text != text.lower():
        raise EncodingError("signature", "a signature is written in lower case")
    return text


# ---------------------------------------------------------------- JSON


def envelope_to_json(envelope: Envelope) -> EnvelopeJSON:
    """The envelope as a JSON object, keys in uagents' order, nulls kept."""
    return {
        "version": envelope.version,
        "sender": envelope.sender,
        "target": envelope.target,
        "session": str(envelope.session),
        "schema_digest": envelope.schema_digest,
        "protocol_digest": envelope.protocol_digest,
        "payload": envelope.payload,
        "expires": envelope.expires,
        "nonce": envelope.nonce,
        "signature": envelope.signature,
    }


def envelope_to_bytes(envelope: Envelope) -> bytes:
    """The envelope's JSON text as uagents sends it (compact, UTF-8)."""
    return json.dumps(envelope_to_json(envelope), separators=(",", ":")).encode()


def envelope_from_json(value: Any) -> Envelope:
    """Reads an envelope from parsed JSON, or from JSON text (``str`` or ``bytes``).

    Raises :class:`EncodingError` naming the field: not an object, a missing required or
    an unknown key, a wrong type, or a value outside its form (see the module docstring).
    """
    if isinstance(value, str | bytes):
        try:
            value = loads_bounded(value)
        except TooDeep as exc:
            raise EncodingError("envelope", f"not JSON: {exc}") from None
        except ValueError:  # UnicodeDecodeError too
            raise EncodingError("envelope", "not JSON") from None
    if not isinstance(value, dict):
        raise EncodingError("envelope", f"expected an object, got {type(value).__name__}")
    unknown = sorted(str(key) for key in value if key not in FIELDS)
    if unknown:
        shown = unknown[0][:24]  # a key may be long: never echo more than a piece of it
        raise EncodingError(shown or "envelope", f"unknown envelope field {shown!r}")
    missing = sorted(_REQUIRED - value.keys())
    if missing:
        raise EncodingError(missing[0], "missing")
    return make_envelope(
        version=value["version"],
        sender=value["sender"],
        target=value["target"],
        session=_str(value["session"], "session"),
        schema_digest=value["schema_digest"],
        protocol_digest=value.get("protocol_digest"),
        payload=value.get("payload"),
        expires=value.get("expires"),
        nonce=value.get("nonce"),
        signature=value.get("signature"),
    )


# ---------------------------------------------------------------- digest and signature


def envelope_digest(envelope: Envelope) -> Hash32:
    """The 32 bytes uagents signs (see the module docstring); also the replay key."""
    hasher = hashlib.sha256()
    hasher.update(envelope.sender.encode())
    hasher.update(envelope.target.encode())
    hasher.update(str(envelope.session).encode())
    hasher.update(envelope.schema_digest.encode())
    if envelope.payload is not None:
        hasher.update(envelope.payload.encode())
    if envelope.expires is not None:
        hasher.update(envelope.expires.to_bytes(8, "big"))
    if envelope.nonce is not None:
        hasher.update(envelope.nonce.to_bytes(8, "big"))
    return Hash32(hasher.digest())


def sign_envelope(key: PrivateKey, envelope: Envelope) -> Envelope:
    """The envelope with ``key``'s ``sig1...`` signature of its digest (low s, RFC 6979).

    Raises :class:`~wallet.errors.InvalidKey` if the sender is not ``key``'s agent
    address (nobody else's signature could verify). The digest is SHA-256 of the
    envelope's fields, which no EIP-712 digest (keccak256 of ``0x1901 ‖ ...``) can equal
    short of a hash collision, so one key can sign both.
    """
    if envelope.sender != agent_address(key):
        raise InvalidKey(f"this key is {agent_address(key)}, but the sender is {envelope.sender}")
    raw = key.unsafe_sign_digest(envelope_digest(envelope))[:64]
    return replace(envelope, signature=bech32_encode(SIGNATURE_PREFIX, raw, field="signature"))


def check_envelope_signature(envelope: Envelope) -> None:
    """Raises :class:`InvalidSignature` unless the envelope carries its sender's
    signature of its digest (high s accepted, see the module docstring)."""
    if envelope.signature is None:
        raise InvalidSignature("the envelope is not signed")
    try:
        raw = parse_envelope_signature(envelope.signature)
    except EncodingError as error:
        raise InvalidSignature(f"signature: {error.problem}") from None
    s = int.from_bytes(raw[32:], "big")
    if s > _HALF_N:  # the other form of the same signature, which libsecp256k1 takes
        raw = raw[:32] + (SECP256K1_N - s).to_bytes(32, "big")
    public_key = coincurve.PublicKey(parse_agent_address(envelope.sender, field="sender"))
    der = cdata_to_der(deserialize_compact(raw))
    if not public_key.verify(der, envelope_digest(envelope), hasher=None):
        raise InvalidSignature("the signature is not the sender's signature of this envelope")


def verify_envelope(envelope: Envelope) -> bool:
    """Whether the envelope carries its sender's signature (see
    :func:`check_envelope_signature`, which says why not)."""
    try:
        check_envelope_signature(envelope)
    except InvalidSignature:
        return False
    return True
