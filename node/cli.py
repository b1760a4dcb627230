"""``python -m node run``: start a ledger node (also installed as ``farthing-node``).

Exit codes: 0 stopped by a signal, 1 a start-up check failed (the message says what to
fix), 2 a usage error.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
import time
from pathlib import Path

from node.config import KEY_ENV, build_config, read_config_file
from node.errors import NodeError


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, message."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="farthing-node", description="A Farthing ledger node.")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run a node")
    run.add_argument("--config", type=Path, help="a JSON file with any of the settings below")
    run.add_argument("--key-file", help=f"hex private key file, mode 0600 (or set {KEY_ENV})")
    run.add_argument("--data-dir", help="the node's LevelDB directory")
    run.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    run.add_argument("--port", type=int, help="port to listen on (default 8700)")
    run.add_argument("--rpc-url", help="the chain's JSON-RPC URL")
    run.add_argument("--vault", help="the Vault's address")
    run.add_argument("--chain-id", type=int, help="refuse to start on another chain")
    run.add_argument("--deploy-block", type=int, help="the Vault's deployment block")
    run.add_argument("--confirmations", type=int, help="blocks before a deposit is credited")
    run.add_argument("--poll-interval", type=float, help="seconds between chain polls")
    run.add_argument("--peer", action="append", dest="peers", help="a peer's URL (repeatable)")
    run.add_argument(
        "--checkpoint-entries", type=int, help="sign a checkpoint every N entries (default 100)"
    )
    run.add_argument(
        "--checkpoint-ms",
        type=int,
        help="or when the log grew and N ms passed since the last (default 1000)",
    )
    run.add_argument(
        "--witness-interval", type=float, help="seconds between witnessing rounds (default 2)"
    )
    run.add_argument(
        "--max-connections", type=int, help="open HTTP connections, all clients (default 1024)"
    )
    run.add_argument(
        "--max-client-connections",
        type=int,
        help="open HTTP connections from one IP address (default 256)",
    )
    run.add_argument(
        "--no-submit-evidence",
        action="store_false",
        dest="submit_evidence",
        default=None,
        help="keep equivocation evidence without taking it to the Vault (default: take it)",
    )
    run.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    logging.basicConfig(level=args.log_level.upper(), handlers=[handler], force=True)
    log = logging.getLogger("farthing.node")
    try:
        file_values = read_config_file(args.config) if args.config else {}
        flags = {k: v for k, v in vars(args).items() if k not in {"command", "config", "log_level"}}
        config = build_config(file_values, flags)
        return asyncio.run(_run(config))
    except NodeError as exc:
        log.error("%s", exc)
        print(f"farthing-node: {exc}", file=sys.stderr)
        return 1


async def _run(config: object) -> int:
    from node.app import run_node
    from node.config import NodeConfig

    assert isinstance(config, NodeConfig)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    started = time.monotonic()
    await run_node(config, stop=stop)
    logging.getLogger("farthing.node").info("ran for %.1f s", time.monotonic() - started)
    return 0


if __name__ == "__main__":
    sys.exit(main())
