"""The example of docs/agent-guide.md, section "On chain: deposit, withdraw, redeem", runs
as written against a devnet with its ledger nodes (only the manifest's path differs)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from devnet import Devnet, DevnetConfig
from tests.support.guide import run_example

SECTION = "## On chain: deposit, withdraw, redeem"


@pytest.fixture(scope="module")
def devnet() -> Iterator[Devnet]:
    with Devnet.up(DevnetConfig(start_nodes=True, agents=2)) as net:
        yield net


@pytest.mark.integration
def test_the_guides_chain_example_runs(devnet: Devnet, tmp_path: Path) -> None:
    done = run_example(SECTION, devnet.state_dir / "manifest.json", tmp_path)
    assert "epoch 1, quorum 3 of 4" in done.stdout
    assert "tokens: [('FAR', 18), ('USDF', 6)]" in done.stdout
    assert "1 FAR = 2.5" in done.stdout
    assert "deposit 1 in block" in done.stdout
    assert "again: already_redeemed" in done.stdout
