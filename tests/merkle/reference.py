"""A naive RFC 9162 Merkle tree, for tests only: the recursive definitions of sections
2.1.1 (MTH), 2.1.3.1 (PATH) and 2.1.4.1 (PROOF, SUBPROOF), written as the RFC writes them,
over the list ``D`` of leaf *inputs*. Slow (every call rehashes from the leaves) and
deliberately independent of ``wallet.merkle`` and ``node.merkle``: it hashes with hashlib
itself, so a shared bug cannot hide.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence


def _sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def largest_power_of_two_below(n: int) -> int:
    """k: the largest power of two smaller than n (n > 1), so that k < n <= 2k."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def leaf_hash(d: bytes) -> bytes:
    """MTH({d}) = SHA-256(0x00 || d)."""
    return _sha256(b"\x00" + d)


def mth(d: Sequence[bytes]) -> bytes:
    """The Merkle Tree Hash of the list of inputs ``d`` (RFC 9162 2.1.1).

    MTH({}) = SHA-256(); MTH({d(0)}) = SHA-256(0x00 || d(0));
    MTH(D[n]) = SHA-256(0x01 || MTH(D[0:k]) || MTH(D[k:n])).
    """
    n = len(d)
    if n == 0:
        return _sha256(b"")
    if n == 1:
        return leaf_hash(d[0])
    k = largest_power_of_two_below(n)
    return _sha256(b"\x01" + mth(d[0:k]) + mth(d[k:n]))


def path(m: int, d: Sequence[bytes]) -> list[bytes]:
    """PATH(m, D[n]): the inclusion proof of the (m+1)th input (RFC 9162 2.1.3.1).

    PATH(0, {d(0)}) = {};
    PATH(m, D[n]) = PATH(m, D[0:k]) : MTH(D[k:n]) for m < k;
    PATH(m, D[n]) = PATH(m - k, D[k:n]) : MTH(D[0:k]) for m >= k.
    """
    n = len(d)
    if not 0 <= m < n:
        raise ValueError(f"PATH({m}, D[{n}]) is undefined")
    if n == 1:
        return []
    k = largest_power_of_two_below(n)
    if m < k:
        return [*path(m, d[0:k]), mth(d[k:n])]
    return [*path(m - k, d[k:n]), mth(d[0:k])]


def subproof(m: int, d: Sequence[bytes], b: bool) -> list[bytes]:
    """SUBPROOF(m, D[n], b) (RFC 9162 2.1.4.1).

    SUBPROOF(m, D[m], true) = {}; SUBPROOF(m, D[m], false) = {MTH(D[m])};
    for m < n: SUBPROOF(m, D[n], b) = SUBPROOF(m, D[0:k], b) : MTH(D[k:n]) if m <= k,
    and SUBPROOF(m - k, D[k:n], false) : MTH(D[0:k]) if m > k.
    """
    n = len(d)
    if m == n:
        return [] if b else [mth(d)]
    k = largest_power_of_two_below(n)
    if m <= k:
        return [*subproof(m, d[0:k], b), mth(d[k:n])]
    return [*subproof(m - k, d[k:n], False), mth(d[0:k])]


def proof(m: int, d: Sequence[bytes]) -> list[bytes]:
    """PROOF(m, D[n]) = SUBPROOF(m, D[n], true): the consistency proof from the first m
    inputs to all n (RFC 9162 2.1.4.1; defined for 0 < m <= n)."""
    if not 0 < m <= len(d):
        raise ValueError(f"PROOF({m}, D[{len(d)}]) is undefined")
    return subproof(m, d, True)


# ---------------------------------------------------------------------------------------
# Recursive verifiers: the same recursions, run backwards over a proof. They follow the
# shape of the definitions above, where wallet.merkle follows the RFC's iterative
# algorithms (2.1.3.2, 2.1.4.2); the vector generator uses them as its oracle.


def _node(left: bytes, right: bytes) -> bytes:
    return _sha256(b"\x01" + left + right)


def root_from_path(m: int, n: int, leaf: bytes, path_: Sequence[bytes]) -> bytes:
    """The root that PATH(m, D[n]) = ``path_`` implies for the leaf hash ``leaf``; the
    length of ``path_`` must be that of PATH(m, D[n])."""
    if n == 1:
        if path_:
            raise ValueError("path too long")
        return leaf
    k = largest_power_of_two_below(n)
    *rest, last = path_
    if m < k:
        return _node(root_from_path(m, k, leaf, rest), last)
    return _node(last, root_from_path(m - k, n - k, leaf, rest))


def _roots_from_subproof(
    m: int, n: int, b: bool, proof_: Sequence[bytes], first_hash: bytes
) -> tuple[bytes, bytes]:
    """(the hash of D[0:m], the hash of D[0:n]) that SUBPROOF(m, D[n], b) = ``proof_``
    implies, where ``b`` means D[0:m] is the whole old tree (whose hash is first_hash)."""
    if m == n:
        if b:
            if proof_:
                raise ValueError("proof too long")
            return first_hash, first_hash
        (only,) = proof_
        return only, only
    k = largest_power_of_two_below(n)
    *rest, last = proof_
    if m <= k:
        old, new = _roots_from_subproof(m, k, b, rest, first_hash)
        return old, _node(new, last)
    old, new = _roots_from_subproof(m - k, n - k, False, rest, first_hash)
    return _node(last, old), _node(last, new)


def roots_from_proof(
    m: int, n: int, proof_: Sequence[bytes], first_hash: bytes
) -> tuple[bytes, bytes]:
    """(old root, new root) that PROOF(m, D[n]) = ``proof_`` implies, given the old root
    ``first_hash``; the length of ``proof_`` must be that of PROOF(m, D[n])."""
    return _roots_from_subproof(m, n, True, proof_, first_hash)
