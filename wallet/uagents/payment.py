"""uagents-core's AgentPaymentProtocol 0.1.0, declared anew (same names, fields, types and
defaults, no docstrings) so that the digests are the same without importing uagents.

Flow: the seller sends :class:`RequestPayment`; the buyer answers :class:`CommitPayment`
(Farthing puts the payment certificate's digest in ``transaction_id``) or
:class:`RejectPayment`; the seller answers :class:`CompletePayment` or
:class:`CancelPayment`. Roles name the messages each side *receives*.
"""

from __future__ import annotations

from typing import Final

from wallet.uagents.models import Model, protocol_digest

PAYMENT_PROTOCOL_NAME: Final = "AgentPaymentProtocol"
PAYMENT_PROTOCOL_VERSION: Final = "0.1.0"


# Comments, not docstrings: a docstring would change the digest.
class Funds(Model):
    amount: str
    currency: str
    payment_method: str = "fet_direct"


class RequestPayment(Model):
    accepted_funds: list[Funds]
    recipient: str
    deadline_seconds: int
    reference: str | None = None
    description: str | None = None
    metadata: dict[str, str | dict[str, str]] | None = None


class RejectPayment(Model):
    reason: str | None = None


class CommitPayment(Model):
    funds: Funds
    recipient: str
    transaction_id: str
    reference: str | None = None
    description: str | None = None
    metadata: dict[str, str | dict[str, str]] | None = None


class CancelPayment(Model):
    transaction_id: str | None = None
    reason: str | None = None


class CompletePayment(Model):
    transaction_id: str | None = None


PAYMENT_INTERACTIONS: Final[dict[type[Model], frozenset[type[Model]]]] = {
    RequestPayment: frozenset({CommitPayment, RejectPayment}),
    CommitPayment: frozenset({CompletePayment, CancelPayment}),
    CompletePayment: frozenset(),
    CancelPayment: frozenset(),
    RejectPayment: frozenset(),
}
PAYMENT_ROLES: Final[dict[str, frozenset[type[Model]]]] = {
    "seller": frozenset({CommitPayment, RejectPayment}),
    "buyer": frozenset({RequestPayment, CancelPayment, CompletePayment}),
}


def payment_protocol_digest(role: str | None = None) -> str:
    """The protocol digest of AgentPaymentProtocol, whole or for one role's side."""
    return protocol_digest(PAYMENT_INTERACTIONS, roles=PAYMENT_ROLES, role=role)
