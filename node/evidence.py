"""Slashing evidence that certificates arriving at this node reveal: a member's vote for
an order other than the one whose certificate this node holds at that (account,
sequence). The shell's side of :mod:`node.state.equivocation`: it looks up the held
certificate, keeps new evidence in the store (``q`` records, served at
``GET /v1/log/evidence``) and logs it at ERROR once. Anyone can then take it to
``Vault.slashEquivocation`` (``wallet.vault.slash_arguments``); the node does so itself
with :class:`EvidenceReporter` (unless started with ``--no-submit-evidence``): its key
pays the gas and receives the Vault's reward.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from node.state import Transition
from node.state.equivocation import equivocations
from node.state.events import EventRefused
from node.store import LedgerStore
from wallet.chain import SlashResult
from wallet.codec import address_hex
from wallet.errors import ChainConfigError, TransactionReverted, WalletError
from wallet.types import Address, Certificate, Domain, Equivocation, Sequence

log = logging.getLogger("farthing.node.evidence")


class EquivocationWatch:
    """Called with every certificate the node received and what the writer made of it."""

    def __init__(
        self,
        store: LedgerStore,
        domain: Domain,
        on_new: Callable[[Equivocation], object] = lambda evidence: None,
    ) -> None:
        self.store, self.domain, self._on_new = store, domain, on_new

    def observe(self, certificate: Certificate, t: Transition) -> list[Equivocation]:
        """The new evidence ``certificate`` revealed (kept and logged), if it was refused
        while this node holds another order's certificate at its (account, sequence)."""
        if not any(isinstance(event, EventRefused) for event in t.events):
            return []  # applied or a duplicate: nothing conflicts
        order = certificate.order
        held = self._held(order.owner, order.sequence)
        if held is None:
            return []
        new = []
        for evidence in equivocations(self.domain, held, certificate):
            if self.store.put_equivocation(evidence):
                log.error(
                    "member %s voted for two orders of %s at sequence %d (slashing evidence "
                    "at GET /v1/log/evidence)",
                    address_hex(evidence.member),
                    address_hex(order.owner),
                    order.sequence,
                )
                new.append(evidence)
                self._on_new(evidence)
        return new

    def _held(self, owner: Address, sequence: Sequence) -> Certificate | None:
        digest = self.store.applied(owner, sequence)
        if digest is None:
            return self.store.pending(owner, sequence)
        found = self.store.certificate(digest)
        return None if found is None else found[1]


Slash = Callable[[Equivocation], Awaitable[SlashResult]]


class EvidenceReporter:
    """Takes equivocation evidence to the Vault, one piece at a time, in a task of its
    own (:meth:`run`). ``slash`` is ``VaultClient.slash_equivocation`` with the node's
    key. A member is reported once: after its bond is slashed, or found to have nothing
    left to slash (another node was first: nothing is sent then), its other evidence is
    skipped. Other failures (the RPC down, a receipt late, a transaction rejected for
    want of gas money) are retried with back-off from ``retry_initial`` to ``retry_max``
    seconds, for as long as the node runs; evidence the Vault refuses is logged at ERROR
    and dropped (it stays in the store: a restart tries again). At start, the node hands
    it every piece its store holds."""

    def __init__(
        self,
        slash: Slash,
        *,
        retry_initial: float = 1.0,
        retry_max: float = 60.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._slash = slash
        self._retry_initial, self._retry_max, self._sleep = retry_initial, retry_max, sleep
        self._queue: asyncio.Queue[Equivocation] = asyncio.Queue()
        self.reported: dict[Address, SlashResult] = {}

    def submit(self, evidence: Equivocation) -> None:
        if evidence.member not in self.reported:
            self._queue.put_nowait(evidence)

    async def run(self) -> None:
        while True:
            evidence = await self._queue.get()
            if evidence.member not in self.reported:
                await self._report(evidence)

    async def _report(self, evidence: Equivocation) -> None:
        member = address_hex(evidence.member)
        delay = self._retry_initial
        while True:
            try:
                result = await self._slash(evidence)
            except (TransactionReverted, ChainConfigError) as exc:
                log.error("the Vault refused the evidence against %s: %s", member, exc)
                return
            except WalletError as exc:
                # The RPC down; a late receipt (the transaction may be mined yet: asking
                # again is safe, the Vault then answers NothingToSlash before anything is
                # sent); a transaction rejected for want of gas money (until the operator
                # funds the key). The bond can leave after the unbonding delay: keep at it.
                log.warning("reporting %s: %s; retrying in %.0f s", member, exc, delay)
                await self._sleep(delay)
                delay = min(delay * 2, self._retry_max)
                continue
            except Exception:  # reporting must never take the node down
                log.exception("reporting %s failed; tried again after a restart", member)
                return
            self.reported[evidence.member] = result
            if result.transaction is None:
                log.info("member %s has no bond left to slash (reported already)", member)
            else:
                log.warning(
                    "member %s slashed on chain: bond %d, reward %d, transaction 0x%s",
                    member,
                    result.amount,
                    result.reward,
                    result.transaction.tx_hash.hex(),
                )
            return
