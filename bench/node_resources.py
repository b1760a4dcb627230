"""What the nodes hold: bytes on disk per payment, and memory.

**Disk** (:func:`disk_snapshot`, :func:`bytes_per_entry`): the size of each node's
LevelDB directory (``<state dir>/node-<i>/data``, regular files, recursively) and its
log size (``GET /v1/log/head``), taken before the payments and again after them, once
every node's log has stopped growing and its directory size has stayed the same for a
second (the writes settled). Bytes per payment = mean over the nodes of (size growth /
log entries appended): every record a payment leaves (log entry, certificate, account
records, Merkle nodes, indexes, checkpoints) counts.

**Disk, compacted** (:func:`compacted_bytes_per_entry`): once the nodes have stopped,
each node's LevelDB is compacted (``compact_range``) and its directory size divided by
its log size: what a payment leaves on disk once LevelDB has dropped the records each
payment overwrites (the payer's account record with its lock, then without) and the
write-ahead log. It counts the whole store (the devnet's deposits and fixed files too).

**Memory** (:func:`node_rss_mb`): each node process's ``VmRSS`` from
``/proc/<pid>/status`` (the devnet's recorded pids).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from bench.restart import rss_kib
from devnet.manifest import Manifest


@dataclass(frozen=True, slots=True)
class DiskSnapshot:
    bytes: tuple[int, ...]  # per node
    entries: tuple[int, ...]  # log size per node


def directory_bytes(path: Path) -> int:
    """Total size of the regular files under ``path``."""
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def node_data_dirs(state_dir: Path, nodes: int) -> list[Path]:
    return [state_dir / f"node-{i}" / "data" for i in range(nodes)]


async def log_sizes(session: aiohttp.ClientSession, nodes: Sequence[str]) -> tuple[int, ...]:
    sizes = []
    for node in nodes:
        async with session.get(f"{node}/v1/log/head") as reply:
            sizes.append(int((await reply.json())["tree_size"]))
    return tuple(sizes)


async def disk_snapshot(
    session: aiohttp.ClientSession,
    nodes: Sequence[str],
    dirs: Sequence[Path],
    settle: float = 1.0,
    timeout: float = 30.0,
) -> DiskSnapshot:
    """Sizes and log sizes once both stayed the same for ``settle`` seconds."""
    deadline = time.monotonic() + timeout
    last = DiskSnapshot(tuple(directory_bytes(d) for d in dirs), await log_sizes(session, nodes))
    while time.monotonic() < deadline:
        await asyncio.sleep(settle)
        now = DiskSnapshot(tuple(directory_bytes(d) for d in dirs), await log_sizes(session, nodes))
        if now == last and len(set(now.entries)) == 1:
            return now
        last = now
    return last


def bytes_per_entry(before: DiskSnapshot, after: DiskSnapshot) -> float:
    """Mean over nodes of the directory's growth per log entry appended."""
    ratios = [
        (b1 - b0) / (e1 - e0)
        for b0, b1, e0, e1 in zip(
            before.bytes, after.bytes, before.entries, after.entries, strict=True
        )
        if e1 > e0
    ]
    if not ratios:
        raise ValueError("no node appended any entry")
    return sum(ratios) / len(ratios)


def compacted_bytes_per_entry(dirs: Sequence[Path]) -> float:
    """Mean over the (stopped) nodes' stores of size / log entries, after compaction."""
    import plyvel

    from node.merkle import CompactRange

    ratios = []
    for path in dirs:
        db = plyvel.DB(str(path))
        try:
            db.compact_range()
            frontier = db.get(b"m" + b"frontier")
        finally:
            db.close()
        entries = 0 if frontier is None else CompactRange.from_bytes(frontier).size
        if entries:
            ratios.append(directory_bytes(path) / entries)
    if not ratios:
        raise ValueError("no node store holds a log entry")
    return sum(ratios) / len(ratios)


def node_rss_mb(m: Manifest) -> dict[str, float]:
    """VmRSS of each node process, in MiB, by process name."""
    return {p.name: rss_kib(p.pid) / 1024 for p in m.processes if p.name.startswith("node-")}
