"""Unit tests of the main job's pure parts (devnet/trading): the price list and its
arithmetic, the FAR conversion's rounding, the simulated model and workload, the
reconciliation checks (a mismatch is reported) and the status line."""

from __future__ import annotations

import asyncio
import io
import json
from fractions import Fraction
from math import ceil

import aiohttp
import pytest

from devnet.trading.buyer import BuyerStats
from devnet.trading.checks import (
    BuyerTally,
    ProviderTally,
    buyer_checks,
    node_balance_check,
    provider_checks,
    show,
    total_checks,
)
from devnet.trading.job import buyer_symbol, deposit_units, shares
from devnet.trading.model import complete, serve, workload
from devnet.trading.pricing import (
    OUTPUT_UNITS,
    USDF_UNIT_PRICE,
    ModelRequest,
    ModelRequestError,
    cost,
    far_unit_price,
    parse_request,
    terms,
    usd_micros,
)
from devnet.trading.progress import Progress, status_line
from devnet.trading.resolving import CachingResolver
from wallet.policy import parse_usd

FEED_ANSWER = 250_000_000  # the devnet's 2.50 USD per FAR, 8 decimals
USDF = 10**6


def body(prompt: str, max_tokens: int) -> str:
    return json.dumps({"prompt": prompt, "max_tokens": max_tokens})


# ------------------------------------------------------------------ pricing


def test_a_request_costs_its_input_words_plus_five_units_per_output_token() -> None:
    assert cost(body("hello  there\tworld\n", 4)) == 3 + 5 * 4
    assert cost(body("", 1)) == OUTPUT_UNITS


def test_the_prices_are_3_and_15_dollars_per_million_tokens() -> None:
    million = 10**6
    input_only = usd_micros(million, USDF_UNIT_PRICE)  # a million input tokens
    output_only = usd_micros(OUTPUT_UNITS * million, USDF_UNIT_PRICE)
    assert (input_only, output_only) == (3 * USDF, 15 * USDF)
    # The same at the FAR price, converted back at the feed: never less than the USD price.
    far = far_unit_price(FEED_ANSWER, 8)
    assert usd_micros(million, far, answer=FEED_ANSWER, decimals=8) == 3 * USDF


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        "[]",
        json.dumps({"prompt": "x"}),
        json.dumps({"prompt": "x", "max_tokens": 1, "extra": 1}),
        json.dumps({"prompt": 1, "max_tokens": 1}),
        json.dumps({"prompt": "x", "max_tokens": "3"}),
        json.dumps({"prompt": "x", "max_tokens": True}),
        json.dumps({"prompt": "x", "max_tokens": 0}),
        json.dumps({"prompt": "x " * 5000, "max_tokens": 1}),
    ],
)
def test_a_malformed_request_is_refused(text: str) -> None:
    with pytest.raises(ModelRequestError):
        cost(text)


def test_the_body_round_trips() -> None:
    request = ModelRequest("say something", 7)
    assert parse_request(request.body()) == request


def test_far_unit_price_at_the_devnet_feed_is_exact() -> None:
    # 3e-6 USD / 2.50 USD per FAR = 1.2e-6 FAR = 1.2e12 base units.
    assert far_unit_price(FEED_ANSWER, 8) == 1_200_000_000_000


@pytest.mark.parametrize("answer", [1, 7, 333_333_333, 250_000_001, 10**17 + 3])
def test_far_unit_price_rounds_up(answer: int) -> None:
    price = far_unit_price(answer, 8)
    exact = Fraction(3 * 10**12 * 10**8, answer)
    assert price == ceil(exact)
    # p units of FAR are worth at least the USD price; one base unit less would not be.
    assert price * answer >= 3 * 10**20 > (price - 1) * answer


def test_far_unit_price_refuses_a_non_positive_feed() -> None:
    with pytest.raises(ValueError, match="positive"):
        far_unit_price(0, 8)


def test_the_terms_state_the_rule() -> None:
    text = terms("FAR", 1_200_000_000_000, answer=FEED_ANSWER, decimals=8)
    assert "words(prompt) + 5 * max_tokens" in text
    assert "ceil(3 * 10**20 / 250000000)" in text
    assert "$3 per million" in terms("USDF", 3)


def test_deposits_cover_the_budget_rounded_up() -> None:
    budget = parse_usd("5")
    assert deposit_units("USDF", budget, FEED_ANSWER, 8) == 5 * USDF
    assert deposit_units("FAR", budget, FEED_ANSWER, 8) == 2 * 10**18
    assert deposit_units("FAR", parse_usd("1"), 300_000_000, 8) == ceil(Fraction(10**18, 3))


def test_requests_are_shared_and_every_second_buyer_pays_far() -> None:
    assert shares(1000, 2) == [500, 500]
    assert shares(7, 3) == [3, 2, 2]
    assert [buyer_symbol(i) for i in range(4)] == ["USDF", "FAR", "USDF", "FAR"]


# ------------------------------------------------------------------ the model


def test_the_model_answers_exactly_max_tokens_words_deterministically() -> None:
    request = ModelRequest("what is a quorum certificate", 37)
    answer = complete(request)
    assert len(answer.split()) == 37
    assert complete(request) == answer
    assert asyncio.run(serve(request.body())) == answer
    assert complete(ModelRequest("another prompt", 37)) != answer


def test_the_workload_is_seeded_per_buyer() -> None:
    def first(seed: int, buyer: int) -> list[ModelRequest]:
        stream = workload(seed, buyer)
        return [next(stream) for _ in range(20)]

    assert first(1, 0) == first(1, 0)
    assert first(1, 0) != first(1, 1)
    assert first(1, 0) != first(2, 0)
    lengths = {len(r.prompt.split()) for r in first(1, 0)}
    assert len(lengths) > 5  # prompts of varying length


# ------------------------------------------------------------------ the checks


def tally(name: str = "buyer-1", symbol: str = "USDF", **changes: int) -> BuyerTally:
    values = {
        "requests": 10, "receipts": 10, "units": 5_000, "unit_price": 3, "paid": 15_000,
        "ledger_spent": 15_000, "spent_usd": 15_000 * 10**12, "budget_usd": parse_usd("5"),
    }  # fmt: skip
    values.update(changes)
    return BuyerTally(name, symbol, **values)


def provider(**changes: dict[str, int]) -> ProviderTally:
    values: dict[str, dict[str, int]] = {
        "earned": {"USDF": 15_000},
        "balance_rise": {"USDF": 15_000},
        "withdrawn": {"USDF": 15_000},
        "chain_rise": {"USDF": 15_000},
        "vault_fall": {"USDF": 15_000},
    }
    values.update(changes)
    return ProviderTally(**values, redeemed={"USDF": True})


def test_consistent_numbers_pass_every_check() -> None:
    buyers = [tally()]
    checks = total_checks(10, buyers) + buyer_checks(buyers[0])
    checks += provider_checks(buyers, provider())
    assert all(c.ok for c in checks), [c.line() for c in checks if not c.ok]
    assert all(c.line().startswith("OK ") for c in checks)


@pytest.mark.parametrize(
    ("changes", "name"),
    [
        ({"receipts": 9}, "delivery receipts verified"),
        ({"paid": 15_003, "ledger_spent": 15_003}, "paid = 5000 units x 3 base units"),
        ({"ledger_spent": 0}, "spend ledger"),
        ({"spent_usd": parse_usd("5.000001")}, "within its budget"),
    ],
)
def test_a_buyer_mismatch_is_reported(changes: dict[str, int], name: str) -> None:
    [bad] = [c for c in buyer_checks(tally(**changes)) if not c.ok]
    assert name in bad.name
    assert bad.line().startswith("MISMATCH ")
    assert "expected" in bad.line()


def test_a_provider_mismatch_is_reported() -> None:
    checks = provider_checks([tally()], provider(earned={"USDF": 14_997}))
    bad = [c for c in checks if not c.ok]
    assert [c.name for c in bad] == [
        "provider earned in USDF = the buyers' payments",
        "provider's USDF balance on the nodes rose by its earnings",
        "provider withdrew its USDF earnings",
    ]
    assert bad[0].line() == (
        "MISMATCH provider earned in USDF = the buyers' payments: 0.014997 USDF "
        "(expected 0.015 USDF)"
    )
    on_chain = provider_checks([tally()], provider(chain_rise={"USDF": 0}))
    assert [c.name for c in on_chain if not c.ok] == [
        "on chain: provider's USDF balance rose by the withdrawal"
    ]


def test_earnings_are_matched_per_token() -> None:
    buyers = [tally(), tally("buyer-2", "FAR", unit_price=10**12, paid=5 * 10**15)]
    checks = provider_checks(buyers, provider())  # the FAR earnings are missing
    assert next(c.name for c in checks if not c.ok) == (
        "provider earned in FAR = the buyers' payments"
    )
    assert total_checks(21, buyers)[0].line() == (
        "MISMATCH paid requests served in total: 20 (expected 21)"
    )


def test_a_token_nobody_paid_in_is_not_checked() -> None:
    checks = provider_checks([tally()], provider(earned={"USDF": 15_000, "FAR": 0}))
    assert all(c.ok for c in checks)
    assert not any("FAR" in c.name for c in checks)


def test_node_balances_must_agree_and_be_the_expected_ones() -> None:
    expected = {"USDF": 4_985_000, "FAR": 0}
    same = {f"node-{i}": {"USDF": 4_985_000, "FAR": 0} for i in range(4)}
    ok = node_balance_check("buyer-1", expected, same)
    assert ok.ok
    assert ok.line() == "OK       buyer-1: balances on all 4 nodes: 4.985 USDF on each"
    lagging = {**same, "node-2": {"USDF": 4_988_000, "FAR": 0}}
    bad = node_balance_check("buyer-1", expected, lagging)
    assert not bad.ok
    assert "node-2: 4.988 USDF" in bad.line()
    assert not node_balance_check("buyer-1", expected, {}).ok


def test_amounts_are_shown_in_token_units() -> None:
    assert show(1_200_000_000_000, "FAR") == "0.0000012 FAR"
    assert show(-2500, "USDF") == "-0.0025 USDF"


# ------------------------------------------------------------------ progress, resolver


def test_the_status_line() -> None:
    a = BuyerStats("buyer-1", "USDF", 500, requests=120, paid=250_000)
    b = BuyerStats("buyer-2", "FAR", 500, requests=100, paid=10**17)
    line = status_line(3.04, [a, b], {"USDF": 250_000, "FAR": 10**17}, 41.6)
    assert line == (
        "[  3.0 s] buyer-1 120/500 spent 0.25 USDF | buyer-2 100/500 spent 0.1 FAR | "
        "provider earned 0.1 FAR + 0.25 USDF | 42 payments/s"
    )


def test_the_caching_resolver_asks_once_per_ttl() -> None:
    now = [0.0]

    class Inner:
        calls = 0

        async def resolve(self, agent: str, session: aiohttp.ClientSession) -> tuple[str, ...]:
            Inner.calls += 1
            return (f"http://{agent}/submit",)

    resolver = CachingResolver(Inner(), ttl=10, clock=lambda: now[0])

    async def run() -> None:
        async with aiohttp.ClientSession() as session:
            for t in (0.0, 5.0, 9.9, 10.0, 11.0):
                now[0] = t
                assert await resolver.resolve("a", session) == ("http://a/submit",)

    asyncio.run(run())
    assert Inner.calls == 2


def test_progress_redraws_on_a_terminal() -> None:
    out = io.StringIO()
    stats = [BuyerStats("buyer-1", "USDF", 2, requests=2, paid=6)]

    async def earned() -> dict[str, int]:
        return {"USDF": 6}

    async def run() -> None:
        progress = Progress(stats, earned, out, interval=0.01, redraw=True)
        progress.start()
        await asyncio.sleep(0.05)
        await progress.stop({"USDF": 6}, 1.0)

    asyncio.run(run())
    text = out.getvalue()
    assert text.count("\r\x1b[2K") >= 2
    assert text.endswith("provider earned 0.000006 USDF | 2 payments/s\n")
