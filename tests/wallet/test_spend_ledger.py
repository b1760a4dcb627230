"""The spend ledger: reserve, commit, release; spend per reference; persistence across a
restart (a crash between reserve and commit counts the spend); concurrent reservations
never overspend; and the budget holds in every window whatever the sequence."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wallet.amounts import TokenAmount, TokenRegistry
from wallet.errors import LedgerError, PolicyRefused, UnknownReservation, WalletError
from wallet.policy import USD_DECIMALS, Payment, PriceReading, SpendingPolicy, UsdValue, parse_usd
from wallet.spend_ledger import ReferenceSpend, Reservation, SpendLedger, SpendRecord
from wallet.types import ZERO_HASH, Address, Amount, Hash32

TOKENS = TokenRegistry.farthing(stable="0x" + "11" * 20, native="0x" + "22" * 20)
USDF = TOKENS.by_symbol("USDF")
FAR = TOKENS.by_symbol("FAR")
ALICE = Address(bytes.fromhex("a1" * 20))
BOB = Address(bytes.fromhex("b0" * 20))
TASK_1 = Hash32(bytes.fromhex("01" * 32))
TASK_2 = Hash32(bytes.fromhex("02" * 32))
NOW = 1_700_000_000
PRICE = PriceReading(250_000_000, 8, NOW)
USD = 10**USD_DECIMALS
OPEN = SpendingPolicy()
BUDGET_1 = SpendingPolicy(budget_usd=UsdValue(USD), period=3_600)


def payment(text: str, payee: Address = ALICE, reference: Hash32 = ZERO_HASH) -> Payment:
    return Payment(payee, TOKENS.parse(text), reference)


def test_reserve_commit_release() -> None:
    ledger = SpendLedger()
    first = ledger.reserve(BUDGET_1, payment("0.5 USDF", reference=TASK_1), now=NOW, price=None)
    second = ledger.reserve(BUDGET_1, payment("0.5 USDF", reference=TASK_1), now=NOW, price=None)
    assert (first.id, second.id) == (1, 2)
    assert ledger.pending() == (first, second)
    assert ledger.window_spend(NOW, 3_600) == USD
    with pytest.raises(PolicyRefused, match=r"by 0.000001 USD"):
        ledger.reserve(BUDGET_1, payment("0.000001 USDF"), now=NOW, price=None)

    record = ledger.commit(first)
    assert record == SpendRecord(NOW, ALICE, USDF, Amount(500_000), UsdValue(USD // 2), TASK_1)
    assert record.amount == TOKENS.parse("0.5 USDF")
    assert ledger.records() == (record,)
    assert ledger.pending() == (second,)
    ledger.release(second)
    assert ledger.pending() == ()
    assert ledger.window_spend(NOW, 3_600) == USD // 2
    assert ledger.spent_by_reference(TASK_1) == ReferenceSpend(
        UsdValue(USD // 2), (TOKENS.parse("0.5 USDF"),), 1
    )
    ledger.reserve(BUDGET_1, payment("0.5 USDF"), now=NOW, price=None)


def test_a_reservation_is_settled_once() -> None:
    ledger = SpendLedger()
    reservation = ledger.reserve(OPEN, payment("1 USDF"), now=NOW, price=None)
    ledger.commit(reservation)
    for settle in (ledger.commit, ledger.release):
        with pytest.raises(UnknownReservation, match="not pending") as caught:
            settle(reservation)
        assert isinstance(caught.value, LookupError)
    other = ledger.reserve(OPEN, payment("2 USDF"), now=NOW, price=None)
    forged = Reservation(other.id, reservation.record)
    with pytest.raises(UnknownReservation):
        ledger.release(forged)
    ledger.release(other)
    with pytest.raises(UnknownReservation):
        ledger.commit(other)
    assert len(ledger.records()) == 1


def test_a_refusal_reserves_nothing() -> None:
    ledger = SpendLedger()
    with pytest.raises(PolicyRefused):
        ledger.reserve(BUDGET_1, payment("2 USDF"), now=NOW, price=None)
    assert ledger.pending() == ()
    assert ledger.reserve(BUDGET_1, payment("1 USDF"), now=NOW, price=None).id == 1


def test_spend_per_reference() -> None:
    ledger = SpendLedger()
    for text, reference in [
        ("0.0025 USDF", TASK_1),
        ("0.0025 USDF", TASK_1),
        ("1 FAR", TASK_1),
        ("0.1 USDF", TASK_2),
        ("0.2 USDF", ZERO_HASH),
    ]:
        ledger.commit(
            ledger.reserve(OPEN, payment(text, reference=reference), now=NOW, price=PRICE)
        )
    task_1 = ledger.spent_by_reference(TASK_1)
    assert task_1 == ReferenceSpend(
        parse_usd("2.505"), (TOKENS.parse("1 FAR"), TOKENS.parse("0.005 USDF")), 3
    )
    assert str(task_1) == "1 FAR + 0.005 USDF (2.505 USD, 3 payment(s))"
    assert ledger.spent_by_reference(TASK_2).usd == parse_usd("0.1")
    assert ledger.spent_by_reference(Hash32(b"\x09" * 32)) == ReferenceSpend(UsdValue(0), (), 0)
    assert str(ledger.spent_by_reference(Hash32(b"\x09" * 32))) == "nothing (0 USD, 0 payment(s))"
    assert set(ledger.references()) == {TASK_1, TASK_2, ZERO_HASH}
    # Pending spends are not a task's cost yet.
    ledger.reserve(OPEN, payment("5 USDF", reference=TASK_2), now=NOW, price=None)
    assert ledger.spent_by_reference(TASK_2).usd == parse_usd("0.1")


def test_old_records_are_dropped_but_reference_totals_kept() -> None:
    policy = SpendingPolicy(budget_usd=UsdValue(10 * USD), period=100)
    ledger = SpendLedger()
    ledger.commit(ledger.reserve(policy, payment("1 USDF", reference=TASK_1), now=NOW, price=None))
    ledger.commit(
        ledger.reserve(policy, payment("1 USDF", reference=TASK_1), now=NOW + 150, price=None)
    )
    assert len(ledger.records()) == 2  # kept for two periods (a clock may step back)
    ledger.reserve(policy, payment("1 USDF"), now=NOW + 200, price=None)
    assert [r.time for r in ledger.records()] == [NOW + 150]
    assert ledger.spent_by_reference(TASK_1).payments == 2
    assert ledger.spent_by_reference(TASK_1).usd == 2 * USD


def test_pending_reservations_are_never_dropped() -> None:
    policy = SpendingPolicy(period=10)
    ledger = SpendLedger()
    old = ledger.reserve(policy, payment("1 USDF"), now=NOW, price=None)
    ledger.reserve(policy, payment("1 USDF"), now=NOW + 1_000, price=None)
    assert old in ledger.pending()
    assert ledger.window_spend(NOW + 1_000, 10) == USD  # but it left the window


# ---------------------------------------------------------------- persistence


def test_persistence_round_trip(tmp_path: Path) -> None:
    file = tmp_path / "spend.json"
    ledger = SpendLedger.open(file)
    assert not file.exists()
    ledger.commit(ledger.reserve(OPEN, payment("1.5 FAR", BOB, TASK_1), now=NOW, price=PRICE))
    ledger.commit(
        ledger.reserve(OPEN, payment("0.0025 USDF", ALICE, TASK_1), now=NOW + 1, price=None)
    )
    pending = ledger.reserve(OPEN, payment("2 USDF", ALICE, TASK_2), now=NOW + 2, price=None)
    assert file.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["spend.json"]

    again = SpendLedger.open(file)
    assert again.records() == ledger.records()
    assert again.pending() == (pending,)
    assert again.references() == ledger.references()
    assert again.to_json() == ledger.to_json()
    assert (
        SpendLedger.from_json(json.loads(json.dumps(ledger.to_json()))).to_json()
        == ledger.to_json()
    )
    # The restarted ledger goes on with fresh ids and settles the old reservation.
    assert again.reserve(OPEN, payment("1 USDF"), now=NOW + 3, price=None).id == pending.id + 1
    again.commit(pending)
    assert SpendLedger.open(file).spent_by_reference(TASK_2).usd == 2 * USD


def test_a_crash_between_reserve_and_commit_counts_the_spend(tmp_path: Path) -> None:
    file = tmp_path / "spend.json"
    ledger = SpendLedger.open(file)
    ledger.reserve(BUDGET_1, payment("0.75 USDF"), now=NOW, price=None)
    del ledger  # the agent dies before it learns whether the payment went through
    restarted = SpendLedger.open(file)
    assert len(restarted.pending()) == 1
    with pytest.raises(PolicyRefused, match=r"by 0.25 USD"):
        restarted.reserve(BUDGET_1, payment("0.5 USDF"), now=NOW + 10, price=None)


def test_a_failed_write_reserves_nothing(tmp_path: Path) -> None:
    ledger = SpendLedger(tmp_path / "missing-folder" / "spend.json")
    with pytest.raises(LedgerError, match="cannot write") as caught:
        ledger.reserve(OPEN, payment("1 USDF"), now=NOW, price=None)
    assert isinstance(caught.value, OSError)
    assert ledger.pending() == ()
    assert ledger.window_spend(NOW, 60) == 0


@pytest.mark.parametrize(
    "text",
    [
        "{",
        "[]",
        '{"version": 2}',
        '{"version": 1, "next_id": 1, "tokens": {}, "records": [{"token": "0x00"}],'
        ' "pending": [], "references": {}}',
        '{"version": 1, "next_id": 1, "tokens": {}, "records": [], "pending": [],'
        ' "references": {"0x12": {}}}',
    ],
)
def test_a_corrupt_ledger_file_is_an_error(tmp_path: Path, text: str) -> None:
    file = tmp_path / "spend.json"
    file.write_text(text)
    with pytest.raises(LedgerError, match="corrupt") as caught:
        SpendLedger.open(file)
    assert isinstance(caught.value, WalletError)


def test_reservation_ids_in_a_file_are_checked(tmp_path: Path) -> None:
    ledger = SpendLedger()
    ledger.reserve(OPEN, payment("1 USDF"), now=NOW, price=None)
    data = ledger.to_json()
    data["next_id"] = 1
    file = tmp_path / "spend.json"
    file.write_text(json.dumps(data))
    with pytest.raises(LedgerError, match="out of order"):
        SpendLedger.open(file)


# ---------------------------------------------------------------- concurrency


@pytest.mark.parametrize("persistent", [False, True])
def test_concurrent_reservations_never_overspend(tmp_path: Path, persistent: bool) -> None:
    ledger = SpendLedger(tmp_path / "spend.json" if persistent else None)
    policy = SpendingPolicy(budget_usd=parse_usd("5"), period=3_600)
    start = threading.Barrier(8)
    approved: list[Reservation] = []
    refusals: list[PolicyRefused] = []

    def agent() -> None:
        start.wait()
        for _ in range(20):
            try:
                approved.append(ledger.reserve(policy, payment("0.1 USDF"), now=NOW, price=None))
            except PolicyRefused as error:
                refusals.append(error)

    threads = [threading.Thread(target=agent) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(approved) == 50
    assert len(refusals) == 110
    assert len({r.id for r in approved}) == 50
    assert ledger.window_spend(NOW, 3_600) == 5 * USD
    if persistent:
        assert len(SpendLedger.open(tmp_path / "spend.json").pending()) == 50


# ---------------------------------------------------------------- properties

PERIOD = 100
PAYEES = [ALICE, BOB, Address(bytes.fromhex("c0" * 20))]
steps = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=60),  # seconds since the previous step
        st.sampled_from(["USDF", "FAR"]),
        st.integers(min_value=1, max_value=3 * 10**6),  # in millionths of the token
        st.sampled_from(PAYEES),
        st.sampled_from(["commit", "release", "leave pending"]),
    ),
    max_size=40,
)


@settings(max_examples=150, deadline=None)
@given(
    steps,
    st.integers(min_value=1, max_value=10 * 10**6),
    st.integers(min_value=1, max_value=4 * 10**6),
)
def test_no_window_ever_holds_more_than_the_budget(
    script: list[tuple[int, str, int, Address, str]], budget_micro: int, cap_micro: int
) -> None:
    """Whatever the order of reservations, commits and releases, the spends that stand
    (committed or pending) in any window of the period stay within the budget, and each
    payee's within its cap; the per-reference totals are the sum of the commits."""
    budget, cap = UsdValue(budget_micro * 10**12), UsdValue(cap_micro * 10**12)
    policy = SpendingPolicy(budget_usd=budget, default_payee_cap_usd=cap, period=PERIOD)
    ledger = SpendLedger()
    standing: list[SpendRecord] = []  # the test's own model: nothing ever pruned
    committed = 0
    now = NOW
    for delay, symbol, micro, payee, outcome in script:
        now += delay
        token = TOKENS.by_symbol(symbol)
        amount = TokenAmount(token, Amount(micro * 10 ** (token.decimals - 6)))
        try:
            reservation = ledger.reserve(policy, Payment(payee, amount), now=now, price=PRICE)
        except PolicyRefused as error:
            assert error.over_by is not None and error.over_by > 0
            continue
        if outcome == "release":
            ledger.release(reservation)
            continue
        standing.append(reservation.record)
        if outcome == "commit":
            ledger.commit(reservation)
            committed += reservation.record.usd
    for end in {record.time for record in standing}:
        window = [r for r in standing if end - PERIOD < r.time <= end]
        assert sum(r.usd for r in window) <= budget
        for payee in PAYEES:
            assert sum(r.usd for r in window if r.payee == payee) <= cap
    assert ledger.spent_by_reference(ZERO_HASH).usd == committed
