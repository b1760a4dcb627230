"""The live status: a line per second (redrawn in place on a terminal) with the requests
done per buyer, what each spent, the provider's earnings and the payments per second."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TextIO

from devnet.trading.buyer import BuyerStats
from devnet.trading.checks import show


def status_line(
    elapsed: float,
    buyers: Sequence[BuyerStats],
    earned: Mapping[str, int],
    rate: float,
) -> str:
    """One progress line (pure)."""
    parts = [f"{b.name} {b.requests}/{b.target} spent {show(b.paid, b.symbol)}" for b in buyers]
    earnings = " + ".join(show(v, s) for s, v in sorted(earned.items())) or "nothing"
    return (
        f"[{elapsed:5.1f} s] " + " | ".join(parts) + f" | provider earned {earnings}"
        f" | {rate:.0f} payments/s"
    )


class Progress:
    """Prints :func:`status_line` every ``interval`` seconds until stopped; ``earned`` is
    read from the provider's side (its balance on the nodes, minus the start)."""

    def __init__(
        self,
        buyers: Sequence[BuyerStats],
        earned: Callable[[], Awaitable[Mapping[str, int]]],
        out: TextIO,
        *,
        interval: float = 1.0,
        redraw: bool | None = None,
    ) -> None:
        self._buyers = buyers
        self._earned = earned
        self._out = out
        self._interval = interval
        self._redraw = out.isatty() if redraw is None else redraw
        self._task: asyncio.Task[None] | None = None
        self._started = time.monotonic()
        self._last: Mapping[str, int] = {}

    def done(self) -> int:
        return sum(b.requests for b in self._buyers)

    def start(self) -> None:
        self._started = time.monotonic()
        self._task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        previous, then = self.done(), time.monotonic()
        while True:
            await asyncio.sleep(self._interval)
            now, done = time.monotonic(), self.done()
            rate = (done - previous) / max(now - then, 1e-9)
            previous, then = done, now
            with contextlib.suppress(Exception):  # a slow node read: keep the last figure
                self._last = await asyncio.wait_for(self._earned(), self._interval)
            self._print(status_line(now - self._started, self._buyers, self._last, rate))

    def _print(self, line: str) -> None:
        if self._redraw:
            self._out.write("\r\x1b[2K" + line)
        else:
            self._out.write(line + "\n")
        self._out.flush()

    async def stop(self, earned: Mapping[str, int], elapsed: float) -> None:
        """Stops the updates and prints the final line (the average rate)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        rate = self.done() / max(elapsed, 1e-9)
        self._print(status_line(elapsed, self._buyers, earned, rate))
        if self._redraw:
            self._out.write("\n")
            self._out.flush()
