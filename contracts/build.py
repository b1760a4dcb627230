"""Compile the Solidity sources with the pinned solc-js into committed artifacts.

Usage: ``python -m contracts.build`` (rewrite artifacts) or ``python -m contracts.build
--check`` (recompile and fail if the committed artifacts differ). Needs ``node_modules``
(``./scripts/setup.sh``). Running or testing Farthing does not: the artifacts are committed,
and ``artifacts/build-info.json`` holds a checksum of everything that went into them, which
the test suite recomputes from the sources alone (:func:`source_checksum`).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from contracts.artifacts_loader import ARTIFACTS_DIR, CONTRACT_NAMES

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_ROOT = PACKAGE_DIR.parent
SOURCES_DIR = PACKAGE_DIR / "src"
BUILD_INFO = ARTIFACTS_DIR / "build-info.json"

#: Contracts compiled for the test suite only (never deployed by the devnet).
TEST_HARNESS_NAMES = ("ReentrantToken",)

SETTINGS: dict[str, Any] = {
    "optimizer": {"enabled": True, "runs": 1_000_000},
    "evmVersion": "cancun",
    "viaIR": True,
    "outputSelection": {"*": {"*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"]}},
}


class BuildError(RuntimeError):
    """The compiler could not be run or reported errors."""


def _lock_version(package: str) -> str:
    lock = json.loads((REPO_ROOT / "package-lock.json").read_text())
    version: str = lock["packages"][f"node_modules/{package}"]["version"]
    return version


def source_files() -> dict[str, str]:
    """The Solidity sources, by their path relative to ``contracts/src`` (sorted)."""
    return {
        p.relative_to(SOURCES_DIR).as_posix(): p.read_text()
        for p in sorted(SOURCES_DIR.rglob("*.sol"))
    }


def source_checksum() -> str:
    """SHA-256 over the sources, the compiler settings and the pinned solc/OpenZeppelin."""
    material = {
        "solc": _lock_version("solc"),
        "openzeppelin": _lock_version("@openzeppelin/contracts"),
        "settings": SETTINGS,
        "sources": {
            name: hashlib.sha256(text.encode()).hexdigest() for name, text in source_files().items()
        },
    }
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()


def _run_solc(standard_input: dict[str, Any]) -> dict[str, Any]:
    node = shutil.which("node")
    if node is None:
        raise BuildError("node not found: install Node.js 20, then run ./scripts/setup.sh")
    if not (REPO_ROOT / "node_modules" / "solc").is_dir():
        raise BuildError("node_modules/solc is missing: run ./scripts/setup.sh")
    proc = subprocess.run(
        [node, str(PACKAGE_DIR / "compile.mjs"), str(REPO_ROOT)],
        input=json.dumps(standard_input),
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise BuildError(f"solc-js failed: {proc.stderr.strip()}")
    output: dict[str, Any] = json.loads(proc.stdout)
    return output


def compile_all() -> dict[str, dict[str, Any]]:
    """Compile every source; returns artifacts by contract name."""
    sources = source_files()
    output = _run_solc(
        {
            "language": "Solidity",
            "sources": {name: {"content": text} for name, text in sources.items()},
            "settings": SETTINGS,
        }
    )
    errors = [e for e in output.get("errors", []) if e["severity"] == "error"]
    if errors:
        raise BuildError("\n".join(e["formattedMessage"] for e in errors))
    artifacts: dict[str, dict[str, Any]] = {}
    for source_name, contracts in output["contracts"].items():
        for name, compiled in contracts.items():
            if name not in CONTRACT_NAMES + TEST_HARNESS_NAMES:
                continue
            artifacts[name] = {
                "contractName": name,
                "sourceName": source_name,
                "abi": compiled["abi"],
                "bytecode": "0x" + compiled["evm"]["bytecode"]["object"],
                "deployedBytecode": "0x" + compiled["evm"]["deployedBytecode"]["object"],
            }
    missing = set(CONTRACT_NAMES + TEST_HARNESS_NAMES) - artifacts.keys()
    if missing:
        raise BuildError(f"contracts not found in the sources: {sorted(missing)}")
    return artifacts


def _render(obj: Any) -> str:
    return json.dumps(obj, indent=1, sort_keys=True) + "\n"


def build_info() -> dict[str, Any]:
    return {
        "checksum": source_checksum(),
        "solc": _lock_version("solc"),
        "openzeppelin": _lock_version("@openzeppelin/contracts"),
        "settings": SETTINGS,
    }


def _write_atomically(path: Path, text: str) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    tmp.replace(path)


def write_artifacts(artifacts: dict[str, dict[str, Any]]) -> None:
    ARTIFACTS_DIR.mkdir(exist_ok=True)
    for name, artifact in artifacts.items():
        _write_atomically(ARTIFACTS_DIR / f"{name}.json", _render(artifact))
    _write_atomically(BUILD_INFO, _render(build_info()))


def stale_artifacts(artifacts: dict[str, dict[str, Any]]) -> list[str]:
    """Names whose committed artifact differs from a fresh compile (build-info included)."""
    stale = []
    for name, artifact in artifacts.items():
        path = ARTIFACTS_DIR / f"{name}.json"
        if not path.exists() or path.read_text() != _render(artifact):
            stale.append(name)
    if not BUILD_INFO.exists() or BUILD_INFO.read_text() != _render(build_info()):
        stale.append("build-info")
    return stale


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m contracts.build", description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if artifacts are stale")
    args = parser.parse_args(argv)
    try:
        artifacts = compile_all()
    except BuildError as exc:
        print(f"contracts.build: {exc}", file=sys.stderr)
        return 1
    if args.check:
        stale = stale_artifacts(artifacts)
        if stale:
            print(
                f"contracts.build: stale artifacts {stale}: run `python -m contracts.build`",
                file=sys.stderr,
            )
            return 1
        print("contracts.build: artifacts match the sources")
        return 0
    write_artifacts(artifacts)
    print(f"contracts.build: wrote {len(artifacts)} artifacts to {ARTIFACTS_DIR}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
