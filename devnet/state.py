"""The state directory of one devnet and the files in it.

Layout (directory mode 0700, files 0600)::

    manifest.json   what `up` deployed (see devnet.manifest); written last
    pids.json       every process `up` started, written as each one starts
    anvil.log       anvil's output (later: one log per node)
    .lock           held while `up` starts or `down` stops, so they never interleave

``pids.json`` is ``{"version": 1, "processes": [{"name", "pid", "executable"}]}``; it is
what `down` stops, so a devnet whose `up` died half-way can still be brought down.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devnet.errors import AlreadyRunningError, ManifestError
from devnet.files import write_private_file
from devnet.processes import ProcessRecord

ENV_STATE_DIR = "FARTHING_DEVNET_DIR"
DEFAULT_STATE_DIR = ".devnet"
PIDS_VERSION = 1


def resolve_state_dir(
    explicit: str | Path | None = None, environ: Mapping[str, str] | None = None
) -> Path:
    """``explicit`` if given, else ``$FARTHING_DEVNET_DIR``, else ``./.devnet``."""
    env = os.environ if environ is None else environ
    chosen = explicit if explicit is not None else env.get(ENV_STATE_DIR) or DEFAULT_STATE_DIR
    return Path(chosen).expanduser().absolute()


@dataclass(frozen=True, slots=True)
class StateDir:
    """The files of the devnet kept in ``path``."""

    path: Path

    @property
    def manifest_path(self) -> Path:
        return self.path / "manifest.json"

    @property
    def pids_path(self) -> Path:
        return self.path / "pids.json"

    def log_path(self, name: str) -> Path:
        """The log file of the process called ``name``."""
        return self.path / f"{name}.log"

    def create(self) -> None:
        """Create the directory (mode 0700: it holds test keys) if it is missing."""
        self.path.mkdir(mode=0o700, parents=True, exist_ok=True)

    def read_processes(self) -> tuple[ProcessRecord, ...]:
        """The recorded processes; none if there is no pid file."""
        try:
            text = self.pids_path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return ()
        return _parse_pids(text, self.pids_path)

    def write_processes(self, records: Sequence[ProcessRecord]) -> None:
        doc = {
            "version": PIDS_VERSION,
            "processes": [
                {"name": r.name, "pid": r.pid, "executable": r.executable} for r in records
            ],
        }
        write_private_file(self.pids_path, json.dumps(doc, indent=2) + "\n")

    def add_process(self, record: ProcessRecord) -> None:
        """Append ``record`` to the pid file."""
        self.write_processes([*self.read_processes(), record])

    def clear(self) -> None:
        """Remove the pid file and the manifest (logs stay for a post-mortem)."""
        self.pids_path.unlink(missing_ok=True)
        self.manifest_path.unlink(missing_ok=True)

    @contextlib.contextmanager
    def lock(self, *, wait: bool) -> Iterator[None]:
        """Hold the directory's lock; if ``wait`` is false and another command holds
        it, raise :class:`AlreadyRunningError` instead of waiting."""
        self.create()
        fd = os.open(self.path / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise AlreadyRunningError(
                    f"another devnet command is using {self.path}: wait for it to finish"
                ) from None
            yield
        finally:
            os.close(fd)  # closing releases the lock


def _parse_pids(text: str, path: Path) -> tuple[ProcessRecord, ...]:
    def bad(why: str) -> ManifestError:
        return ManifestError(f"bad pid file {path}: {why}; remove it if no devnet runs")

    try:
        doc: Any = json.loads(text)
    except ValueError as exc:
        raise bad(f"not JSON ({exc})") from None
    if not isinstance(doc, dict) or doc.get("version") != PIDS_VERSION:
        raise bad(f"expected an object with version {PIDS_VERSION}")
    entries = doc.get("processes")
    if not isinstance(entries, list):
        raise bad("processes: expected a list")
    records = []
    for i, entry in enumerate(entries):
        if not (
            isinstance(entry, dict)
            and isinstance(entry.get("name"), str)
            and type(entry.get("pid")) is int
            and entry["pid"] > 0
            and isinstance(entry.get("executable"), str)
        ):
            raise bad(f"processes[{i}]: expected name, pid > 0 and executable")
        records.append(ProcessRecord(entry["name"], entry["pid"], entry["executable"]))
    return tuple(records)
