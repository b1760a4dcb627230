"""Start the committee's ledger nodes as child processes (``python -m node run``), each
with its own key file (mode 0600, a PUBLIC devnet test key), LevelDB directory, port and
log, and wait until each answers ``/v1/health``."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from devnet.anvil import PROJECT_ROOT, log_tail
from devnet.errors import DevnetError
from devnet.files import write_private_file
from devnet.manifest import Manifest
from devnet.processes import ProcessRecord, stop_child
from devnet.state import StateDir

#: On an automining devnet a deposit's block is final at once (no reorgs without RPC).
DEVNET_CONFIRMATIONS = 1


class NodeStartError(DevnetError):
    """A ledger node did not come up."""


def node_command(manifest: Manifest, index: int, key_file: Path, data_dir: Path) -> list[str]:
    """The argv of node ``index`` of the manifest's committee."""
    member = manifest.committee.members[index]
    port = member.endpoint.rsplit(":", 1)[1]
    return [
        sys.executable, "-m", "node", "run",
        "--key-file", str(key_file),
        "--data-dir", str(data_dir),
        "--host", "127.0.0.1",
        "--port", port,
        "--rpc-url", manifest.rpc_url,
        "--vault", manifest.contracts.vault,
        "--chain-id", str(manifest.chain_id),
        "--deploy-block", str(manifest.deploy_block),
        "--confirmations", str(DEVNET_CONFIRMATIONS),
        "--poll-interval", "0.2",
    ]  # fmt: skip


def _healthy(endpoint: str) -> bool:
    try:
        with urllib.request.urlopen(f"{endpoint}/v1/health", timeout=1) as reply:  # noqa: S310
            return bool(json.loads(reply.read()).get("status") == "ok")
    except (OSError, ValueError):
        return False


def start_nodes(
    state: StateDir, manifest: Manifest, timeout: float = 30.0
) -> list[tuple[subprocess.Popen[bytes], ProcessRecord]]:
    """Start every member's node and wait until all answer; on failure, stop them all and
    raise :class:`NodeStartError` with the failing node's log tail."""
    started: list[tuple[subprocess.Popen[bytes], ProcessRecord]] = []
    try:
        for index, member in enumerate(manifest.committee.members):
            home = state.path / f"node-{index}"
            home.mkdir(mode=0o700, exist_ok=True)
            # A fresh chain every time: a store left by an earlier devnet here would take
            # the new deposits (same contract addresses, same ids) for ones it credited.
            shutil.rmtree(home / "data", ignore_errors=True)
            key_file = home / "key"
            write_private_file(key_file, member.private_key + "\n")
            log_path = state.log_path(f"node-{index}")
            with open(log_path, "wb") as log:
                process = subprocess.Popen(
                    node_command(manifest, index, key_file, home / "data"),
                    cwd=PROJECT_ROOT,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            record = ProcessRecord(f"node-{index}", process.pid, sys.executable)
            state.add_process(record)
            started.append((process, record))
        deadline = time.monotonic() + timeout
        for (process, record), member in zip(started, manifest.committee.members, strict=True):
            while not _healthy(member.endpoint):
                code = process.poll()
                log_path = state.log_path(record.name)
                if code is not None or time.monotonic() > deadline:
                    why = f"exited with code {code}" if code is not None else "did not answer"
                    raise NodeStartError(
                        f"{record.name} {why} on {member.endpoint}; last lines of {log_path}:\n"
                        f"{log_tail(log_path)}"
                    )
                time.sleep(0.05)
    except BaseException:
        for process, _ in started:
            stop_child(process)
        raise
    return started
