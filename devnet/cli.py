"""``devnet up | status | down | trade``: the command line of the devnet (``trade`` is the
main job, docs/main-job.md).

web3.py and eth-account take a second or two to import, so only the commands that need
them (``up``, ``status``) import them; ``down``, ``--help`` and usage errors are instant.

Exit codes: 0 done, 1 an expected failure (message on stderr as ``devnet: ...``),
2 a usage error.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from devnet.errors import ConfigError, DevnetError
from devnet.shutdown import stop_devnet
from devnet.state import ENV_STATE_DIR, resolve_state_dir

if TYPE_CHECKING:
    from devnet.api import Devnet, DevnetConfig

DEFAULT_PORT = 8545


class _Terminated(BaseException):
    """SIGTERM or SIGHUP arrived; unwinds like KeyboardInterrupt, so that everything
    started is stopped."""


@contextmanager
def _termination_unwinds() -> Iterator[None]:
    def handler(signum: int, frame: FrameType | None) -> None:
        raise _Terminated

    signals = (signal.SIGTERM, signal.SIGHUP)
    previous = {signum: signal.signal(signum, handler) for signum in signals}
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


@contextmanager
def _signals_ignored() -> Iterator[None]:
    signals = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {signum: signal.signal(signum, signal.SIG_IGN) for signum in signals}
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


def _int_at_least(minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {value}")
        return value

    return parse


def _port(text: str) -> int:
    value = _int_at_least(0)(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"must be <= 65535, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="devnet",
        description="A local Farthing devnet: anvil, the contracts, a committee, funded agents.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    state_help = f"state directory (default: ${ENV_STATE_DIR}, else ./.devnet)"

    up = commands.add_parser("up", help="start anvil, deploy, write the manifest")
    up.add_argument("--nodes", type=_int_at_least(1), default=4, help="committee size (4)")
    up.add_argument("--agents", type=_int_at_least(0), default=4, help="funded agents (4)")
    up.add_argument("--host", default="127.0.0.1", help="anvil's listen address (127.0.0.1)")
    up.add_argument(
        "--port", type=_port, default=DEFAULT_PORT, help="anvil's port (8545; 0 picks a free one)"
    )
    up.add_argument("--state-dir", type=Path, help=state_help)
    up.add_argument(
        "--no-nodes", action="store_true", help="only the chain: do not start the ledger nodes"
    )
    up.add_argument(
        "--foreground",
        action="store_true",
        help="stay attached; Ctrl-C, SIGTERM or SIGHUP brings the devnet down",
    )
    up.set_defaults(run=_up)

    status = commands.add_parser("status", help="check the chain and show the devnet")
    status.add_argument("--state-dir", type=Path, help=state_help)
    status.add_argument("--json", action="store_true", help="print JSON instead of a table")
    status.set_defaults(run=_status)

    trade = commands.add_parser(
        "trade",
        help="the main job: a devnet, a provider agent, paying buyers, a checked summary",
        description="Bring a devnet up, run a provider agent selling a simulated language "
        "model and buyer agents paying for each request, settle on chain and check that "
        "everything reconciles (docs/main-job.md). Exit 1 on a mismatch.",
    )
    trade.add_argument(
        "--requests", type=_int_at_least(1), default=1000, help="paid requests in all (1000)"
    )
    trade.add_argument(
        "--buyers", type=_int_at_least(1), default=2, help="buyer agents; every second pays FAR (2)"
    )
    trade.add_argument("--seed", type=int, default=1, help="seed of the random prompts (1)")
    trade.add_argument("--budget-usd", default="5", help="each buyer's spending budget in USD (5)")
    trade.add_argument(
        "--port", type=_port, default=DEFAULT_PORT, help="anvil's port (8545; 0 picks a free one)"
    )
    trade.add_argument("--state-dir", type=Path, help=state_help)
    trade.add_argument(
        "--keep",
        action="store_true",
        help="leave the devnet up at the end (`devnet down` stops it)",
    )
    trade.set_defaults(run=_trade)

    down = commands.add_parser("down", help="stop every devnet process")
    down.add_argument("--state-dir", type=Path, help=state_help)
    down.set_defaults(run=_down)
    return parser


def _up(args: argparse.Namespace) -> int:
    from devnet.api import Devnet, DevnetConfig  # web3 and eth-account load slowly

    config = DevnetConfig(
        state_dir=resolve_state_dir(args.state_dir),
        nodes=args.nodes,
        agents=args.agents,
        host=args.host,
        port=args.port or None,
        start_nodes=not args.no_nodes,
    )
    started = time.monotonic()
    with _termination_unwinds():
        if args.foreground:
            return _up_in_foreground(config, started)
        devnet = Devnet.up(config)
        _print_summary(devnet, time.monotonic() - started)
        print("stop it with: devnet down" + _state_dir_hint(args))
        return 0


def _up_in_foreground(config: DevnetConfig, started: float) -> int:
    """Bring the devnet up, wait for Ctrl-C, SIGTERM, SIGHUP or `devnet down`, bring it
    down. A signal during the wait or the clean-up still ends in a clean down."""
    from devnet.api import Devnet

    devnet: Devnet | None = None
    try:
        devnet = Devnet.up(config)  # if this is interrupted, up() stops what it started
        _print_summary(devnet, time.monotonic() - started)
        print("running in the foreground: Ctrl-C stops it", flush=True)
        code = _wait_in_foreground(devnet)
    except (KeyboardInterrupt, _Terminated):
        if devnet is None:
            raise
        code = 0
    finally:
        if devnet is not None:
            with _signals_ignored():  # a second Ctrl-C must not cut the clean-up short
                devnet.down()
    print("devnet: stopped", flush=True)
    return code


def _state_dir_hint(args: argparse.Namespace) -> str:
    return f" --state-dir {args.state_dir}" if args.state_dir is not None else ""


def _print_summary(devnet: Devnet, seconds: float) -> None:
    m = devnet.manifest
    pids = ", ".join(f"{p.name} pid {p.pid}" for p in m.processes)
    print(
        f"devnet up in {seconds:.1f} s: chain {m.chain_id} at {m.rpc_url}\n"
        f"  manifest   {devnet.state_dir / 'manifest.json'} (PUBLIC TEST KEYS)\n"
        f"  vault      {m.contracts.vault}\n"
        f"  committee  epoch {m.committee.epoch}, {len(m.committee.members)} nodes, "
        f"quorum {m.committee.quorum}\n"
        f"  agents     {len(m.agents)} funded\n"
        f"  processes  {pids} (log in {devnet.state_dir})",
        flush=True,
    )


def _wait_in_foreground(devnet: Devnet) -> int:
    """Block until a process dies (1) or `devnet down` ran elsewhere (0)."""
    while True:
        processes = devnet.processes()
        if not processes:
            return 0
        dead = [p for p in processes if not p.running]
        if dead:
            # `devnet down` elsewhere kills the processes first and clears their records
            # after, all under the state's lock: wait for it before calling a death
            # unexpected.
            devnet.wait_for_commands()
            if not devnet.processes():
                return 0
            names = ", ".join(f"{p.name} (pid {p.pid})" for p in dead)
            print(
                f"devnet: {names} exited unexpectedly; see the logs in {devnet.state_dir}",
                file=sys.stderr,
            )
            return 1
        time.sleep(0.5)


def _trade(args: argparse.Namespace) -> int:
    """The main job (docs/main-job.md): a devnet of its own in the state dir (refused if
    one runs there already), the trading, the summary; then the devnet goes down unless
    ``--keep``. Ctrl-C, SIGTERM or SIGHUP at any point stop everything."""
    import asyncio

    from devnet.api import Devnet, DevnetConfig
    from devnet.errors import AlreadyRunningError
    from devnet.trading.job import TradeOptions, run_trade
    from wallet.errors import WalletError

    state_dir = resolve_state_dir(args.state_dir)
    config = DevnetConfig(
        state_dir=state_dir,
        agents=args.buyers + 1,
        port=args.port or None,
        start_nodes=True,
    )
    options = TradeOptions(
        requests=args.requests, buyers=args.buyers, seed=args.seed, budget_usd=args.budget_usd
    )
    devnet: Devnet | None = None
    code = 1
    started = time.monotonic()
    with _termination_unwinds():
        try:
            try:
                devnet = Devnet.up(config)
            except AlreadyRunningError:
                raise AlreadyRunningError(
                    f"a devnet is already running in {state_dir} (from `devnet up` or "
                    f"`devnet trade --keep`); `devnet trade` brings up a devnet of its own: "
                    f"stop that one with `devnet down{_state_dir_hint(args)}`, or give "
                    "another --state-dir"
                ) from None
            _print_summary(devnet, time.monotonic() - started)
            code = asyncio.run(run_trade(devnet.manifest, devnet.state_dir, options, sys.stdout))
        except WalletError as exc:
            print(f"devnet trade: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
            code = 1
        except (KeyboardInterrupt, _Terminated) as stop:
            why = "interrupted" if isinstance(stop, KeyboardInterrupt) else "terminated"
            print(
                f"\ndevnet trade: {why}: stopping everything",
                file=sys.stderr,
                flush=True,
            )
            code = 130 if isinstance(stop, KeyboardInterrupt) else 143
        finally:
            if devnet is not None:
                keep = args.keep and code in (0, 1)
                if keep:
                    print(
                        f"devnet left up (--keep): stop it with devnet down{_state_dir_hint(args)}"
                    )
                else:
                    with _signals_ignored():  # a second Ctrl-C must not cut the clean-up short
                        devnet.down()
                    print("devnet: stopped", flush=True)
    return code


def _status(args: argparse.Namespace) -> int:
    from devnet.api import devnet_status
    from devnet.status import format_status

    status = devnet_status(resolve_state_dir(args.state_dir))
    print(json.dumps(status.to_dict(), indent=2) if args.json else format_status(status))
    return 0


def _down(args: argparse.Namespace) -> int:
    state_dir = resolve_state_dir(args.state_dir)
    stopped = stop_devnet(state_dir)
    if not stopped:
        print(f"devnet: nothing running in {state_dir}")
    else:
        names = ", ".join(f"{p.name} (pid {p.pid})" for p in stopped)
        print(f"devnet down: stopped {names}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``devnet`` command with ``argv`` (default ``sys.argv[1:]``); the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, or a usage error already printed
        return exc.code if isinstance(exc.code, int) else 2
    run: Callable[[argparse.Namespace], int] = args.run
    try:
        return run(args)
    except ConfigError as exc:
        print(f"devnet: {exc}", file=sys.stderr)
        return 2
    except DevnetError as exc:
        print(f"devnet: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("devnet: interrupted", file=sys.stderr)
        return 130
    except _Terminated:
        print("devnet: terminated", file=sys.stderr)
        return 143
    except BrokenPipeError:  # e.g. `devnet status | head -1`; the command itself is done
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
