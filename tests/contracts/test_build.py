"""The committed artifacts belong to the committed sources."""

from __future__ import annotations

import json

import pytest

from contracts import CONTRACT_NAMES, load_artifact
from contracts.build import BUILD_INFO, compile_all, source_checksum, stale_artifacts


def test_build_info_checksum_matches_the_sources() -> None:
    info = json.loads(BUILD_INFO.read_text())
    assert info["checksum"] == source_checksum(), (
        "contracts/src changed since the artifacts were built: "
        "run `.venv/bin/python -m contracts.build`"
    )


def test_artifacts_have_abi_and_code() -> None:
    for name in CONTRACT_NAMES:
        artifact = load_artifact(name)
        assert artifact.bytecode.startswith("0x6") and len(artifact.bytecode) > 1000
        assert (
            artifact.deployed_bytecode.startswith("0x") and len(artifact.deployed_bytecode) > 1000
        )
        assert any(item["type"] == "function" for item in artifact.abi)
    vault_functions = {i["name"] for i in load_artifact("Vault").abi if i["type"] == "function"}
    assert {
        "deposit",
        "depositWithPermit",
        "redeem",
        "redeemBatch",
        "startEpoch",
        "bond",
        "slashEquivocation",
        "committee",
    } <= vault_functions


@pytest.mark.slow
def test_recompiling_reproduces_the_committed_artifacts() -> None:
    """solc-js from node_modules compiles the sources to exactly the committed bytes."""
    assert stale_artifacts(compile_all()) == []
