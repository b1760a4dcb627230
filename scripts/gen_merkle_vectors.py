"""Generate tests/merkle/vectors/{inclusion,consistency}.json from the naive RFC 9162
reference (tests/merkle/reference.py), in the manner of transparency-dev/merkle's testdata:
per tree size, happy-path probes and named mutations of each, with the expected outcome.

    .venv/bin/python -m scripts.gen_merkle_vectors     # rewrite the files
    .venv/bin/python -m scripts.gen_merkle_vectors --check

tests/merkle/test_vectors.py checks that the files equal what this produces, and runs every
vector through wallet.merkle.

Format: ``{"comment": ..., "probes": [probe, ...]}``. A probe holds the arguments of
``verify_inclusion`` (``leaf_hash``, ``index``, ``tree_size``, ``proof``, ``root``) or of
``verify_consistency`` (``size1``, ``size2``, ``proof``, ``root1``, ``root2``), hashes in
hex, with ``"expect": "ok"``, and a list of ``mutations``: each a ``name``, the arguments
it overrides, and the expected outcome, ``"ok"`` or the name of the error class
(``wallet.merkle``'s). Leaf ``i`` of every tree is the input ``b"leaf %d" % i``.

The expected outcome comes from the reference, not from the code under test: malformed
hashes first (MalformedHashError), then negative numbers (InvalidSizeError), then ranges
(IndexOutOfRangeError, ConsistencyRangeError), then the length of the genuine proof
(ProofLengthError); past those, the roots the proof implies, computed by a recursive
verifier that follows the shape of the RFC's PATH and SUBPROOF (reference.root_from_path,
reference.roots_from_proof; wallet.merkle implements the RFC's iterative algorithms), must
be the given ones, else RootMismatchError.

Note that a proof is accepted for any (index, size) of the same shape: the inclusion proof
of leaf 0 in a tree of 3 leaves also "proves" leaf 0 in a tree of 4 leaves whose root is
that 3-leaf root, since the verifier cannot tell a leaf hash from a node hash. No genuine
4-leaf tree has that root, so this is no forgery; the vectors record it as "ok".
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

from scripts.vector_files import vector_main
from tests.merkle import reference

ROOT = Path(__file__).resolve().parents[1]
VECTORS = ROOT / "tests" / "merkle" / "vectors"

#: Every size 1..40, and a few around powers of two.
TREE_SIZES = (*range(1, 41), 64, 100, 255, 256, 257)
MAX_LEAVES = 2 * max(TREE_SIZES) + 2  # room for the "times-2" and "plus-1" mutations

GARBAGE = hashlib.sha256(b"farthing merkle vector garbage").digest()
WRONG_ROOT = hashlib.sha256(b"farthing merkle vector wrong root").digest()
WRONG_LEAF = reference.leaf_hash(b"farthing merkle vector wrong leaf")
EMPTY_ROOT = hashlib.sha256(b"").digest()

OK = "ok"
Vector = dict[str, Any]


def leaf_input(i: int) -> bytes:
    return b"leaf %d" % i


DATA = tuple(leaf_input(i) for i in range(MAX_LEAVES))


@cache
def root_of(size: int) -> bytes:
    return reference.mth(DATA[:size])


@cache
def inclusion_path(index: int, size: int) -> tuple[bytes, ...]:
    return tuple(reference.path(index, DATA[:size]))


@cache
def consistency_path(size1: int, size2: int) -> tuple[bytes, ...]:
    return tuple(reference.proof(size1, DATA[:size2]))


def sample(n: int, low: int) -> list[int]:
    """A few points of ``[low, n]`` where proofs change shape (all of them for small
    ``n``): both ends and their neighbours, the middle, and the largest power of two
    with its neighbours."""
    if n - low < 8:
        return list(range(low, n + 1))
    power = 1 << (n.bit_length() - 1)
    points = {low, low + 1, n // 2, power - 1, power, power + 1, n - 1, n}
    return sorted(p for p in points if low <= p <= n)


def flip(proof: list[bytes], i: int, bit: int) -> list[bytes]:
    wrong = list(proof)
    wrong[i] = bytes([wrong[i][0] ^ (1 << bit)]) + wrong[i][1:]
    return wrong


# ---------------------------------------------------------------------------------------
# Inclusion


def inclusion_outcome(
    leaf_hash: bytes, index: int, tree_size: int, proof: list[bytes], root: bytes
) -> str:
    if any(len(h) != 32 for h in (leaf_hash, root, *proof)):
        return "MalformedHashError"
    if index < 0 or tree_size < 0:
        return "InvalidSizeError"
    if index >= tree_size:
        return "IndexOutOfRangeError"
    if len(proof) != len(inclusion_path(index, tree_size)):
        return "ProofLengthError"
    calculated = reference.root_from_path(index, tree_size, leaf_hash, proof)
    return OK if calculated == root else "RootMismatchError"


def inclusion_mutations(
    leaf_hash: bytes, index: int, size: int, proof: list[bytes], root: bytes
) -> list[tuple[str, dict[str, Any]]]:
    """(name, overridden arguments), after transparency-dev's corruptInclusionProof."""
    mutations: list[tuple[str, dict[str, Any]]] = [
        ("leafIdx-minus-1", {"index": index - 1}),
        ("leafIdx-plus-1", {"index": index + 1}),
        ("leafIdx-xor-2", {"index": index ^ 2}),
        ("leafIdx-equals-treeSize", {"index": size}),
        ("treeSize-minus-1", {"tree_size": size - 1}),
        ("treeSize-plus-1", {"tree_size": size + 1}),
        ("treeSize-times-2", {"tree_size": size * 2}),
        ("treeSize-div-2", {"tree_size": size // 2}),
        ("wrong-leaf", {"leaf_hash": WRONG_LEAF}),
        ("wrong-root", {"root": WRONG_ROOT}),
        ("empty-root", {"root": EMPTY_ROOT}),
        ("leaf-as-root", {"root": leaf_hash}),
        ("trailing-garbage", {"proof": [*proof, GARBAGE]}),
        ("preceding-garbage", {"proof": [GARBAGE, *proof]}),
        ("preceding-root", {"proof": [root, *proof]}),
        ("short-leaf-hash", {"leaf_hash": leaf_hash[:31]}),
        ("long-root", {"root": root + b"\x00"}),
    ]
    if proof:
        mutations += [
            ("truncated", {"proof": proof[:-1]}),
            ("empty-proof-nonzero-size", {"proof": []}),
            ("short-proof-hash", {"proof": [proof[0][:31], *proof[1:]]}),
        ]
    if len(proof) > 1:
        mutations.append(("inserted-component", {"proof": [proof[0], GARBAGE, *proof[1:]]}))
    mutations += [
        (f"modified-proof@{i}-bit-@3", {"proof": flip(proof, i, 3)}) for i in range(len(proof))
    ]
    return mutations


def inclusion_vectors() -> Vector:
    probes: list[Vector] = []
    for size in TREE_SIZES:
        root = root_of(size)
        for index in sample(size - 1, 0):
            leaf_hash = reference.leaf_hash(DATA[index])
            proof = list(inclusion_path(index, size))
            base = {
                "leaf_hash": leaf_hash,
                "index": index,
                "tree_size": size,
                "proof": proof,
                "root": root,
            }
            mutations: list[Vector] = []
            for name, changes in inclusion_mutations(leaf_hash, index, size, proof, root):
                args = {**base, **changes}
                if args == base:
                    continue
                expect = inclusion_outcome(**args)
                mutations.append({"name": name, **_hex(changes), "expect": expect})
            probes.append(
                {**_hex(base), "expect": inclusion_outcome(**base), "mutations": mutations}
            )
    return {"comment": _comment("inclusion"), "probes": probes}


# ---------------------------------------------------------------------------------------
# Consistency


def consistency_outcome(
    size1: int, size2: int, proof: list[bytes], root1: bytes, root2: bytes
) -> str:
    if any(len(h) != 32 for h in (root1, root2, *proof)):
        return "MalformedHashError"
    if size1 < 0 or size2 < 0:
        return "InvalidSizeError"
    if size1 > size2 or (size1 == 0 and size2 > 0):
        return "ConsistencyRangeError"
    if size1 == size2:
        if proof:
            return "ProofLengthError"
        return OK if root1 == root2 else "RootMismatchError"
    if len(proof) != len(consistency_path(size1, size2)):
        return "ProofLengthError"
    calculated = reference.roots_from_proof(size1, size2, proof, root1)
    return OK if calculated == (root1, root2) else "RootMismatchError"


def consistency_mutations(
    size1: int, size2: int, proof: list[bytes], root1: bytes, root2: bytes
) -> list[tuple[str, dict[str, Any]]]:
    """(name, overridden arguments), after transparency-dev's corruptConsistencyProof."""
    mutations: list[tuple[str, dict[str, Any]]] = [
        ("size1-minus-1", {"size1": size1 - 1}),
        ("size1-plus-1", {"size1": size1 + 1}),
        ("size1-xor-2", {"size1": size1 ^ 2}),
        ("size2-minus-1", {"size2": size2 - 1}),
        ("size2-plus-1", {"size2": size2 + 1}),
        ("size2-times-2", {"size2": size2 * 2}),
        ("size2-div-2", {"size2": size2 // 2}),
        ("swapped-sizes", {"size1": size2, "size2": size1}),
        ("size1-zero", {"size1": 0}),
        ("wrong-root1", {"root1": WRONG_ROOT}),
        ("wrong-root2", {"root2": WRONG_ROOT}),
        ("swapped-roots", {"root1": root2, "root2": root1}),
        ("empty-root1", {"root1": EMPTY_ROOT}),
        ("trailing-garbage", {"proof": [*proof, GARBAGE]}),
        ("preceding-garbage", {"proof": [GARBAGE, *proof]}),
        ("preceding-root1", {"proof": [root1, *proof]}),
        ("short-root1", {"root1": root1[:31]}),
        ("long-root2", {"root2": root2 + b"\x00"}),
    ]
    if proof:
        mutations += [
            ("preceding-proof@0", {"proof": [proof[0], *proof]}),
            ("truncated", {"proof": proof[:-1]}),
            ("empty-proof-nonzero-size", {"proof": []}),
            ("short-proof-hash", {"proof": [proof[0][:31], *proof[1:]]}),
        ]
    mutations += [
        (f"modified-proof@{i}-bit-@4", {"proof": flip(proof, i, 4)}) for i in range(len(proof))
    ]
    return mutations


def consistency_vectors() -> Vector:
    probes: list[Vector] = []
    for size2 in TREE_SIZES:
        root2 = root_of(size2)
        for size1 in sample(size2, 1):
            root1 = root_of(size1)
            proof = list(consistency_path(size1, size2))
            base = {"size1": size1, "size2": size2, "proof": proof, "root1": root1, "root2": root2}
            mutations: list[Vector] = []
            for name, changes in consistency_mutations(size1, size2, proof, root1, root2):
                args = {**base, **changes}
                if args == base:
                    continue
                expect = consistency_outcome(**args)
                mutations.append({"name": name, **_hex(changes), "expect": expect})
            probes.append(
                {**_hex(base), "expect": consistency_outcome(**base), "mutations": mutations}
            )
    return {"comment": _comment("consistency"), "probes": probes}


# ---------------------------------------------------------------------------------------
# Files


def _comment(kind: str) -> str:
    return (
        f"RFC 9162 {kind} proof vectors, generated by scripts/gen_merkle_vectors.py from "
        "tests/merkle/reference.py; do not edit. Leaf i is the input b'leaf %d' % i; "
        "hashes are hex; a mutation overrides some arguments of its probe."
    )


def _hex(args: dict[str, Any]) -> dict[str, Any]:
    def encode(value: Any) -> Any:
        if isinstance(value, bytes):
            return value.hex()
        if isinstance(value, list):
            return [encode(item) for item in value]
        return value

    return {key: encode(value) for key, value in args.items()}


def render(vectors: Vector) -> str:
    """The file's text: one probe per line, so a diff shows which probes changed."""
    lines = ",\n".join(json.dumps(probe, separators=(",", ":")) for probe in vectors["probes"])
    return f'{{"comment":{json.dumps(vectors["comment"])},\n"probes":[\n{lines}\n]}}\n'


FILES: dict[str, Callable[[], Vector]] = {
    "inclusion.json": inclusion_vectors,
    "consistency.json": consistency_vectors,
}


def main(argv: list[str] | None = None) -> int:
    return vector_main(
        __doc__.split("\n\n")[0],
        lambda: {VECTORS / name: render(build()) for name, build in FILES.items()},
        "python -m scripts.gen_merkle_vectors",
        argv,
    )


if __name__ == "__main__":
    raise SystemExit(main())
