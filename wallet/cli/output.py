"""What the command line prints: aligned tables or one JSON document on stdout, progress
on stderr (only on a terminal, never with ``--json``)."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager, suppress
from typing import Any, TextIO

_SPINNER = "|/-\\"


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """``rows`` under ``headers``, columns left-aligned and padded to their widest cell
    (numbers are right-aligned); no trailing spaces."""
    cells = [[str(h) for h in headers], *([str(c) for c in row] for row in rows)]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    numeric = [bool(rows) and all(_is_number(row[i]) for row in rows) for i in range(len(headers))]

    def line(row: Sequence[str]) -> str:
        parts = [
            cell.rjust(width) if right else cell.ljust(width)
            for cell, width, right in zip(row, widths, numeric, strict=True)
        ]
        return "  ".join(parts).rstrip()

    rule = "  ".join("-" * width for width in widths)
    body = [line(row) for row in cells[1:]] or ["(none)"]
    return "\n".join([line(cells[0]), rule, *body])


def _is_number(value: object) -> bool:
    text = str(value)
    return bool(text) and text.replace(".", "", 1).isdigit()


def pairs(items: Sequence[tuple[str, object]]) -> str:
    """``name  value`` lines, names padded to the longest."""
    width = max((len(name) for name, _ in items), default=0)
    return "\n".join(f"{name.ljust(width)}  {value}".rstrip() for name, value in items)


class Output:
    """Where a command's result goes. ``json_mode``: exactly one JSON document on stdout
    and no progress; otherwise text for people."""

    def __init__(
        self, *, json_mode: bool, stdout: TextIO | None = None, stderr: TextIO | None = None
    ) -> None:
        self.json_mode = json_mode
        self._stdout = stdout
        self._stderr = stderr

    @property
    def stdout(self) -> TextIO:
        return self._stdout or sys.stdout

    @property
    def stderr(self) -> TextIO:
        return self._stderr or sys.stderr

    def result(self, document: Any, text: str) -> None:
        """Print ``document`` as JSON (``--json``) or ``text``."""
        if self.json_mode:
            print(json.dumps(document, indent=2, sort_keys=False), file=self.stdout)
        else:
            print(text, file=self.stdout)

    def note(self, text: str) -> None:
        """A remark for a person (stderr; silent with ``--json``)."""
        if not self.json_mode:
            print(text, file=self.stderr)

    @property
    def shows_progress(self) -> bool:
        stream = self.stderr
        return not self.json_mode and hasattr(stream, "isatty") and stream.isatty()

    @asynccontextmanager
    async def progress(self, what: str) -> AsyncIterator[None]:
        """A spinner with ``what`` and the seconds elapsed on stderr while the body runs
        (only on a terminal, never with ``--json``); the line is erased afterwards."""
        if not self.shows_progress:
            yield
            return
        stream = self.stderr
        started = time.monotonic()

        async def spin() -> None:
            turn = 0
            while True:
                elapsed = time.monotonic() - started
                stream.write(f"\r{_SPINNER[turn % 4]} {what} ({elapsed:.0f} s)")
                stream.flush()
                turn += 1
                await asyncio.sleep(0.1)

        task = asyncio.ensure_future(spin())
        try:
            yield
        finally:
            task.cancel()
            with suppress(asyncio.CancelledError):
                await task
            stream.write("\r\033[K")
            stream.flush()
