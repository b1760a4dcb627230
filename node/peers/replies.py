"""Reading peers' replies: size-limited, and checked before anything in them is used.

Every function here raises :class:`BadReplyError` for a reply that cannot be used; the client
logs it and moves on (a peer's bad answer never reaches the caller as an exception).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from typing import Any

import aiohttp

from node.state.entries import DEPOSIT, TRANSFER, WITHDRAWAL
from wallet import wire
from wallet.codec import parse_hash32
from wallet.errors import EncodingError
from wallet.jsontext import TooDeep, loads_bounded
from wallet.types import Address, Certificate, Hash32

log = logging.getLogger("farthing.node.peers")

# The size of each kind of log entry (docs/protocol.md "Log entries").
_LEAF_SIZES = {
    bytes([DEPOSIT]): 1 + 8 + 20 + 20 + 32,
    bytes([TRANSFER]): 1 + 32,
    bytes([WITHDRAWAL]): 1 + 32,
}


class BadReplyError(Exception):
    """A peer answered with something unusable (HTTP error, too large, not JSON, wrong
    shape, a certificate that does not decode). The peer's fault; never leaves the
    package."""


async def read_json(response: aiohttp.ClientResponse, limit: int) -> Any:
    """The JSON body of ``response``, reading at most ``limit`` bytes of it."""
    length = response.content_length
    if length is not None and length > limit:
        raise BadReplyError(f"the reply has {length} bytes, more than the limit of {limit}")
    body = bytearray()
    async for chunk in response.content.iter_any():
        body += chunk
        if len(body) > limit:
            raise BadReplyError(f"the reply is longer than the limit of {limit} bytes")
    try:
        return loads_bounded(body)
    except TooDeep as exc:
        raise BadReplyError(f"the reply is {exc}") from None
    except ValueError:
        raise BadReplyError("the reply is not JSON") from None


def _field(reply: Any, key: str, kind: type) -> Any:
    if not isinstance(reply, dict) or not isinstance(reply.get(key), kind):
        raise BadReplyError(f"expected an object with {key!r} ({kind.__name__})")
    return reply[key]


def _uint(value: Any, name: str) -> int:
    if type(value) is not int or value < 0:
        raise BadReplyError(f"{name} is not a non-negative integer")
    return value


def _certificate(item: Any) -> Certificate:
    try:
        return wire.certificate_from_json(item)
    except EncodingError as exc:
        raise BadReplyError(f"a certificate does not decode: {exc}") from None


def tree_size(reply: Any) -> int:
    """``tree_size`` of a ``/v1/log/head`` reply."""
    return _uint(_field(reply, "tree_size", int), "tree_size")


def account_certificates(reply: Any, account: Address, first: int, last: int) -> list[Certificate]:
    """The certificates of a ``/v1/accounts/{account}/certificates`` reply, which must be
    ``account``'s at consecutive sequences from ``first`` (at most up to ``last``)."""
    items = _field(reply, "certificates", list)
    if len(items) > last - first + 1:
        raise BadReplyError(f"{len(items)} certificates for {last - first + 1} sequences")
    certificates = []
    for offset, item in enumerate(items):
        certificate = _certificate(item)
        order = certificate.order
        if order.owner != account or order.sequence != first + offset:
            raise BadReplyError(f"certificate {offset} is for another account or sequence")
        certificates.append(certificate)
    return certificates


def entry_page(reply: Any, start: int, end: int) -> tuple[list[bytes], int]:
    """The leaves of log entries ``start``..``end - 1`` in a ``/v1/log/entries?start=&end=``
    reply, each checked to be a deposit's or an order's, and the peer's tree size."""
    items = _field(reply, "entries", list)
    size = _uint(_field(reply, "tree_size", int), "tree_size")
    if size < end or len(items) != end - start:
        raise BadReplyError(f"{len(items)} entries for [{start}, {end}) of {size}")
    leaves: list[bytes] = []
    for index, item in enumerate(items, start):
        if _uint(_field(item, "index", int), "index") != index:
            raise BadReplyError(f"entry {index} is out of order")
        text = _field(item, "leaf", str)
        try:
            leaf = bytes.fromhex(text[2:]) if text[:2] == "0x" else b""
        except ValueError:
            leaf = b""
        # (fromhex also skips spaces: the length of the text is checked too.)
        if len(text) != 2 + 2 * len(leaf) or len(leaf) != _LEAF_SIZES.get(leaf[:1], -1):
            raise BadReplyError(f"entry {index} is not a log entry")
        leaves.append(leaf)
    return leaves, size


def unknown_orders(leaves: list[bytes], start: int, known: Callable[[Hash32], bool]) -> list[int]:
    """The log indices of the orders among ``leaves`` (entries from ``start``, as
    :func:`entry_page` gives them) whose digest is not ``known``; deposits are skipped
    (they come from the chain)."""
    return [
        index
        for index, leaf in enumerate(leaves, start)
        if leaf[0] != DEPOSIT and not known(Hash32(leaf[1:]))
    ]


def unknown_digests(reply: Any, offered: list[Hash32]) -> set[Hash32]:
    """The digests of a ``/v1/certificates/unknown`` reply: a subset of ``offered``."""
    items = _field(reply, "unknown", list)
    unknown: set[Hash32] = set()
    for item in items:
        try:
            unknown.add(parse_hash32(item))
        except EncodingError:
            raise BadReplyError("an unknown digest is not a hash") from None
    if not unknown.issubset(offered):
        raise BadReplyError("the peer lacks digests it was not offered")
    return unknown


def log_page(
    reply: Any, start: int, end: int, peer: str
) -> tuple[list[tuple[int, Certificate]], int]:
    """The certificates of a ``/v1/log/certificates?start=&end=`` reply with their log
    indices, in log order, and the peer's tree size. An entry that does not decode is
    logged and skipped."""
    items = _field(reply, "certificates", list)
    size = _uint(_field(reply, "tree_size", int), "tree_size")
    if size < end or len(items) > end - start:
        raise BadReplyError(f"a page of {len(items)} entries for [{start}, {end}) of {size}")
    certificates: list[tuple[int, Certificate]] = []
    previous = start - 1
    for item in items:
        index = _uint(_field(item, "log_index", int), "log_index")
        if not previous < index < end:
            raise BadReplyError(f"log index {index} is out of order or outside [{start}, {end})")
        previous = index
        try:
            certificates.append((index, _certificate(_field(item, "certificate", dict))))
        except BadReplyError as exc:
            log.warning("peer %s: skipping log entry %d: %s", peer, index, exc)
    return certificates, size


def batch_refusals(reply: Any, count: int) -> Counter[str]:
    """How many items of a pushed batch each refusal code got (``duplicate`` and
    ``pending`` are successes, not refusals)."""
    results = _field(reply, "results", list)
    if len(results) != count:
        raise BadReplyError(f"{len(results)} results for a batch of {count}")
    codes: Counter[str] = Counter()
    for result in results:
        error = result.get("error") if isinstance(result, dict) else None
        if isinstance(error, dict):
            code = error.get("code")
            codes[code[:40] if isinstance(code, str) else "?"] += 1
    return codes
