"""The main job, start to end, on a running devnet (``devnet trade`` brings it up and
down around :func:`run_trade`).

1. The provider opens its wallet, reads the FAR/USD feed, starts its agent (HTTP on
   loopback) and registers its record with both services in the nodes' directory.
2. Each buyer opens its wallet under a spending policy (its USD budget), starts its agent,
   registers it, and deposits its budget on chain (USDF, or FAR at the feed's rate).
3. Each buyer finds the provider with ``find(service=...)``, asks for a quote, counters
   once (declined), asks again and accepts; then makes its share of the paid requests,
   all buyers at once, while a status line shows the progress.
4. The provider withdraws what it earned in each token and redeems it on chain.
5. The summary: every figure read from both sides and checked (:mod:`.checks`).

Every agent runs in this one process (asyncio) but they talk to each other and to the
nodes over real HTTP on loopback. Ctrl-C cancels the run: the ``async with`` blocks stop
the agents and close the wallets, and the caller brings the devnet down.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import aiohttp

from devnet.manifest import Manifest
from devnet.trading import views
from devnet.trading.buyer import BuyerStats, TradingBuyer
from devnet.trading.checks import (
    BuyerTally,
    Check,
    ProviderTally,
    buyer_checks,
    equal,
    node_balance_check,
    provider_checks,
    show,
    show_usd,
    total_checks,
)
from devnet.trading.model import workload
from devnet.trading.pricing import request_units
from devnet.trading.progress import Progress
from devnet.trading.provider import Provider, price_list
from devnet.trading.resolving import CachingResolver
from wallet.agent import FarthingWallet, connect
from wallet.chain import RedeemStatus
from wallet.codec import address_hex
from wallet.eip712 import order_digest
from wallet.errors import InvalidReceipt
from wallet.policy import SpendingPolicy, parse_usd
from wallet.signing import PrivateKey
from wallet.types import Hash32, Transfer
from wallet.uagents.directory_client import DirectoryClient, agent_record
from wallet.uagents.negotiation import verify_delivery
from wallet.uagents.resolver import DirectoryResolver

SYMBOLS = ("USDF", "FAR")


@dataclass(frozen=True, slots=True)
class TradeOptions:
    requests: int = 1000
    buyers: int = 2  # the second (and every even-numbered one) pays in FAR
    seed: int = 1
    budget_usd: str = "5"  # each buyer's policy budget, deposited in its token
    interval: float = 1.0  # seconds between progress lines


def shares(requests: int, buyers: int) -> list[int]:
    """``requests`` split between ``buyers`` (the first ones take the remainder)."""
    return [requests // buyers + (1 if i < requests % buyers else 0) for i in range(buyers)]


def buyer_symbol(index: int) -> str:
    """Buyer ``index`` (0-based) pays in USDF, the next in FAR, and so on."""
    return "FAR" if index % 2 else "USDF"


def deposit_units(symbol: str, budget_usd: int, answer: int, decimals: int) -> int:
    """The budget (10**-18 USD) in base units of ``symbol``, rounded up (FAR at the feed)."""
    if symbol == "USDF":
        return int(-(-budget_usd // 10**12))
    return int(-(-budget_usd * 10**decimals // answer))


class _Out:
    def __init__(self, out: TextIO) -> None:
        self.out = out

    def __call__(self, line: str = "") -> None:
        self.out.write(line + "\n")
        self.out.flush()


async def _balances(wallet: FarthingWallet) -> dict[str, int]:
    return {s: (await wallet.balance(s)).units for s in SYMBOLS}


async def run_trade(manifest: Manifest, state_dir: Path, options: TradeOptions, out: TextIO) -> int:
    """Runs the job on the devnet of ``manifest``; 0 if every check passed, else 1."""
    say = _Out(out)
    agents = manifest.agents
    if len(agents) < options.buyers + 1:
        raise ValueError(f"the devnet funds {len(agents)} agents: {options.buyers + 1} needed")
    data = state_dir / "trade"
    shutil.rmtree(data, ignore_errors=True)  # journals of a previous devnet: never reuse
    data.mkdir(mode=0o700, parents=True)

    # The agents' and wallets' log (warnings: a refused message, a node that did not
    # answer, a handler cut short by Ctrl-C) goes to a file, not over the status line.
    handler = logging.FileHandler(data / "trade.log")
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        return await _run(manifest, state_dir, options, say, data)
    finally:
        root.removeHandler(handler)
        handler.close()


async def _run(
    manifest: Manifest, state_dir: Path, options: TradeOptions, say: _Out, data: Path
) -> int:
    manifest_path = state_dir / "manifest.json"
    nodes = [member.endpoint for member in manifest.committee.members]
    tokens = {"USDF": manifest.contracts.stable, "FAR": manifest.contracts.native}
    budget = parse_usd(options.budget_usd, field="budget_usd")
    keys = [PrivateKey.from_hex(a.private_key) for a in manifest.agents]  # PUBLIC test keys
    async with contextlib.AsyncExitStack() as stack:
        http = await stack.enter_async_context(
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
        )
        directory = await stack.enter_async_context(DirectoryClient(nodes))
        resolver = CachingResolver(DirectoryResolver(nodes))

        # 1. The provider.
        pw = await stack.enter_async_context(
            connect(manifest=manifest_path, key=keys[0], data_dir=data / "provider")
        )
        feed = await pw.price()
        prices = price_list(tokens["USDF"], tokens["FAR"], feed)
        provider = Provider(keys[0], pw, prices, resolver)
        await stack.enter_async_context(provider.agent)
        registration = await directory.register(provider.record())
        provider_account = address_hex(pw.address)
        provider_before = await _balances(pw)
        say(
            f"provider  {provider.agent.address[:16]}... ({provider_account}) on "
            f"{provider.agent.endpoint}, listed on {len(registration.accepted)} of "
            f"{len(nodes)} nodes"
        )
        say(
            f"          sells sim-llm.usdf at 3 USDF base units per unit ($3/M input, $15/M "
            f"output tokens) and sim-llm.far at {prices.far_price} FAR base units per unit "
            f"(feed: {feed.value} USD per FAR)"
        )

        # 2. The buyers.
        buyers: list[TradingBuyer] = []
        befores: dict[str, dict[str, int]] = {provider_account: provider_before}
        targets = shares(options.requests, options.buyers)
        for i in range(options.buyers):
            name = f"buyer-{i + 1}"
            policy = SpendingPolicy(budget_usd=budget)
            wallet = await stack.enter_async_context(
                connect(
                    manifest=manifest_path, key=keys[i + 1], data_dir=data / name, policy=policy
                )
            )
            buyer = TradingBuyer(name, keys[i + 1], wallet, resolver, buyer_symbol(i), targets[i])
            await stack.enter_async_context(buyer.agent)
            await directory.register(agent_record(buyer.agent, keys[i + 1]))
            befores[address_hex(wallet.address)] = await _balances(wallet)
            buyers.append(buyer)
        deposits: dict[str, int] = {}
        for buyer in buyers:  # anvil mines each at once; one at a time keeps the log simple
            units = deposit_units(buyer.symbol, budget, feed.answer, feed.decimals)
            await buyer.deposit(units)
            deposits[buyer.stats.name] = units
            say(
                f"{buyer.stats.name:<9} pays in {buyer.symbol}, budget {show_usd(budget)} "
                f"(spending policy), deposited {show(units, buyer.symbol)} on chain"
            )

        # 3. Find, negotiate, trade.
        # Each buyer's requests are drawn up front (seeded): its quote asks for exactly
        # the units they cost; its spending policy still caps what it may pay.
        plans = [
            list(itertools.islice(workload(options.seed, i), b.stats.target))
            for i, b in enumerate(buyers)
        ]
        for buyer, plan in zip(buyers, plans, strict=True):
            found = await buyer.find_provider(directory)
            units = sum(request_units(r) for r in plan)
            quote = await buyer.negotiate(found, units=units)
            say(
                f"{buyer.stats.name:<9} found {found[:16]}... in the directory (service "
                f"{buyer.service}); quote {quote.unit_price} per unit for {units:,} units; "
                f"{buyer.stats.counter}; accepted"
            )

        async def earned() -> dict[str, int]:
            now = await _balances(pw)
            return {s: now[s] - provider_before[s] for s in SYMBOLS}

        say(f"trading: {options.requests} paid requests (seed {options.seed})")
        progress = Progress([b.stats for b in buyers], earned, say.out, interval=options.interval)
        started = time.monotonic()
        progress.start()
        await asyncio.gather(*(b.run(iter(p)) for b, p in zip(buyers, plans, strict=True)))
        elapsed = time.monotonic() - started
        await progress.stop(await earned(), elapsed)
        for buyer in buyers:
            await buyer.close()
        done = sum(b.stats.requests for b in buyers)
        rate = done / max(elapsed, 1e-9)

        # 4. The provider's earnings, from its verified history; withdraw and redeem.
        quotes = {b.stats.quote_hash for b in buyers if b.stats.quote_hash is not None}
        # (From a node's log, each certificate verified: pw.history() cuts replies of
        # over ~64 KiB short, see docs/main-job.md.)
        received = await views.received_transfers(
            http, nodes[0], pw.address, pw.network.committees, pw.network.domain
        )
        earnings = dict.fromkeys(SYMBOLS, 0)
        for certificate in received:
            order = certificate.order
            if isinstance(order, Transfer) and order.reference in quotes:
                earnings[pw.tokens.by_address(order.token).symbol] += order.amount
        balance_rise = await views.settled_views(
            http, nodes, [provider_account], tokens,
            {provider_account: {s: provider_before[s] + earnings[s] for s in SYMBOLS}},
        )  # fmt: skip
        rise = {
            s: min(v[s] for v in balance_rise[provider_account].values()) - provider_before[s]
            for s in SYMBOLS
        }
        withdrawn: dict[str, int] = {}
        withdrawals = []
        for symbol in SYMBOLS:
            if earnings[symbol]:
                receipt = await pw.withdraw(earnings[symbol], symbol)
                withdrawn[symbol] = receipt.certificate.order.amount
                withdrawals.append((symbol, receipt))
        vault = manifest.contracts.vault

        async def on_chain() -> dict[str, tuple[int, int]]:
            return {
                s: (
                    await views.balance_of(http, manifest.rpc_url, tokens[s], provider_account),
                    await views.balance_of(http, manifest.rpc_url, tokens[s], vault),
                )
                for s in SYMBOLS
            }

        chain_before = await on_chain()
        redeemed: dict[str, bool] = {}
        gas_txs: list[tuple[str, str]] = []
        for symbol, receipt in withdrawals:
            result = await pw.redeem(receipt)
            redeemed[symbol] = result.status is RedeemStatus.REDEEMED
            if result.transaction is not None:
                gas_txs.append((f"redeem {symbol}", "0x" + result.transaction.tx_hash.hex()))
        chain_after = await on_chain()
        say(
            "provider  withdrew "
            + " and ".join(show(v, s) for s, v in withdrawn.items())
            + " and redeemed on chain"
        )

        # 5. The summary.
        tallies: list[BuyerTally] = []
        verified = 0
        for buyer in buyers:
            stats = buyer.stats
            quote_hash = stats.quote_hash
            assert quote_hash is not None
            verified_here = _reverify(stats, pw, quote_hash)
            verified += verified_here
            spent = buyer.wallet.spent_by_reference(quote_hash)
            ledger = sum(a.units for a in spent.amounts if a.token.symbol == stats.symbol)
            tallies.append(
                BuyerTally(
                    stats.name, stats.symbol, stats.requests, verified_here, stats.units,
                    stats.unit_price, stats.paid, ledger, spent.usd, budget,
                )
            )  # fmt: skip
            if stats.deposit is not None:
                gas_txs.append(
                    (f"deposit {stats.name}", "0x" + stats.deposit.transaction.tx_hash.hex())
                )
        provider_tally = ProviderTally(
            earned=earnings,
            balance_rise=rise,
            withdrawn=withdrawn,
            chain_rise={s: chain_after[s][0] - chain_before[s][0] for s in SYMBOLS},
            vault_fall={s: chain_before[s][1] - chain_after[s][1] for s in SYMBOLS},
            redeemed=redeemed,
        )
        expected: dict[str, dict[str, int]] = {
            provider_account: {
                s: provider_before[s] + earnings[s] - withdrawn.get(s, 0) for s in SYMBOLS
            }
        }
        names = {provider_account: "provider"}
        for buyer, tally in zip(buyers, tallies, strict=True):
            account = address_hex(buyer.wallet.address)
            names[account] = buyer.stats.name
            expected[account] = {
                s: befores[account][s]
                + (deposits[buyer.stats.name] - tally.paid if s == buyer.symbol else 0)
                for s in SYMBOLS
            }
        accounts = list(expected)
        seen = await views.settled_views(http, nodes, accounts, tokens, expected)

        checks: list[Check] = total_checks(options.requests, tallies)
        for tally in tallies:
            checks += buyer_checks(tally)
        checks += provider_checks(tallies, provider_tally)
        checks += [node_balance_check(names[a], expected[a], seen[a]) for a in accounts]
        checks.append(equal("delivery receipts verified again (all buyers)", done, verified))
        errors = [b.stats for b in buyers if b.stats.error]
        checks += [
            Check(f"{s.name} stopped early", False, s.error or "", "no error") for s in errors
        ]

        gas = 0
        fees = 0
        spent_gas: list[str] = []
        for label, tx in gas_txs:
            used, fee = await views.transaction_fee(http, manifest.rpc_url, tx)
            gas, fees = gas + used, fees + fee
            spent_gas.append(f"{label} {used:,}")
        _print_summary(say, checks, done, elapsed, rate, gas, fees, spent_gas, buyers)
        return 0 if all(c.ok for c in checks) else 1
    raise AssertionError("unreachable")  # pragma: no cover


def _reverify(stats: BuyerStats, provider: FarthingWallet, quote: Hash32) -> int:
    """How many of the buyer's kept delivery receipts verify again (offline)."""
    good = 0
    domain = provider.network.domain
    for delivered in stats.delivered:
        try:
            verify_delivery(
                delivered.receipt,
                seller=provider.address,
                quote=quote,
                transaction_id=Hash32(order_digest(domain, delivered.certificate.order)),
                content=delivered.content.encode(),
            )
        except InvalidReceipt:
            continue
        good += 1
    return good


def _print_summary(
    say: _Out,
    checks: Sequence[Check],
    done: int,
    elapsed: float,
    rate: float,
    gas: int,
    fees: int,
    gas_lines: Sequence[str],
    buyers: Sequence[TradingBuyer],
) -> None:
    say()
    say("summary")
    for check in checks:
        say("  " + check.line())
    mismatches = sum(not c.ok for c in checks)
    per_payment = gas / done if done else 0.0
    say(
        f"  figures  {done} paid requests in {elapsed:.1f} s: {rate:.1f} payments/s; "
        f"settlement gas {gas:,} in {len(gas_lines)} transactions "
        f"({fees / 10**18:.6f} ETH), {per_payment:,.0f} gas per payment"
    )
    say(f"  figures  gas per transaction: {'; '.join(gas_lines)}")
    for b in buyers:
        s = b.stats
        say(
            f"  figures  {s.name}: {s.requests} requests, {s.units:,} units, "
            f"spent {show(s.paid, s.symbol)}"
        )
    say("result: every check OK" if not mismatches else f"result: {mismatches} MISMATCH(ES)")
