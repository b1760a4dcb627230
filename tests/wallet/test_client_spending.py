"""The spending policy enforced by the wallet client (wallet.client.spending) against the
fake committee: a refusal signs nothing, journals nothing and contacts no node; allowed
payments are accounted per reference; a refusal by the nodes releases the reservation; a
crash between reserve and certificate is settled on restart; withdrawals."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.wallet.client_fakes import TOKEN, FakeCommittee, make_committee
from wallet.amounts import Token, TokenAmount, TokenRegistry
from wallet.client import CachedPrice, Spending, Wallet
from wallet.client.journal import Journal
from wallet.codec import parse_address
from wallet.errors import (
    EncodingError,
    InsufficientBalance,
    PolicyRefused,
    PriceUnavailable,
    QuorumUnavailable,
)
from wallet.policy import PriceReading, SpendingPolicy, parse_usd
from wallet.signing import PrivateKey
from wallet.spend_ledger import SpendLedger
from wallet.types import Amount, Hash32, Withdrawal

PAYER_SEED = bytes([0x11] * 32)
FAR = parse_address("0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512")
USDF_TOKEN = Token(TOKEN, "USDF", 6, usd_peg=True)
FAR_TOKEN = Token(FAR, "FAR", 18)
TOKENS = TokenRegistry([USDF_TOKEN, FAR_TOKEN])
NOW = 1_767_225_600
TASK = Hash32(bytes([7] * 32))


class Crash(BaseException):
    """The process dies here."""


PAYER = PrivateKey(PAYER_SEED)
PAYEE = parse_address("0x" + "22" * 20)
OTHER = parse_address("0x" + "33" * 20)


@pytest.fixture
def net() -> FakeCommittee:
    committee = make_committee()
    committee.credit(PAYER.address, 1_000_000)  # 1 USDF
    for node in committee.nodes:
        node.credit(PAYER.address, 10**18, FAR)
    return committee


def spending(
    policy: SpendingPolicy, ledger: SpendLedger | None = None, **options: object
) -> Spending:
    return Spending(policy, ledger or SpendLedger(), TOKENS, clock=lambda: NOW, **options)  # type: ignore[arg-type]


def wallet_of(net: FakeCommittee, tmp_path: Path, guard: Spending, **options: object) -> Wallet:
    return Wallet(
        PAYER,
        net.network,
        data_dir=tmp_path,
        transport=net.transport,
        spending=guard,
        **options,  # type: ignore[arg-type]
    )


def requests(net: FakeCommittee) -> int:
    return sum(node.requests for node in net.nodes)


REFUSING = {
    "deny_list": SpendingPolicy(deny=frozenset({PAYEE})),
    "allow_list": SpendingPolicy(allow=frozenset({OTHER})),
    "max_per_payment": SpendingPolicy(max_per_payment={USDF_TOKEN: Amount(100)}),
    "max_per_payment_usd": SpendingPolicy(max_per_payment_usd=parse_usd("0.0001")),
    "payee_cap": SpendingPolicy(payee_caps_usd={PAYEE: parse_usd("0.0002")}),
    "budget": SpendingPolicy(budget_usd=parse_usd("0.0001")),
}


@pytest.mark.parametrize("rule", sorted(REFUSING))
@pytest.mark.asyncio
async def test_every_rule_refuses_before_anything_is_signed_or_sent(
    net: FakeCommittee, tmp_path: Path, rule: str
) -> None:
    guard = spending(REFUSING[rule])
    async with wallet_of(net, tmp_path, guard) as wallet:
        with pytest.raises(PolicyRefused) as refused:
            await wallet.pay(PAYEE, Amount(250), TOKEN, reference=TASK)
        assert refused.value.rule == rule
        assert wallet._journal.entries() == []
    assert requests(net) == 0  # no node was asked anything
    assert guard.ledger.pending() == ()
    assert guard.spent_by_reference(TASK).payments == 0


@pytest.mark.asyncio
async def test_a_budget_refusal_says_by_how_much(net: FakeCommittee, tmp_path: Path) -> None:
    guard = spending(SpendingPolicy(budget_usd=parse_usd("0.0003")))
    async with wallet_of(net, tmp_path, guard) as wallet:
        await wallet.pay(PAYEE, Amount(200), TOKEN, reference=TASK)  # 0.0002 USD
        with pytest.raises(PolicyRefused) as refused:
            await wallet.pay(PAYEE, Amount(150), TOKEN, reference=TASK)  # 0.00015 USD
    assert refused.value.rule == "budget"
    assert refused.value.over_by == 50 * 10**12  # 0.00005 USD, in 10**-18 USD
    assert "0.00005 USD" in str(refused.value)


@pytest.mark.asyncio
async def test_allowed_payments_are_recorded_per_reference(
    net: FakeCommittee, tmp_path: Path
) -> None:
    reads = 0

    async def feed() -> PriceReading:
        nonlocal reads
        reads += 1
        return PriceReading(250_000_000, 8, NOW - 10)  # 2.50 USD

    guard = spending(
        SpendingPolicy(budget_usd=parse_usd("1")),
        price=CachedPrice(feed, ttl=60),
        priced=FAR,
    )
    other = Hash32(bytes([9] * 32))
    async with wallet_of(net, tmp_path, guard) as wallet:
        await wallet.pay(PAYEE, Amount(250), TOKEN, reference=TASK)
        await wallet.pay(PAYEE, Amount(50), TOKEN, reference=TASK)
        await wallet.pay(OTHER, Amount(10**17), FAR, reference=other)  # 0.1 FAR = 0.25 USD
        await wallet.pay(OTHER, Amount(10**16), FAR, reference=other)
        task = wallet.spent_by_reference(TASK)
        assert task.payments == 2
        assert task.amounts == (TokenAmount(USDF_TOKEN, Amount(300)),)
        assert task.usd == 300 * 10**12
        far = wallet.spent_by_reference(other)
        assert far.amounts == (TokenAmount(FAR_TOKEN, Amount(11 * 10**16)),)
        assert far.usd == parse_usd("0.275")
    assert reads == 1  # one price reading served both FAR payments (and none for USDF)
    assert guard.ledger.pending() == ()


@pytest.mark.asyncio
async def test_paying_far_without_a_price_sends_nothing(net: FakeCommittee, tmp_path: Path) -> None:
    guard = spending(SpendingPolicy())
    async with wallet_of(net, tmp_path, guard) as wallet:
        with pytest.raises(PriceUnavailable):
            await wallet.pay(PAYEE, Amount(1), FAR)
    assert requests(net) == 0


@pytest.mark.asyncio
async def test_a_refusal_by_every_node_releases_the_reservation(
    net: FakeCommittee, tmp_path: Path
) -> None:
    guard = spending(SpendingPolicy(budget_usd=parse_usd("5")))
    async with wallet_of(net, tmp_path, guard) as wallet:
        with pytest.raises(InsufficientBalance):
            await wallet.pay(PAYEE, Amount(2_000_000), TOKEN, reference=TASK)  # has 1 USDF
        assert [e.state for e in wallet._journal.entries()] == ["abandoned"]
        assert guard.ledger.pending() == ()
        assert guard.ledger.window_spend(NOW, 86_400) == 0
        assert wallet.spent_by_reference(TASK).payments == 0
        await wallet.pay(PAYEE, Amount(5), TOKEN, reference=TASK)  # the sequence is free again
        assert wallet.spent_by_reference(TASK).payments == 1


@pytest.mark.asyncio
async def test_a_failure_before_signing_releases_the_reservation(
    net: FakeCommittee, tmp_path: Path
) -> None:
    for node in net.nodes:
        node.down = True
    guard = spending(SpendingPolicy(budget_usd=parse_usd("5")))
    async with wallet_of(net, tmp_path, guard, timeout=0.5) as wallet:
        with pytest.raises(Exception, match="reading the account"):
            await wallet.pay(PAYEE, Amount(5), TOKEN)
        assert wallet._journal.entries() == []
    assert guard.ledger.pending() == ()


@pytest.mark.asyncio
async def test_a_crash_after_votes_then_resume_commits_the_reservation(
    net: FakeCommittee, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ledger_file = tmp_path / "spend.json"
    policy = SpendingPolicy(budget_usd=parse_usd("5"))
    original = Journal.write

    def crash_when_certified(self: Journal, entry: object, durable: bool = True) -> None:
        if getattr(entry, "state", None) == "certified":
            raise Crash
        original(self, entry, durable=durable)  # type: ignore[arg-type]

    monkeypatch.setattr(Journal, "write", crash_when_certified)
    wallet = wallet_of(net, tmp_path, spending(policy, SpendLedger.open(ledger_file)))
    wallet.open()
    with pytest.raises(Crash):
        await wallet.pay(PAYEE, Amount(30), TOKEN, reference=TASK)
    wallet._journal.close()  # the process died
    monkeypatch.setattr(Journal, "write", original)

    restarted_guard = spending(policy, SpendLedger.open(ledger_file))
    [pending] = restarted_guard.ledger.pending()  # counted across the crash
    assert pending.record.units == 30
    async with wallet_of(net, tmp_path, restarted_guard) as restarted:
        assert restarted_guard.ledger.pending() != ()  # undecided until the order is finished
        finished = await restarted.resume()
        assert finished is not None and finished.order.amount == 30
        assert restarted_guard.ledger.pending() == ()
        assert restarted.spent_by_reference(TASK).payments == 1


@pytest.mark.asyncio
async def test_a_crash_before_signing_is_released_on_restart(
    net: FakeCommittee, tmp_path: Path
) -> None:
    ledger_file = tmp_path / "spend.json"
    policy = SpendingPolicy(budget_usd=parse_usd("5"))

    async def die(order: object) -> None:
        raise Crash  # after the reservation, before the order is signed

    wallet = wallet_of(
        net, tmp_path, spending(policy, SpendLedger.open(ledger_file)), before_sign=die
    )
    wallet.open()
    with pytest.raises(Crash):
        await wallet.pay(PAYEE, Amount(30), TOKEN, reference=TASK)
    wallet._journal.close()
    assert len(SpendLedger.open(ledger_file).pending()) == 1

    guard = spending(policy, SpendLedger.open(ledger_file))
    async with wallet_of(net, tmp_path, guard):
        assert guard.ledger.pending() == ()  # settled when opened: no journal entry holds it
        assert guard.spent_by_reference(TASK).payments == 0


@pytest.mark.asyncio
async def test_withdraw_certifies_a_withdrawal_outside_the_policy(
    net: FakeCommittee, tmp_path: Path
) -> None:
    guard = spending(SpendingPolicy(budget_usd=parse_usd("0.000001")))
    async with wallet_of(net, tmp_path, guard) as wallet:
        receipt = await wallet.withdraw(Amount(400_000), TOKEN)
        order = receipt.certificate.order
        assert isinstance(order, Withdrawal)
        assert (order.account, order.recipient, order.amount) == (
            PAYER.address,
            PAYER.address,
            400_000,
        )
        assert await wallet.balance(TOKEN) == 600_000
        second = await wallet.withdraw(Amount(1), TOKEN, recipient=OTHER)
        assert second.certificate.order.sequence == 1
        with pytest.raises(EncodingError):
            await wallet.withdraw(Amount(1), TOKEN, recipient=parse_address("0x" + "00" * 20))
        sent = (await wallet.history()).sent
        assert [c.order.sequence for c in sent] == [0, 1]
    assert guard.ledger.pending() == ()


@pytest.mark.asyncio
async def test_the_same_payment_retried_is_reserved_and_counted_once(
    net: FakeCommittee, tmp_path: Path
) -> None:
    # A budget that holds the payment once, not twice: the retry must not reserve again.
    guard = spending(SpendingPolicy(budget_usd=parse_usd("0.0003")))
    async with wallet_of(net, tmp_path, guard) as wallet:
        await wallet.pay(OTHER, Amount(1), TOKEN)  # sequence 0 (and the next one is known)
        net.nodes[0].down = net.nodes[1].down = True
        with pytest.raises(QuorumUnavailable):
            await wallet.pay(PAYEE, Amount(200), TOKEN, reference=TASK)  # 0.0002 USD
        assert [e.state for e in wallet._journal.entries()] == ["confirmed", "signed"]
        net.nodes[0].down = net.nodes[1].down = False
        receipt = await wallet.pay(PAYEE, Amount(200), TOKEN, reference=TASK)
        assert receipt.certificate.order.sequence == 1
        assert wallet.spent_by_reference(TASK).payments == 1
        assert guard.ledger.pending() == ()
        with pytest.raises(PolicyRefused):  # a second payment would exceed the budget
            await wallet.pay(PAYEE, Amount(200), TOKEN, reference=TASK)
