"""The summary's reconciliation checks (pure: every number comes in as an argument).

Each check is one line, ``OK`` or ``MISMATCH``; the job exits non-zero if any is a
mismatch. What is compared (docs/main-job.md "What the summary checks"):

- per buyer: a verified delivery receipt for every request; what it paid (the sum of its
  certificates) is exactly its units x the quote's unit price; its wallet's spend ledger
  says the same; the USD value is within its budget;
- per token: the provider's earnings (transfers to it in its verified history, under the
  buyers' quotes) equal what the buyers paid, equal the rise of its balance on the
  nodes, and what it withdrew; its on-chain balance rose by exactly what it withdrew and
  the Vault's fell by as much;
- per account: every node reports the same balances, and they are the expected ones.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from wallet.amounts import format_units

DECIMALS: Mapping[str, int] = {"USDF": 6, "FAR": 18}


def show(units: int, symbol: str) -> str:
    """``units`` base units of ``symbol`` as text ("0.0025 USDF")."""
    decimals = DECIMALS.get(symbol, 0)
    sign = "-" if units < 0 else ""
    return f"{sign}{format_units(abs(units), decimals)} {symbol}"


def show_usd(value: int) -> str:
    """A USD value of 10**-18 USD units, to the micro-dollar (rounded up)."""
    micros = -(-value // 10**12)
    return f"${format_units(micros, 6)}"


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    ok: bool
    actual: str
    expected: str = ""

    def line(self) -> str:
        mark = "OK" if self.ok else "MISMATCH"
        text = f"{mark:<8} {self.name}: {self.actual}"
        return text if self.ok else f"{text} (expected {self.expected})"


def equal(name: str, expected: object, actual: object) -> Check:
    return Check(name, expected == actual, str(actual), str(expected))


def amounts_equal(name: str, symbol: str, expected: int, actual: int) -> Check:
    return Check(name, expected == actual, show(actual, symbol), show(expected, symbol))


@dataclass(frozen=True, slots=True)
class BuyerTally:
    """What one buyer did, from its own records."""

    name: str
    symbol: str
    requests: int  # requests served (a delivery came back)
    receipts: int  # delivery receipts that verified
    units: int  # units paid for: the sum of cost(body)
    unit_price: int  # the accepted quote's, in base units of ``symbol``
    paid: int  # the sum of its payment certificates' amounts
    ledger_spent: int  # its wallet's spend ledger for the quote, base units
    spent_usd: int  # the same in USD (10**-18), as the policy counted it
    budget_usd: int  # its policy's budget (10**-18 USD)


@dataclass(frozen=True, slots=True)
class ProviderTally:
    """What the provider earned and settled, per token symbol."""

    earned: Mapping[str, int]  # transfers in its verified history under the buyers' quotes
    balance_rise: Mapping[str, int]  # its node balance after the trading minus before
    withdrawn: Mapping[str, int]  # its withdrawal certificates' amounts
    chain_rise: Mapping[str, int]  # token.balanceOf(provider) after the redeem minus before
    vault_fall: Mapping[str, int]  # token.balanceOf(vault) before the redeem minus after
    redeemed: Mapping[str, bool] = field(default_factory=dict)  # REDEEMED by this run


def buyer_checks(buyer: BuyerTally) -> list[Check]:
    b, s = buyer, buyer.symbol
    return [
        equal(f"{b.name}: delivery receipts verified", b.requests, b.receipts),
        amounts_equal(
            f"{b.name}: paid = {b.units} units x {b.unit_price} base units", s,
            b.units * b.unit_price, b.paid,
        ),
        amounts_equal(f"{b.name}: its wallet's spend ledger for the quote", s,
                      b.paid, b.ledger_spent),
        Check(
            f"{b.name}: within its budget of {show_usd(b.budget_usd)}",
            b.spent_usd <= b.budget_usd,
            show_usd(b.spent_usd),
            f"at most {show_usd(b.budget_usd)}",
        ),
    ]  # fmt: skip


def provider_checks(buyers: Iterable[BuyerTally], provider: ProviderTally) -> list[Check]:
    paid: dict[str, int] = {}
    for b in buyers:
        paid[b.symbol] = paid.get(b.symbol, 0) + b.paid
    checks: list[Check] = []
    for s in sorted(set(paid) | set(provider.earned)):
        earned = provider.earned.get(s, 0)
        withdrawn = provider.withdrawn.get(s, 0)
        redeemed = provider.redeemed.get(s, False)
        if not (paid.get(s, 0) or earned or withdrawn):
            continue  # no buyer paid in this token: nothing to settle
        checks += [
            amounts_equal(f"provider earned in {s} = the buyers' payments", s,
                          paid.get(s, 0), earned),
            amounts_equal(f"provider's {s} balance on the nodes rose by its earnings", s,
                          earned, provider.balance_rise.get(s, 0)),
            amounts_equal(f"provider withdrew its {s} earnings", s, earned, withdrawn),
            equal(f"provider's {s} withdrawal redeemed on chain", True, redeemed),
            amounts_equal(f"on chain: provider's {s} balance rose by the withdrawal", s,
                          withdrawn, provider.chain_rise.get(s, 0)),
            amounts_equal(f"on chain: the Vault's {s} balance fell by the withdrawal", s,
                          withdrawn, provider.vault_fall.get(s, 0)),
        ]  # fmt: skip
    return checks


def total_checks(requested: int, buyers: Iterable[BuyerTally]) -> list[Check]:
    done = sum(b.requests for b in buyers)
    return [equal("paid requests served in total", requested, done)]


def node_balance_check(
    account: str,
    expected: Mapping[str, int],
    per_node: Mapping[str, Mapping[str, int]],
) -> Check:
    """One account's balances (by symbol) on every node (by node name): each node must
    show exactly ``expected`` (so they also agree)."""
    wanted = {s: v for s, v in expected.items() if v}
    wrong = {
        node: dict(seen)
        for node, seen in per_node.items()
        if {s: v for s, v in seen.items() if v} != wanted
    }
    shown = ", ".join(show(v, s) for s, v in sorted(wanted.items())) or "nothing"
    name = f"{account}: balances on all {len(per_node)} nodes"
    if not per_node:
        return Check(name, False, "no node answered", shown)
    if not wrong:
        return Check(name, True, f"{shown} on each")
    seen = "; ".join(
        f"{node}: {', '.join(show(v, s) for s, v in sorted(b.items()) if v) or 'nothing'}"
        for node, b in sorted(wrong.items())
    )
    return Check(name, False, seen, f"{shown} on each")
