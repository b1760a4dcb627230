"""Equivocating votes: a member that voted for two different orders at one (account,
sequence). Pure: given the certificate a node already holds there (applied or pending)
and another that arrived for the same (account, sequence) with another order (however
it was refused: too few votes, a bad vote, a conflict), the members whose votes are in
both, each vote checked, are slashing evidence (``Vault.slashEquivocation``).

An honest member never signs two such votes (its lock), so within f Byzantine members no
second certificate forms; this is how the honest nodes still catch the one who tried,
whenever anyone shows them its other vote.
"""

from __future__ import annotations

from wallet.eip712 import order_digest
from wallet.signing import check_equivocation
from wallet.types import Certificate, Domain, Equivocation


def equivocations(domain: Domain, held: Certificate, other: Certificate) -> list[Equivocation]:
    """The members whose votes for ``held`` and for ``other`` are both valid, when the two
    are different orders of one account at one sequence (else none). At most two
    signature recoveries per member in both certificates."""
    first, second = held.order, other.order
    if (first.owner, first.sequence) != (second.owner, second.sequence):
        return []
    if order_digest(domain, first) == order_digest(domain, second):
        return []
    theirs = dict(other.votes)
    found = []
    for member, signature in held.votes:
        if member not in theirs:
            continue
        evidence = Equivocation(
            member, first, held.epoch, signature, second, other.epoch, theirs[member]
        )
        if check_equivocation(domain, evidence) is None:
            found.append(evidence)
    return found
