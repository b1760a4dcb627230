"""wallet.jsontext.loads_bounded: the one place network JSON is parsed with the nesting
bound (the bound itself is tested against a reference walk in test_agent_fuzz.py)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from wallet.jsontext import MAX_JSON_DEPTH, TooDeep, loads_bounded


@pytest.mark.parametrize("kind", [str, bytes, bytearray])
def test_nesting_up_to_the_bound_parses_and_beyond_is_refused(kind: type) -> None:
    def text(depth: int) -> str | bytes | bytearray:
        body = "[" * depth + "]" * depth
        return body if kind is str else kind(body.encode())

    value = loads_bounded(text(MAX_JSON_DEPTH))
    for _ in range(MAX_JSON_DEPTH - 1):
        (value,) = value
    assert value == []
    with pytest.raises(TooDeep, match=f"nested more than {MAX_JSON_DEPTH} deep"):
        loads_bounded(text(MAX_JSON_DEPTH + 1))
    with pytest.raises(TooDeep):  # what once crashed a process, refused before parsing
        loads_bounded(text(100_000))
    assert issubclass(TooDeep, ValueError)  # callers catching ValueError still refuse it


def test_bytes_must_be_utf8_and_options_reach_json_loads() -> None:
    with pytest.raises(UnicodeDecodeError):
        loads_bounded(b'{"a": "\xff"}')
    with pytest.raises(UnicodeDecodeError):  # no other encoding guessed (json.loads would)
        loads_bounded('{"a": 1}'.encode("utf-16"))
    assert loads_bounded(b'{"a": 1.5}', parse_float=Decimal) == {"a": Decimal("1.5")}
    assert loads_bounded('["\\ud800"]') == ["\ud800"]  # escaped: a string like any other
    assert loads_bounded('["[[[["]') == ["[[[["]  # brackets in strings do not nest
