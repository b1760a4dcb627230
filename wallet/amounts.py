"""Exact token amounts: parsing, formatting and the registry of tokens.

Rule 1: no float anywhere. An amount is an ``int`` of the token's base units (USDF: 6
decimals, FAR: 18), or text in the token's own units ("0.0025 USDF", "1.5 FAR") that is
turned into base units by integer arithmetic on its digits. A ``float`` argument is
refused with :class:`~wallet.errors.AmountTypeError` (a ``TypeError``), never converted.

Rule 2: never round. Text with more fractional digits than the token has is refused
("0.0000001 USDF" has 7, USDF has 6), unless the extra digits are zeros (nothing is lost).

The syntax, exactly (:func:`parse_units`, :meth:`TokenRegistry.parse`):

- a decimal: ASCII digits, optionally ``.`` and at least one more digit (``12``,
  ``0.0025``, ``007.50``). No sign, exponent, underscore, thousands separator, leading
  ``.`` or trailing ``.``; no whitespace around it; at most 100 characters;
- with a token: the decimal, one ASCII space, the token's symbol (any case:
  ``1.5 FAR``, ``1.5 far``);
- base units: a Python ``int`` (``registry.parse(2_500, token="USDF")`` is 0.0025 USDF);
  from text, :func:`parse_base_units` (ASCII digits only) is the CLI's way to read one.

Every result is ``0 <= base units <= 2**256 - 1``; ``positive=True`` also refuses zero
(a payment needs a positive amount). :func:`format_units` is the canonical text back:
no exponent, trailing zeros trimmed, no trailing ``.``; ``parse(format(x)) == x``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from wallet.codec import address_hex, parse_address
from wallet.errors import AmountTypeError, EncodingError, InvalidAmount, UnknownToken
from wallet.types import UINT256_MAX, Address, Amount

#: The most decimals a token may have: 10**77 is the largest power of ten below 2**256.
MAX_DECIMALS = 77
#: Longer amount text is refused before any arithmetic (no amount needs more).
MAX_TEXT_LENGTH = 100

_DECIMAL = re.compile(r"([0-9]+)(?:\.([0-9]+))?", re.ASCII)
_SYMBOL = re.compile(r"[A-Za-z][A-Za-z0-9]{0,15}", re.ASCII)
_DIGITS = re.compile(r"[0-9]+", re.ASCII)


@dataclass(frozen=True, slots=True)
class Token:
    """A token the wallet can pay with: its contract ``address``, ``symbol`` and
    ``decimals``. ``usd_peg`` marks a USD stablecoin (USDF), valued 1:1 in USD; any other
    token is valued at the price feed (docs/protocol.md section 3)."""

    address: Address
    symbol: str
    decimals: int
    usd_peg: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.address, bytes) or len(self.address) != 20:
            raise EncodingError("token.address", "expected 20 bytes")
        if not isinstance(self.symbol, str) or _SYMBOL.fullmatch(self.symbol) is None:
            raise EncodingError("token.symbol", "expected a letter then up to 15 letters/digits")
        if type(self.decimals) is not int or not 0 <= self.decimals <= MAX_DECIMALS:
            raise EncodingError("token.decimals", f"expected an int from 0 to {MAX_DECIMALS}")

    def __str__(self) -> str:
        return f"{self.symbol} ({address_hex(self.address)}, {self.decimals} decimals)"


@dataclass(frozen=True, slots=True)
class TokenAmount:
    """``units`` base units of ``token``; ``str()`` gives the canonical "0.0025 USDF"."""

    token: Token
    units: Amount

    def __post_init__(self) -> None:
        _check_units(self.units, "amount")

    def __str__(self) -> str:
        return f"{format_units(self.units, self.token.decimals)} {self.token.symbol}"

    @property
    def decimal(self) -> str:
        """The amount in the token's units, without the symbol ("0.0025")."""
        return format_units(self.units, self.token.decimals)


def _check_units(units: object, field: str) -> int:
    if isinstance(units, float):
        raise AmountTypeError(field, "a float is inexact: give an int of base units")
    if type(units) is not int:
        raise AmountTypeError(field, f"expected an int of base units, got {type(units).__name__}")
    if units < 0:
        raise InvalidAmount(field, "negative")
    if units > UINT256_MAX:
        raise InvalidAmount(field, "above 2**256 - 1 base units")
    return units


def _describe_bad_decimal(text: str) -> str:
    """Why ``text`` is not a decimal (never echoing it: it may be a secret pasted wrongly)."""
    if text != text.strip():
        return "whitespace around the number"
    if text.startswith("-"):
        return "negative"
    if text.startswith("+"):
        return "a sign is not allowed"
    if re.fullmatch(r"[0-9.]*[eE][+-]?[0-9]*", text, re.ASCII):
        return "exponent notation is not allowed: write the digits out"
    if text.lower() in {"nan", "inf", "infinity"}:
        return "not a number"
    if "_" in text or "," in text:
        return "separators ('_' or ',') are not allowed"
    if text.startswith(".") or text.endswith("."):
        return "a digit is needed on both sides of '.'"
    if not text:
        return "empty"
    return "expected ASCII digits with an optional '.' and fraction"


def parse_units(
    text: str, decimals: int, *, positive: bool = False, field: str = "amount"
) -> Amount:
    """The base units of decimal ``text`` for a token with ``decimals`` decimals
    ("0.0025", 6 -> 2500). Raises :class:`InvalidAmount` on anything but the syntax of
    the module docstring, on precision the token does not have, or above uint256."""
    value: object = text
    if isinstance(value, float):
        raise AmountTypeError(field, "a float is inexact: give a decimal string")
    if not isinstance(value, str):
        raise AmountTypeError(field, f"expected decimal text, got {type(value).__name__}")
    if type(decimals) is not int or not 0 <= decimals <= MAX_DECIMALS:
        raise InvalidAmount(field, f"decimals must be an int from 0 to {MAX_DECIMALS}")
    if len(text) > MAX_TEXT_LENGTH:
        raise InvalidAmount(field, f"longer than {MAX_TEXT_LENGTH} characters")
    match = _DECIMAL.fullmatch(text)
    if match is None:
        raise InvalidAmount(field, _describe_bad_decimal(text))
    whole, fraction = match.group(1), (match.group(2) or "").rstrip("0")
    if len(fraction) > decimals:
        raise InvalidAmount(
            field,
            f"{len(fraction)} decimal places, the token has {decimals}: refused, not rounded",
        )
    units = int(whole) * 10**decimals + int(fraction.ljust(decimals, "0") or "0")
    if units > UINT256_MAX:
        raise InvalidAmount(field, "above 2**256 - 1 base units")
    if positive and units == 0:
        raise InvalidAmount(field, "zero: a positive amount is needed")
    return Amount(units)


def parse_base_units(text: str, *, positive: bool = False, field: str = "amount") -> Amount:
    """An integer of base units from text of ASCII digits only ("2500")."""
    if not isinstance(text, str):
        raise AmountTypeError(field, f"expected text of digits, got {type(text).__name__}")
    if len(text) > MAX_TEXT_LENGTH or _DIGITS.fullmatch(text) is None:
        reason = _describe_bad_decimal(text) if "." not in text else "base units have no '.'"
        raise InvalidAmount(field, reason)
    units = _check_units(int(text), field)
    if positive and units == 0:
        raise InvalidAmount(field, "zero: a positive amount is needed")
    return Amount(units)


def format_units(units: int, decimals: int) -> str:
    """The canonical decimal text of ``units`` base units (2500, 6 -> "0.0025")."""
    _check_units(units, "amount")
    if type(decimals) is not int or not 0 <= decimals <= MAX_DECIMALS:
        raise InvalidAmount("decimals", f"expected an int from 0 to {MAX_DECIMALS}")
    whole, fraction = divmod(units, 10**decimals)
    digits = str(fraction).rjust(decimals, "0").rstrip("0") if decimals else ""
    return f"{whole}.{digits}" if digits else str(whole)


class TokenRegistry:
    """The tokens a wallet knows, by address and by symbol (case-insensitive, unique)."""

    __slots__ = ("_by_address", "_by_symbol", "_tokens")

    def __init__(self, tokens: Iterable[Token]) -> None:
        self._tokens = tuple(tokens)
        self._by_address: dict[bytes, Token] = {}
        self._by_symbol: dict[str, Token] = {}
        for token in self._tokens:
            if not isinstance(token, Token):
                raise TypeError(f"expected Token, got {type(token).__name__}")
            if token.address in self._by_address:
                raise EncodingError("token.address", f"{token.symbol}: address registered twice")
            if token.symbol.upper() in self._by_symbol:
                raise EncodingError("token.symbol", f"{token.symbol}: symbol registered twice")
            self._by_address[token.address] = token
            self._by_symbol[token.symbol.upper()] = token

    @classmethod
    def from_triples(
        cls, triples: Iterable[tuple[str, str | bytes, int]], *, usd_pegged: Iterable[str] = ()
    ) -> TokenRegistry:
        """A registry from (symbol, address, decimals) triples; the symbols in
        ``usd_pegged`` are USD stablecoins."""
        pegged = {symbol.upper() for symbol in usd_pegged}
        tokens = [
            Token(
                parse_address(address, field="token.address"),
                symbol,
                decimals,
                usd_peg=isinstance(symbol, str) and symbol.upper() in pegged,
            )
            for symbol, address, decimals in triples
        ]
        unknown = pegged - {token.symbol.upper() for token in tokens}
        if unknown:
            raise UnknownToken(f"usd_pegged names no token: {', '.join(sorted(unknown))}")
        return cls(tokens)

    @classmethod
    def farthing(cls, *, stable: str | bytes, native: str | bytes) -> TokenRegistry:
        """Farthing's two tokens (docs/protocol.md section 2): USDF (6 decimals, USD
        pegged) and FAR (18), at the deployment's addresses (the manifest's
        ``contracts.stable`` and ``contracts.native``)."""
        return cls.from_triples([("USDF", stable, 6), ("FAR", native, 18)], usd_pegged=["USDF"])

    def __iter__(self) -> Iterator[Token]:
        return iter(self._tokens)

    def __len__(self) -> int:
        return len(self._tokens)

    def __contains__(self, token: object) -> bool:
        return isinstance(token, Token) and self._by_address.get(token.address) == token

    def __repr__(self) -> str:
        return f"TokenRegistry({', '.join(token.symbol for token in self._tokens)})"

    def by_symbol(self, symbol: str) -> Token:
        """The token called ``symbol`` (any case); :class:`UnknownToken` if none."""
        token = self._by_symbol.get(symbol.upper()) if isinstance(symbol, str) else None
        if token is None:
            shown = (
                repr(symbol) if isinstance(symbol, str) and _SYMBOL.fullmatch(symbol) else "that"
            )
            raise UnknownToken(f"no token with symbol {shown} in {self!r}")
        return token

    def by_address(self, address: str | bytes) -> Token:
        """The token at ``address`` (0x text or 20 bytes); :class:`UnknownToken` if none."""
        token = self._by_address.get(parse_address(address, field="token"))
        if token is None:
            raise UnknownToken(f"no token at {address_hex(parse_address(address))} in {self!r}")
        return token

    def _resolve(self, token: Token | str) -> Token:
        if isinstance(token, Token):
            if token not in self:
                raise UnknownToken(f"{token} is not in {self!r}")
            return token
        return self.by_symbol(token)

    def parse(
        self,
        value: str | int,
        *,
        token: Token | str | None = None,
        positive: bool = False,
        field: str = "amount",
    ) -> TokenAmount:
        """An exact amount of a registered token.

        - ``"0.0025 USDF"``: decimal text and the token's symbol;
        - ``"0.0025"`` with ``token=`` (a :class:`Token` or a symbol);
        - an ``int`` with ``token=``: base units (``2500`` is 0.0025 USDF).

        When both the text and ``token`` name a token they must agree. Raises
        :class:`InvalidAmount`, :class:`AmountTypeError` (a float) or :class:`UnknownToken`.
        """
        if isinstance(value, float):
            raise AmountTypeError(
                field, "a float is inexact: give a decimal string or an int of base units"
            )
        if isinstance(value, int) and not isinstance(value, bool):
            if token is None:
                raise InvalidAmount(field, "an int is base units: name the token too")
            resolved = self._resolve(token)
            units = _check_units(value, field)
            if positive and units == 0:
                raise InvalidAmount(field, "zero: a positive amount is needed")
            return TokenAmount(resolved, Amount(units))
        if not isinstance(value, str):
            raise AmountTypeError(
                field, f"expected decimal text or an int, got {type(value).__name__}"
            )
        if len(value) > MAX_TEXT_LENGTH + 20:
            raise InvalidAmount(field, f"longer than {MAX_TEXT_LENGTH} characters")
        if value != value.strip():
            raise InvalidAmount(field, "whitespace around the amount")
        number, space, symbol = value.partition(" ")
        if space:
            if _SYMBOL.fullmatch(symbol) is None:
                raise InvalidAmount(field, "expected '<decimal> <SYMBOL>' with one space")
            named = self.by_symbol(symbol)
            if token is not None and self._resolve(token) != named:
                raise InvalidAmount(
                    field, f"the text names {named.symbol}, {self._resolve(token).symbol} expected"
                )
            resolved = named
        elif token is None:
            raise InvalidAmount(field, "no token: write '<decimal> <SYMBOL>' or name the token")
        else:
            resolved = self._resolve(token)
        units = parse_units(number, resolved.decimals, positive=positive, field=field)
        return TokenAmount(resolved, units)

    def token_from_json(self, value: Any, *, field: str = "token") -> Token:
        """A token named by symbol in JSON."""
        if not isinstance(value, str):
            raise InvalidAmount(field, f"expected a token symbol, got {type(value).__name__}")
        try:
            return self.by_symbol(value)
        except UnknownToken as error:
            raise InvalidAmount(field, str(error)) from None
