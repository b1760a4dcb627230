"""Spending policies: every rule refusing and allowing with its exact figures, USD
valuation at the price feed's decimals, stale and missing prices, the rolling window's
edge, and the policy's JSON form."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from wallet.amounts import TokenAmount, TokenRegistry
from wallet.codec import address_hex
from wallet.errors import (
    EncodingError,
    InvalidAmount,
    PolicyRefused,
    PriceUnavailable,
    StalePrice,
    UnknownToken,
    WalletError,
)
from wallet.policy import (
    MAX_PRICE_SKEW,
    USD_DECIMALS,
    Payment,
    PriceReading,
    SpendingPolicy,
    UsdValue,
    check,
    format_usd,
    parse_usd,
    usd_value,
)
from wallet.spend_ledger import SpendLedger, SpendRecord
from wallet.types import ZERO_HASH, Address, Amount, Hash32

TOKENS = TokenRegistry.farthing(stable="0x" + "11" * 20, native="0x" + "22" * 20)
USDF = TOKENS.by_symbol("USDF")
FAR = TOKENS.by_symbol("FAR")
ALICE = Address(bytes.fromhex("a1" * 20))
BOB = Address(bytes.fromhex("b0" * 20))
CAROL = Address(bytes.fromhex("c0" * 20))
NOW = 1_700_000_000
#: 2.50 USD per FAR with Chainlink's 8 decimals, published at NOW.
PRICE = PriceReading(250_000_000, 8, NOW)
USD = 10**USD_DECIMALS


def payment(text: str, payee: Address = ALICE, reference: bytes = ZERO_HASH) -> Payment:
    return Payment(payee, TOKENS.parse(text), Hash32(reference))


def spent(ledger: SpendLedger, text: str, *, time: int, payee: Address = ALICE) -> None:
    """Record a confirmed spend (valued at PRICE) directly."""
    amount = TOKENS.parse(text)
    usd = usd_value(amount, PRICE, now=PRICE.updated_at, max_price_age=0)
    ledger.record(SpendRecord(time, payee, amount.token, amount.units, usd, ZERO_HASH))


def refused(
    policy: SpendingPolicy,
    pay: Payment,
    *,
    ledger: SpendLedger | None = None,
    now: int = NOW,
    price: PriceReading | None = PRICE,
) -> PolicyRefused:
    with pytest.raises(PolicyRefused) as caught:
        check(policy, ledger or SpendLedger(), pay, now=now, price=price)
    return caught.value


# ---------------------------------------------------------------- valuation


@pytest.mark.parametrize(
    ("text", "price", "usd"),
    [
        ("0.0025 USDF", None, "0.0025"),
        ("1 USDF", None, "1"),
        ("1.5 FAR", PRICE, "3.75"),
        ("0.000000000000000001 FAR", PRICE, "0.000000000000000003"),  # 2.5e-18, rounded up
        ("0.000000000000000004 FAR", PRICE, "0.00000000000000001"),  # exactly 1e-17
        ("1 FAR", PriceReading(2_500_000_000_000_000_000, 18, NOW), "2.5"),
        ("1 FAR", PriceReading(3, 0, NOW), "3"),
        ("1 FAR", PriceReading(1, 8, NOW), "0.00000001"),
        ("1000000 FAR", PriceReading(123_456_789, 8, NOW), "1234567.89"),
    ],
)
def test_usd_value(text: str, price: PriceReading | None, usd: str) -> None:
    value = usd_value(TOKENS.parse(text), price, now=NOW, max_price_age=60)
    assert value == parse_usd(usd)
    assert format_usd(value) == f"{usd} USD"


def test_a_pegged_token_needs_no_price() -> None:
    amount = TOKENS.parse("1 USDF")
    stale = PriceReading(250_000_000, 8, 0)
    assert usd_value(amount, stale, now=NOW, max_price_age=0) == USD
    assert usd_value(amount, None, now=NOW, max_price_age=0) == USD


def test_missing_price_refuses_the_native_token() -> None:
    with pytest.raises(PriceUnavailable, match="no price of FAR") as caught:
        check(SpendingPolicy(), SpendLedger(), payment("1 FAR"), now=NOW, price=None)
    assert caught.value.retryable
    assert not isinstance(caught.value, StalePrice)


@pytest.mark.parametrize("answer", [0, -250_000_000])
def test_a_price_that_is_not_positive_refuses(answer: int) -> None:
    with pytest.raises(PriceUnavailable, match="not positive"):
        check(
            SpendingPolicy(),
            SpendLedger(),
            payment("1 FAR"),
            now=NOW,
            price=PriceReading(answer, 8, NOW),
        )


def test_stale_price_refuses_past_the_max_age_exactly() -> None:
    policy = SpendingPolicy(max_price_age=600)
    fresh_enough = PriceReading(250_000_000, 8, NOW - 600)
    approval = check(policy, SpendLedger(), payment("1 FAR"), now=NOW, price=fresh_enough)
    assert approval.usd == parse_usd("2.5")
    stale = PriceReading(250_000_000, 8, NOW - 601)
    with pytest.raises(StalePrice, match="601 s old, more than the 600 s allowed") as caught:
        check(policy, SpendLedger(), payment("1 FAR"), now=NOW, price=stale)
    assert (caught.value.age, caught.value.max_age) == (601, 600)
    assert caught.value.retryable
    assert isinstance(caught.value, PriceUnavailable)
    # USDF pays on regardless of the feed.
    check(policy, SpendLedger(), payment("1 USDF"), now=NOW, price=stale)


def test_a_price_from_the_future_is_refused_past_the_skew() -> None:
    policy = SpendingPolicy(max_price_age=600)
    ahead = PriceReading(250_000_000, 8, NOW + MAX_PRICE_SKEW)  # within the skew
    assert check(policy, SpendLedger(), payment("1 FAR"), now=NOW, price=ahead).usd == (
        parse_usd("2.5")
    )
    too_far = PriceReading(250_000_000, 8, NOW + MAX_PRICE_SKEW + 1)
    with pytest.raises(PriceUnavailable, match=r"dated 301 s after this clock") as caught:
        check(policy, SpendLedger(), payment("1 FAR"), now=NOW, price=too_far)
    assert not isinstance(caught.value, StalePrice) and caught.value.retryable


def test_price_reading_is_validated() -> None:
    bad: Any = 2.5
    with pytest.raises(EncodingError, match=r"price.answer"):
        PriceReading(bad, 8, NOW)
    with pytest.raises(EncodingError, match=r"price.decimals"):
        PriceReading(1, 78, NOW)
    with pytest.raises(EncodingError, match=r"price.updated_at"):
        PriceReading(1, 8, -1)
    assert str(PRICE) == f"2.5 USD at {NOW}"


# ---------------------------------------------------------------- the rules


def test_the_default_policy_allows_anything_priced() -> None:
    approval = check(SpendingPolicy(), SpendLedger(), payment("1000000 FAR"), now=NOW, price=PRICE)
    assert approval.usd == 2_500_000 * USD
    assert approval.time == NOW
    assert approval.payment.amount.units == 10**24


def test_deny_list() -> None:
    policy = SpendingPolicy(deny=frozenset({BOB}))
    error = refused(policy, payment("0.01 USDF", BOB))
    assert error.rule == "deny_list"
    assert address_hex(BOB) in str(error)
    assert (error.limit, error.attempted, error.over_by) == (None, None, None)
    check(policy, SpendLedger(), payment("0.01 USDF", ALICE), now=NOW, price=PRICE)


def test_allow_list() -> None:
    policy = SpendingPolicy(allow=frozenset({ALICE}))
    check(policy, SpendLedger(), payment("0.01 USDF", ALICE), now=NOW, price=PRICE)
    error = refused(policy, payment("0.01 USDF", BOB))
    assert error.rule == "allow_list"
    assert "not on the allow list" in str(error)
    assert refused(SpendingPolicy(allow=frozenset()), payment("1 USDF")).rule == "allow_list"


def test_deny_wins_over_allow() -> None:
    policy = SpendingPolicy(allow=frozenset({ALICE}), deny=frozenset({ALICE}))
    assert refused(policy, payment("0.01 USDF")).rule == "deny_list"


def test_max_per_payment_in_token_units() -> None:
    policy = SpendingPolicy(max_per_payment={USDF: Amount(500_000)})
    check(policy, SpendLedger(), payment("0.5 USDF"), now=NOW, price=PRICE)
    error = refused(policy, payment("0.500001 USDF"))
    assert error.rule == "max_per_payment"
    assert (error.limit, error.attempted, error.over_by) == (500_000, 500_001, 1)
    assert (error.unit, error.decimals) == ("USDF", 6)
    assert str(error) == (
        "refused by max_per_payment: the payment of 0.500001 USDF is over the limit of "
        "0.5 USDF by 0.000001 USDF"
    )
    assert not error.retryable
    assert isinstance(error, WalletError)
    # Another token has no limit here (and needs no price to be refused on this rule).
    check(policy, SpendLedger(), payment("1000 FAR"), now=NOW, price=PRICE)
    far_policy = SpendingPolicy(max_per_payment={FAR: Amount(10**18)})
    assert refused(far_policy, payment("1.5 FAR"), price=None).over_by == 5 * 10**17


def test_max_per_payment_in_usd() -> None:
    policy = SpendingPolicy(max_per_payment_usd=parse_usd("2"))
    check(policy, SpendLedger(), payment("0.8 FAR"), now=NOW, price=PRICE)  # 2.00 USD exactly
    check(policy, SpendLedger(), payment("2 USDF"), now=NOW, price=PRICE)
    error = refused(policy, payment("1 FAR"))
    assert error.rule == "max_per_payment_usd"
    assert (error.limit, error.attempted, error.over_by) == (2 * USD, parse_usd("2.5"), USD // 2)
    assert (error.unit, error.decimals) == ("USD", 18)
    assert str(error) == (
        "refused by max_per_payment_usd: the payment of 1 FAR, worth 2.5 USD is over the "
        "limit of 2 USD by 0.5 USD"
    )
    assert refused(policy, payment("2.000001 USDF")).over_by == parse_usd("0.000001")


def test_budget_counts_the_rolling_window() -> None:
    policy = SpendingPolicy(budget_usd=parse_usd("10"), period=3_600)
    ledger = SpendLedger()
    spent(ledger, "6 USDF", time=NOW - 100)
    spent(ledger, "1 FAR", time=NOW - 50, payee=BOB)  # 2.5 USD
    check(policy, ledger, payment("1.5 USDF"), now=NOW, price=PRICE)  # 10 exactly
    check(policy, ledger, payment("0.6 FAR"), now=NOW, price=PRICE)  # 1.5 USD: 10 exactly
    error = refused(policy, payment("0.61 FAR"), ledger=ledger)  # 1.525 USD
    assert error.rule == "budget"
    assert (error.limit, error.attempted, error.over_by) == (
        10 * USD,
        parse_usd("10.025"),
        parse_usd("0.025"),
    )
    assert str(error) == (
        "refused by budget: 8.5 USD spent in the last 3600 s + this payment's 1.525 USD = "
        "10.025 USD is over the limit of 10 USD by 0.025 USD"
    )


def test_budget_refusal_figures() -> None:
    policy = SpendingPolicy(budget_usd=parse_usd("10"), period=3_600)
    ledger = SpendLedger()
    spent(ledger, "9.75 USDF", time=NOW - 10)
    error = refused(policy, payment("0.5 USDF"), ledger=ledger)
    assert error.rule == "budget"
    assert (error.limit, error.attempted, error.over_by) == (
        10 * USD,
        parse_usd("10.25"),
        parse_usd("0.25"),
    )
    assert str(error).endswith(
        "9.75 USD spent in the last 3600 s + this payment's 0.5 USD = 10.25 USD is over the "
        "limit of 10 USD by 0.25 USD"
    )


def test_rolling_window_edge_exactly() -> None:
    """A spend exactly ``period`` seconds old no longer counts; one second younger does."""
    policy = SpendingPolicy(budget_usd=parse_usd("1"), period=3_600)
    ledger = SpendLedger()
    spent(ledger, "1 USDF", time=NOW)
    assert ledger.window_spend(NOW + 3_599, 3_600) == USD
    assert ledger.window_spend(NOW + 3_600, 3_600) == 0
    assert (
        refused(policy, payment("0.000001 USDF"), ledger=ledger, now=NOW + 3_599).rule == "budget"
    )
    check(policy, ledger, payment("1 USDF"), now=NOW + 3_600, price=PRICE)
    # A spend dated in the future (a clock stepped back) still counts.
    assert ledger.window_spend(NOW - 10, 3_600) == USD


def test_payee_caps() -> None:
    policy = SpendingPolicy(
        payee_caps_usd={BOB: parse_usd("1")}, default_payee_cap_usd=parse_usd("5"), period=60
    )
    ledger = SpendLedger()
    spent(ledger, "0.75 USDF", time=NOW - 30, payee=BOB)
    spent(ledger, "4 USDF", time=NOW - 30, payee=ALICE)
    spent(ledger, "100 USDF", time=NOW - 60, payee=BOB)  # out of the window
    check(policy, ledger, payment("0.25 USDF", BOB), now=NOW, price=PRICE)
    check(policy, ledger, payment("0.1 FAR", BOB), now=NOW, price=PRICE)  # 0.75 + 0.25 = 1
    error = refused(policy, payment("0.250001 USDF", BOB), ledger=ledger)
    assert (error.limit, error.attempted, error.over_by) == (USD, parse_usd("1.000001"), 10**12)
    assert f"paid to {address_hex(BOB)} in the last 60 s" in str(error)
    # ALICE falls under the default cap, CAROL has spent nothing.
    assert refused(policy, payment("1.01 USDF", ALICE), ledger=ledger).over_by == parse_usd("0.01")
    check(policy, ledger, payment("5 USDF", CAROL), now=NOW, price=PRICE)
    assert policy.payee_cap(CAROL) == 5 * USD
    assert SpendingPolicy().payee_cap(CAROL) is None


def test_rules_run_in_their_order() -> None:
    policy = SpendingPolicy(
        deny=frozenset({BOB}),
        max_per_payment={USDF: Amount(1)},
        max_per_payment_usd=UsdValue(1),
        budget_usd=UsdValue(1),
    )
    assert refused(policy, payment("1 USDF", BOB)).rule == "deny_list"
    assert refused(policy, payment("1 USDF")).rule == "max_per_payment"
    with pytest.raises(PriceUnavailable):
        check(policy, SpendLedger(), payment("1 FAR"), now=NOW, price=None)
    assert refused(policy, payment("1 FAR")).rule == "max_per_payment_usd"
    assert refused(SpendingPolicy(budget_usd=UsdValue(1)), payment("1 FAR")).rule == "budget"


def test_payments_must_be_positive_and_well_formed() -> None:
    with pytest.raises(InvalidAmount, match="positive"):
        Payment(ALICE, TokenAmount(USDF, Amount(0)))
    with pytest.raises(EncodingError, match="payee"):
        Payment(Address(b"\x00" * 19), TOKENS.parse("1 USDF"))
    with pytest.raises(EncodingError, match="reference"):
        Payment(ALICE, TOKENS.parse("1 USDF"), Hash32(b"\x00" * 31))
    bad: Any = float(NOW)
    with pytest.raises(EncodingError, match="now"):
        check(SpendingPolicy(), SpendLedger(), payment("1 USDF"), now=bad, price=PRICE)


def test_policy_fields_are_validated() -> None:
    bad: Any = 1.5
    with pytest.raises(EncodingError, match="period"):
        SpendingPolicy(period=0)
    with pytest.raises(EncodingError, match="budget_usd"):
        SpendingPolicy(budget_usd=bad)
    with pytest.raises(EncodingError, match=r"max_per_payment.USDF"):
        SpendingPolicy(max_per_payment={USDF: bad})
    with pytest.raises(EncodingError, match="deny"):
        SpendingPolicy(deny=frozenset({Address(b"x")}))


def test_policy_is_immutable() -> None:
    limits = {USDF: Amount(1)}
    policy = SpendingPolicy(max_per_payment=limits)
    limits[USDF] = Amount(10**6)
    assert policy.max_per_payment[USDF] == 1
    with pytest.raises(TypeError):
        policy.max_per_payment[USDF] = Amount(2)  # type: ignore[index]
    assert hash(policy) == hash(SpendingPolicy(max_per_payment={USDF: Amount(1)}))
    assert len({policy, SpendingPolicy(max_per_payment={USDF: Amount(1)}), SpendingPolicy()}) == 2


# ---------------------------------------------------------------- JSON

FULL_JSON: dict[str, Any] = {
    "version": 1,
    "period_seconds": 3600,
    "max_price_age_seconds": 900,
    "max_per_payment": {"FAR": "2", "USDF": "0.5"},
    "max_per_payment_usd": "1",
    "budget_usd": "10",
    "allow": [address_hex(ALICE), address_hex(BOB)],
    "deny": [address_hex(CAROL)],
    "payee_caps_usd": {address_hex(BOB): "2.5"},
    "default_payee_cap_usd": "5",
}


def test_policy_json_round_trip() -> None:
    policy = SpendingPolicy.from_json(FULL_JSON, TOKENS)
    assert policy == SpendingPolicy(
        max_per_payment={USDF: Amount(500_000), FAR: Amount(2 * 10**18)},
        max_per_payment_usd=UsdValue(USD),
        budget_usd=UsdValue(10 * USD),
        period=3_600,
        max_price_age=900,
        allow=frozenset({ALICE, BOB}),
        deny=frozenset({CAROL}),
        payee_caps_usd={BOB: parse_usd("2.5")},
        default_payee_cap_usd=UsdValue(5 * USD),
    )
    assert policy.to_json() == FULL_JSON
    assert SpendingPolicy.from_json(SpendingPolicy().to_json(), TOKENS) == SpendingPolicy()
    assert SpendingPolicy.from_json({"version": 1}, TOKENS) == SpendingPolicy()


def test_policy_file_round_trip(tmp_path: Path) -> None:
    file = tmp_path / "policy.json"
    policy = SpendingPolicy.from_json(FULL_JSON, TOKENS)
    policy.save(file)
    assert json.loads(file.read_text()) == FULL_JSON
    assert SpendingPolicy.load(file, TOKENS) == policy
    assert file.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["policy.json"]
    file.write_text("{")
    with pytest.raises(EncodingError, match="not JSON"):
        SpendingPolicy.load(file, TOKENS)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"budget": "10"}, "unknown keys: budget"),
        ({"version": 2}, "version"),
        ({"version": None}, "version"),
        ({"budget_usd": 10}, "budget_usd: expected a decimal string, got int"),
        ({"budget_usd": 0.5}, "budget_usd: expected a decimal string, got float"),
        ({"budget_usd": "1e3"}, "budget_usd: exponent"),
        ({"budget_usd": "-1"}, "budget_usd: negative"),
        ({"max_per_payment": {"USDF": "0.0000001"}}, "max_per_payment.USDF: 7 decimal"),
        ({"max_per_payment": {"XYZ": "1"}}, "max_per_payment.XYZ"),
        ({"max_per_payment": ["USDF"]}, "max_per_payment: expected a JSON object"),
        ({"allow": "0x" + "a1" * 20}, "allow: expected a list"),
        ({"deny": ["0x1234"]}, "deny\\[0\\]"),
        ({"payee_caps_usd": {"bob": "1"}}, "payee_caps_usd.bob"),
        ({"period_seconds": 0}, "period_seconds"),
        ({"period_seconds": True}, "period_seconds"),
        ({"max_price_age_seconds": "60"}, "max_price_age_seconds"),
    ],
)
def test_bad_policy_json_is_refused(change: dict[str, Any], field: str) -> None:
    with pytest.raises(EncodingError, match=field):
        SpendingPolicy.from_json({**FULL_JSON, **change}, TOKENS)


def test_policy_json_must_be_an_object() -> None:
    with pytest.raises(EncodingError, match="policy"):
        SpendingPolicy.from_json([], TOKENS)
    assert not issubclass(UnknownToken, EncodingError)


def test_the_agent_guide_example_runs(capsys: pytest.CaptureFixture[str]) -> None:
    """docs/agent-guide.md: the example of "Amounts and spending policies" runs and
    prints what its comments say, and its policy JSON loads and writes back the same."""
    guide = (Path(__file__).parents[2] / "docs" / "agent-guide.md").read_text()
    section = guide.split("\n## Amounts and spending policies\n")[1].split("\n## ")[0]
    code = section.split("```python\n")[1].split("```")[0]
    exec(compile(code, "agent-guide.md", "exec"), {})  # noqa: S102 (our own docs)
    printed = capsys.readouterr().out.splitlines()
    assert printed == [
        "0.0025 USDF (0.0025 USD, 1 payment(s))",
        "budget 2500000000000000",
        "refused by budget: 0.0025 USD spent in the last 3600 s + this payment's 1 USD = "
        "1.0025 USD is over the limit of 1 USD by 0.0025 USD",
    ]
    example = json.loads(section.split("```json\n")[1].split("```")[0])
    assert SpendingPolicy.from_json(example, TOKENS).to_json() == example
