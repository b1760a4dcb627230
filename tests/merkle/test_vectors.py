"""Every JSON vector of tests/merkle/vectors through wallet.merkle, and the files equal to
what scripts/gen_merkle_vectors.py produces from the reference now (so they cannot drift)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from scripts import gen_merkle_vectors
from wallet import merkle
from wallet.types import Hash32

VECTORS = Path(__file__).parent / "vectors"


def _load(name: str) -> list[dict[str, Any]]:
    probes: list[dict[str, Any]] = json.loads((VECTORS / name).read_text())["probes"]
    return probes


def _cases(probes: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any], str]]:
    """(description, arguments, expected outcome) of every probe and mutation."""
    for probe in probes:
        base = {key: value for key, value in probe.items() if key not in {"expect", "mutations"}}
        where = ",".join(f"{k}={v}" for k, v in base.items() if isinstance(v, int))
        yield f"{where}/happy-path", base, probe["expect"]
        for mutation in probe["mutations"]:
            changes = {k: v for k, v in mutation.items() if k not in {"name", "expect"}}
            yield f"{where}/{mutation['name']}", {**base, **changes}, mutation["expect"]


def _h(value: str) -> Hash32:
    return Hash32(bytes.fromhex(value))


def _outcome(run: Callable[..., None], args: dict[str, Any]) -> str:
    try:
        run(**args)
    except merkle.MerkleProofError as error:
        return type(error).__name__
    return "ok"


def _check(cases: Iterator[tuple[str, dict[str, Any], str]], run: Callable[..., None]) -> int:
    wrong = []
    count = 0
    for desc, args, expect in cases:
        count += 1
        got = _outcome(run, args)
        if got != expect:
            wrong.append(f"{desc}: expected {expect}, got {got}")
    assert wrong == []
    return count


def test_every_inclusion_vector() -> None:
    def run(leaf_hash: str, index: int, tree_size: int, proof: list[str], root: str) -> None:
        merkle.verify_inclusion(_h(leaf_hash), index, tree_size, [_h(p) for p in proof], _h(root))

    assert _check(_cases(_load("inclusion.json")), run) > 5000


def test_every_consistency_vector() -> None:
    def run(size1: int, size2: int, proof: list[str], root1: str, root2: str) -> None:
        merkle.verify_consistency(size1, size2, [_h(p) for p in proof], _h(root1), _h(root2))

    assert _check(_cases(_load("consistency.json")), run) > 5000


@pytest.mark.parametrize("name", sorted(gen_merkle_vectors.FILES))
def test_vector_files_are_what_the_generator_produces(name: str) -> None:
    build = gen_merkle_vectors.FILES[name]
    assert (VECTORS / name).read_text() == gen_merkle_vectors.render(build()), (
        f"{name} is stale: run .venv/bin/python -m scripts.gen_merkle_vectors"
    )


def test_vectors_cover_every_size_and_the_named_mutations() -> None:
    inclusion = _load("inclusion.json")
    consistency = _load("consistency.json")
    assert {p["tree_size"] for p in inclusion} == set(gen_merkle_vectors.TREE_SIZES)
    assert {p["size2"] for p in consistency} == set(gen_merkle_vectors.TREE_SIZES)
    names = {m["name"] for p in inclusion + consistency for m in p["mutations"]}
    assert {
        "modified-proof@0-bit-@3",
        "modified-proof@0-bit-@4",
        "trailing-garbage",
        "truncated",
        "leafIdx-plus-1",
        "treeSize-minus-1",
        "wrong-root",
        "empty-proof-nonzero-size",
        "swapped-sizes",
    } <= names
    outcomes = {m["expect"] for p in inclusion + consistency for m in p["mutations"]}
    assert outcomes == {
        "ok",
        "MalformedHashError",
        "InvalidSizeError",
        "IndexOutOfRangeError",
        "ConsistencyRangeError",
        "ProofLengthError",
        "RootMismatchError",
    }
    assert {p["expect"] for p in inclusion + consistency} == {"ok"}
    # The only mutations that still verify move the (new) tree size by one where the tree
    # keeps its shape: the verifier cannot tell a leaf hash from a node hash, and no
    # genuine tree of the other size has that root (see scripts/gen_merkle_vectors.py).
    accepted = {
        m["name"] for p in inclusion + consistency for m in p["mutations"] if m["expect"] == "ok"
    }
    assert accepted == {"treeSize-plus-1", "treeSize-minus-1", "size2-plus-1", "size2-minus-1"}


def test_vector_files_stay_small() -> None:
    for name in gen_merkle_vectors.FILES:
        assert (VECTORS / name).stat().st_size < 2_000_000
