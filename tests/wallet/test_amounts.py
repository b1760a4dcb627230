"""Exact amounts: the syntax accepted and refused, never a float, never rounding, and
round trips between base units and canonical text for both tokens' decimals."""

from __future__ import annotations

from decimal import Decimal, localcontext
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wallet.amounts import (
    MAX_DECIMALS,
    Token,
    TokenAmount,
    TokenRegistry,
    format_units,
    parse_base_units,
    parse_units,
)
from wallet.errors import (
    AmountTypeError,
    EncodingError,
    InvalidAmount,
    UnknownToken,
    WalletError,
)
from wallet.types import UINT256_MAX, Address, Amount

STABLE = "0x" + "11" * 20
NATIVE = "0x" + "22" * 20
TOKENS = TokenRegistry.farthing(stable=STABLE, native=NATIVE)
USDF = TOKENS.by_symbol("USDF")
FAR = TOKENS.by_symbol("FAR")


def test_farthing_tokens() -> None:
    assert (USDF.symbol, USDF.decimals, USDF.usd_peg) == ("USDF", 6, True)
    assert (FAR.symbol, FAR.decimals, FAR.usd_peg) == ("FAR", 18, False)
    assert USDF.address == bytes.fromhex("11" * 20)
    assert TOKENS.by_address(NATIVE) is FAR
    assert TOKENS.by_address(bytes.fromhex("22" * 20)) is FAR
    assert list(TOKENS) == [USDF, FAR]
    assert len(TOKENS) == 2
    assert USDF in TOKENS
    assert Token(Address(bytes(20)), "USDF", 6, True) not in TOKENS


@pytest.mark.parametrize(
    ("text", "token", "units"),
    [
        ("0.0025 USDF", USDF, 2_500),
        ("1.5 FAR", FAR, 1_500_000_000_000_000_000),
        ("1.5 far", FAR, 1_500_000_000_000_000_000),
        ("1 USDF", USDF, 1_000_000),
        ("0 USDF", USDF, 0),
        ("0.000001 USDF", USDF, 1),
        ("0.000000000000000001 FAR", FAR, 1),
        ("007.50 USDF", USDF, 7_500_000),
        ("0.2500000 USDF", USDF, 250_000),  # extra zeros lose nothing: accepted
        ("1000000 USDF", USDF, 10**12),
    ],
)
def test_parse_with_symbol(text: str, token: Token, units: int) -> None:
    amount = TOKENS.parse(text)
    assert amount == TokenAmount(token, Amount(units))
    assert type(amount.units) is int


def test_parse_bare_decimal_with_token_given() -> None:
    assert TOKENS.parse("0.0025", token=USDF).units == 2_500
    assert TOKENS.parse("0.0025", token="usdf").units == 2_500
    assert TOKENS.parse("0.0025 USDF", token="USDF").units == 2_500
    with pytest.raises(InvalidAmount, match="names FAR, USDF expected"):
        TOKENS.parse("1 FAR", token=USDF)
    with pytest.raises(InvalidAmount, match="no token"):
        TOKENS.parse("0.0025")


def test_an_int_is_base_units() -> None:
    assert TOKENS.parse(2_500, token="USDF") == TokenAmount(USDF, Amount(2_500))
    assert TOKENS.parse(UINT256_MAX, token=FAR).units == UINT256_MAX
    with pytest.raises(InvalidAmount, match="name the token"):
        TOKENS.parse(2_500)
    with pytest.raises(InvalidAmount, match="negative"):
        TOKENS.parse(-1, token=USDF)
    with pytest.raises(InvalidAmount, match="2\\*\\*256"):
        TOKENS.parse(UINT256_MAX + 1, token=USDF)
    with pytest.raises(InvalidAmount, match="positive"):
        TOKENS.parse(0, token=USDF, positive=True)


@pytest.mark.parametrize("value", [0.1, 1.0, float("nan"), float("inf")])
def test_floats_are_refused_everywhere(value: float) -> None:
    bad: Any = value
    with pytest.raises(AmountTypeError, match="float") as caught:
        TOKENS.parse(bad, token=USDF)
    assert isinstance(caught.value, TypeError)
    assert isinstance(caught.value, WalletError)
    with pytest.raises(AmountTypeError, match="float"):
        parse_units(bad, 6)
    with pytest.raises(AmountTypeError, match="float"):
        TokenAmount(USDF, bad)
    with pytest.raises(AmountTypeError, match="float"):
        format_units(bad, 6)


@pytest.mark.parametrize("value", [Decimal("0.1"), b"1", None, True, [1]])
def test_other_types_are_refused(value: Any) -> None:
    with pytest.raises(AmountTypeError):
        TOKENS.parse(value, token=USDF)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("0.0000001 USDF", "7 decimal places, the token has 6: refused, not rounded"),
        ("0.0000000000000000001 FAR", "19 decimal places, the token has 18"),
        ("-1 USDF", "negative"),
        ("-0 USDF", "negative"),
        ("+1 USDF", "sign"),
        ("1e3 USDF", "exponent"),
        ("1E-3 USDF", "exponent"),
        ("1.5e0 FAR", "exponent"),
        ("nan USDF", "not a number"),
        ("Infinity USDF", "not a number"),
        ("1_000 USDF", "separators"),
        ("1,000 USDF", "separators"),
        (".5 USDF", "both sides"),
        ("5. USDF", "both sides"),
        (" 1 USDF", "whitespace"),
        ("1 USDF ", "whitespace"),
        ("1 USDF\n", "whitespace"),
        ("1  USDF", "one space"),
        ("1\tUSDF", "no token: write '<decimal> <SYMBOL>'"),
        ("1.2.3 USDF", "expected ASCII digits"),
        ("\u0661 USDF", "expected ASCII digits"),  # an Arabic-Indic digit one
        ("0x10 USDF", "expected ASCII digits"),
        ("1 US DF", "one space"),
        (" USDF", "whitespace"),
        ("", "no token"),
        ("1" * 101 + " USDF", "longer than 100"),
        (str(UINT256_MAX + 1) + " FAR", "2\\*\\*256"),
        (f"{UINT256_MAX // 10**6 + 1} USDF", "2\\*\\*256"),
    ],
)
def test_bad_text_is_refused(text: str, problem: str) -> None:
    with pytest.raises(InvalidAmount, match=problem) as caught:
        TOKENS.parse(text)
    assert isinstance(caught.value, ValueError)
    assert isinstance(caught.value, EncodingError)
    assert caught.value.field == "amount"


def test_the_largest_amount_is_uint256_max() -> None:
    text = f"{format_units(UINT256_MAX, 6)} USDF"
    assert TOKENS.parse(text).units == UINT256_MAX


def test_zero_is_refused_where_a_positive_amount_is_needed() -> None:
    assert TOKENS.parse("0 USDF").units == 0
    for text in ("0 USDF", "0.000 USDF", "0.0000000 USDF"):
        with pytest.raises(InvalidAmount, match="positive"):
            TOKENS.parse(text, positive=True)


def test_unknown_tokens() -> None:
    with pytest.raises(UnknownToken, match="'XYZ'"):
        TOKENS.parse("1 XYZ")
    with pytest.raises(UnknownToken):
        TOKENS.parse("1", token="XYZ")
    with pytest.raises(UnknownToken):
        TOKENS.parse("1", token=Token(Address(bytes(20)), "ZZZ", 6))
    with pytest.raises(UnknownToken):
        TOKENS.by_address("0x" + "33" * 20)
    with pytest.raises(UnknownToken, match="symbol that in"):
        TOKENS.by_symbol("not a symbol")


def test_errors_never_echo_the_text() -> None:
    secret = "0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318"
    for text in (secret, f"{secret} USDF", f"1 {secret}"):
        with pytest.raises(WalletError) as caught:
            TOKENS.parse(text)
        assert secret[2:20] not in str(caught.value)


@pytest.mark.parametrize(
    ("units", "decimals", "text"),
    [
        (2_500, 6, "0.0025"),
        (0, 6, "0"),
        (1, 6, "0.000001"),
        (1_000_000, 6, "1"),
        (1_500_000, 6, "1.5"),
        (10**18, 18, "1"),
        (1, 18, "0.000000000000000001"),
        (123, 0, "123"),
        (UINT256_MAX, 18, str(UINT256_MAX)[:-18] + "." + str(UINT256_MAX)[-18:]),
    ],
)
def test_format_units(units: int, decimals: int, text: str) -> None:
    assert format_units(units, decimals) == text
    assert "e" not in text.lower()


def test_token_amount_text() -> None:
    assert str(TokenAmount(USDF, Amount(2_500))) == "0.0025 USDF"
    assert str(TokenAmount(FAR, Amount(1_500_000_000_000_000_000))) == "1.5 FAR"
    assert TokenAmount(FAR, Amount(10**17)).decimal == "0.1"


def test_parse_base_units() -> None:
    assert parse_base_units("2500") == 2_500
    assert parse_base_units(str(UINT256_MAX)) == UINT256_MAX
    for text, problem in [
        ("2.5", "no '.'"),
        ("-1", "negative"),
        (" 1", "whitespace"),
        ("1_0", "separators"),
        ("1e3", "exponent"),
        ("", "empty"),
        (str(UINT256_MAX + 1), "2\\*\\*256"),
    ]:
        with pytest.raises(InvalidAmount, match=problem):
            parse_base_units(text)
    with pytest.raises(InvalidAmount, match="positive"):
        parse_base_units("0", positive=True)


def test_tokens_are_validated() -> None:
    with pytest.raises(EncodingError, match=r"token.address"):
        Token(Address(bytes(19)), "USDF", 6)
    with pytest.raises(EncodingError, match=r"token.symbol"):
        Token(Address(bytes(20)), "US DF", 6)
    with pytest.raises(EncodingError, match=r"token.decimals"):
        Token(Address(bytes(20)), "USDF", MAX_DECIMALS + 1)
    bad: Any = True
    with pytest.raises(EncodingError, match=r"token.decimals"):
        Token(Address(bytes(20)), "USDF", bad)


def test_registry_refuses_duplicates_and_unknown_pegs() -> None:
    with pytest.raises(EncodingError, match="symbol registered twice"):
        TokenRegistry.from_triples([("USDF", STABLE, 6), ("usdf", NATIVE, 6)])
    with pytest.raises(EncodingError, match="address registered twice"):
        TokenRegistry.from_triples([("USDF", STABLE, 6), ("FAR", STABLE, 18)])
    with pytest.raises(UnknownToken, match="usd_pegged"):
        TokenRegistry.from_triples([("FAR", NATIVE, 18)], usd_pegged=["USDF"])
    registry = TokenRegistry.from_triples([("EURX", STABLE, 2)])
    assert registry.parse("12.34 EURX").units == 1_234
    assert not registry.by_symbol("EURX").usd_peg


# ---------------------------------------------------------------- properties

units = st.integers(min_value=0, max_value=UINT256_MAX)


@given(units)
def test_round_trip_usdf(value: int) -> None:
    amount = TokenAmount(USDF, Amount(value))
    assert TOKENS.parse(str(amount)) == amount
    assert TOKENS.parse(amount.decimal, token=USDF) == amount


@given(units)
def test_round_trip_far(value: int) -> None:
    amount = TokenAmount(FAR, Amount(value))
    assert TOKENS.parse(str(amount)) == amount


@given(units, st.integers(min_value=0, max_value=MAX_DECIMALS))
def test_round_trip_any_decimals(value: int, decimals: int) -> None:
    text = format_units(value, decimals)
    assert parse_units(text, decimals) == value
    assert text == text.strip() and "e" not in text
    assert "." not in text or not text.endswith(("0", "."))
    # The same value as Python's exact decimal arithmetic gives.
    with localcontext(prec=200):
        assert Decimal(text) == Decimal(value).scaleb(-decimals)


@given(st.text(max_size=30))
def test_any_text_parses_or_raises_a_wallet_error(text: str) -> None:
    try:
        amount = TOKENS.parse(text)
    except WalletError:
        return
    assert TOKENS.parse(str(amount)) == amount
