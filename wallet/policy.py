"""Spending policies: the rules a payment must pass before anything is signed.

Rule 1: pure. No clock, no network, no file: the time (``now``, Unix seconds) and the
price of the native token (a :class:`PriceReading` of the Chainlink-style feed,
docs/protocol.md section 3) come in as arguments. Loading and saving the policy's JSON
file are the only I/O, kept at the bottom of the module.

Rule 2: exact. Token amounts are base units (:mod:`wallet.amounts`); USD values are
integers in units of 10**-18 USD (:data:`USD_DECIMALS`). A stablecoin (``usd_peg``,
USDF) is worth its face value; the native token (FAR) is worth ``units * answer /
10**(token decimals + feed decimals)`` USD, rounded **up** to the next 10**-18 USD so
that rounding never lets a payment slip under a limit.

Theory of operation. :func:`check` runs the rules in this order and raises
:class:`~wallet.errors.PolicyRefused` at the first one that fails, naming the rule and,
for a limit, the figures (``limit``, ``attempted``, ``over_by``):

1. ``deny_list``: the payee is on the deny list;
2. ``allow_list``: an allow list is set and the payee is not on it;
3. ``max_per_payment``: the amount is above the token's own per-payment maximum;
4. (valuation: a non-pegged token needs a price, else :class:`PriceUnavailable`, or
   :class:`StalePrice` when ``now - updated_at > max_price_age``);
5. ``max_per_payment_usd``: the USD value is above the USD per-payment maximum;
6. ``payee_cap``: this payee's spend in the rolling window plus this payment is above its
   cap (its own, else the default cap);
7. ``budget``: the total spend in the rolling window plus this payment is above the budget.

Every limit is inclusive (paying exactly the limit passes). The rolling window at ``now``
holds the spends with ``time > now - period`` (a spend exactly ``period`` seconds old no
longer counts); pending reservations count like confirmed spends
(:class:`wallet.spend_ledger.SpendLedger`, which makes check-and-reserve atomic).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, NewType, NoReturn, Protocol

from wallet.amounts import (
    MAX_DECIMALS,
    Token,
    TokenAmount,
    TokenRegistry,
    format_units,
    parse_units,
)
from wallet.codec import address_hex, parse_address
from wallet.errors import EncodingError, InvalidAmount, PolicyRefused, PriceUnavailable, StalePrice
from wallet.types import ZERO_HASH, Address, Amount, Hash32

#: USD values are integers in units of 10**-USD_DECIMALS USD (exact for both tokens'
#: decimals and any feed's: 1 wei of FAR at 2.5 USD is 2.5e-18 USD, rounded up to 3).
USD_DECIMALS = 18
#: A USD value in units of 10**-18 USD.
UsdValue = NewType("UsdValue", int)

#: The version of the policy's JSON format.
POLICY_VERSION = 1

RULES = (
    "deny_list",
    "allow_list",
    "max_per_payment",
    "max_per_payment_usd",
    "payee_cap",
    "budget",
)


def parse_usd(text: str, *, field: str = "usd") -> UsdValue:
    """A USD value from decimal text ("10", "0.25"); at most 18 decimal places."""
    return UsdValue(parse_units(text, USD_DECIMALS, field=field))


def format_usd(value: int) -> str:
    """The canonical text of a USD value ("2.5 USD")."""
    return f"{format_units(value, USD_DECIMALS)} USD"


def _check_int(value: object, field: str, *, minimum: int = 0) -> int:
    if type(value) is not int or value < minimum:
        raise EncodingError(field, f"expected an int >= {minimum}, got {type(value).__name__}")
    return value


def _ceil_div(numerator: int, denominator: int) -> int:
    return -(-numerator // denominator)


@dataclass(frozen=True, slots=True)
class PriceReading:
    """One reading of the price feed (``latestRoundData``): one native token is worth
    ``answer / 10**decimals`` USD, published at ``updated_at`` (Unix seconds)."""

    answer: int
    decimals: int
    updated_at: int

    def __post_init__(self) -> None:
        if type(self.answer) is not int:
            raise EncodingError("price.answer", "expected an int (the feed's scaled answer)")
        _check_int(self.updated_at, "price.updated_at")
        if type(self.decimals) is not int or not 0 <= self.decimals <= MAX_DECIMALS:
            raise EncodingError("price.decimals", f"expected an int from 0 to {MAX_DECIMALS}")

    def __str__(self) -> str:
        shown = format_units(self.answer, self.decimals) if self.answer >= 0 else "negative"
        return f"{shown} USD at {self.updated_at}"


#: How far (seconds) a price reading may be dated after the wallet's clock: block times
#: and local clocks differ by a little, never by minutes.
MAX_PRICE_SKEW = 300


def usd_value(
    amount: TokenAmount, price: PriceReading | None, *, now: int, max_price_age: int
) -> UsdValue:
    """What ``amount`` is worth in USD (10**-18 units, rounded up).

    A ``usd_peg`` token is worth its face value and needs no price. Any other token is
    valued at ``price``: :class:`PriceUnavailable` when it is None or not positive, or
    dated more than :data:`MAX_PRICE_SKEW` seconds after ``now`` (a feed whose clock
    runs ahead would otherwise never go stale), :class:`StalePrice` when
    ``now - price.updated_at > max_price_age``.
    """
    token, units = amount.token, amount.units
    if token.usd_peg:
        return UsdValue(_ceil_div(units * 10**USD_DECIMALS, 10**token.decimals))
    if price is None:
        raise PriceUnavailable(f"no price of {token.symbol} in USD to value the payment with")
    if price.answer <= 0:
        raise PriceUnavailable(f"the price feed's answer for {token.symbol} is not positive")
    age = now - price.updated_at
    if -age > MAX_PRICE_SKEW:
        raise PriceUnavailable(
            f"the price of {token.symbol} is dated {-age} s after this clock, more than the "
            f"{MAX_PRICE_SKEW} s of skew allowed: check the clock, or pass the chain's time"
        )
    if age > max_price_age:
        raise StalePrice(age, max_price_age)
    return UsdValue(
        _ceil_div(units * price.answer * 10**USD_DECIMALS, 10 ** (token.decimals + price.decimals))
    )


@dataclass(frozen=True, slots=True)
class Payment:
    """A payment the wallet is asked to make: ``amount`` (positive) to ``payee``, for the
    task ``reference`` (the Transfer's reference; zero when unused)."""

    payee: Address
    amount: TokenAmount
    reference: Hash32 = ZERO_HASH

    def __post_init__(self) -> None:
        if not isinstance(self.payee, bytes) or len(self.payee) != 20:
            raise EncodingError("payee", "expected 20 bytes")
        if not isinstance(self.amount, TokenAmount):
            raise EncodingError("amount", "expected a TokenAmount (wallet.amounts)")
        if self.amount.units == 0:
            raise InvalidAmount("amount", "zero: a payment needs a positive amount")
        if not isinstance(self.reference, bytes) or len(self.reference) != 32:
            raise EncodingError("reference", "expected 32 bytes")


@dataclass(frozen=True, slots=True)
class Approval:
    """A payment the policy allows at ``time``, worth ``usd`` (10**-18 USD)."""

    payment: Payment
    usd: UsdValue
    time: int


class SpendView(Protocol):
    """What :func:`check` needs to know about past spends (a ``SpendLedger`` is one)."""

    def window_spend(self, now: int, period: int, *, payee: Address | None = None) -> UsdValue:
        """The USD spent (confirmed and pending) with ``time > now - period``, to
        ``payee`` only when given."""
        ...


def _frozen_mapping(value: Mapping[Any, Any]) -> Mapping[Any, Any]:
    return MappingProxyType(dict(value))


@dataclass(frozen=True, slots=True)
class SpendingPolicy:
    """An agent's spending rules (module docstring). Every limit is optional (None or
    absent: no limit); the default policy allows everything but still needs a fresh price
    to value a payment in the native token.

    - ``max_per_payment``: per token, the largest payment in base units;
    - ``max_per_payment_usd``: the largest payment's USD value, any token;
    - ``budget_usd``: the most spent in USD in any rolling ``period`` (seconds);
    - ``allow``: if not None, the only payees allowed; ``deny``: payees never allowed;
    - ``payee_caps_usd``: per payee, the most paid to it in the rolling period (USD);
      ``default_payee_cap_usd`` applies to every payee without its own cap;
    - ``max_price_age``: the oldest price reading (seconds) that may value the native token.

    USD values are :data:`UsdValue` (10**-18 USD): ``parse_usd("10")`` is ten dollars.
    """

    max_per_payment: Mapping[Token, Amount] = field(default_factory=dict)
    max_per_payment_usd: UsdValue | None = None
    budget_usd: UsdValue | None = None
    period: int = 86_400
    max_price_age: int = 3_600
    allow: frozenset[Address] | None = None
    deny: frozenset[Address] = frozenset()
    payee_caps_usd: Mapping[Address, UsdValue] = field(default_factory=dict)
    default_payee_cap_usd: UsdValue | None = None

    def __post_init__(self) -> None:
        _check_int(self.period, "period_seconds", minimum=1)
        _check_int(self.max_price_age, "max_price_age_seconds")
        for name in ("max_per_payment_usd", "budget_usd", "default_payee_cap_usd"):
            value = getattr(self, name)
            if value is not None:
                _check_int(value, name)
        for token, limit in self.max_per_payment.items():
            if not isinstance(token, Token):
                raise EncodingError("max_per_payment", "keys must be Tokens")
            _check_int(limit, f"max_per_payment.{token.symbol}")
        for payee, cap in self.payee_caps_usd.items():
            _check_address(payee, "payee_caps_usd")
            _check_int(cap, f"payee_caps_usd.{address_hex(payee)}")
        object.__setattr__(self, "max_per_payment", _frozen_mapping(self.max_per_payment))
        object.__setattr__(self, "payee_caps_usd", _frozen_mapping(self.payee_caps_usd))
        object.__setattr__(self, "deny", _address_set(self.deny, "deny"))
        if self.allow is not None:
            object.__setattr__(self, "allow", _address_set(self.allow, "allow"))

    def __hash__(self) -> int:
        return hash(
            (
                frozenset(self.max_per_payment.items()),
                self.max_per_payment_usd,
                self.budget_usd,
                self.period,
                self.max_price_age,
                self.allow,
                self.deny,
                frozenset(self.payee_caps_usd.items()),
                self.default_payee_cap_usd,
            )
        )

    def payee_cap(self, payee: Address) -> UsdValue | None:
        """The cap on what ``payee`` may receive in the rolling period, if any."""
        return self.payee_caps_usd.get(payee, self.default_payee_cap_usd)

    # ------------------------------------------------------------ JSON (docs/agent-guide.md)

    def to_json(self) -> dict[str, Any]:
        """The policy as JSON (amounts as decimal strings, addresses EIP-55)."""

        def usd(value: UsdValue | None) -> str | None:
            return None if value is None else format_units(value, USD_DECIMALS)

        return {
            "version": POLICY_VERSION,
            "period_seconds": self.period,
            "max_price_age_seconds": self.max_price_age,
            "max_per_payment": {
                token.symbol: format_units(limit, token.decimals)
                for token, limit in sorted(self.max_per_payment.items(), key=lambda i: i[0].symbol)
            },
            "max_per_payment_usd": usd(self.max_per_payment_usd),
            "budget_usd": usd(self.budget_usd),
            "allow": None if self.allow is None else sorted(map(address_hex, self.allow)),
            "deny": sorted(map(address_hex, self.deny)),
            "payee_caps_usd": {
                address_hex(payee): format_units(cap, USD_DECIMALS)
                for payee, cap in sorted(self.payee_caps_usd.items())
            },
            "default_payee_cap_usd": usd(self.default_payee_cap_usd),
        }

    @classmethod
    def from_json(cls, data: Any, tokens: TokenRegistry) -> SpendingPolicy:
        """The policy from its JSON (:meth:`to_json`); ``tokens`` resolves the symbols of
        ``max_per_payment``. Unknown keys are refused (a mistyped rule must not silently
        vanish); absent keys take their defaults; ``version`` is required."""
        if not isinstance(data, dict):
            raise EncodingError("policy", "expected a JSON object")
        unknown = set(data) - _POLICY_KEYS
        if unknown:
            raise EncodingError("policy", f"unknown keys: {', '.join(sorted(map(str, unknown)))}")
        if data.get("version") != POLICY_VERSION:
            raise EncodingError("version", f"expected {POLICY_VERSION}")
        limits: dict[Token, Amount] = {}
        for symbol, text in _json_object(data.get("max_per_payment", {}), "max_per_payment"):
            token = tokens.token_from_json(symbol, field=f"max_per_payment.{symbol}")
            limits[token] = parse_units(
                _json_text(text, f"max_per_payment.{symbol}"),
                token.decimals,
                field=f"max_per_payment.{symbol}",
            )
        caps: dict[Address, UsdValue] = {}
        for payee, text in _json_object(data.get("payee_caps_usd", {}), "payee_caps_usd"):
            where = f"payee_caps_usd.{payee}"
            caps[parse_address(payee, field=where)] = parse_usd(
                _json_text(text, where), field=where
            )
        allow = data.get("allow")
        return cls(
            max_per_payment=limits,
            max_per_payment_usd=_json_usd(data, "max_per_payment_usd"),
            budget_usd=_json_usd(data, "budget_usd"),
            period=_check_int(data.get("period_seconds", 86_400), "period_seconds", minimum=1),
            max_price_age=_check_int(
                data.get("max_price_age_seconds", 3_600), "max_price_age_seconds"
            ),
            allow=None if allow is None else frozenset(_json_addresses(allow, "allow")),
            deny=frozenset(_json_addresses(data.get("deny", []), "deny")),
            payee_caps_usd=caps,
            default_payee_cap_usd=_json_usd(data, "default_payee_cap_usd"),
        )

    @classmethod
    def load(cls, path: str | os.PathLike[str], tokens: TokenRegistry) -> SpendingPolicy:
        """The policy in the JSON file at ``path``."""
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            raise EncodingError("policy", f"not JSON (line {error.lineno})") from None
        return cls.from_json(data, tokens)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the policy's JSON to ``path`` atomically (a reader sees the old file or
        the new one, never half of one)."""
        text = json.dumps(self.to_json(), indent=2) + "\n"
        write_atomically(Path(path), text)


#: The keys of the policy's JSON object (:meth:`SpendingPolicy.to_json` writes them all).
_POLICY_KEYS = frozenset(
    {
        "version",
        "period_seconds",
        "max_price_age_seconds",
        "max_per_payment",
        "max_per_payment_usd",
        "budget_usd",
        "allow",
        "deny",
        "payee_caps_usd",
        "default_payee_cap_usd",
    }
)


def write_atomically(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` atomically and durably (a temporary file in the same
    folder, fsync, rename, fsync of the folder); the file is private to its owner (0600).
    A crash leaves the old file or the new one, never a mix."""
    folder = path.parent
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    directory = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def _check_address(value: object, field: str) -> None:
    if not isinstance(value, bytes) or len(value) != 20:
        raise EncodingError(field, "expected 20-byte addresses")


def _address_set(values: Iterable[Address], field: str) -> frozenset[Address]:
    result = frozenset(values)
    for value in result:
        _check_address(value, field)
    return result


def _json_object(value: Any, field: str) -> list[tuple[str, Any]]:
    if not isinstance(value, dict):
        raise EncodingError(field, "expected a JSON object")
    return list(value.items())


def _json_text(value: Any, field: str) -> str:
    if not isinstance(value, str):
        # A JSON number is refused: 0.1 would be a float, 100 ambiguous (units or base units).
        raise EncodingError(field, f"expected a decimal string, got {type(value).__name__}")
    return value


def _json_usd(data: dict[str, Any], key: str) -> UsdValue | None:
    value = data.get(key)
    return None if value is None else parse_usd(_json_text(value, key), field=key)


def _json_addresses(value: Any, field: str) -> list[Address]:
    if not isinstance(value, list):
        raise EncodingError(field, "expected a list of addresses")
    return [parse_address(item, field=f"{field}[{i}]") for i, item in enumerate(value)]


# ---------------------------------------------------------------- the check


def _refuse_limit(
    rule: str, what: str, attempted: int, limit: int, unit: str, decimals: int
) -> NoReturn:
    def text(value: int) -> str:
        return f"{format_units(value, decimals)} {unit}"

    raise PolicyRefused(
        rule,
        f"{what} {text(attempted)} is over the limit of {text(limit)} by {text(attempted - limit)}",
        limit=limit,
        attempted=attempted,
        unit=unit,
        decimals=decimals,
    )


def check(
    policy: SpendingPolicy,
    spends: SpendView,
    payment: Payment,
    *,
    now: int,
    price: PriceReading | None,
) -> Approval:
    """Whether ``policy`` allows ``payment`` at ``now`` after ``spends``: an
    :class:`Approval`, or :class:`PolicyRefused` naming the rule and by how much
    (:class:`PriceUnavailable` / :class:`StalePrice` when a needed price is missing).

    Pure and advisory: to spend, use ``SpendLedger.reserve``, which checks and reserves
    in one step so that concurrent payments cannot both pass one budget.
    """
    _check_int(now, "now")
    payee, amount = payment.payee, payment.amount
    if payee in policy.deny:
        raise PolicyRefused("deny_list", f"payee {address_hex(payee)} is on the deny list")
    if policy.allow is not None and payee not in policy.allow:
        raise PolicyRefused("allow_list", f"payee {address_hex(payee)} is not on the allow list")
    token_limit = policy.max_per_payment.get(amount.token)
    if token_limit is not None and amount.units > token_limit:
        _refuse_limit(
            "max_per_payment",
            "the payment of",
            amount.units,
            token_limit,
            amount.token.symbol,
            amount.token.decimals,
        )
    usd = usd_value(amount, price, now=now, max_price_age=policy.max_price_age)
    if policy.max_per_payment_usd is not None and usd > policy.max_per_payment_usd:
        _refuse_limit(
            "max_per_payment_usd",
            f"the payment of {amount}, worth",
            usd,
            policy.max_per_payment_usd,
            "USD",
            USD_DECIMALS,
        )
    cap = policy.payee_cap(payee)
    if cap is not None:
        spent = spends.window_spend(now, policy.period, payee=payee)
        _within(
            "payee_cap",
            f"paid to {address_hex(payee)} in the last {policy.period} s",
            spent,
            usd,
            cap,
        )
    if policy.budget_usd is not None:
        spent = spends.window_spend(now, policy.period)
        _within("budget", f"spent in the last {policy.period} s", spent, usd, policy.budget_usd)
    return Approval(payment, usd, now)


def _within(rule: str, what: str, spent: int, usd: int, limit: int) -> None:
    if spent + usd > limit:
        _refuse_limit(
            rule,
            f"{format_usd(spent)} {what} + this payment's {format_usd(usd)} =",
            spent + usd,
            limit,
            "USD",
            USD_DECIMALS,
        )
