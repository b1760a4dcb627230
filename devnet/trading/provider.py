"""The provider agent: sells the simulated model (:mod:`.model`) per token, in USDF and
in FAR at the price feed's rate, as two metered services of a
:class:`~wallet.uagents.market.Seller`, and lists them in the nodes' directory."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from devnet.trading import model
from devnet.trading.pricing import (
    SERVICE_FAR,
    SERVICE_USDF,
    USDF_UNIT_PRICE,
    cost,
    far_unit_price,
    terms,
)
from wallet.agent import FarthingWallet
from wallet.chain import FeedRound
from wallet.codec import parse_address
from wallet.directory import Service, SignedRecord
from wallet.signing import PrivateKey
from wallet.types import Amount
from wallet.uagents.agent import Agent
from wallet.uagents.directory_client import agent_record
from wallet.uagents.market import Offer, Seller
from wallet.uagents.resolver import Resolver

#: The most units one quote may buy (the buyers' budgets are the real limit).
OFFER_UNITS: Final = 10**12
#: How long a quote may wait for its acceptance (seconds).
QUOTE_TTL: Final = 600


@dataclass(frozen=True, slots=True)
class PriceList:
    """The provider's unit price per token symbol, and the token's address."""

    usdf: str  # 0x address
    far: str
    far_price: int  # FAR base units per unit
    feed: FeedRound

    def offers(self) -> dict[str, Offer]:
        feed = self.feed
        return {
            SERVICE_USDF: Offer(
                self.usdf, USDF_UNIT_PRICE, units=OFFER_UNITS, ttl=QUOTE_TTL,
                terms=terms("USDF", USDF_UNIT_PRICE), cost=cost,
            ),
            SERVICE_FAR: Offer(
                self.far, self.far_price, units=OFFER_UNITS, ttl=QUOTE_TTL,
                terms=terms("FAR", self.far_price, answer=feed.answer, decimals=feed.decimals),
                cost=cost,
            ),
        }  # fmt: skip

    def services(self) -> list[Service]:
        return [
            Service(SERVICE_USDF, Amount(USDF_UNIT_PRICE), parse_address(self.usdf)),
            Service(SERVICE_FAR, Amount(self.far_price), parse_address(self.far)),
        ]


def price_list(usdf: str, far: str, feed: FeedRound) -> PriceList:
    """The price list at the feed's reading ``feed`` (``await wallet.price()``)."""
    return PriceList(usdf, far, far_unit_price(feed.answer, feed.decimals), feed)


class Provider:
    """The selling agent: start ``agent`` (``async with provider.agent``), then
    :meth:`record` is what to register in the directory."""

    def __init__(
        self, key: PrivateKey, wallet: FarthingWallet, prices: PriceList, resolver: Resolver
    ) -> None:
        self.key = key
        self.wallet = wallet
        self.prices = prices
        self.served = 0
        self.agent = Agent(key, name="provider", resolver=resolver)
        self.seller = Seller(
            self.agent, wallet, key, prices.offers(), self._serve, max_sessions=1_000
        )

    async def _serve(self, body: str) -> str:
        # The Seller calls this only for a request whose payment it verified and whose
        # cost that payment covers.
        answer = await model.serve(body)
        self.served += 1
        return answer

    def record(self) -> SignedRecord:
        """The agent's signed directory record, listing both services."""
        return agent_record(self.agent, self.key, services=self.prices.services())
