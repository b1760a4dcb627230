"""``python -m bench [--quick | --smoke] [--out DIR] [--cache-dir DIR]``: one run of the
benchmark (:mod:`bench.runner`), its table printed at the end."""

from __future__ import annotations

import argparse
from pathlib import Path

from bench.report import markdown
from bench.runner import DEFAULT_CACHE, PROFILES, run

RESULTS = Path(__file__).resolve().parent / "results"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Farthing against ERC-20 and EIP-3009 on the same anvil, one machine.",
    )
    size = parser.add_mutually_exclusive_group()
    size.add_argument(
        "--quick",
        action="store_const",
        const="quick",
        dest="profile",
        help="smaller counts, under two minutes (restart on 10^4 entries)",
    )
    size.add_argument(
        "--smoke",
        action="store_const",
        const="smoke",
        dest="profile",
        help="a few seconds of each part (the integration test's size)",
    )
    parser.add_argument("--out", type=Path, default=RESULTS, help=f"default: {RESULTS}")
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=DEFAULT_CACHE,
        help="where the restart benchmark's stores are cached",
    )
    args = parser.parse_args(argv)
    results = run(PROFILES[args.profile or "full"], args.out, args.cache_dir)
    print(markdown(results), end="")


if __name__ == "__main__":
    main()
