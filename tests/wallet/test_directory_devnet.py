"""The directory and mailbox on the devnet's real node processes: the agent guide's
"Finding agents" example runs as written (only the manifest's path differs)."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from devnet import Devnet, DevnetConfig

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "agent-guide.md"
MANIFEST_LINE = 'MANIFEST = Path(".devnet/manifest.json")'


@pytest.fixture(scope="module")
def devnet() -> Iterator[Devnet]:
    with Devnet.up(DevnetConfig(start_nodes=True, agents=2)) as net:
        yield net


def test_the_guides_directory_example_runs(devnet: Devnet, tmp_path: Path) -> None:
    text = GUIDE.read_text()
    section = text[text.index("## Finding agents: the directory and mailboxes") :]
    [code] = re.findall(r"```python\n(.*?)```", section.split("\n## ")[0], flags=re.DOTALL)
    assert MANIFEST_LINE in code
    manifest = devnet.state_dir / "manifest.json"
    script = tmp_path / "example.py"
    script.write_text(code.replace(MANIFEST_LINE, f"MANIFEST = Path({str(manifest)!r})"))
    done = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    nodes = len(devnet.manifest.committee.members)
    assert f"seller listed on {nodes} nodes" in done.stdout
    assert "text='sunny in Oslo'" in done.stdout
    assert "private_key" not in done.stdout + done.stderr
