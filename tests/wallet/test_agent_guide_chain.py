"""The example of docs/agent-guide.md, section "On chain: deposit, withdraw, redeem", runs
as written against a devnet with its ledger nodes (only the manifest's path differs)."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from devnet import Devnet, DevnetConfig

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "docs" / "agent-guide.md"
SECTION = "## On chain: deposit, withdraw, redeem"
MANIFEST_LINE = 'MANIFEST = Path(".devnet/manifest.json")'


def example() -> str:
    text = GUIDE.read_text()
    start = text.index(SECTION)
    end = text.find("\n## ", start + len(SECTION))
    section = text[start : None if end < 0 else end]
    [code] = re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)
    assert MANIFEST_LINE in code
    return code


@pytest.fixture(scope="module")
def devnet() -> Iterator[Devnet]:
    with Devnet.up(DevnetConfig(start_nodes=True, agents=2)) as net:
        yield net


@pytest.mark.integration
def test_the_guides_chain_example_runs(devnet: Devnet, tmp_path: Path) -> None:
    manifest = devnet.state_dir / "manifest.json"
    script = tmp_path / "example.py"
    script.write_text(example().replace(MANIFEST_LINE, f"MANIFEST = Path({str(manifest)!r})"))
    done = subprocess.run(
        [sys.executable, str(script)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "epoch 1, quorum 3 of 4" in done.stdout
    assert "tokens: [('FAR', 18), ('USDF', 6)]" in done.stdout
    assert "1 FAR = 2.5" in done.stdout
    assert "deposit 1 in block" in done.stdout
    assert "again: already_redeemed" in done.stdout
    assert "private_key" not in done.stdout + done.stderr
