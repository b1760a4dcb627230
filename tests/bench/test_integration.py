"""The whole benchmark in its smallest form (``--smoke``): a devnet with 4 nodes, every
part for a moment, a restart on 1,000 entries; the files it writes and no process left."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from bench.report import NUMBER_KEYS, missing_or_bad
from bench.runner import PROFILES, run

pytestmark = pytest.mark.integration


def children(pid: int) -> list[int]:
    """The live processes whose parent is ``pid``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(entry.name))
    return found


@pytest.mark.timeout(150)
def test_smoke_run_writes_numbers_a_table_and_a_chart(tmp_path: Path) -> None:
    out = tmp_path / "results"
    results = run(PROFILES["smoke"], out, cache=tmp_path / "cache")

    written = json.loads((out / "latest.json").read_text())
    assert missing_or_bad(written) == []
    # Every figure is above zero: a rate, ratio, size or time of nothing means a part failed.
    assert [k for k in NUMBER_KEYS if written[k] <= 0] == []
    assert written["restart_entries"] == 1_000
    assert written["counts"]["farthing_payments"] == 100
    assert written["counts"]["erc20_confirmed"] == 100
    assert written["counts"]["eip3009_confirmed"] == 100
    assert written["machine"]["cores"] >= 1
    assert written == json.loads(json.dumps(results))

    table = (out / "latest.md").read_text()
    assert "`farthing_payments_per_s`" in table
    assert (out / "latest.png").read_bytes()[:4] == b"\x89PNG"
    assert children(os.getpid()) == []
