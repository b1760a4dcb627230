"""Text forms of the protocol's identifiers, for the edges (JSON, CLI, logs).

Inside Farthing identifiers are raw bytes (:mod:`wallet.types`); this module is the only
place that turns them into text and back:

- addresses: ``0x`` + 40 hex digits. Parsing accepts all-lower and all-upper case, and
  mixed case only when it is a valid EIP-55 checksum (a mistyped checksummed address is
  refused, not silently accepted). Output is always EIP-55.
- hashes: ``0x`` + 64 hex digits, any case on input, lower case on output.
- signatures: ``0x`` + 130 hex digits (``r ‖ s ‖ v``); parsing also checks the canonical
  form every Farthing signature must have (:func:`check_signature`).

Every ``parse_*`` also accepts the raw bytes of the right length (``bytes`` or a subclass
such as ``HexBytes``; the result is always plain ``bytes``). The prefix is ``0x`` exactly.
Errors never echo the input: the text may be a secret pasted into the wrong place.
"""

from __future__ import annotations

import functools

from wallet.errors import EncodingError, InvalidSignature
from wallet.keccak import keccak256
from wallet.types import Address, Hash32, Signature

#: The order of the secp256k1 group.
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
#: The largest ``s`` of a low-s (EIP-2) signature: ``s <= n // 2``.
SECP256K1_HALF_N = SECP256K1_N // 2

_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")
#: Byte maps for EIP-55: 0x20 for a lower-case hex letter / a hex digit 8-f, else 0.
_LETTER_BIT = bytes(0x20 if c in b"abcdef" else 0 for c in range(256))
_HIGH_NIBBLE_BIT = bytes(0x20 if c in b"89abcdef" else 0 for c in range(256))


def _hex_body(text: str, size: int) -> str | None:
    """The hex digits of ``0x`` + ``2 * size`` hex digits, or None if ``text`` is not that."""
    body = text[2:]
    if text[:2] != "0x" or len(body) != 2 * size or not _HEX_DIGITS.issuperset(body):
        return None
    return body


def _describe(value: object) -> str:
    """What ``value`` is, without its contents."""
    if isinstance(value, str):
        return f"text of {len(value)} characters"
    if isinstance(value, bytes):
        return f"{len(value)} bytes"
    return type(value).__name__


# ---------------------------------------------------------------- addresses


def parse_address(value: str | bytes, *, field: str = "address") -> Address:
    """An address from ``0x`` hex text (EIP-55 checked when mixed case) or 20 raw bytes.

    Raises :class:`EncodingError` naming ``field``.
    """
    if isinstance(value, str):
        body = _hex_body(value, 20)
        if body is None:
            raise EncodingError(field, f"expected 0x and 40 hex digits, got {_describe(value)}")
        raw = bytes.fromhex(body)
        if body != body.lower() and body != body.upper() and address_hex(Address(raw)) != value:
            raise EncodingError(field, "mixed-case address with an invalid EIP-55 checksum")
        return Address(raw)
    if isinstance(value, bytes) and len(value) == 20:
        return Address(bytes(value))
    raise EncodingError(field, f"expected 0x-hex text or 20 bytes, got {_describe(value)}")


def address_hex(address: Address) -> str:
    """The EIP-55 checksummed text of ``address``.

    EIP-55: hex digit ``i`` of the lower-case address is upper-cased when nibble ``i`` of
    ``keccak256(lower-case hex, as ASCII)`` is 8 or more.
    """
    if not isinstance(address, bytes) or len(address) != 20:
        raise EncodingError("address", f"expected 20 bytes, got {_describe(address)}")
    return _checksummed(bytes(address))


@functools.lru_cache(maxsize=8192)
def _checksummed(address: bytes) -> str:
    """:func:`address_hex` of 20 checked bytes. Cached: a node writes the same few
    addresses (members, tokens, busy agents) over and over, and each costs a keccak;
    bounded, so a flood of new addresses costs only the recomputation."""
    body = address.hex().encode("ascii")
    nibbles = keccak256(body).hex().encode("ascii")[:40]
    # All 40 characters at once (this is on the wire's hot path): bit 0x20 separates a-f
    # from A-F in ASCII, so flip it where the digit is a letter and the nibble is >= 8.
    flip = int.from_bytes(body.translate(_LETTER_BIT), "big") & int.from_bytes(
        nibbles.translate(_HIGH_NIBBLE_BIT), "big"
    )
    return "0x" + (int.from_bytes(body, "big") ^ flip).to_bytes(40, "big").decode("ascii")


# ---------------------------------------------------------------- hashes


def parse_hash32(value: str | bytes, *, field: str = "hash") -> Hash32:
    """A 32-byte hash from ``0x`` + 64 hex digits (any case) or 32 raw bytes."""
    if isinstance(value, str):
        body = _hex_body(value, 32)
        if body is None:
            raise EncodingError(field, f"expected 0x and 64 hex digits, got {_describe(value)}")
        return Hash32(bytes.fromhex(body))
    if isinstance(value, bytes) and len(value) == 32:
        return Hash32(bytes(value))
    raise EncodingError(field, f"expected 0x-hex text or 32 bytes, got {_describe(value)}")


def hash_hex(value: Hash32) -> str:
    """``0x`` + the 64 lower-case hex digits of a 32-byte hash."""
    if not isinstance(value, bytes) or len(value) != 32:
        raise EncodingError("hash", f"expected 32 bytes, got {_describe(value)}")
    return "0x" + value.hex()


# ---------------------------------------------------------------- signatures


def check_signature(signature: bytes) -> Signature:
    """``signature`` itself if it has the canonical Farthing form, else InvalidSignature.

    The form (docs/protocol.md, "Signatures"): 65 bytes ``r ‖ s ‖ v`` with
    ``0 < r < n``, ``0 < s <= n // 2`` (low s, EIP-2) and ``v`` in {27, 28}. It does not
    say whether the signature recovers to anybody: :func:`wallet.signing.recover` does.
    """
    if not isinstance(signature, bytes) or len(signature) != 65:
        raise InvalidSignature(f"expected 65 bytes r ‖ s ‖ v, got {_describe(signature)}")
    v = signature[64]
    if v != 27 and v != 28:
        raise InvalidSignature(f"v must be 27 or 28, got {v}")
    r = int.from_bytes(signature[:32], "big")
    if not 0 < r < SECP256K1_N:
        raise InvalidSignature("r out of range: must be 0 < r < n")
    s = int.from_bytes(signature[32:64], "big")
    if not 0 < s <= SECP256K1_HALF_N:
        if s > SECP256K1_HALF_N and s < SECP256K1_N:
            raise InvalidSignature("high s: malleable signature, s must be <= n/2 (EIP-2)")
        raise InvalidSignature("s out of range: must be 0 < s <= n/2")
    return Signature(bytes(signature))


def parse_signature(value: str | bytes) -> Signature:
    """A signature from ``0x`` + 130 hex digits or 65 raw bytes, in canonical form.

    Raises :class:`InvalidSignature` (malformed text, or a non-canonical signature).
    """
    if isinstance(value, str):
        body = _hex_body(value, 65)
        if body is None:
            raise InvalidSignature(f"expected 0x and 130 hex digits, got {_describe(value)}")
        return check_signature(bytes.fromhex(body))
    return check_signature(value)


def signature_hex(signature: Signature) -> str:
    """``0x`` + the 130 lower-case hex digits of ``r ‖ s ‖ v``."""
    if not isinstance(signature, bytes) or len(signature) != 65:
        raise InvalidSignature(f"expected 65 bytes r ‖ s ‖ v, got {_describe(signature)}")
    return "0x" + signature.hex()
