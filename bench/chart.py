"""The chart of ``latest.png``: payments per second side by side (Farthing, ERC-20,
EIP-3009, the crypto bound), drawn with matplotlib's Agg backend (no display)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

BARS: tuple[tuple[str, str], ...] = (
    ("farthing_payments_per_s", "Farthing\n(4 nodes, batched)"),
    ("erc20_transfers_per_s", "ERC-20\ntransfer"),
    ("eip3009_payments_per_s", "EIP-3009\n(relayed)"),
    ("crypto_bound_payments_per_s", "crypto bound\n(all cores)"),
)


def draw(results: Mapping[str, Any], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    values = [float(results[key]) for key, _ in BARS]
    figure, axes = plt.subplots(figsize=(8, 4.5), dpi=100)
    bars = axes.bar([label for _, label in BARS], values, color=["#2b7", "#888", "#999", "#48c"])
    axes.bar_label(bars, labels=[f"{v:,.0f}" for v in values])
    axes.set_ylabel("payments confirmed per second")
    machine = results.get("machine", {})
    axes.set_title(
        f"Payments per second, one machine ({machine.get('cores', '?')} cores), "
        f"profile {results.get('profile', '?')}"
    )
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    return path
