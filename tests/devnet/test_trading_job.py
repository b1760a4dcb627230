"""The main job (`devnet trade`, what ./run.sh runs) in its smallest form, in a
subprocess with its own state dir and a free port: every summary line OK and no process
left; and Ctrl-C (SIGINT) in the middle of the trading stops everything cleanly."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


def read_until(process: subprocess.Popen[str], marker: str, seen: list[str]) -> str:
    """Lines of ``process``'s stdout until one containing ``marker`` (returned)."""
    assert process.stdout is not None
    for line in process.stdout:
        seen.append(line)
        if marker in line:
            return line
    raise AssertionError(f"no {marker!r} in the output:\n{''.join(seen)}")


def recorded_pids(state_dir: Path) -> list[int]:
    manifest = json.loads((state_dir / "manifest.json").read_text())
    return [int(p["pid"]) for p in manifest["processes"]]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie has exited; only its parent (gone with the job) could reap it.
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().rsplit(")", 1)[1].split()[0] != "Z"


def wait_gone(pids: list[int], timeout: float = 5.0) -> list[int]:
    deadline = time.monotonic() + timeout
    while (left := [p for p in pids if alive(p)]) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


def test_the_main_job_reconciles(
    spawn_cli: Callable[..., subprocess.Popen[str]], state_dir: Path
) -> None:
    process = spawn_cli("trade", "--requests", "30", "--port", "0", "--state-dir", str(state_dir))
    seen: list[str] = []
    read_until(process, "trading: 30 paid requests", seen)
    pids = recorded_pids(state_dir)  # anvil and the 4 nodes
    assert len(pids) == 5
    out, err = process.communicate(timeout=90)
    text = "".join(seen) + out
    assert process.returncode == 0, text + err
    summary = text.split("\nsummary\n", 1)[1]
    checks = [line.strip() for line in summary.splitlines() if line.startswith("  OK")]
    assert "MISMATCH" not in summary
    assert len(checks) >= 20
    for expected in (
        "OK       paid requests served in total: 30",
        "buyer-1: delivery receipts verified: 15",
        "buyer-2: paid = ",
        "provider earned in FAR = the buyers' payments",
        "provider earned in USDF = the buyers' payments",
        "on chain: provider's FAR balance rose by the withdrawal",
        "on chain: provider's USDF balance rose by the withdrawal",
        "provider: balances on all 4 nodes",
        "buyer-2: balances on all 4 nodes",
        "delivery receipts verified again (all buyers): 30",
    ):
        assert any(expected.strip() in line for line in checks), expected
    assert "payments/s" in summary
    assert "gas per payment" in summary
    assert "result: every check OK" in summary
    assert "payments/s" in text.split("trading:", 1)[1].splitlines()[1]  # a progress line
    assert wait_gone(pids) == []
    assert not (state_dir / "manifest.json").exists()


def test_ctrl_c_mid_run_stops_everything(
    spawn_cli: Callable[..., subprocess.Popen[str]], state_dir: Path
) -> None:
    process = spawn_cli(
        "trade", "--requests", "100000", "--port", "0", "--state-dir", str(state_dir)
    )
    seen: list[str] = []
    read_until(process, "trading: 100000 paid requests", seen)
    pids = recorded_pids(state_dir)
    read_until(process, "payments/s", seen)  # the trading is under way
    process.send_signal(signal.SIGINT)
    started = time.monotonic()
    out, err = process.communicate(timeout=20)
    assert time.monotonic() - started < 20
    assert process.returncode == 130, "".join(seen) + out + err
    assert "interrupted: stopping everything" in err
    assert "Traceback" not in err
    assert "devnet: stopped" in out
    assert wait_gone(pids) == []
    assert not (state_dir / "manifest.json").exists()
