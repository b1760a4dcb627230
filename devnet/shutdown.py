"""Stopping the devnet recorded in a state dir (``devnet down``).

Kept apart from :mod:`devnet.api` so that it imports neither web3 nor eth-account:
``devnet down`` answers at once.
"""

from __future__ import annotations

from pathlib import Path

from devnet.processes import ProcessRecord, stop_processes
from devnet.state import StateDir


def stop_devnet(state_dir: Path) -> list[ProcessRecord]:
    """Stop the processes recorded in ``state_dir`` (SIGTERM, then SIGKILL), remove the
    pid file and the manifest. Returns those that were running."""
    state = StateDir(state_dir.absolute())
    if not state.path.is_dir():
        return []
    with state.lock(wait=True):
        stopped = stop_processes(state.read_processes())
        state.clear()
    return stopped
