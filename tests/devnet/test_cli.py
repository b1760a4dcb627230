"""The command line without a chain: argument errors and the not-running answers."""

from __future__ import annotations

from pathlib import Path

import pytest

import devnet.api
from devnet.cli import main
from devnet.state import ENV_STATE_DIR


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "required: COMMAND"),
        (["bogus"], "invalid choice: 'bogus'"),
        (["up", "--nodes", "0"], "argument --nodes: must be >= 1, got 0"),
        (["up", "--nodes", "four"], "argument --nodes: expected an integer, got 'four'"),
        (["up", "--agents", "-1"], "argument --agents: must be >= 0, got -1"),
        (["up", "--port", "65536"], "argument --port: must be <= 65535, got 65536"),
        (["up", "--colour"], "unrecognized arguments: --colour"),
        (["status", "--nodes", "3"], "unrecognized arguments: --nodes"),
    ],
)
def test_usage_errors_exit_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err


def test_help_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "up" in out
    assert "status" in out
    assert "down" in out


def test_up_help_lists_the_options(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["up", "--help"]) == 0
    out = capsys.readouterr().out
    for option in ["--nodes", "--agents", "--host", "--port", "--state-dir", "--foreground"]:
        assert option in out


def test_status_with_no_devnet(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status", "--state-dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err == f"devnet: no devnet in {tmp_path}: run `devnet up`\n"


def test_down_with_nothing_running(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["down", "--state-dir", str(tmp_path / "never-made")]) == 0
    assert "nothing running" in capsys.readouterr().out


def test_state_dir_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(ENV_STATE_DIR, str(tmp_path / "from-env"))
    assert main(["down"]) == 0
    assert str(tmp_path / "from-env") in capsys.readouterr().out


def test_status_with_a_bad_manifest(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "manifest.json").write_text("{oops")
    assert main(["status", "--state-dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"devnet: bad manifest {tmp_path / 'manifest.json'}: not JSON")


def test_status_with_a_bad_pid_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "pids.json").write_text("[]")
    assert main(["down", "--state-dir", str(tmp_path)]) == 1
    assert "bad pid file" in capsys.readouterr().err


def test_up_without_node_modules_says_what_to_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(devnet.api, "PROJECT_ROOT", tmp_path / "checkout")
    state = tmp_path / "state"
    assert main(["up", "--state-dir", str(state), "--port", "0"]) == 1
    assert capsys.readouterr().err == "devnet: node_modules is missing: run ./scripts/setup.sh\n"
    assert not (state / "pids.json").exists()
    assert not (state / "anvil.log").exists()
