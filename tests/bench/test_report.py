"""bench.report and bench.runner.compose: the JSON keys, the targets, the table."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bench import crypto_bound, report
from bench.farthing import Latency, Throughput
from bench.restart import RestartResult
from bench.rpc import ChainRun
from bench.runner import PROFILES, compose
from bench.settlement import Settlement


def parts() -> dict[str, Any]:
    return {
        "throughput": Throughput(1000, 2.0, 100, 10, 2, 180.0),
        "latency": Latency(250.0, 1000, 998, 2, 240.0, 8.0, 40.0, 9.0, 60.0, 70.0),
        "settlement": Settlement(1000, 10**6, 101_000, 51_000),
        "erc20": ChainRun(1000, 1000, 4.0, (34_000,) * 1000),
        "eip3009": ChainRun(1000, 1000, 5.0, (65_000,) * 1000),
        "rss": {"node-0": 80.0, "node-1": 90.5},
        "disk_bytes_per_payment": 900.0,
        "disk_bytes_per_payment_uncompacted": 1400.0,
        "disk_entries": 1998,
        "throughput_cpu_us": {"node-0": 800.0, "node-1": 900.0, "client": 300.0},
        "latency_cpu_us": {"node-0": 2000.0, "node-1": 2100.0, "client": 4000.0},
        "idle_cpu_ms_per_s": {"node-0": 15.0, "node-1": 16.5},
    }


def composed(entries: int = 1_000_000) -> dict[str, Any]:
    restart = RestartResult(entries, 500_000_000, 0.1, 1.6, 72.0)
    count = crypto_bound.count_operations()
    times = crypto_bound.CryptoTimes(50.0, 100.0)
    bound = crypto_bound.bound_per_s(count, 50e-6, 100e-6, 2)
    return compose(PROFILES["quick"], parts(), restart, count, times, bound, 2)


def test_compose_gives_every_key_as_a_number() -> None:
    results = composed()
    assert report.missing_or_bad(results) == []
    assert results["farthing_payments_per_s"] == 500
    assert results["erc20_transfers_per_s"] == 250
    assert results["ratio_vs_erc20"] == 2
    assert results["settlement_gas_per_payment"] == pytest.approx(152)
    assert results["erc20_gas_per_transfer"] == 34_000
    assert results["node_rss_mb_max"] == 90.5
    assert results["disk_bytes_per_payment"] == 900
    assert results["disk_bytes_per_payment_uncompacted"] == 1400
    assert results["ratio_vs_crypto_bound"] == pytest.approx(
        500 / results["crypto_bound_payments_per_s"]
    )
    assert results["counts"]["crypto_recoveries_per_payment"] == 16
    assert results["node_cpu_us_per_payment"] == 1700  # the nodes summed, the client apart
    assert results["client_cpu_us_per_payment"] == 300
    assert results["single_node_cpu_us_per_payment"] == 4100
    assert results["single_client_cpu_us_per_payment"] == 4000
    assert results["node_idle_cpu_ms_per_s"] == 16.5  # the busiest node
    json.dumps(results)  # serialisable as is


def test_a_smaller_restart_store_is_named_in_the_notes() -> None:
    assert not any("MEASURED WITH" in n for n in composed()["notes"])
    assert any("MEASURED WITH 10,000 ENTRIES" in n for n in composed(10_000)["notes"])


def test_missing_or_bad_names_absent_and_non_numbers() -> None:
    results = composed()
    del results["p50_ms"]
    results["p99_ms"] = "12"
    results["disk_bytes_per_payment"] = float("nan")
    results["node_rss_mb_max"] = True
    assert report.missing_or_bad(results) == [
        "p50_ms",
        "p99_ms",
        "disk_bytes_per_payment",
        "node_rss_mb_max",
    ]


def test_verdicts_at_the_thresholds() -> None:
    results = composed()
    results.update(
        farthing_payments_per_s=1000,
        ratio_vs_erc20=5,
        ratio_vs_crypto_bound=0.5,
        p50_ms=10,
        p99_ms=50,
        settlement_gas_per_payment=340,
        erc20_gas_per_transfer=34_000,
        disk_bytes_per_payment=1024,
        restart_s_1m_entries=5,
    )
    assert all(report.verdicts(results).values())
    results.update(p99_ms=50.1, settlement_gas_per_payment=341)
    missed = {k for k, ok in report.verdicts(results).items() if not ok}
    assert missed == {"p99_ms", "settlement_gas_per_payment"}


def test_markdown_has_a_row_per_target_with_pass_or_miss() -> None:
    table = report.markdown(composed())
    for target in report.TARGETS:
        row = next(line for line in table.splitlines() if f"`{target.key}`" in line)
        assert row.endswith(("| pass |", "| miss |"))
    assert (
        "| Farthing payments/s (batched, saturation) | `farthing_payments_per_s` | 500 |" in table
    )
    assert "Profile `quick`" in table


def test_write_puts_json_and_markdown_in_the_directory(tmp_path: Path) -> None:
    json_path, md_path = report.write(composed(), tmp_path / "out")
    assert json.loads(json_path.read_text())["p50_ms"] == 8.0
    assert md_path.read_text().startswith("| figure |")
