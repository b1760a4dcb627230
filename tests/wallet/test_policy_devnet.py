"""Every spending-policy rule on a real devnet (anvil, 4 node processes), through the
agent façade (wallet.agent.connect): an agent with USDF and FAR deposited pays real nodes
under a policy built per case; each rule first allows a payment (certified, applied by
every node, received by the payee, recorded per reference) and then refuses one with the
exact ``rule``, ``limit``, ``attempted`` and ``over_by``, and nothing is sent (the
agent's ``next_sequence`` and balances at every node unchanged, no reservation left).

FAR is valued at the devnet's on-chain price feed (2.50 USD): the expected USD figures
are computed from the feed's own reading. The stale-price case runs LAST: it moves
anvil's clock forward (``evm_increaseTime``), and its wallet takes the chain's time as
its clock (``connect(clock=...)``) so that the feed's ``updatedAt`` really is old; then
the updater (the devnet's governance account, a PUBLIC test key) posts a new price and
the payment goes through at that price."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from web3 import Web3

from contracts import load_artifact
from devnet import Devnet, DevnetConfig
from devnet.manifest import Manifest
from tests.contracts.chain import advance_time
from tests.node.devnet_helpers import call, endpoints, send_transaction, wait_for
from wallet.agent import FarthingWallet, connect
from wallet.amounts import TokenRegistry
from wallet.client import Receipt
from wallet.codec import address_hex, parse_address, parse_hash32
from wallet.errors import PolicyRefused, StalePrice
from wallet.policy import USD_DECIMALS, SpendingPolicy, UsdValue, parse_usd
from wallet.signing import PrivateKey
from wallet.spend_ledger import ReferenceSpend
from wallet.types import Amount, Transfer

pytestmark = pytest.mark.integration

USDF = 10**6
FAR = 10**18
DEPOSIT_USDF = 100 * USDF
DEPOSIT_FAR = 20 * FAR
TASK = "0x" + "7a" * 32
OTHER_TASK = "0x" + "7b" * 32
#: A payee that is no agent of the devnet (a payee needs no account to be paid).
STRANGER = "0x" + "5e" * 20


@pytest.fixture(scope="module")
def devnet() -> Iterator[Devnet]:
    with Devnet.up(DevnetConfig(start_nodes=True, agents=3)) as net:
        yield net


@dataclass(frozen=True)
class Setup:
    """The devnet, its web3 and the payer (agent 0) with USDF and FAR deposited."""

    devnet: Devnet
    w3: Web3
    payer: PrivateKey
    payee: str  # agent 1
    other: str  # agent 2

    @property
    def m(self) -> Manifest:
        return self.devnet.manifest

    def feed(self) -> Any:
        return self.w3.eth.contract(
            address=self.m.contracts.price_feed, abi=load_artifact("PriceFeed").abi
        )

    def far_usd(self, units: int) -> UsdValue:
        """What ``units`` of FAR are worth at the feed's latest reading, read from the
        contract itself (10**-18 USD, rounded up as the policy rounds)."""
        feed = self.feed()
        answer = int(feed.functions.latestRoundData().call()[1])
        decimals = int(feed.functions.decimals().call())
        return UsdValue(-(-units * answer * 10**USD_DECIMALS // 10 ** (18 + decimals)))


@pytest.fixture(scope="module")
def setup(devnet: Devnet, tmp_path_factory: pytest.TempPathFactory) -> Setup:
    m = devnet.manifest
    ready = Setup(
        devnet,
        Web3(Web3.HTTPProvider(m.rpc_url)),
        PrivateKey.from_hex(m.agents[0].private_key),
        m.agents[1].address,
        m.agents[2].address,
    )

    async def deposit() -> None:
        async with connect(
            manifest=devnet.state_dir / "manifest.json",
            key=ready.payer,
            data_dir=tmp_path_factory.mktemp("deposit"),
        ) as w:
            await w.deposit(DEPOSIT_USDF, "USDF", timeout=30)
            await w.deposit(DEPOSIT_FAR, "FAR", timeout=30)
            # deposit() returns once a quorum credited it; every test below reads all
            # four nodes, and balance() may ask the one that is still behind.
            usdf, far = (address_hex(w.tokens.by_symbol(t).address) for t in ("USDF", "FAR"))
            settled(
                m,
                address_hex(w.address),
                lambda a: (a.of(usdf), a.of(far)) == (DEPOSIT_USDF, DEPOSIT_FAR),
            )
            assert (await w.balance("USDF")).units == DEPOSIT_USDF
            assert (await w.balance("FAR")).units == DEPOSIT_FAR

    asyncio.run(deposit())
    return ready


@asynccontextmanager
async def agent(
    s: Setup,
    data_dir: Path,
    policy: SpendingPolicy | None = None,
    *,
    clock: Callable[[], int] | None = None,
) -> AsyncIterator[FarthingWallet]:
    """The payer's wallet under ``policy``, with its own data directory (so its own
    spend ledger and journal: the sequence is read from the nodes)."""
    async with connect(
        manifest=s.devnet.state_dir / "manifest.json",
        key=s.payer,
        data_dir=data_dir,
        policy=policy,
        price_ttl=0.0,  # every FAR payment reads the feed again
        receipt_timeout=10.0,
        clock=clock,
    ) as w:
        yield w


# ---------------------------------------------------------------- what the nodes hold


@dataclass(frozen=True)
class AccountState:
    next_sequence: int
    balances: dict[str, int]

    def of(self, token: str) -> int:
        return self.balances.get(token, 0)


def states(m: Manifest, who: str) -> list[AccountState]:
    """``who``'s account at every node."""
    found = []
    for endpoint in endpoints(m):
        status, body = call(f"{endpoint}/v1/accounts/{who}")
        assert status == 200, body
        found.append(
            AccountState(
                int(body["next_sequence"]), {t: int(v) for t, v in body["balances"].items()}
            )
        )
    return found


def settled(
    m: Manifest, who: str, check: Callable[[AccountState], bool] = lambda _: True
) -> AccountState:
    """``who``'s account once every node holds the same one (and it passes ``check``)."""
    seen: list[AccountState] = []

    def agreed() -> bool:
        seen[:] = states(m, who)
        return all(state == seen[0] for state in seen) and check(seen[0])

    wait_for(agreed, timeout=15)
    return seen[0]


async def allowed(
    s: Setup, w: FarthingWallet, payee: str, amount: str, reference: str = TASK
) -> Receipt:
    """Pays; checks the payment is certified, applied by every node (the payer's sequence
    moved by one, the amount left the payer and reached the payee)."""
    exact = w.amount(amount)
    token = address_hex(exact.token.address)
    payer = address_hex(w.address)
    payer_before = settled(s.m, payer)
    payee_before = settled(s.m, payee)
    receipt = await w.pay(payee, amount, reference=reference)
    order = receipt.certificate.order
    assert isinstance(order, Transfer)
    assert (order.payee, order.token, order.amount) == (
        parse_address(payee),
        exact.token.address,
        exact.units,
    )
    assert order.sequence == payer_before.next_sequence
    assert order.reference == parse_hash32(reference)
    assert len(receipt.certificate.votes) >= s.m.committee.quorum
    payer_after = settled(s.m, payer, lambda a: a.next_sequence == payer_before.next_sequence + 1)
    assert payer_after.of(token) == payer_before.of(token) - exact.units
    settled(s.m, payee, lambda a: a.of(token) == payee_before.of(token) + exact.units)
    return receipt


async def refused(
    s: Setup, w: FarthingWallet, payee: str, amount: str, reference: str = TASK
) -> PolicyRefused:
    """Pays and expects PolicyRefused; checks nothing was sent (the payer's account at
    every node unchanged, then and a moment later; nothing reserved or spent)."""
    payer = address_hex(w.address)
    before = settled(s.m, payer)
    spent = w.spent_by_reference(reference)
    with pytest.raises(PolicyRefused) as refusal:
        await w.pay(payee, amount, reference=reference)
    assert states(s.m, payer) == [before] * len(endpoints(s.m))
    await asyncio.sleep(0.3)
    assert states(s.m, payer) == [before] * len(endpoints(s.m))
    assert w.spent_by_reference(reference) == spent
    assert w.client.spending is not None
    assert w.client.spending.ledger.pending() == ()
    return refusal.value


def figures(refusal: PolicyRefused) -> tuple[str, int | None, int | None, int | None]:
    return refusal.rule, refusal.limit, refusal.attempted, refusal.over_by


def by_token(spent: ReferenceSpend) -> dict[str, int]:
    return {amount.token.symbol: amount.units for amount in spent.amounts}


# ---------------------------------------------------------------- the rules


def test_deny_list(setup: Setup, tmp_path: Path) -> None:
    policy = SpendingPolicy(deny=frozenset({parse_address(setup.other)}))

    async def scenario() -> None:
        async with agent(setup, tmp_path, policy) as w:
            await allowed(setup, w, setup.payee, "1 USDF")
            refusal = await refused(setup, w, setup.other, "1 USDF")
            assert figures(refusal) == ("deny_list", None, None, None)
            spent = w.spent_by_reference(TASK)
            assert (spent.payments, spent.usd, by_token(spent)) == (
                1,
                parse_usd("1"),
                {"USDF": USDF},
            )

    asyncio.run(scenario())


def test_allow_list(setup: Setup, tmp_path: Path) -> None:
    policy = SpendingPolicy(allow=frozenset({parse_address(setup.payee)}))

    async def scenario() -> None:
        async with agent(setup, tmp_path, policy) as w:
            await allowed(setup, w, setup.payee, "0.5 USDF")
            refusal = await refused(setup, w, STRANGER, "0.5 USDF")
            assert figures(refusal) == ("allow_list", None, None, None)
            spent = w.spent_by_reference(TASK)
            assert (spent.payments, spent.usd) == (1, parse_usd("0.5"))

    asyncio.run(scenario())


def test_max_per_payment_in_usdf_units(setup: Setup, tmp_path: Path) -> None:
    c = setup.m.contracts
    usdf = TokenRegistry.farthing(stable=c.stable, native=c.native).by_symbol("USDF")
    policy = SpendingPolicy(max_per_payment={usdf: Amount(2 * USDF)})

    async def scenario() -> None:
        async with agent(setup, tmp_path, policy) as w:
            await allowed(setup, w, setup.payee, "2 USDF")  # the limit itself passes
            refusal = await refused(setup, w, setup.payee, "2.000001 USDF")
            assert figures(refusal) == ("max_per_payment", 2 * USDF, 2 * USDF + 1, 1)
            assert (refusal.unit, refusal.decimals) == ("USDF", 6)
            spent = w.spent_by_reference(TASK)
            assert (spent.payments, by_token(spent)) == (1, {"USDF": 2 * USDF})

    asyncio.run(scenario())


def test_max_per_payment_usd_values_far_at_the_feed(setup: Setup, tmp_path: Path) -> None:
    limit = parse_usd("1")
    policy = SpendingPolicy(max_per_payment_usd=limit)
    # At 2.50 USD per FAR: 0.4 FAR is the limit exactly, 0.5 FAR is over it.
    ok_units, over_units = 4 * FAR // 10, FAR // 2
    ok_usd, over_usd = setup.far_usd(ok_units), setup.far_usd(over_units)
    assert (ok_usd, over_usd) == (parse_usd("1"), parse_usd("1.25"))  # the devnet's 2.50

    async def scenario() -> None:
        async with agent(setup, tmp_path, policy) as w:
            reading = await w.price()
            assert (reading.answer, reading.decimals) == (250_000_000, 8)
            await allowed(setup, w, setup.payee, "0.4 FAR")
            refusal = await refused(setup, w, setup.payee, "0.5 FAR")
            assert figures(refusal) == (
                "max_per_payment_usd",
                limit,
                over_usd,
                over_usd - limit,
            )
            assert refusal.over_by == parse_usd("0.25")
            assert (refusal.unit, refusal.decimals) == ("USD", USD_DECIMALS)
            spent = w.spent_by_reference(TASK)
            assert (spent.payments, spent.usd, by_token(spent)) == (1, ok_usd, {"FAR": ok_units})

    asyncio.run(scenario())


def test_payee_cap_over_the_period(setup: Setup, tmp_path: Path) -> None:
    cap = parse_usd("3")
    policy = SpendingPolicy(payee_caps_usd={parse_address(setup.payee): cap}, period=3_600)

    async def scenario() -> None:
        async with agent(setup, tmp_path, policy) as w:
            await allowed(setup, w, setup.payee, "2 USDF")
            await allowed(setup, w, setup.other, "5 USDF", OTHER_TASK)  # no cap on this payee
            refusal = await refused(setup, w, setup.payee, "1.5 USDF")
            # 2 already paid to this payee in the period + 1.5 = 3.5, over the 3 cap by 0.5.
            assert figures(refusal) == (
                "payee_cap",
                cap,
                parse_usd("3.5"),
                parse_usd("0.5"),
            )
            await allowed(setup, w, setup.payee, "1 USDF")  # the cap exactly
            spent = w.spent_by_reference(TASK)
            assert (spent.payments, spent.usd) == (2, parse_usd("3"))
            assert w.spent_by_reference(OTHER_TASK).usd == parse_usd("5")

    asyncio.run(scenario())


def test_budget_over_the_period_mixing_usdf_and_far(setup: Setup, tmp_path: Path) -> None:
    budget = parse_usd("5")
    policy = SpendingPolicy(budget_usd=budget, period=3_600)
    far_units = 8 * FAR // 10  # 2 USD at 2.50
    far_usd = setup.far_usd(far_units)
    late_far = setup.far_usd(FAR // 2)  # 1.25 USD

    async def scenario() -> None:
        async with agent(setup, tmp_path, policy) as w:
            await allowed(setup, w, setup.payee, "2 USDF")
            await allowed(setup, w, setup.other, "0.8 FAR", OTHER_TASK)
            spent_so_far = parse_usd("2") + far_usd
            assert spent_so_far == parse_usd("4")
            refusal = await refused(setup, w, setup.payee, "0.5 FAR")
            assert figures(refusal) == (
                "budget",
                budget,
                spent_so_far + late_far,
                spent_so_far + late_far - budget,
            )
            assert refusal.over_by == parse_usd("0.25")
            await allowed(setup, w, setup.payee, "1 USDF")  # the budget exactly
            last = await refused(setup, w, setup.other, "0.000001 USDF")
            assert figures(last) == ("budget", budget, budget + 10**12, 10**12)
            spent = w.spent_by_reference(TASK)
            assert (spent.payments, spent.usd, by_token(spent)) == (
                2,
                parse_usd("3"),
                {"USDF": 3 * USDF},
            )
            other = w.spent_by_reference(OTHER_TASK)
            assert (other.payments, other.usd, by_token(other)) == (1, far_usd, {"FAR": far_units})

    asyncio.run(scenario())


# The last test of the module: it moves anvil's clock forward for good.
def test_stale_price_then_a_fresh_one(setup: Setup, tmp_path: Path) -> None:
    max_age = 600
    policy = SpendingPolicy(max_price_age=max_age)
    w3, m = setup.w3, setup.m

    def chain_now() -> int:
        return int(w3.eth.get_block("latest")["timestamp"])

    async def scenario() -> None:
        async with agent(setup, tmp_path, policy, clock=chain_now) as w:
            first = await w.price()
            assert chain_now() - first.updated_at <= max_age
            fresh_usd = setup.far_usd(FAR // 10)
            await allowed(setup, w, setup.payee, "0.1 FAR")

            advance_time(w3, 2 * max_age)
            payer = address_hex(w.address)
            before = settled(m, payer)
            with pytest.raises(StalePrice) as stale:
                await w.pay(setup.payee, "0.1 FAR", reference=TASK)
            assert stale.value.max_age == max_age
            assert stale.value.age == chain_now() - first.updated_at
            assert stale.value.age > max_age
            assert states(m, payer) == [before] * len(endpoints(m))
            assert w.client.spending is not None
            assert w.client.spending.ledger.pending() == ()

            # The updater (governance on the devnet) posts a new price: 3.00 USD.
            send_transaction(
                w3,
                m.governance.private_key,
                setup.feed().functions.updateAnswer(300_000_000),
            )
            second = await w.price()
            assert second.answer == 300_000_000
            assert second.updated_at > first.updated_at + max_age
            new_usd = setup.far_usd(FAR // 10)
            assert new_usd == parse_usd("0.3")
            await allowed(setup, w, setup.payee, "0.1 FAR")
            spent = w.spent_by_reference(TASK)
            assert (spent.payments, spent.usd, by_token(spent)) == (
                2,
                fresh_usd + new_usd,
                {"FAR": 2 * FAR // 10},
            )

    asyncio.run(scenario())
