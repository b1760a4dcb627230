"""The benchmark's results: the JSON keys, the targets, the markdown table.

Targets are measured, not asserted: a miss is a row of the table, never an error.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: Every top-level key of ``latest.json`` that must hold a number.
NUMBER_KEYS: tuple[str, ...] = (
    "farthing_payments_per_s",
    "erc20_transfers_per_s",
    "eip3009_payments_per_s",
    "crypto_bound_payments_per_s",
    "ratio_vs_erc20",
    "ratio_vs_crypto_bound",
    "p50_ms",
    "p99_ms",
    "settlement_gas_per_payment",
    "erc20_gas_per_transfer",
    "disk_bytes_per_payment",
    "node_rss_mb_max",
    "restart_s_1m_entries",
)


@dataclass(frozen=True, slots=True)
class Target:
    key: str
    label: str
    text: str
    met: Callable[[Mapping[str, Any]], bool]


TARGETS: tuple[Target, ...] = (
    Target(
        "farthing_payments_per_s",
        "Farthing payments/s (batched, saturation)",
        "≥ 1,000",
        lambda r: r["farthing_payments_per_s"] >= 1000,
    ),
    Target(
        "ratio_vs_erc20", "Farthing / ERC-20 transfers", "≥ 5×", lambda r: r["ratio_vs_erc20"] >= 5
    ),
    Target(
        "ratio_vs_crypto_bound",
        "Farthing / crypto bound",
        "≥ 0.5",
        lambda r: r["ratio_vs_crypto_bound"] >= 0.5,
    ),
    Target("p50_ms", "latency p50 at 250/s offered", "≤ 10 ms", lambda r: r["p50_ms"] <= 10),
    Target("p99_ms", "latency p99 at 250/s offered", "≤ 50 ms", lambda r: r["p99_ms"] <= 50),
    Target(
        "settlement_gas_per_payment",
        "settlement gas per payment",
        "≤ 1% of an ERC-20 transfer",
        lambda r: r["settlement_gas_per_payment"] <= 0.01 * r["erc20_gas_per_transfer"],
    ),
    Target(
        "disk_bytes_per_payment",
        "bytes on a node's disk per payment",
        "≤ 1,024",
        lambda r: r["disk_bytes_per_payment"] <= 1024,
    ),
    Target(
        "restart_s_1m_entries",
        "restart to serving, 10^6 log entries",
        "≤ 5 s",
        lambda r: r["restart_s_1m_entries"] <= 5,
    ),
)

#: Figures without a target, shown after the targets.
INFORMATION: tuple[tuple[str, str], ...] = (
    ("erc20_transfers_per_s", "ERC-20 transfers/s on anvil"),
    ("eip3009_payments_per_s", "EIP-3009 payments/s on anvil (one relayer)"),
    ("crypto_bound_payments_per_s", "crypto bound, payments/s"),
    ("latency_achieved_per_s", "latency run: achieved payments/s"),
    ("p99_from_schedule_ms", "latency p99 from the scheduled send (queueing included)"),
    ("erc20_gas_per_transfer", "gas per ERC-20 transfer"),
    ("eip3009_gas_per_payment", "gas per EIP-3009 payment"),
    ("node_rss_mb_max", "largest node RSS after the run, MiB"),
    ("node_cpu_us_per_payment", "CPU µs per batched payment, 4 nodes together"),
    ("client_cpu_us_per_payment", "CPU µs per batched payment, the client (signing included)"),
    ("single_node_cpu_us_per_payment", "CPU µs per single payment, 4 nodes together"),
    ("single_client_cpu_us_per_payment", "CPU µs per single payment, the wallets' process"),
    ("node_idle_cpu_ms_per_s", "CPU ms per second of an idle node (background work)"),
)


def missing_or_bad(results: Mapping[str, Any]) -> list[str]:
    """The required keys that are absent or not finite numbers."""
    bad = []
    for key in NUMBER_KEYS:
        value = results.get(key)
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            bad.append(key)
    return bad


def verdicts(results: Mapping[str, Any]) -> dict[str, bool]:
    """Target key → whether it was met."""
    return {t.key: t.met(results) for t in TARGETS}


def _number(value: float) -> str:
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def markdown(results: Mapping[str, Any]) -> str:
    """The table of figures, targets and pass/miss, then the notes and the machine."""
    met = verdicts(results)
    lines = ["| figure | key | measured | target | result |", "|---|---|---|---|---|"]
    for t in TARGETS:
        lines.append(
            f"| {t.label} | `{t.key}` | {_number(results[t.key])} | {t.text} | "
            f"{'pass' if met[t.key] else 'miss'} |"
        )
    for key, label in INFORMATION:
        if key in results:
            lines.append(f"| {label} | `{key}` | {_number(results[key])} | | |")
    machine = results.get("machine", {})
    lines += [
        "",
        f"Profile `{results.get('profile', '?')}`; machine: {machine.get('cores')} cores "
        f"({machine.get('cpu_model')}), Python {machine.get('python')}, "
        f"{machine.get('date')}, commit {machine.get('git_commit') or 'unknown'}, "
        f"load average {machine.get('load_average_1m_at_start', '?')} at the start.",
        "",
        "Notes:",
        "",
    ]
    lines += [f"- {note}" for note in results.get("notes", [])]
    return "\n".join(lines) + "\n"


def write(results: Mapping[str, Any], out: Path) -> tuple[Path, Path]:
    """``latest.json`` and ``latest.md`` in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out / "latest.json", out / "latest.md"
    json_path.write_text(json.dumps(results, indent=2, sort_keys=False) + "\n")
    md_path.write_text(markdown(results))
    return json_path, md_path
