"""The agent's wallet on the node network: pay, withdraw, recover (reading and receiving
are in :mod:`wallet.client.reading`, which :class:`Wallet` extends).

Theory of operation
-------------------
A payment (a Transfer) or a withdrawal (a Withdrawal, docs/protocol.md 1a) is one
*order* at the account's next sequence, and two round trips to every node at once: the
signed order for votes, then the certificate. :meth:`Wallet._submit` holds the account's
lock for both (one account's orders are sequential by nature: a node votes only at its
``next_sequence``, which moves when the previous certificate is applied); the receipt is
fetched outside the lock, so concurrent ``pay`` calls and :meth:`Wallet.pay_many`
overlap their receipt waits.

Spending policy: with :class:`~wallet.client.spending.Spending`, ``pay`` reserves the
payment in the spend ledger **before** anything else (no node is asked, nothing is
signed when the policy refuses), writes the reservation's id into the order's journal
entry, commits it as soon as the certificate is formed, and releases it when the order
is abandoned (refused by every node without a vote) or never signed. Withdrawals are not
spending: the policy does not see them.

Durability: an order is written to the :class:`~wallet.client.journal.Journal` before
any node sees it, and every later step is recorded. Every call that pays first finishes
an unfinished order (collect votes again: a node returns the same vote for the same
order; form the certificate; deliver it), so a crash anywhere never leads to a second
order at that sequence; :meth:`Wallet.resume` also settles the reservations a crash left.
A call asking for the very order that is unfinished (the same payee, token, amount and
reference, or the same withdrawal: a retry after QuorumUnavailable, or the same command
run again after a crash) is that order: it is finished and returned, not made a second
time (a retry never pays twice).

The next sequence is the larger of the journal's and the nodes': the (f+1)-th largest
``next_sequence`` among a quorum's answers, so that at least one honest node vouches that
the sequences below it are used (a plain maximum would let one faulty node push the
wallet to a sequence no honest node votes for; the order would be stuck). If the nodes
hold a lock on an order of this account that the journal does not know (the journal was
lost), that order, signed by this key, is adopted and finished first.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wallet.client.journal import Entry, Journal
from wallet.client.network import Network
from wallet.client.reading import History, Reader
from wallet.client.receipts import Receipt
from wallet.client.spending import Spending
from wallet.client.transport import AccountState, HttpTransport, Transport
from wallet.client.votes import collect_votes, deliver
from wallet.eip712 import order_digest
from wallet.errors import (
    BatchIncomplete,
    ConflictingOrder,
    EncodingError,
    InsufficientBalance,
    PaymentRefused,
    QuorumUnavailable,
    WalletError,
)
from wallet.signing import PrivateKey, sign_order, verify_order
from wallet.spend_ledger import ReferenceSpend
from wallet.types import (
    ZERO_HASH,
    Address,
    Amount,
    Certificate,
    Hash32,
    Order,
    Sequence,
    SignedOrder,
    Transfer,
    Withdrawal,
)

#: A last check of each new Transfer before it is signed (after the spending policy);
#: raising refuses the payment (nothing is signed or stored).
BeforeSign = Callable[[Transfer], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class PaymentRequest:
    """One payment of :meth:`Wallet.pay_many`."""

    payee: Address
    amount: Amount
    token: Address
    reference: Hash32 = ZERO_HASH


@dataclass(frozen=True, slots=True)
class Recovery:
    """What :meth:`Wallet.recover` found: the next sequence, the strong-majority lower
    bound of every balance, the history, and the order it finished (if any)."""

    next_sequence: int
    balances: dict[Address, Amount]
    history: History
    finished: Certificate | None


class Wallet(Reader):
    """One account's client of the node network.

    ``async with Wallet(key, network, data_dir=...) as wallet:`` opens the journal (in
    ``data_dir``, which only this process may use) and, unless a ``transport`` is given,
    an :class:`HttpTransport`. ``timeout`` bounds each round (votes, delivery, reads);
    ``receipt_timeout`` the wait for a checkpoint covering a new payment (nodes sign
    one every second by default). ``spending`` enforces a spending policy (module
    docstring); ``before_sign`` is a last check of each Transfer.
    """

    def __init__(
        self,
        key: PrivateKey,
        network: Network,
        *,
        data_dir: str | Path,
        transport: Transport | None = None,
        spending: Spending | None = None,
        before_sign: BeforeSign | None = None,
        timeout: float = 5.0,
        receipt_timeout: float = 5.0,
        poll_interval: float = 0.1,
    ) -> None:
        super().__init__(
            key.address,
            network,
            transport or HttpTransport(timeout=timeout),
            timeout=timeout,
            receipt_timeout=receipt_timeout,
            poll_interval=poll_interval,
        )
        self._key = key
        self._owns_transport = transport is None
        self._journal = Journal(data_dir, key.address)
        self.spending = spending
        self._before_sign = before_sign
        self._lock = asyncio.Lock()
        self._next: int | None = None  # the next sequence, once known
        self._background: set[asyncio.Future[Any]] = set()  # requests past the quorum

    async def __aenter__(self) -> Wallet:
        self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def open(self) -> None:
        """Opens the journal (JournalError if another process has it) and settles the
        spend reservations whose fate the journal already tells (a crash's leftovers)."""
        self._journal.open()
        if self.spending is not None:
            try:
                self.spending.settle_now(self._journal.entries())
            except BaseException:
                self._journal.close()
                raise

    async def close(self) -> None:
        for task in list(self._background):
            task.cancel()
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
        self._journal.close()
        if self._owns_transport:
            await self._transport.close()

    def spent_by_reference(self, reference: Hash32) -> ReferenceSpend:
        """What the task ``reference`` cost: the certified payments made with it, per
        token and in USD (needs ``spending``: WalletError without one)."""
        if self.spending is None:
            raise WalletError("no spend ledger: give the wallet a Spending to account spend")
        return self.spending.spent_by_reference(reference)

    # ---------------------------------------------------------------- paying

    async def pay(
        self, payee: Address, amount: Amount, token: Address, *, reference: Hash32 = ZERO_HASH
    ) -> Receipt:
        """Pays ``amount`` base units of ``token`` to ``payee`` and returns the verified
        receipt. Raises PolicyRefused, PriceUnavailable (the spending policy's: nothing
        was sent), PaymentRefused (InsufficientBalance, ConflictingOrder: the caller's),
        QuorumUnavailable (retryable: the order stays in the journal and the next call
        finishes it; the same call again finishes and returns that very payment, it does
        not pay twice), or whatever ``before_sign`` raises."""
        certificate, delivered = await self._settle(PaymentRequest(payee, amount, token, reference))
        return await self._receipt(certificate, delivered)

    async def pay_final(
        self, payee: Address, amount: Amount, token: Address, *, reference: Hash32 = ZERO_HASH
    ) -> Certificate:
        """:meth:`pay` without waiting for the receipt: returns once the payment is final
        (a quorum of votes, the certificate delivered to a quorum), in milliseconds rather
        than the up to a second a node takes to sign a checkpoint covering it. Get the
        receipt later with :meth:`receipt`. Raises as :meth:`pay` does."""
        certificate, _ = await self._settle(PaymentRequest(payee, amount, token, reference))
        return certificate

    async def pay_many(self, payments: Iterable[PaymentRequest]) -> list[Receipt]:
        """Makes the payments in order (each at the next sequence: one account's orders
        cannot be voted on concurrently), then fetches their receipts concurrently.
        Stops at the first failure with BatchIncomplete (holding the receipts made)."""
        settled: list[tuple[Certificate, dict[str, int | None]]] = []
        failure: WalletError | None = None
        for request in payments:
            try:
                settled.append(await self._settle(request))
            except WalletError as exc:
                failure = exc
                break
        outcomes = await asyncio.gather(
            *(self._receipt(c, d) for c, d in settled), return_exceptions=True
        )
        receipts: list[Receipt] = []
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome
            receipts.append(outcome)
        if failure is not None:
            raise BatchIncomplete(list(receipts), failure) from failure
        return receipts

    async def withdraw(
        self, amount: Amount, token: Address, recipient: Address | None = None
    ) -> Receipt:
        """Withdraws ``amount`` base units of ``token`` from the ledger to ``recipient``
        on chain (default: this account's address): a Withdrawal order, certified like a
        payment. Returns its verified receipt; ``receipt.certificate`` is what the Vault
        pays (``wallet.chain.VaultClient.redeem``, by anyone)."""
        to = self.address if recipient is None else recipient
        if to == bytes(20):
            raise EncodingError("recipient", "the zero address (the nodes refuse it)")

        def make(sequence: Sequence) -> Order:
            return Withdrawal(self.address, to, token, amount, sequence)

        retried = await self._retry(make)
        certificate, delivered = retried or await self._submit(make, None)
        return await self._receipt(certificate, delivered)

    async def resume(self) -> Certificate | None:
        """Finishes the journal's unfinished order, if any, and returns its certificate;
        then settles the spend reservations left by a crash (commit what was certified,
        release what was never signed or abandoned)."""
        async with self._lock:
            finished = await self._finish_unfinished()
            await self._settle_reservations()
            return finished

    async def _settle_reservations(self) -> None:
        if self.spending is not None:
            await self.spending.settle(self._journal.entries())

    async def _settle(self, request: PaymentRequest) -> tuple[Certificate, dict[str, int | None]]:
        def make(sequence: Sequence) -> Order:
            return Transfer(
                self.address,
                request.payee,
                request.token,
                request.amount,
                sequence,
                request.reference,
            )

        retried = await self._retry(make)  # before reserving: it was reserved already
        if retried is not None:
            return retried
        reservation = None
        if self.spending is not None:  # first: a refusal contacts no node, signs nothing
            reservation = await self.spending.reserve(
                request.payee, request.token, request.amount, request.reference
            )
        return await self._submit(make, None if reservation is None else reservation.id)

    async def _retry(
        self, make: Callable[[Sequence], Order]
    ) -> tuple[Certificate, dict[str, int | None]] | None:
        """When the journal's unfinished order is ``make``'s order at its sequence (the
        caller asks again for the order in flight), finishes it and returns it; else None
        (and :meth:`_submit` finishes that order first, then makes the new one)."""
        async with self._lock:
            entry = self._journal.unfinished()
            if entry is None or make(Sequence(entry.sequence)) != entry.signed.order:
                return None
            return await self._complete(entry)

    async def _submit(
        self, make: Callable[[Sequence], Order], reservation: int | None
    ) -> tuple[Certificate, dict[str, int | None]]:
        """Signs ``make(next sequence)``, journals it (with ``reservation``) and takes it
        to a delivered certificate (:meth:`_complete`)."""
        stored = False
        try:
            async with self._lock:
                await self._finish_unfinished()
                sequence = await self._next_sequence()
                order = make(Sequence(sequence))
                if self._before_sign is not None and isinstance(order, Transfer):
                    await self._before_sign(order)
                signed = sign_order(self._key, self.network.domain, order)
                entry = Entry(signed, "signed", reservation=reservation)
                stored = True  # from here the journal, not this call, says what happened
                await asyncio.to_thread(self._journal.write, entry)  # before any node sees it
                return await self._complete(entry)
        except Exception:
            if reservation is not None and self.spending is not None and not stored:
                await self.spending.release(reservation)  # never signed
            raise
        finally:
            if reservation is not None and self.spending is not None:
                self.spending.done(reservation)

    async def _finish_unfinished(self) -> Certificate | None:
        entry = self._journal.unfinished()
        if entry is None:
            return None
        certificate, _ = await self._complete(entry)
        return certificate

    async def _complete(self, entry: Entry) -> tuple[Certificate, dict[str, int | None]]:
        """Takes ``entry`` from where it stopped to confirmed (or abandoned, raising)."""
        if entry.certificate is None:
            try:
                entry = await self._certify(entry)
            except Exception:
                if self.spending is not None:  # released if the order was abandoned
                    await self.spending.settle_entry(self._journal.get(entry.sequence))
                raise
        assert entry.certificate is not None
        if self.spending is not None:  # the certificate is formed: the payment is final
            await self.spending.settle_entry(entry)
        delivered = await deliver(
            self._transport,
            self.network,
            entry.certificate,
            timeout=self._timeout,
            background=self._background,
        )
        self._journal.write(entry.confirmed(), durable=False)  # no fsync: no thread hop
        self._next = entry.sequence + 1
        return entry.certificate, delivered

    async def _certify(self, entry: Entry) -> Entry:
        network, committee = self.network, self.network.committee
        previous = self._journal.last_certificate_before(entry.sequence)
        result = await collect_votes(
            self._transport,
            network,
            entry.signed,
            timeout=self._timeout,
            previous=previous,
            background=self._background,
        )
        certificate = result.applied
        if certificate is None and len(result.votes) >= committee.quorum:
            certificate = result.certificate(entry.signed, committee.quorum)
        if certificate is not None:
            entry = entry.certified(certificate)
            self._journal.write(entry, durable=False)
            return entry
        self._next = None  # ask the nodes again next time
        sequence = entry.sequence
        if result.superseded is not None:
            other = order_digest(network.domain, result.superseded.order)
            await asyncio.to_thread(
                self._journal.write, entry.abandoned(f"sequence used by {other.hex()}")
            )
            raise ConflictingOrder(
                sequence,
                other,
                f"sequence {sequence} was used by another order of this account "
                "(is its key used by another wallet?); the next payment uses a new sequence",
            )
        faults = {**result.faults}
        if len(result.votes) + len(faults) >= committee.quorum:
            raise QuorumUnavailable("collecting votes", faults)
        # Definite refusals make a quorum impossible now.
        n = len(network.endpoints)
        if not result.votes and len(result.refusals) == n:
            # No node voted, so none holds a lock on it: the sequence is free again.
            codes = ",".join(sorted({r.code for r in result.refusals.values()}))
            await asyncio.to_thread(
                self._journal.write, entry.abandoned(f"refused by all: {codes}")
            )
        conflicts = [r for r in result.refusals.values() if r.code == "conflicting_order"]
        if conflicts:
            raise ConflictingOrder(
                sequence,
                conflicts[0].conflicting,
                f"nodes hold a lock on another order at sequence {sequence} "
                "(the journal was lost, or the key signs elsewhere): run recover()",
            )
        counts = collections.Counter(r.code for r in result.refusals.values())
        if "insufficient_balance" in counts:
            raise InsufficientBalance(
                "insufficient_balance",
                f"the balance does not cover {entry.signed.order.amount} on a quorum of nodes",
            )
        code, _ = counts.most_common(1)[0]
        raise PaymentRefused(code, f"a quorum of nodes refused the order: {dict(counts)}")

    async def _next_sequence(self) -> int:
        if self._next is not None:
            return max(self._next, self._journal.next_sequence())
        states = await self._account_states(self.address)
        f = self.network.committee.faults
        vouched = sorted((s.next_sequence for s in states), reverse=True)[f]
        candidate = max(vouched, self._journal.next_sequence())
        # A lock on an order of ours the journal does not know (a lost journal): adopt it.
        adopted = self._adoptable(states, candidate)
        if adopted is not None:
            entry = Entry(adopted, "signed", note="adopted from the nodes' lock")
            await asyncio.to_thread(self._journal.write, entry)
            await self._complete(entry)
            candidate += 1
        self._next = candidate
        return candidate

    def _adoptable(self, states: list[AccountState], sequence: int) -> SignedOrder | None:
        for state in states:
            signed = state.pending_order
            if (
                signed is not None
                and signed.order.sequence == sequence
                and self._journal.get(sequence) is None
                and verify_order(self.network.domain, signed)
            ):
                return signed
        return None

    # ---------------------------------------------------------------- recovery

    async def recover(self) -> Recovery:
        """Rebuilds what this wallet knows from the network (after losing its data
        directory, or to check it): finishes the journal's unfinished order or the one
        the nodes hold a lock on, re-downloads and verifies the sent and received
        certificates, and reads every balance as a strong-majority lower bound."""
        async with self._lock:
            finished = await self._finish_unfinished()
            self._next = None
            sequence = await self._next_sequence()
            await self._settle_reservations()
        history = await self.history()
        return Recovery(sequence, await self.balances(), history, finished)
