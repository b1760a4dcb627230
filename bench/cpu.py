"""CPU time of processes over a stretch of a benchmark, from ``/proc/<pid>/stat``.

Throughput on a shared two-core machine moves by a third from run to run; the CPU time a
payment costs each process moves much less, so it is what optimisations are judged by
(docs/performance.md). :class:`CpuMeter` reads each process's user + system time when
started and when read; :meth:`CpuMeter.per_payment_us` divides by the payments made.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far (its threads included)."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        stat = f.read()
    # The command name (field 2) may hold spaces; the fields after it are plain numbers.
    fields = stat[stat.rindex(b")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS  # utime, stime (fields 14, 15)


class CpuMeter:
    """CPU seconds each named process spent since the meter was made."""

    def __init__(self, pids: Mapping[str, int]) -> None:
        self.pids = dict(pids)
        self.start = {name: cpu_seconds(pid) for name, pid in self.pids.items()}

    def spent(self) -> dict[str, float]:
        return {name: cpu_seconds(pid) - self.start[name] for name, pid in self.pids.items()}

    def per_payment_us(self, payments: int) -> dict[str, float]:
        """Microseconds of CPU per payment, per process (empty when none was made)."""
        if payments <= 0:
            return {}
        return {name: s * 1e6 / payments for name, s in self.spent().items()}
