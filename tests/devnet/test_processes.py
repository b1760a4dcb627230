from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest

from devnet.processes import ProcessRecord, is_alive, is_running, stop_child, stop_processes


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen(["sleep", "30"], start_new_session=True)
    yield process
    process.kill()
    process.wait()


def test_stop_processes_terminates_and_reaps(sleeper: subprocess.Popen[bytes]) -> None:
    record = ProcessRecord("sleeper", sleeper.pid, "/bin/sleep")
    assert is_running(record)
    assert stop_processes([record]) == [record]
    assert not is_alive(sleeper.pid)
    assert stop_processes([record]) == []  # already gone: nothing to do


def test_a_process_ignoring_sigterm_gets_sigkill() -> None:
    code = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "print(1, flush=True); time.sleep(30)"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, start_new_session=True
    )
    try:
        assert process.stdout is not None
        process.stdout.readline()  # the handler is installed
        record = ProcessRecord("stubborn", process.pid, sys.executable)
        assert stop_processes([record], timeout=0.2) == [record]
        assert not is_alive(process.pid)
    finally:
        process.kill()
        process.wait()
        if process.stdout is not None:
            process.stdout.close()


def test_a_reused_pid_is_left_alone(sleeper: subprocess.Popen[bytes]) -> None:
    stranger = ProcessRecord("anvil", sleeper.pid, "/somewhere/anvil")
    assert is_alive(sleeper.pid)
    assert not is_running(stranger)
    assert stop_processes([stranger]) == []
    assert sleeper.poll() is None


def test_a_dead_pid_is_not_running() -> None:
    process = subprocess.Popen(["true"])
    process.wait()
    assert not is_running(ProcessRecord("gone", process.pid, "true"))


def test_stop_child(sleeper: subprocess.Popen[bytes]) -> None:
    stop_child(sleeper, timeout=5)
    assert sleeper.returncode is not None
    stop_child(sleeper)  # idempotent
