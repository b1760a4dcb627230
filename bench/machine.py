"""The machine a run measured: cores, CPU model, Python, date, the checkout's commit.

The commit is read from ``.git`` files (``HEAD``, the ref it names, ``packed-refs``);
no git command runs.
"""

from __future__ import annotations

import datetime
import os
import platform
from pathlib import Path
from typing import Any

from devnet.anvil import PROJECT_ROOT


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def git_commit(root: Path = PROJECT_ROOT) -> str | None:
    """The commit ``HEAD`` names, or None when there is no readable ``.git``."""
    git = root / ".git"
    try:
        head = (git / "HEAD").read_text().strip()
        if not head.startswith("ref: "):
            return head or None
        ref = head[5:]
        if (git / ref).is_file():
            return (git / ref).read_text().strip() or None
        for line in (git / "packed-refs").read_text().splitlines():
            sha, _, name = line.partition(" ")
            if name == ref:
                return sha
    except OSError:
        return None
    return None


def describe(cores: int) -> dict[str, Any]:
    return {
        "cores": cores,
        "cpu_count": os.cpu_count(),
        "cpu_model": cpu_model(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "git_commit": git_commit(),
    }
