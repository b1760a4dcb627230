"""The replay guard on disk: so that a restarted agent still refuses a replay.

:class:`~wallet.uagents.replay.ReplayGuard` lives in memory; an envelope accepted just
before a restart, not yet expired, would be handled again after it. An agent given a
:class:`ReplayJournal` (``Agent(..., replay_journal=path)``) appends the digest of every
envelope it accepts, with the time until which it must be remembered, and syncs it to
disk **before** the envelope is handled (as a node commits its lock before its vote
leaves); on start it loads the digests that have not expired into the guard.

File: 8 bytes ``FRPLJ001``, then records of 40 bytes: the 32-byte digest and the
``until`` time as an unsigned 64-bit big-endian count of seconds (rounded up). A torn
last record (a crash mid-write) is ignored: its envelope was not handled yet. On open,
and whenever the file holds more than twice the live records plus 10,000, it is
rewritten with only the live ones (a temporary file, fsync, rename, fsync of the
directory). Mode 0600; one process at a time (``flock``), else
:class:`~wallet.errors.JournalError`. The methods do blocking file I/O (one fsync per
envelope).
"""

from __future__ import annotations

import contextlib
import fcntl
import math
import os
import struct
from pathlib import Path
from typing import Final

from wallet.errors import JournalError
from wallet.uagents.replay import Accepted, ReplayGuard

MAGIC: Final = b"FRPLJ001"
RECORD: Final = struct.Struct(">32sQ")
#: Records beyond twice the live ones that trigger a rewrite.
SLACK: Final = 10_000


class ReplayJournal:
    """Accepted envelope digests on disk (see the module docstring)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._fd: int | None = None
        self._records = 0

    def __repr__(self) -> str:
        return f"ReplayJournal({str(self.path)!r})"

    def open(self, guard: ReplayGuard, now: float) -> int:
        """Locks the file, loads its live digests into ``guard`` and rewrites it with only
        those; how many were loaded."""
        if self._fd is not None:
            raise JournalError(f"{self.path}: the replay journal is open already")
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise JournalError(f"{self.path}: cannot open the replay journal: {exc}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise JournalError(f"{self.path}: another process has this replay journal") from None
        self._fd = fd
        try:
            loaded = sum(guard.remember(record, now) for record in self._read())
            self._rewrite(guard, now)
        except BaseException:
            self.close()
            raise
        return loaded

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # releases the flock
            self._fd = None

    def append(self, accepted: Accepted, guard: ReplayGuard, now: float) -> None:
        """Writes ``accepted`` durably (fsync) before its envelope may be handled; rewrites
        the file from ``guard`` when it has grown too large."""
        fd = self._require_open()
        record = RECORD.pack(accepted.digest, math.ceil(accepted.until))
        try:
            os.lseek(fd, 0, os.SEEK_END)
            os.write(fd, record)
            os.fsync(fd)
        except OSError as exc:
            raise JournalError(f"{self.path}: cannot write the replay journal: {exc}") from None
        self._records += 1
        if self._records > 2 * len(guard) + SLACK:
            self._rewrite(guard, now)

    def _require_open(self) -> int:
        if self._fd is None:
            raise JournalError(f"{self.path}: open the replay journal first")
        return self._fd

    def _read(self) -> list[Accepted]:
        fd = self._require_open()
        try:
            size = os.fstat(fd).st_size
            data = os.pread(fd, size, 0)
        except OSError as exc:
            raise JournalError(f"{self.path}: cannot read the replay journal: {exc}") from None
        if not data:
            return []
        if data[: len(MAGIC)] != MAGIC:
            raise JournalError(f"{self.path}: not a replay journal (no {MAGIC.decode()} header)")
        body = data[len(MAGIC) :]
        whole = len(body) - len(body) % RECORD.size  # a torn last record is ignored
        return [
            Accepted(digest, float(until)) for digest, until in RECORD.iter_unpack(body[:whole])
        ]

    def _rewrite(self, guard: ReplayGuard, now: float) -> None:
        """Replaces the file with the guard's live digests (atomically), keeping the lock
        on the new file."""
        live = list(guard.remembered(now))
        temporary = self.path.with_name(self.path.name + ".tmp")
        data = MAGIC + b"".join(RECORD.pack(a.digest, math.ceil(a.until)) for a in live)
        try:
            fd = os.open(temporary, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                os.write(fd, data)
                os.fsync(fd)
                os.replace(temporary, self.path)
                directory = os.open(self.path.parent, os.O_RDONLY)
                try:
                    os.fsync(directory)
                finally:
                    os.close(directory)
            except BaseException:
                os.close(fd)
                with contextlib.suppress(OSError):
                    temporary.unlink()
                raise
        except OSError as exc:
            raise JournalError(f"{self.path}: cannot rewrite the replay journal: {exc}") from None
        self.close()
        self._fd = fd
        self._records = len(live)


__all__ = ["ReplayJournal"]
