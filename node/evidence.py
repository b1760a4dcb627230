"""Slashing evidence that certificates arriving at this node reveal: a member's vote for
an order other than the one whose certificate this node holds at that (account,
sequence). The shell's side of :mod:`node.state.equivocation`: it looks up the held
certificate, keeps new evidence in the store (``q`` records, served at
``GET /v1/log/evidence``) and logs it at ERROR once. Anyone can then take it to
``Vault.slashEquivocation`` (``wallet.vault.slash_arguments``).
"""

from __future__ import annotations

import logging

from node.state import Transition
from node.state.equivocation import equivocations
from node.state.events import EventRefused
from node.store import LedgerStore
from wallet.codec import address_hex
from wallet.types import Address, Certificate, Domain, Equivocation, Sequence

log = logging.getLogger("farthing.node.evidence")


class EquivocationWatch:
    """Called with every certificate the node received and what the writer made of it."""

    def __init__(self, store: LedgerStore, domain: Domain) -> None:
        self.store, self.domain = store, domain

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
        return new

    def _held(self, owner: Address, sequence: Sequence) -> Certificate | None:
        digest = self.store.applied(owner, sequence)
        if digest is None:
            return self.store.pending(owner, sequence)
        found = self.store.certificate(digest)
        return None if found is None else found[1]
