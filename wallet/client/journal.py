"""The wallet's durable order journal: an account never signs two orders for one sequence.

Rule 1: an order is written here, durably, before any node sees it. Rule 2: a sequence
holding an order is never given to another order, unless the journal holds the evidence
that the first can never be certified (:data:`ABANDONED`).

Layout: ``<data dir>/journal/<0xaccount>/`` (mode 0700) holds one JSON file per sequence,
``<sequence, 20 digits>.json`` (mode 0600), written atomically (a temporary file, fsync,
rename, fsync of the directory; the ``certified`` and ``confirmed`` marks skip the two
fsyncs: they only save work after a crash), and a ``LOCK`` file that one process at a time holds
(``flock``): two wallet processes sharing a journal could sign two orders for one
sequence. A file is::

    {"version": 1, "state": "signed" | "certified" | "confirmed" | "abandoned",
     "signed_order": <signed order>, "certificate": <certificate> | null, "note": "...",
     "reservation": <spend ledger reservation id> | null}

States, in order: ``signed`` (stored, maybe sent: finish it by collecting votes again;
a node returns the same vote for the same order), ``certified`` (a quorum voted; the
certificate is final, deliver it), ``confirmed`` (a quorum of nodes took the
certificate). ``abandoned``: every committee member refused the order without locking
it, or a certificate of another order was applied at its sequence; the ``note`` says
which, and the sequence may carry another order.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Final, Literal

from wallet import wire
from wallet.codec import address_hex
from wallet.errors import EncodingError, JournalError
from wallet.types import Address, Certificate, SignedOrder

State = Literal["signed", "certified", "confirmed", "abandoned"]
SIGNED: Final = "signed"
CERTIFIED: Final = "certified"
CONFIRMED: Final = "confirmed"
ABANDONED: Final = "abandoned"
_STATES: Final = (SIGNED, CERTIFIED, CONFIRMED, ABANDONED)
_VERSION = 1


@dataclass(frozen=True, slots=True)
class Entry:
    """One sequence's order and how far it got."""

    signed: SignedOrder
    state: State
    certificate: Certificate | None = None
    note: str = ""
    #: The id of the spend ledger's reservation this order settles (a payment checked by
    #: a spending policy, wallet.client.spending), kept through every state.
    reservation: int | None = None

    @property
    def sequence(self) -> int:
        return self.signed.order.sequence

    @property
    def finished(self) -> bool:
        return self.state in (CONFIRMED, ABANDONED)

    def certified(self, certificate: Certificate) -> Entry:
        return replace(self, state=CERTIFIED, certificate=certificate)

    def confirmed(self) -> Entry:
        return replace(self, state=CONFIRMED)

    def abandoned(self, note: str) -> Entry:
        return replace(self, state=ABANDONED, note=note)


def _encode(entry: Entry) -> bytes:
    certificate = entry.certificate
    return json.dumps(
        {
            "version": _VERSION,
            "state": entry.state,
            "signed_order": wire.signed_order_to_json(entry.signed),
            "certificate": None if certificate is None else wire.certificate_to_json(certificate),
            "note": entry.note,
            "reservation": entry.reservation,
        },
        indent=1,
    ).encode()


def _decode(data: bytes) -> Entry:
    value = json.loads(data)
    if not isinstance(value, dict) or value.get("version") != _VERSION:
        raise EncodingError("journal", f"expected a journal entry of version {_VERSION}")
    state = value.get("state")
    if state not in _STATES:
        raise EncodingError("state", "expected signed, certified, confirmed or abandoned")
    raw = value.get("certificate")
    note = value.get("note", "")
    reservation = value.get("reservation")
    if reservation is not None and type(reservation) is not int:
        raise EncodingError("reservation", "expected an int or null")
    return Entry(
        wire.signed_order_from_json(value.get("signed_order")),
        state,
        None if raw is None else wire.certificate_from_json(raw),
        note if isinstance(note, str) else "",
        reservation,
    )


class Journal:
    """One account's journal in ``data_dir``. :meth:`open` it (it takes the lock and reads
    every entry), :meth:`close` it. Its methods do blocking file I/O (a few fsyncs): the
    wallet calls :meth:`write` in a worker thread."""

    def __init__(self, data_dir: str | Path, account: Address) -> None:
        self.account = account
        self.directory = Path(data_dir) / "journal" / address_hex(account)
        self._entries: dict[int, Entry] = {}
        self._lock_fd: int | None = None

    def open(self) -> None:
        """Creates the directory if needed, takes the lock, reads the entries. Raises
        :class:`JournalError` if another process holds the journal or a file is corrupt."""
        try:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(self.directory / "LOCK", os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise JournalError(f"cannot open the journal in {self.directory}: {exc}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise JournalError(f"another process has the journal {self.directory} open") from None
        self._lock_fd = fd
        try:
            self._entries = self._read_all()
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the flock
            self._lock_fd = None

    def _read_all(self) -> dict[int, Entry]:
        entries: dict[int, Entry] = {}
        for path in sorted(self.directory.glob("*.json")):
            try:
                entry = _decode(path.read_bytes())
            except (OSError, ValueError) as exc:
                raise JournalError(f"journal file {path.name} is unreadable: {exc}") from None
            if entry.signed.order.owner != self.account or path.stem != f"{entry.sequence:020d}":
                raise JournalError(f"journal file {path.name} is not this account's at its name")
            entries[entry.sequence] = entry
        return entries

    # ---------------------------------------------------------------- reading

    def get(self, sequence: int) -> Entry | None:
        return self._entries.get(sequence)

    def unfinished(self) -> Entry | None:
        """The lowest entry not yet confirmed or abandoned (the wallet keeps at most one)."""
        pending = [e for e in self._entries.values() if not e.finished]
        return min(pending, key=lambda e: e.sequence) if pending else None

    def next_sequence(self) -> int:
        """One above the highest sequence holding an order (0 for an empty journal)."""
        used = [s for s, e in self._entries.items() if e.state != ABANDONED]
        return max(used) + 1 if used else 0

    def last_certificate_before(self, sequence: int) -> Certificate | None:
        """The certificate this wallet made at ``sequence - 1``, if it has it."""
        entry = self._entries.get(sequence - 1)
        return None if entry is None else entry.certificate

    def entries(self) -> list[Entry]:
        return [self._entries[s] for s in sorted(self._entries)]

    # ---------------------------------------------------------------- writing

    def write(self, entry: Entry, *, durable: bool = True) -> None:
        """Stores ``entry`` (atomic replace; with ``durable``, fsync of the file and the
        directory first). ``durable=False`` is for the marks that only save work after a
        crash (``certified``, ``confirmed``): a process crash loses nothing, and if a
        power loss undoes one, the wallet finishes the order again from ``signed`` (a node
        returns the same vote, or says the certificate is applied).

        Refuses (JournalError) an entry whose order differs from the one already at its
        sequence, unless that one is abandoned: the one rule this journal exists for."""
        if self._lock_fd is None:
            raise JournalError("the journal is not open")
        if entry.signed.order.owner != self.account:
            raise JournalError("an order of another account")
        current = self._entries.get(entry.sequence)
        if current is not None and current.state != ABANDONED and current.signed != entry.signed:
            raise JournalError(f"sequence {entry.sequence} already holds another order")
        name = f"{entry.sequence:020d}.json"
        temporary = self.directory / f".{name}.tmp"
        data = _encode(entry)
        try:
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                if durable:
                    os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(temporary, self.directory / name)
            if durable:
                directory = os.open(self.directory, os.O_RDONLY)
                try:
                    os.fsync(directory)
                finally:
                    os.close(directory)
        except OSError as exc:
            with contextlib.suppress(OSError):
                temporary.unlink()
            raise JournalError(f"cannot write the journal entry {name}: {exc}") from None
        self._entries[entry.sequence] = entry
