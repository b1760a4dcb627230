"""``farthing-wallet``: the parser, the dispatch, and errors turned into exit codes.

Exit codes (every failure is ONE line on stderr, ``farthing-wallet: ...``, saying what to
do; with ``--json`` stdout also gets ``{"error": {...}}``):

====  ==========================================================================
0     done
1     the caller's error: bad input, no or wrong keystore / passphrase, an unknown
      token, an insufficient balance, a refusal of the nodes (retrying as is cannot help)
2     retryable: the nodes or the chain's RPC do not answer (enough), a deposit not yet
      credited; the same command later may succeed
3     the chain refused: a reverted or rejected transaction, a wrong Vault or URL
4     the spending policy refused the payment (nothing was signed)
5     a receipt or certificate does not verify
6     the payment is final but no node served its receipt in time: do NOT pay again
      (`history` shows it)
64    a usage error (an unknown option, a missing argument)
70    an unexpected internal error (a bug: please report it)
130   interrupted (Ctrl-C)
====  ==========================================================================
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import json
import logging
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from wallet.cli import commands
from wallet.cli.context import HOME_ENV, MANIFEST_ENV, RPC_URL_ENV, VAULT_ENV, CliError, Home
from wallet.cli.output import Output
from wallet.errors import (
    ChainConfigError,
    ChainError,
    ChainUnavailable,
    InsufficientBalance,
    InvalidReceipt,
    KeystoreNotFound,
    NoPassphrase,
    PaymentRefused,
    PolicyRefused,
    PriceUnavailable,
    QuorumUnavailable,
    ReceiptUnavailable,
    StalePrice,
    TransactionRejected,
    TransactionUnconfirmed,
    UnsafePermissions,
    WalletError,
    WrongPassphrase,
)
from wallet.keystore import PASSPHRASE_ENV

PROG = "farthing-wallet"

EXIT_OK = 0
EXIT_CALLER = 1
EXIT_RETRY = 2
EXIT_CHAIN = 3
EXIT_POLICY = 4
EXIT_INVALID = 5
EXIT_NO_RECEIPT = 6
EXIT_USAGE = 64
EXIT_INTERNAL = 70
EXIT_INTERRUPTED = 130


class _UsageError(Exception):
    def __init__(self, message: str, usage: str) -> None:
        super().__init__(message)
        self.usage = usage


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        if message.startswith("unrecognized arguments"):
            # Never echo them: a key or mnemonic pasted on the command line must not be
            # repeated (it is in the shell history already: remove it from there).
            message = "unrecognized arguments (not repeated here); secrets are never arguments"
        raise _UsageError(message, self.format_usage())


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, message (as ``farthing-node``)."""

    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(
            {
                "ts": round(record.created, 3),
                "level": record.levelname.lower(),
                "logger": record.name,
                "message": record.getMessage(),
            }
        )


# ---------------------------------------------------------------- the parser


def _global_options(parser: argparse.ArgumentParser, *, in_subcommand: bool) -> None:
    """The options every command takes, before or after its name. In a subcommand their
    default is SUPPRESS, so that one given before the name is not overwritten."""

    def default(value: Any) -> Any:
        return argparse.SUPPRESS if in_subcommand else value

    group = parser.add_argument_group("global options")
    group.add_argument(
        "--home",
        default=default(None),
        help=f"the wallet's folder (default ${HOME_ENV}, else ~/.farthing): keystore, "
        "journal, spend ledger, policy",
    )
    group.add_argument(
        "--keystore", default=default(None), help="the keystore file (default HOME/keystore.json)"
    )
    group.add_argument(
        "--manifest",
        default=default(None),
        help=f"a devnet manifest naming the network (default ${MANIFEST_ENV})",
    )
    group.add_argument(
        "--rpc-url",
        default=default(None),
        help=f"the chain's JSON-RPC URL: the committee is read from the Vault (${RPC_URL_ENV})",
    )
    group.add_argument(
        "--vault", default=default(None), help=f"the Vault's address, with --rpc-url (${VAULT_ENV})"
    )
    group.add_argument(
        "--price-feed",
        default=default(None),
        help="the FAR/USD price feed the policy values FAR with (a manifest names it)",
    )
    group.add_argument(
        "--timeout",
        type=float,
        default=default(5.0),
        help="seconds for each round with the nodes (default 5)",
    )
    group.add_argument(
        "--json",
        action="store_true",
        default=default(False),
        help="print one JSON document instead of tables",
    )
    group.add_argument(
        "--log-level",
        default=default("warning"),
        choices=["debug", "info", "warning", "error"],
        help="JSON log lines on stderr from this level (default warning)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="The Farthing agent wallet: keys, balances, deposits, payments, "
        f"withdrawals, receipts, spending policy. The passphrase comes from ${PASSPHRASE_ENV} "
        "or a prompt.",
        epilog="exit codes: 0 done, 1 your input, 2 retry later, 3 chain refused, "
        "4 policy refused, 5 does not verify, 64 usage",
    )
    _global_options(parser, in_subcommand=False)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(
        name: str, run: Callable[..., Any], help_text: str, **kw: Any
    ) -> argparse.ArgumentParser:
        child = sub.add_parser(name, help=help_text, description=help_text, **kw)
        _global_options(child, in_subcommand=True)
        child.set_defaults(run=run)
        return child

    new = command("new", commands.cmd_new, "create a key and its keystore (mode 0600)")
    new.add_argument(
        "--mnemonic",
        action="store_true",
        help="derive the key from a new BIP-39 mnemonic and show it ONCE (write it down)",
    )
    new.add_argument("--words", type=int, default=12, choices=[12, 15, 18, 21, 24])
    new.add_argument("--force", action="store_true", help="replace an existing keystore")

    imp = command(
        "import",
        commands.cmd_import,
        "import a key typed at the prompt or piped on stdin (hex, or --mnemonic words)",
    )
    imp.add_argument("--mnemonic", action="store_true", help="read a BIP-39 mnemonic")
    imp.add_argument(
        "--index", type=int, default=0, help="the mnemonic's account index (m/44'/60'/0'/0/i)"
    )
    imp.add_argument("--force", action="store_true", help="replace an existing keystore")

    command("address", commands.cmd_address, "show the payment (0x) and agent (agent1) addresses")

    balance = command("balance", commands.cmd_balance, "balances on the ledger, per token")
    balance.add_argument("--token", help="only this token (symbol)")

    deposit = command(
        "deposit", commands.cmd_deposit, 'deposit tokens into the Vault: AMOUNT is "10 USDF"'
    )
    deposit.add_argument("amount", metavar="AMOUNT")
    deposit.add_argument(
        "--no-wait", action="store_true", help="do not wait for the nodes to credit it"
    )
    deposit.add_argument(
        "--wait-timeout", type=float, default=60.0, help="seconds to wait for the credit (60)"
    )

    pay = command("pay", commands.cmd_pay, "pay PAYEE (0x or agent1 address) AMOUNT")
    pay.add_argument("payee", metavar="PAYEE")
    pay.add_argument("amount", metavar="AMOUNT")
    pay.add_argument(
        "--reference", help="the task paid for: 0x + 64 hex digits, or text (hashed, keccak256)"
    )
    pay.add_argument("--receipt-out", metavar="FILE", help="write the receipt's JSON there")

    withdraw = command(
        "withdraw",
        commands.cmd_withdraw,
        "withdraw from the ledger to an address on chain (default: yours); then --redeem",
    )
    withdraw.add_argument("amount", metavar="AMOUNT")
    withdraw.add_argument("--to", metavar="ADDRESS", help="the recipient on chain (0x or agent1)")
    withdraw.add_argument(
        "--redeem", action="store_true", help="also redeem the certificate on chain now"
    )
    withdraw.add_argument(
        "--receipt-out", metavar="FILE", help="write the receipt (with the certificate) there"
    )

    redeem = command(
        "redeem", commands.cmd_redeem, "redeem a withdrawal certificate on chain (anyone can)"
    )
    redeem.add_argument("certificate", metavar="CERTIFICATE_FILE")

    command("history", commands.cmd_history, "sent and received payments, verified")

    verify = command(
        "verify", commands.cmd_verify, "verify a receipt file offline (no node is asked)"
    )
    verify.add_argument("receipt", metavar="RECEIPT_FILE")
    verify.add_argument(
        "--committee", metavar="FILE", help="the committee (from `committee --out`) or a manifest"
    )

    committee = command(
        "committee", commands.cmd_committee, "show the committee; --out FILE keeps it for verify"
    )
    committee.add_argument("--out", metavar="FILE")

    policy = command("policy", commands.cmd_policy, "show or edit the spending policy")
    actions = policy.add_subparsers(dest="policy_command", required=True, metavar="ACTION")
    actions.add_parser("show", help="the policy in force")
    actions.add_parser("reset", help="back to the defaults (no limits)")
    spent = actions.add_parser("spent", help="what was spent, per reference (task)")
    spent.add_argument("--reference", help="only this reference (0x hash or text)")
    edit = actions.add_parser(
        "set", help="change rules; a value 'none' removes a limit", description="Change rules."
    )
    edit.add_argument(
        "--max-per-payment",
        action="append",
        metavar="AMOUNT",
        help='per token: "0.5 USDF" (or "none USDF"); repeatable',
    )
    edit.add_argument("--max-per-payment-usd", metavar="USD", help="any token, in USD, or none")
    edit.add_argument("--budget-usd", metavar="USD", help="the most spent per period, or none")
    edit.add_argument("--period", metavar="DURATION", help="the budget's window: 86400, 1h, 1d")
    edit.add_argument("--max-price-age", metavar="DURATION", help="oldest usable FAR price")
    edit.add_argument("--allow", action="append", metavar="ADDRESS", help="add to the allow list")
    edit.add_argument("--disallow", action="append", metavar="ADDRESS", help="remove from it")
    edit.add_argument("--allow-anyone", action="store_true", help="drop the allow list")
    edit.add_argument("--deny", action="append", metavar="ADDRESS", help="add to the deny list")
    edit.add_argument("--undeny", action="append", metavar="ADDRESS", help="remove from it")
    edit.add_argument(
        "--payee-cap", action="append", metavar="ADDRESS=USD", help="a payee's cap, or =none"
    )
    edit.add_argument("--default-payee-cap-usd", metavar="USD", help="every other payee's cap")
    return parser


# ---------------------------------------------------------------- errors


def explain(exc: BaseException, home: Home | None = None) -> tuple[int, str]:
    """The exit code and the one-line message of an error."""
    if isinstance(exc, PolicyRefused):
        return EXIT_POLICY, (
            f"the spending policy refuses the payment ({exc}); nothing was signed. See "
            "`farthing-wallet policy show`, change it with `policy set`"
        )
    if isinstance(exc, StalePrice):
        return EXIT_POLICY, f"{exc}: the policy cannot value a FAR payment; retry later"
    if isinstance(exc, PriceUnavailable):
        return EXIT_POLICY, (
            f"{exc}: the policy values FAR payments at the price feed; pass --price-feed "
            "ADDRESS (a devnet manifest names it)"
        )
    if isinstance(exc, InvalidReceipt):
        return EXIT_INVALID, f"does NOT verify: {exc}"
    if isinstance(exc, WrongPassphrase):
        return EXIT_CALLER, (
            f"wrong passphrase for {home.keystore if home else 'the keystore'}: check "
            f"${PASSPHRASE_ENV} (or type it again)"
        )
    if isinstance(exc, NoPassphrase):
        return EXIT_CALLER, f"no passphrase: set {PASSPHRASE_ENV}, or run in a terminal"
    if isinstance(exc, KeystoreNotFound):
        return EXIT_CALLER, f"{exc}: create one with `{PROG} new` or `{PROG} import`"
    if isinstance(exc, UnsafePermissions):
        return EXIT_CALLER, str(exc)
    if isinstance(exc, InsufficientBalance):
        return EXIT_CALLER, (
            f"insufficient balance: {exc}. `{PROG} balance` shows what you have; "
            f'deposit more (`{PROG} deposit "10 USDF"`) or pay less'
        )
    if isinstance(exc, PaymentRefused):
        return EXIT_CALLER, f"the nodes refused the order ({exc.code}): {exc}"
    if isinstance(exc, ReceiptUnavailable):
        return EXIT_NO_RECEIPT, f"{exc}; `{PROG} history` lists it"
    if isinstance(exc, QuorumUnavailable):
        return EXIT_RETRY, (
            f"cannot reach a quorum of the committee's nodes: {exc}. Check that the nodes "
            "are up (devnet: `devnet status`) and retry: an order in flight is finished "
            "first, never signed twice"
        )
    if isinstance(exc, ChainUnavailable):
        return EXIT_RETRY, (
            f"the chain does not answer: {exc}. Check --rpc-url (or the manifest's "
            "rpc_url) and retry; nothing was sent"
        )
    if isinstance(exc, TransactionUnconfirmed):
        return EXIT_CHAIN, (
            f"{exc}: the transaction 0x{exc.tx_hash.hex()} may still be mined; check it "
            "before sending again (a second deposit would pay twice)"
        )
    if isinstance(exc, TransactionRejected):
        return EXIT_CHAIN, f"{exc}: does the key have ETH for gas?"
    if isinstance(exc, ChainConfigError):
        return EXIT_CHAIN, f"{exc}"
    if isinstance(exc, ChainError):
        return EXIT_CHAIN, f"the chain refused: {exc}"
    if isinstance(exc, WalletError):
        return (EXIT_RETRY if exc.retryable else getattr(exc, "exit_code", EXIT_CALLER)), str(exc)
    if isinstance(exc, OSError):
        where = f"{exc.filename}: " if exc.filename else ""
        return EXIT_CALLER, f"{where}{exc.strerror or exc}"
    return EXIT_INTERNAL, f"internal error ({type(exc).__name__}): {exc}; please report it"


def _fail(out: Output, code: int, message: str, exc: BaseException | None) -> int:
    line = " ".join(message.split())
    print(f"{PROG}: {line}", file=out.stderr)
    if out.json_mode:
        error = {
            "exit_code": code,
            "type": type(exc).__name__ if exc else "UsageError",
            "message": line,
            "retryable": bool(getattr(exc, "retryable", False)),
        }
        print(json.dumps({"error": error}, indent=2), file=out.stdout)
    return code


# ---------------------------------------------------------------- main


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``farthing-wallet`` with ``argv`` (default ``sys.argv[1:]``); the exit code."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    try:
        args = build_parser().parse_args(arguments)
    except _UsageError as exc:
        out = Output(json_mode="--json" in arguments)
        if not out.json_mode:
            print(exc.usage.rstrip(), file=out.stderr)
        return _fail(out, EXIT_USAGE, str(exc), None)
    except SystemExit as exc:  # --help
        return exc.code if isinstance(exc.code, int) else 0
    out = Output(json_mode=args.json)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    log = logging.getLogger("wallet")  # the library's loggers, for this call only
    level = log.level
    log.addHandler(handler)
    log.setLevel(args.log_level.upper())
    try:
        return _run(args, out)
    finally:
        log.removeHandler(handler)
        log.setLevel(level)


def _run(args: argparse.Namespace, out: Output) -> int:
    home = Home.resolve(args.home, args.keystore)
    run: Callable[..., Any] = args.run
    try:
        if inspect.iscoroutinefunction(run):
            asyncio.run(run(args, out, home))
        else:
            run(args, out, home)
    except KeyboardInterrupt:
        return _fail(
            out,
            EXIT_INTERRUPTED,
            "interrupted; an order already signed is finished by the next pay or withdraw",
            None,
        )
    except CliError as exc:
        return _fail(out, exc.exit_code, str(exc), exc)
    except Exception as exc:
        code, message = explain(exc, home)
        return _fail(out, code, message, exc)
    return EXIT_OK
