"""Bech32 (BIP-173) text, without BIP-173's 90-character limit.

uAgents writes its identifiers in bech32 with the **original** BIP-173 checksum (not
BIP-350's bech32m): ``agent1...`` addresses (65 characters, the 33-byte compressed public
key) and ``sig1...`` signatures (113 characters, 64 bytes ``r ‖ s``). The second is longer
than the 90 characters BIP-173 allows for segwit addresses, so this codec has no overall
limit by default; a caller that reads text from the network passes ``max_length`` (or checks
the exact length it expects) before decoding.

The rules otherwise are BIP-173's:

- a human-readable part (HRP) of 1 to 83 characters in US-ASCII 33..126, the separator
  ``1`` (the last ``1`` in the text), then the data part of at least 6 characters from
  :data:`CHARSET`, the last 6 being the checksum;
- upper case or lower case, never mixed; the output is always lower case;
- when 5-bit words are read back as bytes, the padding is at most 4 bits and all zero.

The checksum detects any error of up to 4 characters only within 89 characters; longer
strings (signatures) still detect almost all errors, just without that guarantee.

Errors are :class:`~wallet.errors.EncodingError` naming ``field``; they give positions,
never the text itself (it may be a secret pasted into the wrong place).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from wallet.errors import EncodingError

#: The 32 characters of the data part, in the order of their 5-bit values.
CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
#: BIP-173's limit on the human-readable part.
MAX_HRP_LENGTH = 83
#: BIP-173's limit on a whole segwit address (not applied unless asked for).
BIP173_MAX_LENGTH = 90
CHECKSUM_LENGTH = 6

_CHARSET_REV = {c: i for i, c in enumerate(CHARSET)}
_GENERATOR = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)
_BECH32_CONST = 1  # bech32m would be 0x2BC830A3


def _polymod(values: Iterable[int]) -> int:
    check = 1
    for value in values:
        top = check >> 25
        check = (check & 0x1FFFFFF) << 5 ^ value
        for i, generator in enumerate(_GENERATOR):
            if (top >> i) & 1:
                check ^= generator
    return check


def _hrp_expand(hrp: str) -> list[int]:
    return [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]


def _create_checksum(hrp: str, words: Sequence[int]) -> list[int]:
    polymod = _polymod([*_hrp_expand(hrp), *words, 0, 0, 0, 0, 0, 0]) ^ _BECH32_CONST
    return [(polymod >> 5 * (5 - i)) & 31 for i in range(CHECKSUM_LENGTH)]


def _check_hrp(hrp: str, field: str) -> None:
    if not isinstance(hrp, str) or not 1 <= len(hrp) <= MAX_HRP_LENGTH:
        raise EncodingError(field, f"the prefix must be 1 to {MAX_HRP_LENGTH} characters")
    for position, char in enumerate(hrp):
        if not 33 <= ord(char) <= 126:
            raise EncodingError(field, f"prefix character {position} is not US-ASCII 33..126")


def convert_bits(data: Iterable[int], from_bits: int, to_bits: int, *, pad: bool) -> list[int]:
    """Regroups a sequence of ``from_bits``-bit values into ``to_bits``-bit values, big
    endian. With ``pad`` the last group is padded with zeros; without it, the leftover
    bits must be fewer than ``from_bits`` and all zero (BIP-173's rule for reading 5-bit
    words back as bytes). Raises :class:`EncodingError` otherwise.
    """
    accumulator = 0
    bits = 0
    result: list[int] = []
    max_value = (1 << to_bits) - 1
    for value in data:
        if value < 0 or value >> from_bits:
            raise EncodingError("bech32", f"a value does not fit in {from_bits} bits")
        accumulator = (accumulator << from_bits) | value
        bits += from_bits
        while bits >= to_bits:
            bits -= to_bits
            result.append((accumulator >> bits) & max_value)
        accumulator &= (1 << bits) - 1
    if pad:
        if bits:
            result.append((accumulator << (to_bits - bits)) & max_value)
    elif bits >= from_bits or accumulator:
        raise EncodingError("bech32", "the data part has invalid padding")
    return result


def encode_words(hrp: str, words: Sequence[int], *, field: str = "bech32") -> str:
    """The bech32 text of the 5-bit values ``words`` under the prefix ``hrp`` (which must
    be lower case: BIP-173 text is written in lower case)."""
    _check_hrp(hrp, field)
    if hrp != hrp.lower():
        raise EncodingError(field, "the prefix must be lower case")
    if any(not 0 <= word < 32 for word in words):
        raise EncodingError(field, "a data word is not a 5-bit value")
    checksum = _create_checksum(hrp, words)
    return hrp + "1" + "".join(CHARSET[word] for word in [*words, *checksum])


def decode_words(
    text: str, *, field: str = "bech32", max_length: int | None = None
) -> tuple[str, list[int]]:
    """The prefix (lower case) and the 5-bit data words of bech32 ``text``, checksum
    removed. Raises :class:`EncodingError` naming ``field`` for anything BIP-173 refuses,
    apart from its 90-character limit (pass ``max_length`` to impose one)."""
    if not isinstance(text, str):
        raise EncodingError(field, f"expected text, got {type(text).__name__}")
    if max_length is not None and len(text) > max_length:
        raise EncodingError(field, f"longer than {max_length} characters ({len(text)})")
    for position, char in enumerate(text):
        if not 33 <= ord(char) <= 126:
            raise EncodingError(field, f"character {position} is not US-ASCII 33..126")
    lower = text.lower()
    if text != lower and text != text.upper():
        raise EncodingError(field, "mixes upper and lower case")
    separator = lower.rfind("1")
    if separator < 0:
        raise EncodingError(field, "no separator '1'")
    if separator == 0:
        raise EncodingError(field, "empty prefix")
    if separator > MAX_HRP_LENGTH:
        raise EncodingError(field, f"the prefix is longer than {MAX_HRP_LENGTH} characters")
    hrp, data = lower[:separator], lower[separator + 1 :]
    if len(data) < CHECKSUM_LENGTH:
        raise EncodingError(field, "the data part is shorter than the 6-character checksum")
    words = []
    for offset, char in enumerate(data):
        word = _CHARSET_REV.get(char)
        if word is None:
            position = separator + 1 + offset
            raise EncodingError(field, f"character {position} is not in the bech32 alphabet")
        words.append(word)
    if _polymod([*_hrp_expand(hrp), *words]) != _BECH32_CONST:
        raise EncodingError(field, "invalid bech32 checksum (a character is mistyped)")
    return hrp, words[:-CHECKSUM_LENGTH]


def bech32_encode(hrp: str, data: bytes, *, field: str = "bech32") -> str:
    """The bech32 text of the bytes ``data`` under the prefix ``hrp``: the bytes regrouped
    into 5-bit words (the last one zero-padded), then the checksum. No length limit."""
    if not isinstance(data, bytes):
        raise EncodingError(field, f"expected bytes, got {type(data).__name__}")
    return encode_words(hrp, convert_bits(data, 8, 5, pad=True), field=field)


def bech32_decode(
    text: str,
    *,
    hrp: str | None = None,
    field: str = "bech32",
    max_length: int | None = None,
) -> tuple[str, bytes]:
    """The prefix (lower case) and the bytes of bech32 ``text``.

    With ``hrp``, the prefix must be that one. Raises :class:`EncodingError` naming
    ``field``: a malformed string, a wrong checksum or prefix, or data words that are not
    whole bytes (more than 4 bits of padding, or padding that is not zero).
    """
    prefix, words = decode_words(text, field=field, max_length=max_length)
    if hrp is not None and prefix != hrp:
        raise EncodingError(field, f"expected the prefix {hrp!r}, got another")
    try:
        data = convert_bits(words, 5, 8, pad=False)
    except EncodingError as error:
        raise EncodingError(field, error.problem) from None
    return prefix, bytes(data)
