"""The agent directory's signed records and the mailbox's signed fetch requests
(docs/protocol.md section 7): types, canonical bytes, signing, verification, JSON.

An agent publishes an :class:`AgentRecord` (its two addresses, endpoints, protocol
digests, priced services, whether nodes keep a mailbox for it, a validity window and a
sequence number that orders its replacements), signed by the one secp256k1 key behind
both of its addresses. The node (node.directory) keeps the newest valid record per agent.

Encoding: canonical JSON, not EIP-712 (records hold arrays of variable length, and no
contract ever reads them). The signed bytes are::

    SHA-256( tag ‖ 0x00 ‖ canonical JSON of the unsigned object )

with ``tag`` = ``farthing-agent-record-v1`` for a record and ``farthing-mailbox-fetch-v1``
for a fetch request. Canonical JSON is :func:`record_to_json`'s object serialized with
sorted keys, no whitespace (``","`` and ``":"`` separators), arrays in the order given.
Every string is restricted to printable ASCII without ``"`` or ``\\``, so no JSON escape
ever occurs and any JSON library that sorts keys gives the same bytes; integers are at
most 2**53 - 1, exact in every JSON reader. The signature is 65 bytes ``r ‖ s ‖ v`` (low
s, v in {27, 28}, as :mod:`wallet.signing`), so the signer's Ethereum address is
recovered and compared with the record's ``payment`` address, which must itself be the
address of the key behind ``agent``: one check proves both addresses are the signer's.

Errors: a malformed record or request is an :class:`~wallet.errors.EncodingError` naming
the field; a signature by another key is :class:`~wallet.errors.WrongSigner`; a malformed
or malleable signature is :class:`~wallet.errors.InvalidSignature`.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Final, NoReturn, TypedDict

from wallet.codec import address_hex
from wallet.errors import EncodingError, InvalidKey, WrongSigner
from wallet.keys import agent_address, agent_payment_address, parse_agent_address
from wallet.signing import PrivateKey, recover
from wallet.types import Address, Amount, Hash32, Signature
from wallet.wire import decode_address, decode_amount, decode_signature, json_type_name

#: Domain tags of the two signed messages.
RECORD_TAG: Final = b"farthing-agent-record-v1"
FETCH_TAG: Final = b"farthing-mailbox-fetch-v1"
#: Limits of a record.
MAX_ENDPOINTS: Final = 8
MAX_URL_LENGTH: Final = 256
MAX_PROTOCOLS: Final = 32
MAX_SERVICES: Final = 32
MAX_NAME_LENGTH: Final = 64
#: The longest validity window of a record (30 days): a record must be renewed.
MAX_LIFETIME: Final = 30 * 86_400
#: Times (unix seconds), sequences and ids: JSON integers up to 2**53 - 1.
MAX_INT: Final = 2**53 - 1
#: The most envelopes one fetch may ask for.
MAX_FETCH: Final = 100
#: A fetch request's nonce: 16 bytes.
NONCE_SIZE: Final = 16

PROTOCOL_PATTERN = re.compile(r"proto:[0-9a-f]{64}")
SERVICE_NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
# Printable ASCII without space, '"' and '\': nothing in a URL needs an escape.
_URL = re.compile(r"https?://[!#-\[\]-~]+")


@dataclass(frozen=True, slots=True)
class Service:
    """A service an agent sells: ``unit_price`` base units of ``token`` per unit."""

    name: str
    unit_price: Amount
    token: Address


@dataclass(frozen=True, slots=True)
class AgentRecord:
    """An agent's directory entry. ``agent`` is the lower-case ``agent1...`` address."""

    agent: str
    payment: Address
    endpoints: tuple[str, ...]
    protocols: tuple[str, ...]
    services: tuple[Service, ...]
    mailbox: bool
    issued_at: int
    expires_at: int
    sequence: int


@dataclass(frozen=True, slots=True)
class SignedRecord:
    record: AgentRecord
    signature: Signature


@dataclass(frozen=True, slots=True)
class FetchRequest:
    """An agent's request to a node for its mailbox: delete the envelopes with an id up
    to ``ack``, then send up to ``limit`` of the next ones. ``node`` binds the request to
    one node; ``timestamp`` and ``nonce`` stop replays."""

    agent: str
    node: Address
    ack: int
    limit: int
    timestamp: int
    nonce: bytes


class ServiceJSON(TypedDict):
    name: str
    unit_price: str
    token: str


class AgentRecordJSON(TypedDict):
    agent: str
    payment: str
    endpoints: list[str]
    protocols: list[str]
    services: list[ServiceJSON]
    mailbox: bool
    issued_at: int
    expires_at: int
    sequence: int


class SignedRecordJSON(TypedDict):
    record: AgentRecordJSON
    signature: str


class FetchRequestJSON(TypedDict):
    agent: str
    node: str
    ack: int
    limit: int
    timestamp: int
    nonce: str
    signature: str


# ---------------------------------------------------------------- decoding helpers


def _fail(field: str, problem: str) -> NoReturn:
    raise EncodingError(field, problem)


def _object(value: object, keys: tuple[str, ...], path: str) -> dict[str, object]:
    if not isinstance(value, dict):
        _fail(path, f"expected an object, got {json_type_name(value)}")
    prefix = path + "."
    for key in keys:
        if key not in value:
            _fail(prefix + key, "missing")
    if len(value) != len(keys):
        extra = next(k for k in value if k not in keys)
        shown = extra[:24] if isinstance(extra, str) else "?"
        where = prefix + shown if shown else path  # an empty key: name the object
        _fail(where, f"unknown key {shown!r}: expected only {', '.join(keys)}")
    return value


def _int(value: object, field: str, low: int = 0, high: int = MAX_INT) -> int:
    if type(value) is not int or not low <= value <= high:
        _fail(field, f"expected an integer from {low} to {high}, got {json_type_name(value)}")
    return value


def _text(value: object, field: str, pattern: re.Pattern[str], most: int, what: str) -> str:
    if not isinstance(value, str) or not 0 < len(value) <= most:
        _fail(field, f"expected {what} of at most {most} characters, got {json_type_name(value)}")
    if pattern.fullmatch(value) is None:
        _fail(field, f"expected {what}")
    return value


def _array(value: object, field: str, most: int) -> list[object]:
    if not isinstance(value, list) or len(value) > most:
        _fail(field, f"expected an array of at most {most} items, got {json_type_name(value)}")
    return value


def _agent(value: object, field: str) -> str:
    parse_agent_address(value, field=field)  # type: ignore[arg-type]  # checks the type
    assert isinstance(value, str)
    return value.lower()


# ---------------------------------------------------------------- records

_RECORD_KEYS = (
    "agent",
    "payment",
    "endpoints",
    "protocols",
    "services",
    "mailbox",
    "issued_at",
    "expires_at",
    "sequence",
)
_SERVICE_KEYS = ("name", "unit_price", "token")


def _service(value: object, path: str) -> Service:
    obj = _object(value, _SERVICE_KEYS, path)
    name = _text(
        obj["name"],
        path + ".name",
        SERVICE_NAME_PATTERN,
        MAX_NAME_LENGTH,
        "a service name [a-z0-9._-]",
    )
    return Service(
        name,
        decode_amount(obj["unit_price"], path + ".", "unit_price"),
        decode_address(obj["token"], path + ".", "token"),
    )


def _record(value: object, path: str) -> AgentRecord:
    obj = _object(value, _RECORD_KEYS, path)
    p = path + "."
    agent = _agent(obj["agent"], p + "agent")
    payment = decode_address(obj["payment"], p, "payment")
    endpoints = tuple(
        _text(url, f"{p}endpoints[{i}]", _URL, MAX_URL_LENGTH, "an http(s) URL")
        for i, url in enumerate(_array(obj["endpoints"], p + "endpoints", MAX_ENDPOINTS))
    )
    protocols = tuple(
        _text(d, f"{p}protocols[{i}]", PROTOCOL_PATTERN, 70, 'a protocol digest "proto:" + 64 hex')
        for i, d in enumerate(_array(obj["protocols"], p + "protocols", MAX_PROTOCOLS))
    )
    services = tuple(
        _service(s, f"{p}services[{i}]")
        for i, s in enumerate(_array(obj["services"], p + "services", MAX_SERVICES))
    )
    for name, items in (("endpoints", endpoints), ("protocols", protocols)):
        if len(set(items)) != len(items):
            _fail(p + name, "an item appears twice")
    if len({s.name for s in services}) != len(services):
        _fail(p + "services", "two services have the same name")
    if type(obj["mailbox"]) is not bool:
        _fail(p + "mailbox", f"expected true or false, got {json_type_name(obj['mailbox'])}")
    issued = _int(obj["issued_at"], p + "issued_at")
    expires = _int(obj["expires_at"], p + "expires_at")
    if not issued < expires <= issued + MAX_LIFETIME:
        _fail(p + "expires_at", f"must be after issued_at by at most {MAX_LIFETIME} seconds")
    sequence = _int(obj["sequence"], p + "sequence")
    return AgentRecord(
        agent, payment, endpoints, protocols, services, obj["mailbox"], issued, expires, sequence
    )


def record_from_json(obj: object) -> AgentRecord:
    """The record ``obj`` encodes; :class:`EncodingError` naming the field otherwise."""
    return _record(obj, "record")


def record_to_json(record: AgentRecord) -> AgentRecordJSON:
    """The record as JSON (addresses EIP-55, the agent address in lower case). Raises
    :class:`EncodingError` for a record that breaks a limit (checked by decoding it)."""
    obj: AgentRecordJSON = {
        "agent": record.agent.lower() if isinstance(record.agent, str) else record.agent,
        "payment": address_hex(record.payment),
        "endpoints": list(record.endpoints),
        "protocols": list(record.protocols),
        "services": [
            {"name": s.name, "unit_price": str(s.unit_price), "token": address_hex(s.token)}
            for s in record.services
        ],
        "mailbox": record.mailbox,
        "issued_at": record.issued_at,
        "expires_at": record.expires_at,
        "sequence": record.sequence,
    }
    record_from_json(obj)
    return obj


def canonical_json(obj: object) -> bytes:
    """Sorted keys, no whitespace, ASCII: the signed serialization."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def record_digest(record: AgentRecord) -> Hash32:
    """``SHA-256("farthing-agent-record-v1" ‖ 0x00 ‖ canonical JSON of the record)``."""
    body = canonical_json(record_to_json(record))
    return Hash32(hashlib.sha256(RECORD_TAG + b"\x00" + body).digest())


def _require_agent(key: PrivateKey, agent: str) -> None:
    if agent_address(key) != agent.lower():
        raise InvalidKey("this key is not the key behind the record's agent address")


def sign_record(key: PrivateKey, record: AgentRecord) -> SignedRecord:
    """The agent's signature of its record. Raises :class:`InvalidKey` if ``key`` is not
    the key behind ``record.agent`` and ``record.payment``."""
    _require_agent(key, record.agent)
    if key.address != record.payment:
        raise InvalidKey("this key is not the key behind the record's payment address")
    return SignedRecord(record, key.unsafe_sign_digest(record_digest(record)))


def make_record(
    key: PrivateKey,
    *,
    issued_at: int,
    lifetime: int = 86_400,
    sequence: int | None = None,
    endpoints: tuple[str, ...] = (),
    protocols: tuple[str, ...] = (),
    services: tuple[Service, ...] = (),
    mailbox: bool = False,
) -> SignedRecord:
    """A signed record of ``key``'s agent valid from ``issued_at`` for ``lifetime``
    seconds; the sequence defaults to ``issued_at`` (a later record replaces it)."""
    record = AgentRecord(
        agent_address(key),
        key.address,
        endpoints,
        protocols,
        services,
        mailbox,
        issued_at,
        issued_at + lifetime,
        issued_at if sequence is None else sequence,
    )
    return sign_record(key, record)


def verify_record(signed: SignedRecord) -> None:
    """Checks that the record is signed by the key behind its two addresses.

    Raises :class:`WrongSigner` (a forged or tampered record: the signature recovers to
    another key, or ``payment`` is not the agent key's address) or
    :class:`InvalidSignature` (a malformed or malleable signature)."""
    record = signed.record
    if agent_payment_address(record.agent, field="record.agent") != record.payment:
        raise WrongSigner("the payment address is not the address of the agent's key")
    if recover(record_digest(record), signed.signature) != record.payment:
        raise WrongSigner("the record is not signed by the agent's key")


def signed_record_to_json(signed: SignedRecord) -> SignedRecordJSON:
    return {"record": record_to_json(signed.record), "signature": "0x" + signed.signature.hex()}


def signed_record_from_json(obj: object) -> SignedRecord:
    """``{"record": {...}, "signature": "0x" + 130 hex}``; only the syntax is checked
    (:func:`verify_record` checks the signature)."""
    top = _object(obj, ("record", "signature"), "signed_record")
    return SignedRecord(
        _record(top["record"], "record"), decode_signature(top["signature"], "", "signature")
    )


# ---------------------------------------------------------------- mailbox fetches

_FETCH_KEYS = ("agent", "node", "ack", "limit", "timestamp", "nonce", "signature")


def _fetch_json(request: FetchRequest) -> dict[str, object]:
    return {
        "agent": request.agent.lower(),
        "node": address_hex(request.node),
        "ack": request.ack,
        "limit": request.limit,
        "timestamp": request.timestamp,
        "nonce": "0x" + request.nonce.hex(),
    }


def fetch_digest(request: FetchRequest) -> Hash32:
    """``SHA-256("farthing-mailbox-fetch-v1" ‖ 0x00 ‖ canonical JSON of the request
    without its signature)``."""
    body = canonical_json(_fetch_json(request))
    return Hash32(hashlib.sha256(FETCH_TAG + b"\x00" + body).digest())


def sign_fetch(key: PrivateKey, request: FetchRequest) -> FetchRequestJSON:
    """The signed request as JSON, ready to POST."""
    _require_agent(key, request.agent)
    fetch_from_json({**_fetch_json(request), "signature": "0x" + "00" * 65})  # the limits
    signature = key.unsafe_sign_digest(fetch_digest(request))
    return {**_fetch_json(request), "signature": "0x" + signature.hex()}  # type: ignore[typeddict-item]


def fetch_from_json(obj: object) -> tuple[FetchRequest, Signature]:
    o = _object(obj, _FETCH_KEYS, "fetch")
    nonce = o["nonce"]
    if not isinstance(nonce, str) or len(nonce) != 2 + 2 * NONCE_SIZE or nonce[:2] != "0x":
        _fail("nonce", f"expected 0x and {2 * NONCE_SIZE} hex digits, got {json_type_name(nonce)}")
    try:
        raw = bytes.fromhex(nonce[2:])
    except ValueError:
        raw = b""
    if len(raw) != NONCE_SIZE:
        _fail("nonce", f"expected 0x and {2 * NONCE_SIZE} hex digits")
    request = FetchRequest(
        _agent(o["agent"], "agent"),
        decode_address(o["node"], "", "node"),
        _int(o["ack"], "ack"),
        _int(o["limit"], "limit", 1, MAX_FETCH),
        _int(o["timestamp"], "timestamp"),
        raw,
    )
    return request, decode_signature(o["signature"], "", "signature")


def verify_fetch(request: FetchRequest, signature: Signature) -> None:
    """Raises :class:`WrongSigner` unless the agent's key signed the request (or
    :class:`InvalidSignature` for a malformed or malleable signature)."""
    expected = agent_payment_address(request.agent, field="agent")
    if recover(fetch_digest(request), signature) != expected:
        raise WrongSigner("the fetch request is not signed by the agent's key")


__all__ = [
    "FETCH_TAG",
    "MAX_ENDPOINTS",
    "MAX_FETCH",
    "MAX_LIFETIME",
    "MAX_PROTOCOLS",
    "MAX_SERVICES",
    "PROTOCOL_PATTERN",
    "RECORD_TAG",
    "SERVICE_NAME_PATTERN",
    "AgentRecord",
    "FetchRequest",
    "Service",
    "SignedRecord",
    "fetch_digest",
    "fetch_from_json",
    "make_record",
    "record_digest",
    "record_from_json",
    "record_to_json",
    "sign_fetch",
    "sign_record",
    "signed_record_from_json",
    "signed_record_to_json",
    "verify_fetch",
    "verify_record",
]
