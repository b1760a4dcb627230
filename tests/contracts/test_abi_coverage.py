"""Every custom error and event that Farthing's own contracts declare is exercised by a
test of this suite (its name appears in an ``expect_revert`` / ``events`` call), except
those listed here with the reason they cannot be reached."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from contracts import load_artifact

HERE = Path(__file__).resolve().parent
OWN_SOURCES = {
    "Vault": "Vault.sol",
    "PriceFeed": "PriceFeed.sol",
}
UNREACHABLE = {
    # CREATE of the committee's data contract fails only when the call runs out of gas.
    "CommitteeStoreFailed",
}


def _declared(contract: str, kind: str) -> set[str]:
    source = (HERE.parents[1] / "contracts" / "src" / OWN_SOURCES[contract]).read_text()
    abi_names = {i["name"] for i in load_artifact(contract).abi if i["type"] == kind}
    # Only what the contract itself declares, not what it inherits from OpenZeppelin.
    return {n for n in abi_names if re.search(rf"\b{kind}\s+{n}\s*\(", source)}


def _quoted_in_tests() -> str:
    return "\n".join(p.read_text() for p in HERE.glob("test_*.py") if p.name != Path(__file__).name)


@pytest.mark.parametrize("contract", sorted(OWN_SOURCES))
@pytest.mark.parametrize("kind", ["error", "event"])
def test_every_error_and_event_is_exercised(contract: str, kind: str) -> None:
    declared = _declared(contract, kind)
    assert declared, f"found no {kind}s declared in {contract}"
    tests = _quoted_in_tests()
    missing = sorted(n for n in declared - UNREACHABLE if f'"{n}"' not in tests)
    assert missing == [], f"{contract} {kind}s no test names: {missing}"
