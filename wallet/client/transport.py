"""How the client talks to one node: the :class:`Transport` protocol and its aiohttp
implementation, :class:`HttpTransport`.

Rule 1: a node's bad answer is that node's fault. Every reply is checked here, strictly
(the wire format of :mod:`wallet.wire`, exact keys, bounded sizes); anything else becomes
a :class:`~wallet.errors.NodeMisbehaved` (garbage) or a
:class:`~wallet.errors.NodeUnavailable` (down, refused, timed out) naming the node. The
client counts those against the node and goes on with the others. A ledger refusal
(``insufficient_balance``, ``conflicting_order``, ...) is not a fault: it is returned as a
:class:`Refusal` value.

Rule 2: signatures are not verified here. The transport checks shapes; the client checks
who signed what (a vote's signer and epoch, a certificate's quorum, a checkpoint's node).

:class:`JsonTransport` maps the node API (docs/protocol.md "Node API") onto two
primitives, one JSON request and one WebSocket stream, that a subclass provides:
:class:`HttpTransport` over one keep-alive :class:`aiohttp.ClientSession`, the tests'
in-process fake over a dictionary of fake nodes.
"""

from __future__ import annotations

import asyncio
import re
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Final, Literal, Protocol

import aiohttp

from wallet import wire
from wallet.codec import address_hex, hash_hex, parse_address, parse_hash32
from wallet.errors import EncodingError, NodeMisbehaved, NodeUnavailable
from wallet.jsontext import loads_bounded
from wallet.types import (
    UINT64_MAX,
    Address,
    Certificate,
    Checkpoint,
    Hash32,
    Signature,
    SignedOrder,
    Vote,
)

#: The largest reply the client reads (256 certificates of 255 votes fit well below).
MAX_REPLY_BYTES: Final = 8 * 1024 * 1024
#: The largest stream frame the client reads (one certificate).
MAX_FRAME_BYTES: Final = 256 * 1024
_BALANCE = re.compile(r"0|-?[1-9][0-9]{0,77}")
_CODE = re.compile(r"[a-z][a-z0-9_]{0,63}")


# ---------------------------------------------------------------- what nodes answer


@dataclass(frozen=True, slots=True)
class Refusal:
    """A node's ledger refusal (docs/protocol.md 1a): ``code`` and, for
    ``conflicting_order`` / ``conflicting_certificate``, the digest holding the slot."""

    code: str
    message: str
    conflicting: Hash32 | None = None


@dataclass(frozen=True, slots=True)
class Delivery:
    """A node took a certificate: ``applied`` now at ``log_index``, or already had it
    (``duplicate``), or keeps it until earlier sequences arrive (``pending``)."""

    status: Literal["applied", "duplicate", "pending"]
    log_index: int | None = None


@dataclass(frozen=True, slots=True)
class AccountState:
    """An account as one node sees it. Balances may be negative on a node that applied a
    debit before the credit covering it."""

    address: Address
    next_sequence: int
    balances: Mapping[Address, int]
    pending_order: SignedOrder | None


@dataclass(frozen=True, slots=True)
class IndexedCertificate:
    """An applied certificate and its index in the serving node's log."""

    log_index: int
    certificate: Certificate


@dataclass(frozen=True, slots=True)
class SignedCheckpoint:
    checkpoint: Checkpoint
    signature: Signature


@dataclass(frozen=True, slots=True)
class CaughtUp:
    """A stream's replay is over: every later entry is live."""

    tree_size: int


StreamEntry = IndexedCertificate | CaughtUp


class Transport(Protocol):
    """The node API calls the client makes, one node (``endpoint``, its base URL) each.

    Every method raises :class:`~wallet.errors.NodeUnavailable` or
    :class:`~wallet.errors.NodeMisbehaved` on that node's fault, nothing else.
    """

    async def post_order(self, endpoint: str, signed: SignedOrder) -> Vote | Refusal: ...

    async def post_certificate(
        self, endpoint: str, certificate: Certificate
    ) -> Delivery | Refusal: ...

    async def get_account(self, endpoint: str, address: Address) -> AccountState: ...

    async def get_certificate(self, endpoint: str, digest: Hash32) -> IndexedCertificate | None: ...

    async def get_account_certificates(
        self, endpoint: str, address: Address, first: int, last: int
    ) -> list[Certificate]: ...

    async def get_log_certificates(
        self, endpoint: str, start: int, end: int
    ) -> tuple[list[IndexedCertificate], int]: ...

    async def get_log_size(self, endpoint: str) -> int: ...

    async def get_checkpoint(self, endpoint: str) -> SignedCheckpoint | None: ...

    async def get_inclusion_proof(
        self, endpoint: str, index: int, size: int
    ) -> tuple[Hash32, ...]: ...

    def stream_account(
        self, endpoint: str, address: Address, from_index: int | None
    ) -> AsyncIterator[StreamEntry]: ...

    async def close(self) -> None: ...


# ---------------------------------------------------------------- checking replies


class _BadReplyError(Exception):
    """A reply that is not what the API promises (becomes NodeMisbehaved)."""


async def read_capped(content: aiohttp.StreamReader, limit: int) -> bytes | None:
    """The whole body (until the end of the stream), or None once it passes ``limit``
    bytes. (``StreamReader.read(n)`` returns what has arrived so far, which may be a
    part of a large reply.)"""
    body = bytearray()
    async for chunk in content.iter_any():
        body += chunk
        if len(body) > limit:
            return None
    return bytes(body)


def _object(value: object, *keys: str, optional: tuple[str, ...] = ()) -> dict[str, object]:
    if not isinstance(value, dict):
        raise _BadReplyError("expected a JSON object")
    missing = [k for k in keys if k not in value]
    extra = [k for k in value if k not in keys and k not in optional]
    if missing or extra:
        raise _BadReplyError(f"expected the keys {', '.join(keys)}")
    return value


def _uint64(value: object, name: str) -> int:
    if type(value) is int and 0 <= value <= UINT64_MAX:
        return value
    raise _BadReplyError(f"{name}: expected an integer from 0 to 2**64 - 1")


def _list(value: object, name: str, limit: int) -> list[object]:
    if not isinstance(value, list) or len(value) > limit:
        raise _BadReplyError(f"{name}: expected an array of at most {limit} items")
    return value


def _refusal(value: object) -> Refusal:
    body = _object(value, "code", "message", optional=("field", "conflicting"))
    code, message = body["code"], body["message"]
    if not isinstance(code, str) or not _CODE.fullmatch(code) or not isinstance(message, str):
        raise _BadReplyError("expected an error {code, message}")
    conflicting = body.get("conflicting")
    return Refusal(
        code,
        message[:200],
        None if conflicting is None else parse_hash32(_str(conflicting), field="conflicting"),
    )


def _str(value: object) -> str:
    if not isinstance(value, str):
        raise _BadReplyError("expected a string")
    return value


def _account(value: object, address: Address) -> AccountState:
    body = _object(value, "address", "next_sequence", "balances", "pending_order")
    if parse_address(_str(body["address"])) != address:
        raise _BadReplyError("the reply is about another account")
    # 2**64 once sequence 2**64 - 1 is used: the account can sign no more orders.
    next_sequence = body["next_sequence"]
    if type(next_sequence) is not int or not 0 <= next_sequence <= UINT64_MAX + 1:
        raise _BadReplyError("next_sequence: expected an integer from 0 to 2**64")
    raw = body["balances"]
    if not isinstance(raw, dict) or len(raw) > 1024:
        raise _BadReplyError("balances: expected an object")
    balances: dict[Address, int] = {}
    for token, amount in raw.items():
        if not isinstance(amount, str) or not _BALANCE.fullmatch(amount):
            raise _BadReplyError("balances: expected decimal strings")
        balances[parse_address(token, field="balances")] = int(amount)
    pending = body["pending_order"]
    signed = None if pending is None else wire.signed_order_from_json(pending)
    if signed is not None and (
        signed.order.owner != address or signed.order.sequence != next_sequence
    ):
        raise _BadReplyError("pending_order: not this account's order at its next sequence")
    return AccountState(address, next_sequence, balances, signed)


def _indexed(value: object) -> IndexedCertificate:
    body = _object(value, "log_index", "certificate")
    return IndexedCertificate(
        _uint64(body["log_index"], "log_index"), wire.certificate_from_json(body["certificate"])
    )


def _delivery(value: object) -> Delivery:
    if not isinstance(value, dict):
        raise _BadReplyError("expected a JSON object")
    status = value.get("status")
    if status == "applied":
        body = _object(value, "status", "log_index")
        return Delivery("applied", _uint64(body["log_index"], "log_index"))
    if status in ("duplicate", "pending"):
        _object(value, "status")
        return Delivery("duplicate" if status == "duplicate" else "pending")
    raise _BadReplyError("status: expected applied, duplicate or pending")


def _stream_entry(value: object) -> StreamEntry | None:
    if not isinstance(value, dict):
        raise _BadReplyError("expected a JSON object")
    kind = value.get("type")
    if kind in ("transfer", "withdrawal"):
        body = _object(value, "type", "log_index", "certificate")
        return _indexed({"log_index": body["log_index"], "certificate": body["certificate"]})
    if kind == "caught_up":
        return CaughtUp(_uint64(_object(value, "type", "tree_size")["tree_size"], "tree_size"))
    if kind == "deposit":
        return None  # a deposit credit: not a payment
    raise _BadReplyError("type: expected transfer, withdrawal, deposit or caught_up")


# ---------------------------------------------------------------- the API over JSON


class JsonTransport(ABC):
    """:class:`Transport` over the node API's paths and JSON; a subclass moves the bytes
    (:meth:`_request`, :meth:`_frames`)."""

    @abstractmethod
    async def _request(
        self, method: Literal["GET", "POST"], endpoint: str, path: str, body: object | None
    ) -> tuple[int, bytes]:
        """The status and the body of one request; raises NodeUnavailable."""

    @abstractmethod
    def _frames(self, endpoint: str, path: str) -> AsyncIterator[bytes]:
        """The text frames of a WebSocket; raises NodeUnavailable when it breaks."""

    async def close(self) -> None:  # noqa: B027 (nothing to release by default)
        """Releases the connections (a no-op unless the subclass holds any)."""

    async def _call(
        self,
        method: Literal["GET", "POST"],
        endpoint: str,
        path: str,
        body: object | None = None,
        *,
        ok: tuple[int, ...] = (200,),
    ) -> tuple[int, object]:
        status, raw = await self._request(method, endpoint, path, body)
        try:
            reply = loads_bounded(raw)
        except ValueError:
            raise NodeMisbehaved(endpoint, f"{path}: HTTP {status}, not JSON") from None
        if status not in ok:
            raise NodeMisbehaved(endpoint, f"{path}: unexpected HTTP {status}")
        return status, reply

    def _fault(self, endpoint: str, path: str, exc: Exception) -> NodeMisbehaved:
        problem = exc.problem if isinstance(exc, EncodingError) else str(exc)
        if isinstance(exc, EncodingError):
            problem = f"{exc.field}: {problem}"
        return NodeMisbehaved(endpoint, f"{path}: malformed reply ({problem})")

    async def post_order(self, endpoint: str, signed: SignedOrder) -> Vote | Refusal:
        path = "/v1/orders"
        status, reply = await self._call(
            "POST", endpoint, path, wire.signed_order_to_json(signed), ok=(200, 409, 422)
        )
        try:
            if status == 200:
                return wire.vote_from_json(_object(reply, "vote")["vote"])
            return _refusal(reply)
        except (_BadReplyError, EncodingError) as exc:
            raise self._fault(endpoint, path, exc) from None

    async def post_certificate(self, endpoint: str, certificate: Certificate) -> Delivery | Refusal:
        path = "/v1/certificates"
        status, reply = await self._call(
            "POST", endpoint, path, wire.certificate_to_json(certificate), ok=(200, 409, 422)
        )
        try:
            return _delivery(reply) if status == 200 else _refusal(reply)
        except (_BadReplyError, EncodingError) as exc:
            raise self._fault(endpoint, path, exc) from None

    async def get_account(self, endpoint: str, address: Address) -> AccountState:
        path = f"/v1/accounts/{address_hex(address)}"
        _, reply = await self._call("GET", endpoint, path)
        try:
            return _account(reply, address)
        except (_BadReplyError, EncodingError) as exc:
            raise self._fault(endpoint, path, exc) from None

    async def get_certificate(self, endpoint: str, digest: Hash32) -> IndexedCertificate | None:
        path = f"/v1/certificates/{hash_hex(digest)}"
        status, reply = await self._call("GET", endpoint, path, ok=(200, 404))
        if status == 404:
            return None
        try:
            return _indexed(reply)
        except (_BadReplyError, EncodingError) as exc:
            raise self._fault(endpoint, path, exc) from None

    async def get_account_certificates(
        self, endpoint: str, address: Address, first: int, last: int
    ) -> list[Certificate]:
        path = f"/v1/accounts/{address_hex(address)}/certificates?first={first}&last={last}"
        _, reply = await self._call("GET", endpoint, path)
        try:
            items = _list(_object(reply, "certificates")["certificates"], "certificates", 256)
            return [wire.certificate_from_json(item) for item in items]
        except (_BadReplyError, EncodingError) as exc:
            raise self._fault(endpoint, path, exc) from None

    async def get_log_certificates(
        self, endpoint: str, start: int, end: int
    ) -> tuple[list[IndexedCertificate], int]:
        path = f"/v1/log/certificates?start={start}&end={end}"
        _, reply = await self._call("GET", endpoint, path)
        try:
            body = _object(reply, "certificates", "tree_size")
            items = _list(body["certificates"], "certificates", 256)
            return [_indexed(item) for item in items], _uint64(body["tree_size"], "tree_size")
        except (_BadReplyError, EncodingError) as exc:
            raise self._fault(endpoint, path, exc) from None

    async def get_log_size(self, endpoint: str) -> int:
        path = "/v1/log/head"
        _, reply = await self._call("GET", endpoint, path)
        try:
            body = _object(reply, "tree_size", "root")
            parse_hash32(_str(body["root"]), field="root")
            return _uint64(body["tree_size"], "tree_size")
        except (_BadReplyError, EncodingError) as exc:
            raise self._fault(endpoint, path, exc) from None

    async def get_checkpoint(self, endpoint: str) -> SignedCheckpoint | None:
        path = "/v1/log/checkpoint"
        status, reply = await self._call("GET", endpoint, path, ok=(200, 404))
        if status == 404:
            return None
        try:
            return SignedCheckpoint(*wire.signed_checkpoint_from_json(reply))
        except (_BadReplyError, EncodingError) as exc:
            raise self._fault(endpoint, path, exc) from None

    async def get_inclusion_proof(self, endpoint: str, index: int, size: int) -> tuple[Hash32, ...]:
        path = f"/v1/log/inclusion?index={index}&size={size}"
        _, reply = await self._call("GET", endpoint, path)
        try:
            body = _object(reply, "index", "tree_size", "proof")
            if body["index"] != index or body["tree_size"] != size:
                raise _BadReplyError("a proof of another leaf or tree")
            hashes = _list(body["proof"], "proof", 64)
            return tuple(parse_hash32(_str(h), field="proof") for h in hashes)
        except (_BadReplyError, EncodingError) as exc:
            raise self._fault(endpoint, path, exc) from None

    async def stream_account(
        self, endpoint: str, address: Address, from_index: int | None
    ) -> AsyncIterator[StreamEntry]:
        path = f"/v1/accounts/{address_hex(address)}/stream"
        if from_index is not None:
            path += f"?from_index={from_index}"
        async for frame in self._frames(endpoint, path):
            try:
                entry = _stream_entry(loads_bounded(frame))
            except (ValueError, _BadReplyError) as exc:
                raise self._fault(endpoint, path, exc) from None
            if entry is not None:
                yield entry


class HttpTransport(JsonTransport):
    """The node API over HTTP: one :class:`aiohttp.ClientSession` (keep-alive connections
    to every node), a total ``timeout`` per request, replies read up to
    :data:`MAX_REPLY_BYTES`. Close it (``await transport.close()``, or ``async with``)."""

    def __init__(self, *, timeout: float = 5.0, connections: int = 64) -> None:
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._connections = connections
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=self._timeout,
                connector=aiohttp.TCPConnector(limit=self._connections),
                headers={"Accept": "application/json"},
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> HttpTransport:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _request(
        self, method: Literal["GET", "POST"], endpoint: str, path: str, body: object | None
    ) -> tuple[int, bytes]:
        session = self._open()
        try:
            async with session.request(method, endpoint + path, json=body) as reply:
                data = await read_capped(reply.content, MAX_REPLY_BYTES)
                if data is None:
                    raise NodeMisbehaved(endpoint, f"{path}: reply over {MAX_REPLY_BYTES} bytes")
                return reply.status, data
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise NodeUnavailable(endpoint, f"{path}: {type(exc).__name__}") from None

    async def _frames(self, endpoint: str, path: str) -> AsyncIterator[bytes]:
        session = self._open()
        try:
            async with session.ws_connect(
                endpoint + path, max_msg_size=MAX_FRAME_BYTES, heartbeat=30
            ) as ws:
                async for message in ws:
                    if message.type is aiohttp.WSMsgType.TEXT:
                        yield message.data.encode()
                    elif message.type is aiohttp.WSMsgType.BINARY:
                        raise NodeMisbehaved(endpoint, f"{path}: a binary frame")
                    else:
                        break
                raise NodeUnavailable(endpoint, f"{path}: stream closed ({ws.close_code})")
        except aiohttp.WSServerHandshakeError as exc:
            raise NodeUnavailable(endpoint, f"{path}: refused (HTTP {exc.status})") from None
        except (aiohttp.ClientError, TimeoutError, OSError, asyncio.IncompleteReadError) as exc:
            raise NodeUnavailable(endpoint, f"{path}: {type(exc).__name__}") from None
