"""The directory and mailbox on the devnet's real node processes: the agent guide's
"Finding agents" example runs as written (only the manifest's path differs)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from devnet import Devnet, DevnetConfig
from tests.support.guide import run_example

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "agent-guide.md"
MANIFEST_LINE = 'MANIFEST = Path(".devnet/manifest.json")'


@pytest.fixture(scope="module")
def devnet() -> Iterator[Devnet]:
    with Devnet.up(DevnetConfig(start_nodes=True, agents=2)) as net:
        yield net


def test_the_guides_directory_example_runs(devnet: Devnet, tmp_path: Path) -> None:
    manifest = devnet.state_dir / "manifest.json"
    done = run_example("## Finding agents: the directory and mailboxes", manifest, tmp_path)
    nodes = len(devnet.manifest.committee.members)
    assert f"seller listed on {nodes} nodes" in done.stdout
    assert "text='sunny in Oslo'" in done.stdout
