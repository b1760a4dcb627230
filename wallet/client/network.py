"""What the client needs to know about the network: the EIP-712 domain, the committee
(members, quorum, epoch) and each member's endpoint.

The chain reader (:mod:`wallet.chain`) builds a :class:`Network` from an RPC URL and
the Vault's address; :meth:`Network.from_manifest` builds one from a devnet manifest
(docs/protocol.md section 5) without importing the devnet package.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from wallet.codec import parse_address
from wallet.errors import EncodingError
from wallet.types import Address, Domain, Epoch


@dataclass(frozen=True, slots=True)
class Committee:
    """The committee of one epoch: ``members`` in the Vault's order and the ``quorum`` of
    distinct members' votes a certificate needs."""

    epoch: Epoch
    quorum: int
    members: tuple[Address, ...]

    def __post_init__(self) -> None:
        n = len(self.members)
        if not 1 <= n <= 255 or len(set(self.members)) != n:
            raise EncodingError("members", "expected 1 to 255 distinct member addresses")
        if not (2 * n) // 3 + 1 <= self.quorum <= n:
            raise EncodingError("quorum", f"expected floor(2n/3)+1 <= quorum <= n (n = {n})")

    @property
    def faults(self) -> int:
        """f, the faulty members the protocol tolerates: floor((n - 1) / 3)."""
        return (len(self.members) - 1) // 3


def committees_by_epoch(committees: Committee | Iterable[Committee]) -> dict[Epoch, Committee]:
    """``committees`` (one, or several of different epochs) keyed by epoch."""
    if isinstance(committees, Committee):
        return {committees.epoch: committees}
    return {c.epoch: c for c in committees}


class CommitteeSource(Protocol):
    """A committee with its endpoints, as :class:`wallet.chain.CommitteeInfo` reads it
    from the Vault."""

    @property
    def epoch(self) -> Epoch: ...
    @property
    def quorum(self) -> int: ...
    @property
    def members(self) -> tuple[Address, ...]: ...
    @property
    def endpoints(self) -> tuple[str, ...]: ...


@dataclass(frozen=True, slots=True)
class Network:
    """A deployment as the client sees it: the ``domain`` every message is signed under,
    the current ``committee`` and ``endpoints[i]``, the base URL of member ``i``'s node.
    ``past`` holds the committees of earlier epochs whose certificates are still to be
    verified (history, receipts)."""

    domain: Domain
    committee: Committee
    endpoints: tuple[str, ...]
    past: Mapping[Epoch, Committee] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if len(self.endpoints) != len(self.committee.members):
            raise EncodingError("endpoints", "expected one endpoint per committee member")

    @property
    def committees(self) -> dict[Epoch, Committee]:
        """Every committee known, current included, by epoch."""
        return {**self.past, self.committee.epoch: self.committee}

    @classmethod
    def from_committee(cls, domain: Domain, committee: CommitteeSource) -> Network:
        """The network of a committee read from the chain: ``VaultReader(url,
        vault).overview(feed)`` gives ``domain`` and ``committee`` (wallet.chain)."""
        return cls(
            domain,
            Committee(committee.epoch, committee.quorum, tuple(committee.members)),
            tuple(url.rstrip("/") for url in committee.endpoints),
        )

    @classmethod
    def from_manifest(cls, path: str | Path) -> Network:
        """The network of a devnet manifest (``<state dir>/manifest.json``). Its keys are
        not read: load an agent's key separately."""
        data = json.loads(Path(path).read_text())
        return cls.from_manifest_dict(data)

    @classmethod
    def from_manifest_dict(cls, data: object) -> Network:
        """The network of a manifest already parsed from JSON."""
        if not isinstance(data, dict) or data.get("version") != 1:
            raise EncodingError("manifest", "expected a devnet manifest of version 1")
        try:
            committee = data["committee"]
            members = committee["members"]
            domain = Domain(int(data["chain_id"]), parse_address(data["contracts"]["vault"]))
            return cls(
                domain,
                Committee(
                    Epoch(int(committee["epoch"])),
                    int(committee["quorum"]),
                    tuple(parse_address(m["address"]) for m in members),
                ),
                tuple(str(m["endpoint"]).rstrip("/") for m in members),
            )
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, EncodingError):
                raise
            raise EncodingError("manifest", f"missing or malformed field ({exc!r:.60})") from None
