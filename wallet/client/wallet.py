"""The agent's wallet on the node network: pay, receive, read, recover.

Theory of operation
-------------------
A payment is two round trips to every node at once (docs/protocol.md 1a): the signed
order for votes, then the certificate. :meth:`Wallet.pay` holds the account's lock for
both (one account's orders are sequential by nature: a node votes only at its
``next_sequence``, which moves when the previous certificate is applied), then fetches
the receipt outside the lock, so concurrent ``pay`` calls and :meth:`Wallet.pay_many`
overlap their receipt waits.

Durability: an order is written to the :class:`~wallet.client.journal.Journal` before
any node sees it, and every later step is recorded. Every call that pays first finishes
an unfinished order (collect votes again: a node returns the same vote for the same
order; form the certificate; deliver it), so a crash anywhere never leads to a second
order at that sequence.

The next sequence is the larger of the journal's and the nodes': the (f+1)-th largest
``next_sequence`` among a quorum's answers, so that at least one honest node vouches that
the sequences below it are used (a plain maximum would let one faulty node push the
wallet to a sequence no honest node votes for; the order would be stuck). If the nodes
hold a lock on an order of this account that the journal does not know (the journal was
lost), that order, signed by this key, is adopted and finished first.

Balances are strong-majority lower bounds: ``balance()`` is the largest ``v`` such that at
least a quorum of the nodes that answered report at least ``v`` (with the answers sorted
from high to low, the quorum-th one). At least f+1 of those nodes are honest, so ``v`` is
vouched for by an honest node however the f others lie, and it is exactly what a quorum
would vote for now: an order of ``v`` passes every one of their balance checks.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from wallet.client.journal import Entry, Journal
from wallet.client.network import Network
from wallet.client.receipts import Receipt, verify_certificate, verify_receipt
from wallet.client.transport import (
    AccountState,
    CaughtUp,
    HttpTransport,
    Transport,
)
from wallet.client.votes import collect_votes, deliver, describe, gather_until
from wallet.codec import address_hex
from wallet.eip712 import order_digest
from wallet.errors import (
    BatchIncomplete,
    ConflictingOrder,
    InsufficientBalance,
    InvalidReceipt,
    NodeError,
    NodeMisbehaved,
    PaymentNotSeen,
    PaymentRefused,
    QuorumUnavailable,
    WalletError,
)
from wallet.signing import PrivateKey, sign_order, verify_order
from wallet.types import (
    ZERO_HASH,
    Address,
    Amount,
    Certificate,
    Hash32,
    Sequence,
    SignedOrder,
    Transfer,
)

#: The hook a spending policy plugs into: called with each new order before it is signed;
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
class History:
    """An account's verified certificates: those it signed, by sequence, and the
    transfers it received, in the serving node's log order."""

    sent: tuple[Certificate, ...]
    received: tuple[Certificate, ...]


@dataclass(frozen=True, slots=True)
class Recovery:
    """What :meth:`Wallet.recover` found: the next sequence, the strong-majority lower
    bound of every balance, the history, and the order it finished (if any)."""

    next_sequence: int
    balances: dict[Address, Amount]
    history: History
    finished: Certificate | None


class Wallet:
    """One account's client of the node network.

    ``async with Wallet(key, network, data_dir=...) as wallet:`` opens the journal (in
    ``data_dir``, which only this process may use) and, unless a ``transport`` is given,
    an :class:`HttpTransport`. ``timeout`` bounds each round (votes, delivery, reads);
    ``receipt_timeout`` the wait for a checkpoint covering a new payment (nodes sign
    one every second by default). ``before_sign`` is the spending-policy hook.
    """

    def __init__(
        self,
        key: PrivateKey,
        network: Network,
        *,
        data_dir: str | Path,
        transport: Transport | None = None,
        before_sign: BeforeSign | None = None,
        timeout: float = 5.0,
        receipt_timeout: float = 5.0,
        poll_interval: float = 0.1,
    ) -> None:
        self._key = key
        self.network = network
        self._owns_transport = transport is None
        self._transport: Transport = transport or HttpTransport(timeout=timeout)
        self._journal = Journal(data_dir, key.address)
        # POLICY HOOK: wallet.policy plugs its check in here (see BeforeSign).
        self._before_sign = before_sign
        self._timeout = timeout
        self._receipt_timeout = receipt_timeout
        self._poll = poll_interval
        self._lock = asyncio.Lock()
        self._next: int | None = None  # the next sequence, once known

    @property
    def address(self) -> Address:
        return self._key.address

    async def __aenter__(self) -> Wallet:
        self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def open(self) -> None:
        """Opens the journal (JournalError if another process has it)."""
        self._journal.open()

    async def close(self) -> None:
        self._journal.close()
        if self._owns_transport:
            await self._transport.close()

    # ---------------------------------------------------------------- paying

    async def pay(
        self, payee: Address, amount: Amount, token: Address, *, reference: Hash32 = ZERO_HASH
    ) -> Receipt:
        """Pays ``amount`` base units of ``token`` to ``payee`` and returns the verified
        receipt. Raises PaymentRefused (InsufficientBalance, ConflictingOrder: the
        caller's), QuorumUnavailable (retryable: the order stays in the journal and the
        next call finishes it), or whatever ``before_sign`` raises."""
        certificate, delivered = await self._settle(PaymentRequest(payee, amount, token, reference))
        return await self._receipt(certificate, delivered)

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

    async def resume(self) -> Certificate | None:
        """Finishes the journal's unfinished order, if any, and returns its certificate."""
        async with self._lock:
            return await self._finish_unfinished()

    async def _settle(self, request: PaymentRequest) -> tuple[Certificate, dict[str, int | None]]:
        async with self._lock:
            await self._finish_unfinished()
            sequence = await self._next_sequence()
            order = Transfer(
                self.address,
                request.payee,
                request.token,
                request.amount,
                Sequence(sequence),
                request.reference,
            )
            if self._before_sign is not None:
                await self._before_sign(order)
            signed = sign_order(self._key, self.network.domain, order)
            entry = Entry(signed, "signed")
            await asyncio.to_thread(self._journal.write, entry)  # before any node sees it
            return await self._complete(entry)

    async def _finish_unfinished(self) -> Certificate | None:
        entry = self._journal.unfinished()
        if entry is None:
            return None
        certificate, _ = await self._complete(entry)
        return certificate

    async def _complete(self, entry: Entry) -> tuple[Certificate, dict[str, int | None]]:
        """Takes ``entry`` from where it stopped to confirmed (or abandoned, raising)."""
        if entry.certificate is None:
            entry = await self._certify(entry)
        assert entry.certificate is not None
        delivered = await deliver(
            self._transport, self.network, entry.certificate, timeout=self._timeout
        )
        await asyncio.to_thread(self._journal.write, entry.confirmed())
        self._next = entry.sequence + 1
        return entry.certificate, delivered

    async def _certify(self, entry: Entry) -> Entry:
        network, committee = self.network, self.network.committee
        previous = self._journal.last_certificate_before(entry.sequence)
        result = await collect_votes(
            self._transport, network, entry.signed, timeout=self._timeout, previous=previous
        )
        certificate = result.applied
        if certificate is None and len(result.votes) >= committee.quorum:
            certificate = result.certificate(entry.signed, committee.quorum)
        if certificate is not None:
            entry = entry.certified(certificate)
            await asyncio.to_thread(self._journal.write, entry)
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

    # ---------------------------------------------------------------- receipts

    async def receipt(self, certificate: Certificate) -> Receipt:
        """The receipt of an applied certificate (any account's), from the first node
        that shows a checkpoint covering it; verified."""
        return await self._receipt(certificate, {})

    async def _receipt(self, certificate: Certificate, delivered: dict[str, int | None]) -> Receipt:
        network = self.network
        digest = order_digest(network.domain, certificate.order)
        members = dict(zip(network.endpoints, network.committee.members, strict=True))

        async def fetch(endpoint: str) -> Receipt:
            index = delivered.get(endpoint)
            while True:
                if index is None:
                    found = await self._transport.get_certificate(endpoint, digest)
                    if found is not None:
                        if order_digest(network.domain, found.certificate.order) != digest:
                            raise NodeMisbehaved(endpoint, "showed another certificate")
                        index = found.log_index
                if index is not None:
                    signed = await self._transport.get_checkpoint(endpoint)
                    if signed is not None and signed.checkpoint.tree_size > index:
                        checkpoint = signed.checkpoint
                        proof = await self._transport.get_inclusion_proof(
                            endpoint, index, checkpoint.tree_size
                        )
                        receipt = Receipt(
                            certificate,
                            members[endpoint],
                            index,
                            proof,
                            checkpoint,
                            signed.signature,
                        )
                        try:
                            verify_receipt(receipt, network.committees, network.domain)
                        except InvalidReceipt as exc:
                            raise NodeMisbehaved(endpoint, f"an invalid receipt ({exc})") from None
                        return receipt
                await asyncio.sleep(self._poll)

        found: list[Receipt] = []
        faults: dict[str, str] = {}

        def done(endpoint: str, outcome: Receipt | Exception) -> bool:
            if isinstance(outcome, Receipt):
                found.append(outcome)
                return True
            faults[endpoint] = describe(outcome)
            return False

        order = sorted(network.endpoints, key=lambda url: url not in delivered)
        await gather_until({url: fetch(url) for url in order}, self._receipt_timeout, done)
        if not found:
            raise QuorumUnavailable(
                f"the payment {digest.hex()} is final, but no node served a receipt in time "
                "(ask again with Wallet.receipt)",
                faults,
            )
        return found[0]

    # ---------------------------------------------------------------- reading

    async def _account_states(self, account: Address) -> list[AccountState]:
        """The account as the first quorum of nodes to answer see it."""
        states: list[AccountState] = []
        faults: dict[str, str] = {}

        def done(endpoint: str, outcome: AccountState | Exception) -> bool:
            if isinstance(outcome, AccountState):
                states.append(outcome)
            else:
                faults[endpoint] = describe(outcome)
            return len(states) >= self.network.committee.quorum

        calls = {url: self._transport.get_account(url, account) for url in self.network.endpoints}
        slow = await gather_until(calls, self._timeout, done)
        if len(states) < self.network.committee.quorum:
            faults.update({url: "no answer in time" for url in slow})
            raise QuorumUnavailable("reading the account", faults)
        return states

    async def balance(self, token: Address, *, account: Address | None = None) -> Amount:
        """The strong-majority lower bound of ``account``'s (default: this wallet's)
        balance of ``token``: the quorum-th largest of the nodes' answers (see the module
        docstring), 0 if that is negative."""
        states = await self._account_states(account or self.address)
        return _lower_bound([s.balances.get(token, 0) for s in states], self.network)

    async def balances(self, *, account: Address | None = None) -> dict[Address, Amount]:
        """:meth:`balance` of every token any node reports for the account."""
        states = await self._account_states(account or self.address)
        tokens = {t for s in states for t in s.balances}
        return {
            t: _lower_bound([s.balances.get(t, 0) for s in states], self.network)
            for t in sorted(tokens)
        }

    async def history(self, *, account: Address | None = None) -> History:
        """The account's certificates, each verified: those it signed (sequences from 0,
        from the node that shows the most) and the transfers it received (scanning one
        node's log: the first that answers)."""
        who = account or self.address
        return History(tuple(await self._sent(who)), tuple(await self._received(who)))

    async def _sent(self, account: Address) -> list[Certificate]:
        sent: list[Certificate] = []
        while True:
            best, faults = await self._sent_page(account, len(sent))
            if best is None:
                raise QuorumUnavailable("reading the account's certificates", faults)
            sent.extend(best)
            if len(best) < 256:
                return sent

    async def _sent_page(
        self, account: Address, first: int
    ) -> tuple[list[Certificate] | None, dict[str, str]]:
        """The longest valid run of ``account``'s certificates from ``first`` that any node
        shows (None if no node answered)."""
        pages: list[list[Certificate]] = []
        faults: dict[str, str] = {}

        def done(endpoint: str, outcome: list[Certificate] | Exception) -> bool:
            if isinstance(outcome, Exception):
                faults[endpoint] = describe(outcome)
            else:
                pages.append(outcome)
            return False

        async def page(endpoint: str) -> list[Certificate]:
            got = await self._transport.get_account_certificates(
                endpoint, account, first, first + 255
            )
            return self._checked_run(endpoint, got, account, first)

        await gather_until({url: page(url) for url in self.network.endpoints}, self._timeout, done)
        return (max(pages, key=len) if pages else None), faults

    def _checked_run(
        self, endpoint: str, certificates: list[Certificate], account: Address, first: int
    ) -> list[Certificate]:
        for offset, certificate in enumerate(certificates):
            order = certificate.order
            if order.owner != account or order.sequence != first + offset:
                raise NodeMisbehaved(endpoint, "certificates out of sequence")
            self._verify(endpoint, certificate)
        return certificates

    def _verify(self, endpoint: str, certificate: Certificate) -> None:
        try:
            verify_certificate(certificate, self.network.committees, self.network.domain)
        except InvalidReceipt as exc:
            raise NodeMisbehaved(endpoint, f"an invalid certificate ({exc})") from None

    async def _received(self, account: Address) -> list[Certificate]:
        faults: dict[str, str] = {}
        for endpoint in self.network.endpoints:
            try:
                return await self._scan_log(endpoint, account)
            except NodeError as exc:
                faults[endpoint] = exc.problem
        raise QuorumUnavailable("reading a log", faults)

    async def _scan_log(self, endpoint: str, account: Address) -> list[Certificate]:
        received: list[Certificate] = []
        start, size = 0, await self._transport.get_log_size(endpoint)
        while start < size:
            end = min(start + 256, size)
            items, _ = await self._transport.get_log_certificates(endpoint, start, end)
            for item in items:
                order = item.certificate.order
                if isinstance(order, Transfer) and order.payee == account:
                    self._verify(endpoint, item.certificate)
                    received.append(item.certificate)
            start = end
        return received

    # ---------------------------------------------------------------- receiving

    async def wait_for_payment(
        self,
        *,
        reference: Hash32 | None = None,
        payer: Address | None = None,
        token: Address | None = None,
        min_amount: int = 1,
        timeout: float = 60.0,
        lookback: int = 1000,
    ) -> Certificate:
        """Waits for a transfer to this wallet matching every criterion given
        (``reference``, ``payer``, ``token``, at least ``min_amount``) and returns its
        verified certificate (the proof of payment). Listens to every node's account
        stream at once, replaying the last ``lookback`` entries of each log first (so a
        payment made just before the call is found); the first valid match wins.
        Raises PaymentNotSeen after ``timeout`` seconds."""
        me = self.address

        def matches(certificate: Certificate) -> bool:
            order = certificate.order
            return (
                isinstance(order, Transfer)
                and order.payee == me
                and (reference is None or order.reference == reference)
                and (payer is None or order.payer == payer)
                and (token is None or order.token == token)
                and order.amount >= min_amount
            )

        async def listen(endpoint: str) -> Certificate:
            start: int | None = None
            while True:
                try:
                    if start is None:
                        size = await self._transport.get_log_size(endpoint)
                        start = max(0, size - lookback)
                    async for entry in self._transport.stream_account(endpoint, me, start):
                        if isinstance(entry, CaughtUp):
                            continue
                        start = entry.log_index + 1
                        if matches(entry.certificate):
                            self._verify(endpoint, entry.certificate)
                            return entry.certificate
                except NodeMisbehaved:
                    raise  # this node lies: stop listening to it
                except NodeError:
                    pass
                await asyncio.sleep(max(self._poll, 0.5))  # then reconnect where it stopped

        found: list[Certificate] = []

        def done(endpoint: str, outcome: Certificate | Exception) -> bool:
            if isinstance(outcome, Exception):
                return False
            found.append(outcome)
            return True

        await gather_until({url: listen(url) for url in self.network.endpoints}, timeout, done)
        if not found:
            raise PaymentNotSeen(f"no matching payment to {address_hex(me)} in {timeout:g} s")
        return found[0]

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
        history = await self.history()
        return Recovery(sequence, await self.balances(), history, finished)


def _lower_bound(values: list[int], network: Network) -> Amount:
    ranked = sorted(values, reverse=True)
    return Amount(max(ranked[network.committee.quorum - 1], 0))
