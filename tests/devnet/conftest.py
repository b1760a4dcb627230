"""Fixtures of the devnet tests: running the CLI in a subprocess, fake anvil binaries."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from devnet.anvil import PROJECT_ROOT
from devnet.shutdown import stop_devnet
from devnet.state import ENV_STATE_DIR


def _cli_env() -> dict[str, str]:
    # This checkout first on the path, and no state dir from the developer's shell.
    env = {k: v for k, v in os.environ.items() if k != ENV_STATE_DIR}
    env["PYTHONPATH"] = str(PROJECT_ROOT)
    return env


@pytest.fixture
def run_cli() -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run ``python -m devnet <args>`` and return the finished process (never raises)."""

    def run(*args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "devnet", *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=_cli_env(),
            cwd=PROJECT_ROOT,
            check=False,
        )

    return run


@pytest.fixture
def spawn_cli() -> Iterator[Callable[..., subprocess.Popen[str]]]:
    """Start ``python -m devnet <args>`` with piped output; killed at teardown if alive."""
    started: list[subprocess.Popen[str]] = []

    def spawn(*args: str) -> subprocess.Popen[str]:
        process = subprocess.Popen(
            [sys.executable, "-m", "devnet", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=_cli_env(),
            cwd=PROJECT_ROOT,
            preexec_fn=_default_sigint,
        )
        started.append(process)
        return process

    yield spawn
    for process in started:
        if process.poll() is None:
            process.kill()
        process.communicate()


def _default_sigint() -> None:
    """Ctrl-C as a terminal sends it: the tests send SIGINT to the CLI, which must not
    inherit an ignored SIGINT (a shell starting the tests with ``&`` ignores it in every
    child; the CLI then never sees the signal)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.fixture
def fake_anvil(tmp_path: Path) -> Callable[[str], Path]:
    """Write an executable shell script standing in for anvil; returns its path."""

    def make(body: str) -> Path:
        path = tmp_path / "fake-anvil"
        path.write_text(f"#!/bin/sh\n{body}\n")
        path.chmod(0o755)
        return path

    return make


@pytest.fixture
def state_dir(tmp_path: Path) -> Iterator[Path]:
    """A state dir for a devnet that a child process brings up; whatever is still
    recorded in it at teardown is stopped, so a failing test leaks no anvil."""
    path = tmp_path / "state"
    yield path
    stop_devnet(path)
