"""How fast a node with a big log restarts, and whether its memory grows with the log.

    .venv/bin/python scripts/bench_restart.py [--sizes 1000,1000000] [--runs 5]
        [--cache-dir DIR]

A devnet comes up (anvil and the contracts; no nodes). For each size, a data directory
for node 0 holding that many log entries is built once and cached under ``--cache-dir``
(default: ``$TMPDIR/farthing-bench-restart``; 10^6 entries take ~4-5 minutes and ~500
MB): 1 deposit per account for 1,000 accounts, then transfers round robin, with the
devnet's domain and committee, written by ``LedgerStore.commit_all`` in batches of 256
(``sync=False``). The transitions are built directly, and checked first to write
byte for byte the records the node's own state machine writes (``transition`` over an
``Overlay``, as the writer batches) for the first 3,000 entries. The one shortcut:
signatures are placeholder bytes (signing and verifying 10^6 certificates would take
~10 minutes); the records, the log, the Merkle nodes and the sizes are the real ones.

Then, ``--runs`` times per size (the median is reported):

* store open: ``LedgerStore(...)`` plus ``log_size()`` and ``root()``, in this process;
* full start: ``python -m node run`` for node 0 (the devnet's command line; no peers, so
  only the node itself is measured) until the first ``GET /v1/health`` answers 200, and
  when its "serving" log line was written; the process's RSS then and 3 s later; then
  SIGTERM.

The data directory stays in the page cache between runs (a warm restart).
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

from bench.restart import Run, Setup, data_dir, du, imports, start_node, store_open
from devnet import Devnet, DevnetConfig


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,1000000", help="comma-separated entry counts")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument(
        "--cache-dir", type=Path, default=Path(tempfile.gettempdir()) / "farthing-bench-restart"
    )
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]

    with Devnet.up(DevnetConfig(agents=0)) as devnet:
        m = devnet.manifest
        setup = Setup.of(m)
        data = {entries: data_dir(args.cache_dir, entries, setup) for entries in sizes}
        runs: dict[int, list[Run]] = {entries: [] for entries in sizes}
        imported = []
        for i in range(args.runs):  # sizes interleaved: the machine's load drifts
            imported.append(imports())
            for entries in sizes:
                opened = store_open(data[entries], setup)
                log_path = devnet.state_dir / f"node-{entries}-{i}.log"
                run = replace(
                    start_node(m, devnet.state_dir, data[entries], log_path), store_open=opened
                )
                runs[entries].append(run)
                print(f"  {entries:,} entries, run {i + 1}: {run}", file=sys.stderr)

    def med(values: list[float]) -> float:
        return statistics.median(values)

    print(f"medians of {args.runs} runs; times in seconds from spawning the process")
    print(
        f"{'entries':>10} {'store MB':>9} {'store open':>11} {'serving':>8} {'health':>7} "
        f"{'CPU@health':>11} {'RSS MB':>7} {'RSS MB +3s':>11}"
    )
    for entries in sizes:
        rs = runs[entries]
        print(
            f"{entries:>10,} {du(data[entries]) / 1e6:>9.0f} "
            f"{med([r.store_open for r in rs]):>11.3f} {med([r.serving for r in rs]):>8.2f} "
            f"{med([r.health for r in rs]):>7.2f} {med([r.cpu for r in rs]):>11.2f} "
            f"{med([r.rss_kib / 1024 for r in rs]):>7.1f} "
            f"{med([r.rss_later_kib / 1024 for r in rs]):>11.1f}"
        )
    print(
        f"'import node.app' alone: {med([w for w, _ in imported]):.2f} s wall, "
        f"{med([c for _, c in imported]):.2f} s CPU"
    )


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    main()
