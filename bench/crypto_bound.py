"""The crypto bound: how many payments per second the machine could confirm doing
nothing but the signatures and recoveries one payment needs, across the whole system.

The operations of one payment, counted from the code paths (``n`` nodes, quorum ``q``;
the devnet has n = 4, q = 3), for a payment made as ``Wallet.pay_final`` makes it:

* the payer signs the order (``wallet.signing.sign_order``): 1 signature;
* each node, voting (``node.state.orders``): recovers the owner from the order's
  signature and signs its vote: n recoveries, n signatures;
* the client checks each vote as it arrives until it has a quorum
  (``wallet.client.votes.check_vote`` → ``verify_vote``): q recoveries;
* each node applying the certificate (``node.state.certificates._verify``): a node that
  voted for the order skips the owner's signature (it checked it when voting) and its own
  vote (compared byte for byte): the q nodes whose votes are in the certificate recover
  q - 1 votes each, the n - q others recover q votes each: q(q - 1) + (n - q)q.

For n = 4, q = 3: 5 signatures and 4 + 3 + 6 + 3 = 16 recoveries. Digests (keccak) and
everything else are left out. Each operation is timed single-threaded in this process
with the code's own functions (``PrivateKey.unsafe_sign_digest`` and
``wallet.signing.recover``, coincurve/libsecp256k1; recovery includes the keccak of the
public key to an address); the bound is ``cores / (signatures × t_sign + recoveries ×
t_recover)``: perfect scaling over every core, the most this machine could reach.
"""

from __future__ import annotations

import os
import secrets
import statistics
import time
from dataclasses import dataclass

from wallet.signing import PrivateKey, recover
from wallet.types import Hash32


@dataclass(frozen=True, slots=True)
class OperationCount:
    """Signatures and recoveries of one payment, and where they happen."""

    signatures: int
    recoveries: int
    breakdown: dict[str, tuple[int, int]]  # where → (signatures, recoveries)


def count_operations(nodes: int = 4, quorum: int = 3) -> OperationCount:
    """The operations of one payment (see the module docstring for the code paths)."""
    if not 1 <= quorum <= nodes:
        raise ValueError(f"quorum {quorum} of {nodes} nodes")
    breakdown = {
        "payer signs the order": (1, 0),
        "nodes vote: recover the payer, sign the vote": (nodes, nodes),
        "client checks the quorum's votes": (0, quorum),
        "nodes in the certificate apply it: the other votes": (0, quorum * (quorum - 1)),
        "nodes not in it apply it: every vote": (0, (nodes - quorum) * quorum),
    }
    return OperationCount(
        signatures=sum(s for s, _ in breakdown.values()),
        recoveries=sum(r for _, r in breakdown.values()),
        breakdown=breakdown,
    )


def bound_per_s(count: OperationCount, sign_s: float, recover_s: float, cores: int) -> float:
    """Payments per second with ``cores`` cores doing only ``count``'s operations."""
    per_payment = count.signatures * sign_s + count.recoveries * recover_s
    if per_payment <= 0 or cores < 1:
        raise ValueError("the time per payment and the cores must be positive")
    return cores / per_payment


@dataclass(frozen=True, slots=True)
class CryptoTimes:
    sign_us: float
    recover_us: float

    def fastest(self, other: CryptoTimes) -> CryptoTimes:
        """Each operation's faster time of two timings: the machine's best, so a
        timing taken while other work ran cannot lower the bound (and flatter a ratio)."""
        return CryptoTimes(min(self.sign_us, other.sign_us), min(self.recover_us, other.recover_us))


def time_operations(iterations: int = 2000, repeats: int = 5) -> CryptoTimes:
    """Median over ``repeats`` of the mean time of one signature and one recovery, each
    over ``iterations`` distinct digests."""
    key = PrivateKey.generate()
    digests = [Hash32(secrets.token_bytes(32)) for _ in range(iterations)]
    signatures = [key.unsafe_sign_digest(d) for d in digests]
    sign, rec = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for d in digests:
            key.unsafe_sign_digest(d)
        t1 = time.perf_counter()
        for d, s in zip(digests, signatures, strict=True):
            if recover(d, s) != key.address:
                raise RuntimeError("recovery found another signer")
        t2 = time.perf_counter()
        sign.append((t1 - t0) / iterations)
        rec.append((t2 - t1) / iterations)
    return CryptoTimes(statistics.median(sign) * 1e6, statistics.median(rec) * 1e6)


def cores() -> int:
    """The cores this process may run on."""
    return len(os.sched_getaffinity(0))
