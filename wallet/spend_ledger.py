"""The spend ledger: what an agent has spent, for its rolling budgets and per task.

Theory of operation. A payment goes through three steps::

    reservation = ledger.reserve(policy, payment, now=now, price=price)  # check + reserve
    ... sign, send, get the certificate ...
    ledger.commit(reservation)        # confirmed: becomes a SpendRecord
    ledger.release(reservation)       # never signed, or refused by the nodes: forgotten

``reserve`` runs :func:`wallet.policy.check` and adds the pending reservation under one
lock, so two concurrent payments (threads, or tasks of one event loop) can never both
pass one budget: the second sees the first's reservation. A pending reservation counts
exactly like a confirmed spend (at the reservation's time), and the ledger file is
written before ``reserve`` returns: a crash between reserve and commit errs on the side of
counting the spend. After a restart :meth:`SpendLedger.pending` lists the reservations
to settle (commit the ones whose certificate exists, release the others).

Bounded: confirmed spends older than two periods of the policy (one period of slack for
a clock stepped back) are dropped when a reservation is made; the per-reference totals
(:meth:`SpendLedger.spent_by_reference`: what each task cost) are kept for ever, one
small entry per reference. Pending reservations are kept until settled.

The file (JSON, written atomically, mode 0600) holds the tokens seen, the confirmed
spends still in the window, the pending reservations, the per-reference totals and the
next reservation id. One process owns a ledger file at a time.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wallet.amounts import Token, TokenAmount, parse_base_units
from wallet.codec import address_hex, hash_hex, parse_address, parse_hash32
from wallet.errors import EncodingError, LedgerError, UnknownReservation, WalletError
from wallet.policy import (
    Payment,
    PriceReading,
    SpendingPolicy,
    UsdValue,
    check,
    format_usd,
    write_atomically,
)
from wallet.types import Address, Amount, Hash32

LEDGER_VERSION = 1


@dataclass(frozen=True, slots=True)
class SpendRecord:
    """One spend: ``units`` of ``token`` to ``payee`` at ``time`` (Unix seconds), worth
    ``usd`` (10**-18 USD) then, for the task ``reference``."""

    time: int
    payee: Address
    token: Token
    units: Amount
    usd: UsdValue
    reference: Hash32

    @property
    def amount(self) -> TokenAmount:
        return TokenAmount(self.token, self.units)


@dataclass(frozen=True, slots=True)
class Reservation:
    """A pending spend: approved by the policy, counted, not yet confirmed. ``id`` is
    unique within its ledger; commit or release it exactly once."""

    id: int
    record: SpendRecord


@dataclass(frozen=True, slots=True)
class ReferenceSpend:
    """What one task (reference) cost: confirmed spends only."""

    usd: UsdValue
    amounts: tuple[TokenAmount, ...]
    payments: int

    def __str__(self) -> str:
        spent = " + ".join(map(str, self.amounts)) or "nothing"
        return f"{spent} ({format_usd(self.usd)}, {self.payments} payment(s))"


_NOTHING = ReferenceSpend(UsdValue(0), (), 0)


class SpendLedger:
    """Past and pending spends (module docstring). Thread-safe; ``path`` None keeps it
    in memory only. Open a persistent one with :meth:`open`."""

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self._path = None if path is None else Path(path)
        self._lock = threading.RLock()
        self._records: list[SpendRecord] = []
        self._pending: dict[int, Reservation] = {}
        self._references: dict[Hash32, ReferenceSpend] = {}
        self._next_id = 1

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> SpendLedger:
        """The ledger stored at ``path``: loaded if the file exists, else a new one that
        will be written there. :class:`LedgerError` if it cannot be read or parsed."""
        file = Path(path)
        try:
            text = file.read_text(encoding="utf-8")
        except FileNotFoundError:
            return cls(file)
        except OSError as error:
            raise LedgerError(f"cannot read the spend ledger: {error.strerror}") from None
        try:
            return cls.from_json(json.loads(text), path=file)
        except (ValueError, WalletError) as error:
            raise LedgerError(f"the spend ledger {file.name} is corrupt: {error}") from None

    # ------------------------------------------------------------ the three steps

    def reserve(
        self,
        policy: SpendingPolicy,
        payment: Payment,
        *,
        now: int,
        price: PriceReading | None,
    ) -> Reservation:
        """Check ``payment`` against ``policy`` (:func:`wallet.policy.check`) and, if it
        passes, count it as pending; the file is written before this returns. Raises what
        ``check`` raises (nothing is reserved then) or :class:`LedgerError`."""
        with self._lock:
            approval = check(policy, self, payment, now=now, price=price)
            record = SpendRecord(
                now, payment.payee, payment.amount.token, payment.amount.units,
                approval.usd, payment.reference,
            )  # fmt: skip
            reservation = Reservation(self._next_id, record)
            before = self._records
            self._records = [r for r in self._records if r.time > now - 2 * policy.period]
            self._pending[reservation.id] = reservation
            self._next_id += 1
            try:
                self._save()
            except BaseException:
                self._records = before
                del self._pending[reservation.id]
                self._next_id -= 1
                raise
            return reservation

    def commit(self, reservation: Reservation) -> SpendRecord:
        """The reserved payment is confirmed: it becomes a spend of its task."""
        with self._lock:
            self._take(reservation)
            try:
                self._add(reservation.record)
                self._save()
            except BaseException:
                self._pending[reservation.id] = reservation
                self._forget(reservation.record)
                raise
            return reservation.record

    def release(self, reservation: Reservation) -> None:
        """The reserved payment will not happen (never signed, or refused): forget it.
        Only release what was certainly never paid; when in doubt, commit."""
        with self._lock:
            self._take(reservation)
            try:
                self._save()
            except BaseException:
                self._pending[reservation.id] = reservation
                raise

    def record(self, record: SpendRecord) -> None:
        """Add a confirmed spend made without a reservation (recovered, or made by
        another tool with this account): it counts from now on, unchecked."""
        with self._lock:
            self._add(record)
            try:
                self._save()
            except BaseException:
                self._forget(record)
                raise

    def _take(self, reservation: Reservation) -> None:
        held = self._pending.get(reservation.id)
        if held != reservation:
            raise UnknownReservation(
                f"reservation {reservation.id} is not pending (committed or released already)"
            )
        del self._pending[reservation.id]

    def _add(self, record: SpendRecord) -> None:
        self._records.append(record)
        total = self._references.get(record.reference, _NOTHING)
        amounts = {amount.token: amount.units for amount in total.amounts}
        amounts[record.token] = Amount(amounts.get(record.token, 0) + record.units)
        self._references[record.reference] = ReferenceSpend(
            UsdValue(total.usd + record.usd),
            tuple(TokenAmount(t, u) for t, u in sorted(amounts.items(), key=_by_symbol)),
            total.payments + 1,
        )

    def _forget(self, record: SpendRecord) -> None:
        """Undo :meth:`_add` of ``record`` (the last one added)."""
        if self._records and self._records[-1] is record:
            self._records.pop()
            total = self._references[record.reference]
            if total.payments == 1:
                del self._references[record.reference]
                return
            amounts = {amount.token: amount.units for amount in total.amounts}
            amounts[record.token] = Amount(amounts[record.token] - record.units)
            self._references[record.reference] = ReferenceSpend(
                UsdValue(total.usd - record.usd),
                tuple(TokenAmount(t, u) for t, u in sorted(amounts.items(), key=_by_symbol)),
                total.payments - 1,
            )

    # ------------------------------------------------------------ reading

    def window_spend(self, now: int, period: int, *, payee: Address | None = None) -> UsdValue:
        """USD spent, confirmed and pending, with ``time > now - period`` (to ``payee``
        only, when given)."""
        start = now - period
        with self._lock:
            spends = [*self._records, *(r.record for r in self._pending.values())]
        return UsdValue(
            sum(s.usd for s in spends if s.time > start and (payee is None or s.payee == payee))
        )

    def pending(self) -> tuple[Reservation, ...]:
        """The reservations neither committed nor released, oldest first."""
        with self._lock:
            return tuple(self._pending[key] for key in sorted(self._pending))

    def records(self) -> tuple[SpendRecord, ...]:
        """The confirmed spends still kept (the recent ones), in the order recorded."""
        with self._lock:
            return tuple(self._records)

    def spent_by_reference(self, reference: Hash32) -> ReferenceSpend:
        """What the task ``reference`` cost (confirmed spends; nothing if unknown)."""
        with self._lock:
            return self._references.get(reference, _NOTHING)

    def references(self) -> Mapping[Hash32, ReferenceSpend]:
        """Every task's cost, by reference (a copy)."""
        with self._lock:
            return dict(self._references)

    # ------------------------------------------------------------ the file

    def _save(self) -> None:
        if self._path is None:
            return
        text = json.dumps(self.to_json(), separators=(",", ":")) + "\n"
        try:
            write_atomically(self._path, text)
        except OSError as error:
            raise LedgerError(f"cannot write the spend ledger: {error.strerror}") from None

    def to_json(self) -> dict[str, Any]:
        """The ledger as JSON (big integers as decimal strings)."""
        with self._lock:
            tokens: dict[str, Token] = {}

            def token_key(token: Token) -> str:
                key = address_hex(token.address)
                tokens[key] = token
                return key

            def spend(record: SpendRecord) -> dict[str, Any]:
                return {
                    "time": record.time,
                    "payee": address_hex(record.payee),
                    "token": token_key(record.token),
                    "units": str(record.units),
                    "usd": str(record.usd),
                    "reference": hash_hex(record.reference),
                }

            records = [spend(record) for record in self._records]
            pending = [{"id": r.id, **spend(r.record)} for r in self.pending()]
            references = {
                hash_hex(reference): {
                    "usd": str(total.usd),
                    "payments": total.payments,
                    "amounts": {token_key(a.token): str(a.units) for a in total.amounts},
                }
                for reference, total in sorted(self._references.items())
            }
            return {
                "version": LEDGER_VERSION,
                "next_id": self._next_id,
                "tokens": {
                    key: {"symbol": t.symbol, "decimals": t.decimals, "usd_peg": t.usd_peg}
                    for key, t in sorted(tokens.items())
                },
                "records": records,
                "pending": pending,
                "references": references,
            }

    @classmethod
    def from_json(cls, data: Any, *, path: str | os.PathLike[str] | None = None) -> SpendLedger:
        """A ledger from :meth:`to_json`'s output, bound to ``path`` when given."""
        if not isinstance(data, dict) or data.get("version") != LEDGER_VERSION:
            raise EncodingError("ledger", f"expected a JSON object of version {LEDGER_VERSION}")
        tokens = {
            key: Token(
                parse_address(key, field="tokens"),
                _get(value, "symbol", str),
                _get(value, "decimals", int),
                _get(value, "usd_peg", bool),
            )
            for key, value in _get(data, "tokens", dict).items()
        }

        def spend(item: Any) -> SpendRecord:
            token = tokens.get(_get(item, "token", str))
            if token is None:
                raise EncodingError("ledger.token", "a token missing from the token table")
            return SpendRecord(
                _get(item, "time", int),
                parse_address(_get(item, "payee", str), field="ledger.payee"),
                token,
                parse_base_units(_get(item, "units", str), field="ledger.units"),
                UsdValue(parse_base_units(_get(item, "usd", str), field="ledger.usd")),
                parse_hash32(_get(item, "reference", str), field="ledger.reference"),
            )

        ledger = cls(path)
        ledger._next_id = _get(data, "next_id", int)
        ledger._records = [spend(item) for item in _get(data, "records", list)]
        for item in _get(data, "pending", list):
            reservation = Reservation(_get(item, "id", int), spend(item))
            if not 0 < reservation.id < ledger._next_id or reservation.id in ledger._pending:
                raise EncodingError("ledger.pending", "a reservation id out of order")
            ledger._pending[reservation.id] = reservation
        for key, value in _get(data, "references", dict).items():
            amounts = []
            for token_key, units in _get(value, "amounts", dict).items():
                token = tokens.get(token_key)
                if token is None:
                    raise EncodingError("ledger.references", "a token missing from the table")
                amounts.append(TokenAmount(token, parse_base_units(units, field="ledger.units")))
            ledger._references[parse_hash32(key, field="ledger.references")] = ReferenceSpend(
                UsdValue(parse_base_units(_get(value, "usd", str), field="ledger.usd")),
                tuple(sorted(amounts, key=lambda a: a.token.symbol)),
                _get(value, "payments", int),
            )
        return ledger


def _by_symbol(item: tuple[Token, Amount]) -> str:
    return item[0].symbol


def _get(data: Any, key: str, kind: type[Any]) -> Any:
    if not isinstance(data, dict):
        raise EncodingError("ledger", "expected a JSON object")
    value = data.get(key)
    if type(value) is not kind:
        raise EncodingError(f"ledger.{key}", f"expected {kind.__name__}")
    return value
