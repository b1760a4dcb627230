"""Reads the committed compiled artifacts (ABI and bytecode) of the contracts."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

ARTIFACTS_DIR = Path(__file__).resolve().parent / "artifacts"

#: The deployable contracts, by artifact name.
CONTRACT_NAMES = ("FarthingUSD", "FarthingToken", "PriceFeed", "Vault")


class ArtifactError(RuntimeError):
    """An artifact is missing or unreadable: run ``python -m contracts.build``."""


@dataclass(frozen=True, slots=True)
class Artifact:
    name: str
    abi: list[dict[str, Any]]
    bytecode: str  # 0x-prefixed creation code
    deployed_bytecode: str  # 0x-prefixed runtime code


@cache
def load_artifact(name: str) -> Artifact:
    """The compiled artifact of contract ``name`` (e.g. ``"Vault"``)."""
    path = ARTIFACTS_DIR / f"{name}.json"
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        raise ArtifactError(
            f"no artifact for {name!r} at {path}: run `.venv/bin/python -m contracts.build`"
        ) from None
    return Artifact(
        name=name,
        abi=raw["abi"],
        bytecode=raw["bytecode"],
        deployed_bytecode=raw["deployedBytecode"],
    )
