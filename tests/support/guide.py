"""Running docs/agent-guide.md's examples as written: the one ``python`` block of a
section, with only the devnet manifest's path replaced, in a subprocess."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "docs" / "agent-guide.md"
#: The line every devnet example starts from; the tests point it at their devnet.
MANIFEST_LINE = 'MANIFEST = Path(".devnet/manifest.json")'


def example(heading: str) -> str:
    """The one ``python`` block of the guide's section ``heading`` (up to the next
    ``## `` heading)."""
    text = GUIDE.read_text()
    start = text.index(f"\n{heading}\n")
    end = text.find("\n## ", start + len(heading) + 1)
    section = text[start : None if end < 0 else end]
    [code] = re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)
    return code


def run_example(
    heading: str, manifest: Path, cwd: Path, *, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Runs the section's example against the devnet of ``manifest`` (from ``cwd``);
    fails the test if it exits with an error or shows a private key."""
    code = example(heading)
    assert MANIFEST_LINE in code
    script = cwd / "example.py"
    script.write_text(code.replace(MANIFEST_LINE, f"MANIFEST = Path({str(manifest)!r})"))
    done = subprocess.run(
        [sys.executable, str(script)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "private_key" not in done.stdout + done.stderr
    return done
