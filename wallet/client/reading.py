"""Reading the node network: balances, history, receipts, incoming payments.

Rule 1: nothing here signs or writes; :class:`Reader` is the half of the wallet that
needs no key (:class:`~wallet.client.wallet.Wallet` adds paying). Rule 2: every
certificate a node shows is verified against the committee before it is returned.

Balances are strong-majority lower bounds: ``balance()`` is the largest ``v`` such that at
least a quorum of the nodes that answered report at least ``v`` (with the answers sorted
from high to low, the quorum-th one). At least f+1 of those nodes are honest, so ``v`` is
vouched for by an honest node however the f others lie, and it is exactly what a quorum
would vote for now: an order of ``v`` passes every one of their balance checks.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass

from wallet.client.network import Network
from wallet.client.receipts import Receipt, verify_certificate, verify_receipt
from wallet.client.transport import AccountState, CaughtUp, Transport
from wallet.client.votes import describe, gather_until
from wallet.codec import address_hex
from wallet.eip712 import order_digest
from wallet.errors import (
    InvalidReceipt,
    NodeError,
    NodeMisbehaved,
    PaymentNotSeen,
    QuorumUnavailable,
    ReceiptUnavailable,
)
from wallet.types import Address, Amount, Certificate, Hash32, Transfer


@dataclass(frozen=True, slots=True)
class History:
    """An account's verified certificates: those it signed, by sequence, and the
    transfers it received, in the serving node's log order."""

    sent: tuple[Certificate, ...]
    received: tuple[Certificate, ...]


class Reader:
    """Reads the network for the account ``address`` (the default of every ``account=``
    argument). ``timeout`` bounds each round; ``receipt_timeout`` the wait for a
    checkpoint covering a certificate."""

    def __init__(
        self,
        address: Address,
        network: Network,
        transport: Transport,
        *,
        timeout: float = 5.0,
        receipt_timeout: float = 5.0,
        poll_interval: float = 0.1,
    ) -> None:
        self._address = address
        self.network = network
        self._transport = transport
        self._timeout = timeout
        self._receipt_timeout = receipt_timeout
        self._poll = poll_interval

    @property
    def address(self) -> Address:
        return self._address

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
            raise ReceiptUnavailable(certificate, "0x" + digest.hex(), faults)
        return found[0]

    async def certificate(
        self, digest: Hash32, *, timeout: float | None = None
    ) -> Certificate | None:
        """The verified certificate of the order whose EIP-712 digest is ``digest`` (any
        account's: a payee checking a payment it was told of), from the first node that
        shows it; None if none does within ``timeout`` seconds (the reader's ``timeout``
        by default). Each node is polled until then: a payer may name a certificate
        before every node has applied it."""
        network = self.network

        async def fetch(endpoint: str) -> Certificate:
            while True:
                found = await self._transport.get_certificate(endpoint, digest)
                if found is not None:
                    if order_digest(network.domain, found.certificate.order) != digest:
                        raise NodeMisbehaved(endpoint, "showed another certificate")
                    self._verify(endpoint, found.certificate)
                    return found.certificate
                await asyncio.sleep(self._poll)

        wait = self._timeout if timeout is None else timeout
        return await _first({url: fetch(url) for url in network.endpoints}, wait)

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

        found = await _first({url: listen(url) for url in self.network.endpoints}, timeout)
        if found is None:
            raise PaymentNotSeen(f"no matching payment to {address_hex(me)} in {timeout:g} s")
        return found


async def _first(calls: Mapping[str, Awaitable[Certificate]], timeout: float) -> Certificate | None:
    """The first certificate one of ``calls`` (one per node) returns within ``timeout``
    seconds; a call that fails is that node's fault and is ignored."""
    found: list[Certificate] = []

    def done(endpoint: str, outcome: Certificate | Exception) -> bool:
        if isinstance(outcome, Exception):
            return False
        found.append(outcome)
        return True

    await gather_until(calls, timeout, done)
    return found[0] if found else None


def _lower_bound(values: list[int], network: Network) -> Amount:
    ranked = sorted(values, reverse=True)
    return Amount(max(ranked[network.committee.quorum - 1], 0))
