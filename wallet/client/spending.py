"""A spending policy enforced by the client: reserve before signing, then settle.

Rule 1: the policy runs first. :meth:`Spending.reserve` checks a payment against the
:class:`~wallet.policy.SpendingPolicy` and counts it in the
:class:`~wallet.spend_ledger.SpendLedger` before the wallet asks any node anything or
signs anything: a refusal (:class:`~wallet.errors.PolicyRefused`) leaves no trace but the
error. Rule 2: a reservation is released only when the payment certainly never happened;
when in doubt it stays counted.

Theory of operation. The wallet writes the reservation's id into the journal entry of the
order it signs (:attr:`wallet.client.journal.Entry.reservation`), so the journal says
what became of every reservation, even after a crash:

- no journal entry holds it: the order was never signed (the process died between
  reserve and sign, or signing failed): **release**;
- the entry is ``certified`` or ``confirmed``: the payment is final: **commit**;
- the entry is ``abandoned`` (every node refused without voting, or another order took
  the sequence): **release**;
- the entry is ``signed``: undecided; it stays pending until the wallet finishes the
  order (``resume()``, or the next payment).

:meth:`Spending.settle` applies this to every pending reservation that no payment of
this process is still working on. One ledger per account: a reservation of another
account's wallet is in no journal of this one and would be released.

The native token is valued at the price feed through a :data:`PriceSource` (on chain:
``VaultReader.price(feed).price_reading()``); :class:`CachedPrice` keeps a reading for a
few seconds so that a burst of payments reads the chain once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping

from wallet.amounts import TokenAmount, TokenRegistry
from wallet.client.journal import ABANDONED, CERTIFIED, CONFIRMED, Entry
from wallet.errors import LedgerError
from wallet.policy import Payment, PriceReading, SpendingPolicy
from wallet.spend_ledger import ReferenceSpend, Reservation, SpendLedger
from wallet.types import Address, Amount, Hash32, Transfer

_log = logging.getLogger(__name__)

#: Reads the native token's USD price (None: no price known).
PriceSource = Callable[[], Awaitable[PriceReading | None]]


class CachedPrice:
    """A :data:`PriceSource` that asks ``source`` at most once every ``ttl`` seconds
    (concurrent callers share one read). A failed read is not cached."""

    def __init__(
        self,
        source: PriceSource,
        *,
        ttl: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._source = source
        self._ttl = ttl
        self._clock = clock
        self._lock = asyncio.Lock()
        self._reading: PriceReading | None = None
        self._read_at: float | None = None

    async def __call__(self) -> PriceReading | None:
        async with self._lock:
            now = self._clock()
            if self._read_at is None or now - self._read_at >= self._ttl:
                self._reading = await self._source()
                self._read_at = now
            return self._reading


def _unix_now() -> int:
    return int(time.time())


class Spending:
    """``policy`` enforced over ``ledger`` for one account's wallet.

    ``tokens`` resolves a payment's token address (a token it does not know raises
    :class:`~wallet.errors.UnknownToken`: nothing is paid). ``price`` values the token
    at ``priced`` (the native token; None: every token that is not USD-pegged) and is read
    only for such payments; ``clock`` gives Unix seconds.
    """

    def __init__(
        self,
        policy: SpendingPolicy,
        ledger: SpendLedger,
        tokens: TokenRegistry,
        *,
        price: PriceSource | None = None,
        priced: Address | None = None,
        clock: Callable[[], int] = _unix_now,
    ) -> None:
        self.policy = policy
        self.ledger = ledger
        self.tokens = tokens
        self._price = price
        self._priced = priced
        self._clock = clock
        self._in_flight: set[int] = set()

    async def reserve(
        self, payee: Address, token: Address, amount: Amount, reference: Hash32
    ) -> Reservation:
        """Checks the payment and counts it as pending (the ledger file is written before
        this returns). Raises PolicyRefused, PriceUnavailable / StalePrice, UnknownToken,
        InvalidAmount or LedgerError; then nothing is reserved."""
        known = self.tokens.by_address(token)
        payment = Payment(payee, TokenAmount(known, amount), reference)
        price: PriceReading | None = None
        needs_price = not known.usd_peg and (self._priced is None or self._priced == token)
        if needs_price and self._price is not None:
            price = await self._price()
        reservation = await asyncio.to_thread(
            self.ledger.reserve, self.policy, payment, now=self._clock(), price=price
        )
        self._in_flight.add(reservation.id)
        return reservation

    def done(self, reservation: int) -> None:
        """The payment holding ``reservation`` no longer works on it (it is settled, or
        left to :meth:`settle`)."""
        self._in_flight.discard(reservation)

    async def settle_entry(self, entry: Entry | None) -> None:
        """Commits or releases the reservation of a journal entry whose fate is known
        (module docstring); does nothing for an undecided one or one settled already."""
        if entry is None or entry.reservation is None:
            return
        if entry.state in (CERTIFIED, CONFIRMED):
            await self._settle(entry.reservation, commit=True)
        elif entry.state == ABANDONED:
            await self._settle(entry.reservation, commit=False)

    async def release(self, reservation: int) -> None:
        """Forgets ``reservation``: its order was certainly never signed."""
        await self._settle(reservation, commit=False)

    async def settle(self, entries: Iterable[Entry]) -> tuple[int, int]:
        """Settles every pending reservation no payment of this process holds, by the
        journal ``entries`` (module docstring). Returns (committed, released)."""
        return await asyncio.to_thread(self.settle_now, list(entries))

    def settle_now(self, entries: Iterable[Entry]) -> tuple[int, int]:
        """:meth:`settle`, blocking (a few file writes): for opening a wallet."""
        by_id = {e.reservation: e for e in entries if e.reservation is not None}
        committed = released = 0
        for reservation in self.ledger.pending():
            if reservation.id in self._in_flight:
                continue
            entry = by_id.get(reservation.id)
            if entry is not None and not _same_payment(entry, reservation):
                continue  # an id reused by another ledger file: leave it counted
            if entry is None or entry.state == ABANDONED:
                released += self._settle_now(reservation.id, commit=False)
            elif entry.state in (CERTIFIED, CONFIRMED):
                committed += self._settle_now(reservation.id, commit=True)
        return committed, released

    async def _settle(self, reservation_id: int, *, commit: bool) -> None:
        self.done(reservation_id)
        await asyncio.to_thread(self._settle_now, reservation_id, commit=commit)

    def _settle_now(self, reservation_id: int, *, commit: bool) -> int:
        found = [r for r in self.ledger.pending() if r.id == reservation_id]
        if not found:
            return 0  # settled already
        action = self.ledger.commit if commit else self.ledger.release
        try:
            action(found[0])
        except LedgerError as exc:
            # Still pending, so still counted: the safe side. settle() retries it.
            _log.warning("could not settle spend reservation %d: %s", reservation_id, exc)
            return 0
        return 1

    def spent_by_reference(self, reference: Hash32) -> ReferenceSpend:
        """What the task ``reference`` cost (certified payments only)."""
        return self.ledger.spent_by_reference(reference)

    def references(self) -> Mapping[Hash32, ReferenceSpend]:
        """Every task's cost, by reference."""
        return self.ledger.references()


def _same_payment(entry: Entry, reservation: Reservation) -> bool:
    order, record = entry.signed.order, reservation.record
    return (
        isinstance(order, Transfer)
        and order.payee == record.payee
        and order.token == record.token.address
        and order.amount == record.units
        and order.reference == record.reference
    )
