"""bench.chart draws a PNG of the four rates."""

from __future__ import annotations

from pathlib import Path

from bench.chart import BARS, draw


def test_draw_writes_a_png(tmp_path: Path) -> None:
    results = {key: 100.0 * (i + 1) for i, (key, _) in enumerate(BARS)}
    path = draw({**results, "profile": "smoke", "machine": {"cores": 2}}, tmp_path / "c.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
