"""JSON text from the network: the nesting bound to check before ``json.loads``.

``json.loads`` recurses in C once per level of nested arrays and objects, and stops at
Python's recursion limit. That limit is not ours to rely on: py_ecc (imported by web3
and eth-account) raises it to 100,000 on import, so in a node or an agent process a
body of 100,000 ``[`` overflows the C stack and kills the process (a segfault, not a
RecursionError). No protocol message nests deeper than a few levels, so bodies are
refused above :data:`MAX_JSON_DEPTH` before they are parsed.
"""

from __future__ import annotations

import itertools
import json
import operator
import re
from typing import Any, Final

#: The deepest nesting of arrays and objects a JSON body may have (the protocol's
#: messages nest at most 5 levels; an agent's envelope, 1).
MAX_JSON_DEPTH: Final = 64

#: A JSON string (its escapes included): brackets inside strings do not nest.
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKETS = bytes(c for c in range(256) if c not in b"[]{}")
#: Brackets as "(" and ")": json.loads recurses on the count of open brackets, whatever
#: their kind (a mismatch stops it with an error).
_PARENS = bytes.maketrans(b"[{]}", b"(())")
_OPENS = bytes.maketrans(b"()", b"\x01\x00")
_CLOSES = bytes.maketrans(b"()", b"\x00\x01")
#: Passes that drop the innermost pairs (a cheap C pass each) before the exact count.
_PASSES = 4


def nests_deeper_than(text: bytes | bytearray, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether JSON ``text`` (UTF-8: every byte of a multi-byte character is >= 0x80)
    nests arrays and objects more than ``limit`` deep, brackets inside strings aside.
    Exact for JSON; text that is not JSON may be counted deeper than it is (it is
    refused either way). At C speed: a count when there are few brackets; else, on the
    brackets alone, a few passes that each remove the innermost pairs (one level: the
    deepest pairs are innermost), then a running count that stops beyond the limit."""
    if text.count(b"[") + text.count(b"{") <= limit:
        return False
    skeleton = _STRING.sub(b"", text).translate(_PARENS, _NOT_BRACKETS)
    removed = 0
    while removed < _PASSES and skeleton:
        skeleton, removed = skeleton.replace(b"()", b""), removed + 1
    if not skeleton:  # emptied by the last pass: that many levels, exactly
        return removed > limit
    opened = itertools.accumulate(skeleton.translate(_OPENS))
    closed = itertools.accumulate(skeleton.translate(_CLOSES))
    depths = map(operator.sub, opened, closed)
    return next(filter((limit - removed).__lt__, depths), None) is not None


class TooDeep(ValueError):  # noqa: N818 (what the text is)
    """JSON text nested beyond :data:`MAX_JSON_DEPTH` (refused before parsing)."""


def loads_bounded(text: str | bytes | bytearray, **options: Any) -> Any:
    """``json.loads(text, **options)`` for text from the network: :class:`TooDeep` (a
    :class:`ValueError`, like every other refusal of ``json.loads``) for nesting beyond
    :data:`MAX_JSON_DEPTH`, checked first. Bytes must be UTF-8 (RFC 8259; else a
    :class:`UnicodeDecodeError`, also a ValueError): no other encoding is guessed."""
    if isinstance(text, str):
        if nests_deeper_than(text.encode("utf-8", "surrogatepass")):
            raise TooDeep(f"nested more than {MAX_JSON_DEPTH} deep")
        return json.loads(text, **options)
    if nests_deeper_than(text):
        raise TooDeep(f"nested more than {MAX_JSON_DEPTH} deep")
    return json.loads(text.decode("utf-8"), **options)


__all__ = ["MAX_JSON_DEPTH", "TooDeep", "loads_bounded", "nests_deeper_than"]
