"""The devnet's child processes: what is recorded of each, whether it runs, stopping it.

Every process the devnet starts gets its own session (so its pid is its process group
id) and a :class:`ProcessRecord` in the state dir's pid file. Stopping sends SIGTERM to
the group, waits, then SIGKILL. Before signalling a pid, its executable is compared with
the recorded one, so a pid the OS has reused for another program is never touched.
POSIX only.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from devnet.errors import StopError

_PROC = Path("/proc")


@dataclass(frozen=True, slots=True)
class ProcessRecord:
    """A process started by the devnet: a role name, its pid and its executable."""

    name: str
    pid: int
    executable: str


def _reap(pid: int) -> None:
    """Collect ``pid``'s exit status if it is our exited child (else a zombie lingers)."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def _is_zombie(pid: int) -> bool:
    try:
        stat = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[:1] == ["Z"]


def is_alive(pid: int) -> bool:
    """Whether ``pid`` is a running process (exited children are reaped first)."""
    _reap(pid)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not _is_zombie(pid)


def _command_line(pid: int) -> list[str] | None:
    """``pid``'s command line; None if it cannot be read."""
    if _PROC.is_dir():
        try:
            raw = (_PROC / str(pid) / "cmdline").read_bytes()
        except OSError:
            return None
        return [arg.decode(errors="replace") for arg in raw.split(b"\0") if arg]
    try:
        out = subprocess.run(
            ["ps", "-o", "command=", "-p", str(pid)],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.split() or None


def is_running(record: ProcessRecord) -> bool:
    """Whether ``record``'s pid is alive and still runs the recorded executable (as
    the program, or as the script an interpreter runs)."""
    if not is_alive(record.pid):
        return False
    args = _command_line(record.pid)
    if args is None:
        return True  # alive, and nothing says it is another program
    name = Path(record.executable).name
    return any(Path(arg).name == name for arg in args[:2])


def _signal(pid: int, signum: signal.Signals) -> None:
    try:
        if os.getpgid(pid) == pid:
            os.killpg(pid, signum)  # the process and anything it started
        else:
            os.kill(pid, signum)
    except ProcessLookupError:
        pass


def _wait_gone(records: Iterable[ProcessRecord], timeout: float) -> list[ProcessRecord]:
    deadline = time.monotonic() + timeout
    left = list(records)
    while left:
        left = [r for r in left if is_alive(r.pid)]
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    return left


def stop_processes(records: Sequence[ProcessRecord], timeout: float = 5.0) -> list[ProcessRecord]:
    """Stop the recorded processes that still run: SIGTERM, up to ``timeout`` seconds,
    then SIGKILL. Returns those that were running; :class:`StopError` if any survive."""
    running = [r for r in records if is_running(r)]
    for record in running:
        _signal(record.pid, signal.SIGTERM)
    left = _wait_gone(running, timeout)
    for record in left:
        _signal(record.pid, signal.SIGKILL)
    left = _wait_gone(left, 2.0)
    if left:
        names = ", ".join(f"{r.name} (pid {r.pid})" for r in left)
        raise StopError(f"still running after SIGKILL: {names}")
    return running


def stop_child(process: subprocess.Popen[bytes], timeout: float = 5.0) -> None:
    """Stop a child this process started (with its process group), SIGTERM then
    SIGKILL, and collect its exit status. No identity check: it is ours."""
    if process.poll() is None:
        _signal(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            _signal(process.pid, signal.SIGKILL)
    process.wait()
