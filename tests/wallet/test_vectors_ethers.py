"""The committed EIP-712 vectors against ethers.js v6 (a third implementation, in another
language, next to eth-account and the wallet's own encoder): ``ethers_vectors.mjs`` runs
under ``node`` in a subprocess and recomputes every domain separator, struct hash and
digest with ``TypedDataEncoder``, recovers every signer (over the typed data and over the
digest), and signs every vector again with its key (RFC 6979: the same bytes).

ethers is pinned in package.json (devDependencies) and installed by ``scripts/setup.sh``
(so by ``./test.sh``); the test is skipped only when ``node_modules/ethers`` is missing.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
VECTORS = ROOT / "tests" / "wallet" / "vectors" / "eip712.json"
SCRIPT = ROOT / "tests" / "wallet" / "ethers_vectors.mjs"
ETHERS = ROOT / "node_modules" / "ethers"

pytestmark = pytest.mark.skipif(
    not (ETHERS / "package.json").is_file(),
    reason="node_modules/ethers is missing: run scripts/setup.sh (npm ci from package-lock.json)",
)


@cache
def vector_file() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(VECTORS.read_text())
    return data


def vectors() -> list[dict[str, Any]]:
    return list(vector_file()["vectors"])


def run_ethers(vectors_path: Path) -> dict[str, Any]:
    node = shutil.which("node")
    assert node is not None, "node is not on PATH (the README requires Node.js 20+)"
    done = subprocess.run(
        [node, str(SCRIPT), str(vectors_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, f"ethers_vectors.mjs failed:\n{done.stderr}"
    out: dict[str, Any] = json.loads(done.stdout)
    return out


@cache
def ethers_output() -> dict[str, Any]:
    return run_ethers(VECTORS)


def ethers_result(name: str) -> dict[str, Any]:
    by_name = {r["name"]: r for r in ethers_output()["results"]}
    result: dict[str, Any] = by_name[name]
    return result


def test_ethers_is_the_pinned_version() -> None:
    pinned = json.loads((ROOT / "package.json").read_text())["devDependencies"]["ethers"]
    assert pinned.split(".")[0] == "6"
    assert ethers_output()["ethers"] == pinned


def test_ethers_covers_every_vector_and_message_type() -> None:
    assert [r["name"] for r in ethers_output()["results"]] == [v["name"] for v in vectors()]
    types = {r["primaryType"] for r in ethers_output()["results"]}
    assert types == set(vector_file()["types"]) - {"EIP712Domain"}
    assert types == {"Transfer", "Withdrawal", "Vote", "Checkpoint", "Cosignature"}


def test_ethers_type_strings_match_the_vector_file() -> None:
    file_types = vector_file()["types"]
    expected = {name: f"{name}({','.join(fields)})" for name, fields in file_types.items()}
    assert ethers_output()["domainType"] == expected["EIP712Domain"]
    for result in ethers_output()["results"]:
        assert result["encodedType"] == expected[result["primaryType"]]


def test_ethers_derives_the_key_addresses() -> None:
    assert ethers_output()["addresses"] == [k["address"] for k in vector_file()["keys"]]


@pytest.mark.parametrize("vector", vectors(), ids=lambda v: v["name"])
def test_ethers_reproduces_vector(vector: dict[str, Any]) -> None:
    result = ethers_result(vector["name"])
    assert result["primaryType"] == vector["primaryType"]
    assert result["domainSeparator"] == vector["domainSeparator"]
    assert result["structHash"] == vector["structHash"]
    assert result["digest"] == vector["digest"]
    signer = vector_file()["keys"][vector["key"]]["address"]
    assert result["recoveredTyped"] == signer
    assert result["recoveredDigest"] == signer
    assert result["signature"] == vector["signature"]


def test_ethers_computes_rather_than_echoes(tmp_path: Path) -> None:
    """A vector changed by one unit gives ethers another struct hash and digest, and the
    committed signature then recovers to someone else."""
    data = json.loads(VECTORS.read_text())
    vector = data["vectors"][0]
    vector["message"]["amount"] = str(int(vector["message"]["amount"]) + 1)
    data["vectors"] = [vector]
    changed = tmp_path / "eip712.json"
    changed.write_text(json.dumps(data))
    [result] = run_ethers(changed)["results"]
    original = vectors()[0]
    assert result["domainSeparator"] == original["domainSeparator"]
    assert result["structHash"] != original["structHash"]
    assert result["digest"] != original["digest"]
    assert result["recoveredTyped"] != data["keys"][vector["key"]]["address"]
