"""`devnet trade`'s command line, without a devnet: its options, and a devnet already
running in the state dir left alone with a clear message."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from devnet.cli import build_parser, main
from devnet.processes import ProcessRecord
from devnet.state import StateDir


def test_the_options_and_their_defaults() -> None:
    args = build_parser().parse_args(["trade"])
    assert (args.requests, args.buyers, args.seed, args.keep, args.port) == (
        1000, 2, 1, False, 8545,
    )  # fmt: skip
    args = build_parser().parse_args(
        ["trade", "--requests", "30", "--buyers", "3", "--seed", "7", "--keep", "--port", "0"]
    )
    assert (args.requests, args.buyers, args.seed, args.keep, args.port) == (30, 3, 7, True, 0)


@pytest.mark.parametrize("bad", [["--requests", "0"], ["--buyers", "0"], ["--port", "-1"]])
def test_bad_options_are_usage_errors(bad: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["trade", *bad]) == 2
    assert "must be >=" in capsys.readouterr().err


def test_a_running_devnet_is_left_alone(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    state = StateDir(tmp_path)
    state.create()
    (tmp_path / "node-0" / "data").mkdir(parents=True)
    stand_in = subprocess.Popen(["sleep", "60"])  # stands for the running anvil
    try:
        state.write_processes([ProcessRecord("anvil", stand_in.pid, "/bin/sleep")])
        assert main(["trade", "--state-dir", str(tmp_path), "--port", "0"]) == 1
        err = capsys.readouterr().err
        assert f"a devnet is already running in {tmp_path}" in err
        assert f"devnet down --state-dir {tmp_path}" in err
        assert stand_in.poll() is None  # not stopped
        assert (tmp_path / "node-0" / "data").is_dir()  # its nodes' stores are kept
        assert [r.pid for r in state.read_processes()] == [stand_in.pid]
    finally:
        stand_in.kill()
        stand_in.wait()
