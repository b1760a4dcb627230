"""bench.cpu: CPU time of processes from /proc."""

from __future__ import annotations

import os
import time

import pytest

from bench.cpu import CpuMeter, cpu_seconds


def _spin(seconds: float) -> None:
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass


def test_cpu_seconds_counts_this_process_work() -> None:
    before = cpu_seconds(os.getpid())
    _spin(0.1)
    assert cpu_seconds(os.getpid()) - before >= 0.05  # clock ticks are 10 ms


def test_sleeping_costs_no_cpu_and_per_payment_divides() -> None:
    meter = CpuMeter({"me": os.getpid()})
    time.sleep(0.1)
    assert meter.spent()["me"] < 0.05
    _spin(0.2)
    per = meter.per_payment_us(100)
    assert per["me"] == pytest.approx(meter.spent()["me"] * 1e6 / 100, rel=0.2)
    assert per["me"] >= 1_000  # at least 0.1 s over 100 payments
    assert meter.per_payment_us(0) == {}


def test_a_gone_process_is_an_error() -> None:
    with pytest.raises(FileNotFoundError):
        cpu_seconds(2**22 + 12345)  # above any pid_max default
