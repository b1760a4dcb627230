"""A buyer agent: finds the provider in the nodes' directory, negotiates (a counter offer,
declined, then the quote accepted) and pays for each request of its seeded workload with
one micropayment of ``cost(body)`` units, checking every delivery receipt."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field

from devnet.trading.pricing import (
    SERVICE_FAR,
    SERVICE_USDF,
    USDF_UNIT_PRICE,
    ModelRequest,
    far_unit_price,
    request_units,
)
from wallet.agent import FarthingWallet
from wallet.chain import DepositResult
from wallet.codec import address_hex
from wallet.errors import WalletError
from wallet.signing import PrivateKey
from wallet.types import Hash32
from wallet.uagents.agent import Agent
from wallet.uagents.directory_client import DirectoryClient
from wallet.uagents.market import Buyer, Delivered
from wallet.uagents.negotiation import Quote
from wallet.uagents.resolver import Resolver

log = logging.getLogger("devnet.trading")


@dataclass(slots=True)
class BuyerStats:
    """A buyer's running totals (the progress line and the summary read them)."""

    name: str
    symbol: str
    target: int
    requests: int = 0
    units: int = 0
    paid: int = 0
    unit_price: int = 0
    quote_hash: Hash32 | None = None
    error: str | None = None
    counter: str = ""
    deposit: DepositResult | None = None
    delivered: list[Delivered] = field(default_factory=list)


class TradingBuyer:
    """One buyer agent paying in ``symbol`` ("USDF" or "FAR")."""

    def __init__(
        self,
        name: str,
        key: PrivateKey,
        wallet: FarthingWallet,
        resolver: Resolver,
        symbol: str,
        target: int,
    ) -> None:
        self.key = key
        self.wallet = wallet
        self.symbol = symbol
        self.service = SERVICE_FAR if symbol == "FAR" else SERVICE_USDF
        self.token = wallet.tokens.by_symbol(symbol)
        self.agent = Agent(key, name=name, resolver=resolver)
        self.stats = BuyerStats(name, symbol, target)
        self._buyer: Buyer | None = None

    async def deposit(self, units: int) -> None:
        """Puts ``units`` base units of its token on the ledger (one transaction; returns
        once a quorum of nodes credited it)."""
        self.stats.deposit = await self.wallet.deposit(units, self.symbol, timeout=60)

    async def max_unit_price(self) -> int:
        """The most it pays per unit: $3 per million, in FAR at the feed's reading."""
        if self.symbol == "USDF":
            return USDF_UNIT_PRICE
        feed = await self.wallet.price()
        return far_unit_price(feed.answer, feed.decimals)

    async def find_provider(self, directory: DirectoryClient) -> str:
        """The agent address of a provider listing its service (verified records)."""
        records = await directory.find(service=self.service)
        if not records:
            raise WalletError(f"no agent in the directory sells {self.service}")
        return records[0].record.agent

    async def negotiate(self, provider: str, units: int) -> Quote:
        """Asks for a quote of ``units`` units, counters once below it (the provider
        declines: its floor is its price), asks again and accepts."""
        buyer = self._buyer = Buyer(self.agent, self.wallet, provider)
        limit = await self.max_unit_price()
        first = await buyer.request_quote(
            self.service, units=units, max_unit_price=limit, token=self.token_hex
        )
        lower = int(first.unit_price) * 9 // 10
        try:
            await buyer.counter(lower)
            self.stats.counter = f"countered {lower}: accepted"
        except WalletError as declined:
            self.stats.counter = f"countered {lower}: {declined}"
        if buyer.state.quote is None or int(buyer.quote.unit_price) != lower:
            await buyer.request_quote(
                self.service, units=units, max_unit_price=limit, token=self.token_hex
            )
        quote = buyer.quote
        self.stats.quote_hash = await buyer.accept()
        self.stats.unit_price = int(quote.unit_price)
        return quote

    @property
    def token_hex(self) -> str:
        return address_hex(self.token.address)

    async def run(self, workload: Iterator[ModelRequest]) -> None:
        """Makes ``target`` paid requests; stops at the first failure (recorded)."""
        buyer = self._buyer
        assert buyer is not None, "negotiate first"
        stats = self.stats
        for request in itertools.islice(workload, stats.target - stats.requests):
            units = request_units(request)
            try:
                delivered = await buyer.request(request.body(), units=units)
            except WalletError as failure:
                stats.error = f"{type(failure).__name__}: {failure}"
                log.warning("%s stopped: %s", stats.name, stats.error)
                return
            # Buyer.request returned: the receipt verified (verify_delivery); the summary
            # verifies each kept receipt again. The answer has max_tokens words.
            stats.delivered.append(delivered)
            if len(delivered.content.split()) != request.max_tokens:
                stats.error = "an answer of the wrong length"
                return
            stats.requests += 1
            stats.units += units
            stats.paid += delivered.certificate.order.amount

    async def close(self) -> None:
        if self._buyer is not None and self._buyer.state.quote is not None:
            await self._buyer.close("done")
