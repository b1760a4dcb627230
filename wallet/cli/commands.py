"""The commands of ``farthing-wallet``: each takes the parsed options, an
:class:`~wallet.cli.output.Output` and the :class:`~wallet.cli.context.Home`, prints one
result and returns nothing (errors are raised; :mod:`wallet.cli.app` turns them into a
message and an exit code)."""

from __future__ import annotations

import argparse
import getpass
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wallet import wire
from wallet.amounts import TokenRegistry, format_units
from wallet.cli import context
from wallet.cli.context import (
    CliError,
    Connection,
    Home,
    connect,
    connection_options,
    parse_account,
    parse_amount,
    parse_reference,
    read_json,
    token_by_symbol,
)
from wallet.cli.output import Output, pairs, table
from wallet.client import (
    Committee,
    Network,
    Receipt,
    receipt_from_json,
    receipt_to_json,
    verify_receipt,
)
from wallet.codec import address_hex, hash_hex, parse_address
from wallet.eip712 import order_digest
from wallet.errors import (
    EncodingError,
    KeystoreExists,
)
from wallet.keys import agent_address, generate_mnemonic, key_from_mnemonic, payment_address
from wallet.keystore import read_passphrase, save_keystore
from wallet.policy import (
    USD_DECIMALS,
    SpendingPolicy,
    format_usd,
    parse_usd,
    write_atomically,
)
from wallet.signing import PrivateKey
from wallet.spend_ledger import SpendLedger
from wallet.types import ZERO_HASH, Certificate, Domain, Epoch, Transfer, Withdrawal

if TYPE_CHECKING:
    from wallet.agent import FarthingWallet
    from wallet.chain import RedeemResult

MNEMONIC_WARNING = (
    "WRITE THIS MNEMONIC DOWN NOW AND KEEP IT OFFLINE: it is shown only this once, and "
    "anyone who has it controls the funds of this wallet."
)


# ---------------------------------------------------------------- helpers


def _key_document(home: Home, key: PrivateKey) -> dict[str, Any]:
    return {
        "keystore": str(home.keystore),
        "address": payment_address(key),
        "agent_address": agent_address(key),
    }


def _key_text(document: dict[str, Any]) -> str:
    return pairs(
        [
            ("payment address", document["address"]),
            ("agent address", document["agent_address"]),
            ("keystore", document["keystore"]),
        ]
    )


def _read_secret(prompt: str) -> str:
    """A secret typed at the terminal without echo, or one line of standard input (a
    pipe). Never a command-line argument: those leak into shell history and ``ps``."""
    text = getpass.getpass(prompt) if sys.stdin.isatty() else sys.stdin.readline()
    text = text.strip()
    if not text:
        raise CliError(
            "nothing to import: type it at the prompt, or pipe it on standard input "
            "(e.g. `farthing-wallet import < key.txt`)"
        )
    return text


def _symbol(tokens: TokenRegistry, address: bytes) -> tuple[str, int | None]:
    for token in tokens:
        if token.address == address:
            return token.symbol, token.decimals
    return address_hex(parse_address(address)), None


def _amount_fields(tokens: TokenRegistry, token: bytes, units: int) -> dict[str, Any]:
    symbol, decimals = _symbol(tokens, token)
    amount = format_units(units, decimals) if decimals is not None else str(units)
    return {"token": symbol, "amount": amount, "base_units": str(units)}


def _order_row(tokens: TokenRegistry, certificate: Certificate, account: bytes) -> dict[str, Any]:
    order = certificate.order
    if isinstance(order, Transfer):
        direction = "sent" if order.payer == account else "received"
        counterparty = order.payee if direction == "sent" else order.payer
        kind, reference = "transfer", hash_hex(order.reference)
    else:
        direction, counterparty, kind, reference = "sent", order.recipient, "withdrawal", None
    return {
        "direction": direction,
        "kind": kind,
        "sequence": order.sequence,
        "counterparty": address_hex(counterparty),
        **_amount_fields(tokens, order.token, order.amount),
        "reference": reference,
        "epoch": certificate.epoch,
        "votes": len(certificate.votes),
    }


def _receipt_document(
    tokens: TokenRegistry, domain: Domain, receipt: Receipt, receipt_file: str | None
) -> dict[str, Any]:
    certificate = receipt.certificate
    order = certificate.order
    assert isinstance(order, Transfer)
    return {
        "payer": address_hex(order.payer),
        "payee": address_hex(order.payee),
        **_amount_fields(tokens, order.token, order.amount),
        "reference": hash_hex(order.reference),
        "sequence": order.sequence,
        "epoch": certificate.epoch,
        "votes": len(certificate.votes),
        "digest": hash_hex(order_digest(domain, order)),
        "node": address_hex(receipt.node),
        "log_index": receipt.log_index,
        "receipt_file": receipt_file,
    }


def _check_output_file(path: str | None) -> None:
    """Refuse, before anything is paid, a file that could not be written afterwards."""
    if path is not None and not Path(path).parent.is_dir():
        raise CliError(f"cannot write {path}: no such directory {Path(path).parent}")


def _write_json(path: str, document: object) -> None:
    import json

    _check_output_file(path)
    write_atomically(Path(path), json.dumps(document, indent=2) + "\n")


async def _connect(args: argparse.Namespace) -> Connection:
    return await connect(args.manifest, args.rpc_url, args.vault, args.price_feed)


# ---------------------------------------------------------------- keys


def cmd_new(args: argparse.Namespace, out: Output, home: Home) -> None:
    home.ensure()
    if home.keystore.exists() and not args.force:
        raise KeystoreExists(
            f"{home.keystore}: a keystore is already there: pass another --keystore or "
            "--home (or --force to replace it: its key is lost unless backed up)"
        )
    mnemonic = generate_mnemonic(args.words) if args.mnemonic else None
    key = key_from_mnemonic(mnemonic) if mnemonic is not None else PrivateKey.generate()
    passphrase = read_passphrase(prompt="New passphrase: ", confirm=True)
    save_keystore(
        home.keystore, key, passphrase, scrypt=context.KEYSTORE_SCRYPT, overwrite=args.force
    )
    document = _key_document(home, key)
    text = _key_text(document)
    if mnemonic is not None:
        document |= {"mnemonic": mnemonic, "warning": MNEMONIC_WARNING}
        text += f"\n\n{MNEMONIC_WARNING}\n\n    {mnemonic}\n"
    out.result(document, text)


def cmd_import(args: argparse.Namespace, out: Output, home: Home) -> None:
    home.ensure()
    if home.keystore.exists() and not args.force:
        raise KeystoreExists(
            f"{home.keystore}: a keystore is already there: pass another --keystore or "
            "--home (or --force to replace it)"
        )
    if args.mnemonic:
        key = key_from_mnemonic(_read_secret("Mnemonic: "), args.index)
    else:
        key = PrivateKey.from_hex(_read_secret("Private key (hex): "))
    passphrase = read_passphrase(prompt="New passphrase: ", confirm=True)
    save_keystore(
        home.keystore, key, passphrase, scrypt=context.KEYSTORE_SCRYPT, overwrite=args.force
    )
    document = _key_document(home, key)
    out.result(document, _key_text(document))


def cmd_address(args: argparse.Namespace, out: Output, home: Home) -> None:
    document = _key_document(home, home.load_key())
    out.result(document, _key_text(document))


# ---------------------------------------------------------------- the ledger and the chain


@asynccontextmanager
async def _agent(
    args: argparse.Namespace, out: Output, home: Home, *, policy: bool = False
) -> AsyncIterator[FarthingWallet]:
    """The facade (:mod:`wallet.agent`) over this home's key, journal and, with
    ``policy``, its spending policy (the file, else the defaults) and spend ledger."""
    from wallet.agent import FarthingWallet  # web3 loads slowly: only when needed

    manifest, rpc_url, vault = connection_options(args.manifest, args.rpc_url, args.vault)
    key = home.load_key()
    home.ensure()
    rules: SpendingPolicy | Path | None = None
    if policy:
        rules = home.policy if home.policy.exists() else SpendingPolicy()
    async with out.progress("connecting"):
        wallet = await FarthingWallet.open(
            data_dir=home.root,
            key=key,
            manifest=manifest,
            rpc_url=rpc_url,
            vault=vault,
            price_feed=args.price_feed,
            policy=rules,
            ledger=home.spend_ledger if policy else None,
            timeout=args.timeout,
        )
    try:
        yield wallet
    finally:
        await wallet.close()


async def cmd_balance(args: argparse.Namespace, out: Output, home: Home) -> None:
    async with _agent(args, out, home) as wallet:
        tokens = list(wallet.tokens)
        if args.token:
            tokens = [token_by_symbol(args.token, wallet.tokens)]
        async with out.progress("asking the committee"):
            found = await wallet.client.balances()
        registry = wallet.tokens
        me = payment_address_of(wallet)
    rows = [_amount_fields(registry, t.address, found.get(t.address, 0)) for t in tokens]
    if not args.token:
        known = {token.address for token in tokens}
        rows += [_amount_fields(registry, a, u) for a, u in found.items() if a not in known]
    document = {"address": me, "balances": rows}
    out.result(
        document,
        f"balances of {me} (each vouched for by a quorum of nodes)\n"
        + table(
            ["token", "amount", "base units"],
            [[r["token"], r["amount"], r["base_units"]] for r in rows],
        ),
    )


def payment_address_of(wallet: FarthingWallet) -> str:
    return address_hex(wallet.address)


async def cmd_deposit(args: argparse.Namespace, out: Output, home: Home) -> None:
    async with _agent(args, out, home) as wallet:
        amount = parse_amount(args.amount, wallet.tokens)
        what = "depositing" if args.no_wait else "depositing, then waiting for the nodes' credit"
        async with out.progress(f"{what} ({amount})"):
            done = await wallet.deposit(amount, wait=not args.no_wait, timeout=args.wait_timeout)
        balance = None if args.no_wait else await wallet.balance(amount.token)
        registry = wallet.tokens
    document = {
        "deposit_id": done.deposit_id,
        **_amount_fields(registry, amount.token.address, amount.units),
        "tx_hash": hash_hex(done.transaction.tx_hash),
        "block": done.transaction.block_number,
        "credited": not args.no_wait,
        "balance": None if balance is None else balance.decimal,
    }
    lines = [
        ("deposit", f"{done.deposit_id}: {amount}"),
        ("transaction", f"{document['tx_hash']} (block {document['block']})"),
    ]
    if balance is not None:
        lines.append(("balance now", str(balance)))
    else:
        lines.append(("credited", "not waited for: see `farthing-wallet balance`"))
    out.result(document, pairs(lines))


async def cmd_pay(args: argparse.Namespace, out: Output, home: Home) -> None:
    payee = parse_account(args.payee, field="payee")
    reference = parse_reference(args.reference)
    _check_output_file(args.receipt_out)
    async with _agent(args, out, home, policy=True) as wallet:
        amount = parse_amount(args.amount, wallet.tokens)
        async with out.progress(f"paying {amount}: votes, certificate, receipt"):
            receipt = await wallet.pay(payee, amount, reference=reference)
        spent = wallet.spent_by_reference(reference) if reference != ZERO_HASH else None
        registry, domain = wallet.tokens, wallet.network.domain
    if args.receipt_out:
        _write_json(args.receipt_out, receipt_to_json(receipt))
    document = _receipt_document(registry, domain, receipt, args.receipt_out)
    if spent is not None:
        document["reference_spent_usd"] = format_units(spent.usd, USD_DECIMALS)
    text = pairs(
        [
            ("paid", f"{document['amount']} {document['token']} to {document['payee']}"),
            ("reference", document["reference"]),
            ("sequence", document["sequence"]),
            ("certificate", f"epoch {document['epoch']}, {document['votes']} votes"),
            ("receipt", f"entry {receipt.log_index} of node {document['node']}'s log"),
            *([("receipt file", args.receipt_out)] if args.receipt_out else []),
            *([("task total", str(spent))] if spent is not None else []),
        ]
    )
    out.result(document, text)


async def cmd_withdraw(args: argparse.Namespace, out: Output, home: Home) -> None:
    recipient = None if args.to is None else parse_account(args.to, field="--to")
    _check_output_file(args.receipt_out)
    redeemed: dict[str, Any] | None = None
    async with _agent(args, out, home, policy=True) as wallet:
        amount = parse_amount(args.amount, wallet.tokens)
        async with out.progress(f"withdrawing {amount}: votes, certificate, receipt"):
            receipt = await wallet.withdraw(amount, recipient=recipient)
        if args.receipt_out:
            _write_json(args.receipt_out, receipt_to_json(receipt))
        if args.redeem:
            async with out.progress("redeeming on chain"):
                result = await wallet.redeem(receipt)
            redeemed = _redeem_document(wallet.tokens, receipt.certificate, result)
        registry = wallet.tokens
    certificate = receipt.certificate
    order = certificate.order
    assert isinstance(order, Withdrawal)
    document = {
        "account": address_hex(order.account),
        "recipient": address_hex(order.recipient),
        **_amount_fields(registry, order.token, order.amount),
        "sequence": order.sequence,
        "epoch": certificate.epoch,
        "votes": len(certificate.votes),
        "receipt_file": args.receipt_out,
        "certificate": wire.certificate_to_json(certificate),
        "redeem": redeemed,
    }
    lines = [
        ("withdrawn", f"{document['amount']} {document['token']} to {document['recipient']}"),
        ("sequence", document["sequence"]),
        ("certificate", f"epoch {document['epoch']}, {document['votes']} votes"),
        *([("receipt file", args.receipt_out)] if args.receipt_out else []),
    ]
    text = pairs(lines)
    if redeemed is not None:
        text += "\n" + _redeem_text(redeemed)
    elif args.receipt_out:
        text += f"\nnext: farthing-wallet redeem {args.receipt_out}"
    else:
        text += "\nnext: keep the certificate (--receipt-out FILE, or --redeem now)"
    out.result(document, text)


async def cmd_history(args: argparse.Namespace, out: Output, home: Home) -> None:
    async with _agent(args, out, home) as wallet:
        async with out.progress("downloading and verifying the history"):
            history = await wallet.history()
        registry, me = wallet.tokens, wallet.address
    rows = [_order_row(registry, c, me) for c in (*history.sent, *history.received)]
    document = {"address": address_hex(me), "verified": True, "entries": rows}
    text = f"history of {address_hex(me)} (every certificate verified)\n" + table(
        ["", "kind", "seq", "counterparty", "amount", "token", "reference"],
        [
            [
                r["direction"],
                r["kind"],
                r["sequence"],
                r["counterparty"],
                r["amount"],
                r["token"],
                "" if r["reference"] in (None, hash_hex(ZERO_HASH)) else r["reference"][:18] + "…",
            ]
            for r in rows
        ],
    )
    out.result(document, text)


def _certificate_from_file(path: str) -> Certificate:
    """A certificate from a file: a certificate's JSON, a receipt, or the document of
    ``withdraw --json`` (both hold one under ``certificate``)."""
    data = read_json(path, "certificate file")
    if isinstance(data, dict) and "certificate" in data:
        data = data["certificate"]
    return wire.certificate_from_json(data)


async def cmd_redeem(args: argparse.Namespace, out: Output, home: Home) -> None:
    certificate = _certificate_from_file(args.certificate)
    if not isinstance(certificate.order, Withdrawal):
        raise CliError(f"{args.certificate} holds a transfer: only withdrawals are redeemed")
    async with _agent(args, out, home) as wallet:
        async with out.progress("redeeming on chain"):
            result = await wallet.redeem(certificate)
        document = _redeem_document(wallet.tokens, certificate, result)
    out.result(document, _redeem_text(document))


def _redeem_document(
    tokens: TokenRegistry, certificate: Certificate, result: RedeemResult
) -> dict[str, Any]:
    order = certificate.order
    assert isinstance(order, Withdrawal)
    tx = result.transaction
    return {
        "account": address_hex(result.account),
        "sequence": result.sequence,
        "recipient": address_hex(order.recipient),
        **_amount_fields(tokens, order.token, order.amount),
        "status": result.status.value,
        "tx_hash": None if tx is None else hash_hex(tx.tx_hash),
        "block": None if tx is None else tx.block_number,
    }


def _redeem_text(document: dict[str, Any]) -> str:
    status = (
        "redeemed" if document["status"] == "redeemed" else "already redeemed before: nothing done"
    )
    lines = [
        ("withdrawal", f"{document['account']} #{document['sequence']}"),
        ("paid", f"{document['amount']} {document['token']} to {document['recipient']}"),
        ("status", status),
    ]
    if document["tx_hash"]:
        lines.append(("transaction", f"{document['tx_hash']} (block {document['block']})"))
    return pairs(lines)


# ---------------------------------------------------------------- proofs


def _committee_document(network: Network, tokens: TokenRegistry) -> dict[str, Any]:
    return {
        "chain_id": network.domain.chain_id,
        "vault": address_hex(network.domain.vault),
        "committees": [
            {
                "epoch": c.epoch,
                "quorum": c.quorum,
                "members": [address_hex(m) for m in c.members],
            }
            for _, c in sorted(network.committees.items())
        ],
        "tokens": [
            {"symbol": t.symbol, "address": address_hex(t.address), "decimals": t.decimals}
            for t in tokens
        ],
    }


def _committees_from_file(path: str) -> tuple[Domain, dict[Epoch, Committee], TokenRegistry]:
    """The domain, committees and tokens of a ``committee --out`` file, or of a manifest."""
    data = read_json(path, "committee file")
    if isinstance(data, dict) and "committees" in data:
        try:
            domain = Domain(int(data["chain_id"]), parse_address(data["vault"], field="vault"))
            committees = [
                Committee(
                    Epoch(int(c["epoch"])),
                    int(c["quorum"]),
                    tuple(parse_address(m, field="members") for m in c["members"]),
                )
                for c in data["committees"]
            ]
            tokens = TokenRegistry.from_triples(
                [(t["symbol"], t["address"], int(t["decimals"])) for t in data.get("tokens", [])]
            )
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, EncodingError):
                raise
            raise EncodingError("committee file", "expected chain_id, vault, committees") from None
        return domain, {c.epoch: c for c in committees}, tokens
    connection = context.manifest_connection(path)
    network = connection.network
    return network.domain, network.committees, connection.tokens


async def cmd_committee(args: argparse.Namespace, out: Output, home: Home) -> None:
    connection = await _connect(args)
    document = _committee_document(connection.network, connection.tokens)
    if args.out:
        _write_json(args.out, document)
    text = pairs(
        [
            ("chain", f"{document['chain_id']}, vault {document['vault']}"),
            *(
                (f"epoch {c['epoch']}", f"quorum {c['quorum']} of {len(c['members'])}")
                for c in document["committees"]
            ),
            ("endpoints", ", ".join(connection.network.endpoints)),
            *([("written to", args.out)] if args.out else []),
        ]
    )
    out.result(document, text)


async def cmd_verify(args: argparse.Namespace, out: Output, home: Home) -> None:
    receipt = receipt_from_json(read_json(args.receipt, "receipt"))
    if args.committee:
        domain, committees, registry = _committees_from_file(args.committee)
    else:
        try:
            connection = await _connect(args)
        except context.NotConnected:
            raise CliError(
                "verify needs the committee: pass --committee FILE (from `farthing-wallet "
                "committee --out FILE`), --manifest PATH, or --rpc-url URL --vault ADDRESS"
            ) from None
        domain, committees = connection.network.domain, connection.network.committees
        registry = connection.tokens
    verify_receipt(receipt, committees, domain)  # InvalidReceipt: exit code 5
    order = receipt.certificate.order
    document = {
        "valid": True,
        "kind": "transfer" if isinstance(order, Transfer) else "withdrawal",
        "owner": address_hex(order.owner),
        "to": address_hex(order.payee if isinstance(order, Transfer) else order.recipient),
        **_amount_fields(registry, order.token, order.amount),
        "sequence": order.sequence,
        "reference": hash_hex(order.reference) if isinstance(order, Transfer) else None,
        "epoch": receipt.certificate.epoch,
        "votes": len(receipt.certificate.votes),
        "node": address_hex(receipt.node),
        "log_index": receipt.log_index,
        "tree_size": receipt.checkpoint.tree_size,
    }
    owner_to = f"{document['owner']} -> {document['to']}"
    logged = f"{document['tree_size']} in node {document['node']}'s log"
    text = pairs(
        [
            ("valid", "yes: certificate, quorum, checkpoint signature and inclusion proof"),
            ("payment", f"{document['amount']} {document['token']} {owner_to}"),
            ("sequence", document["sequence"]),
            ("certificate", f"epoch {document['epoch']}, {document['votes']} votes"),
            ("logged", f"entry {receipt.log_index} of {logged}"),
        ]
    )
    out.result(document, text)


# ---------------------------------------------------------------- the spending policy


def _policy_tokens(args: argparse.Namespace) -> TokenRegistry:
    """The policy file is keyed by symbol: a manifest's tokens if one is named, else
    Farthing's two (USDF, FAR) with placeholder addresses."""
    if args.manifest:
        return context.manifest_connection(args.manifest).tokens
    return context.OFFLINE_TOKENS


def _policy_text(home: Home, document: dict[str, Any], exists: bool) -> str:
    def shown(value: object, unit: str = "") -> str:
        if value is None:
            return "none"
        return f"{value}{unit}"

    per_token = ", ".join(f"{v} {k}" for k, v in document["max_per_payment"].items()) or "none"
    caps = ", ".join(f"{k}: {v} USD" for k, v in document["payee_caps_usd"].items()) or "none"
    allow = "anyone" if document["allow"] is None else ", ".join(document["allow"]) or "nobody"
    return pairs(
        [
            ("policy file", f"{home.policy}" + ("" if exists else " (absent: the defaults)")),
            ("period", f"{document['period_seconds']} s"),
            ("budget", shown(document["budget_usd"], " USD per period")),
            ("max per payment", per_token),
            ("max per payment (USD)", shown(document["max_per_payment_usd"], " USD")),
            ("allow", allow),
            ("deny", ", ".join(document["deny"]) or "nobody"),
            ("payee caps", caps),
            ("default payee cap", shown(document["default_payee_cap_usd"], " USD per period")),
            ("max price age", f"{document['max_price_age_seconds']} s"),
        ]
    )


def _usd_or_none(text: str, field: str) -> Any:
    return None if text.lower() == "none" else parse_usd(text, field=field)


def _duration(text: str, field: str) -> int:
    """Seconds from ``3600``, ``90s``, ``15m``, ``1h`` or ``1d``."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    number, unit = (text[:-1], units[text[-1]]) if text[-1:] in units else (text, 1)
    if not number.isdigit() or not number.isascii():
        raise EncodingError(field, "expected seconds, or a number with s, m, h or d")
    return int(number) * unit


def cmd_policy(args: argparse.Namespace, out: Output, home: Home) -> None:
    action = args.policy_command
    if action == "spent":
        _policy_spent(args, out, home)
        return
    tokens = _policy_tokens(args)
    policy = home.load_policy(tokens)
    if action == "reset":
        policy = SpendingPolicy()
    elif action == "set":
        policy = _edit_policy(args, policy, tokens)
    if action in ("set", "reset"):
        home.ensure()
        policy.save(home.policy)
    document = policy.to_json()
    out.result(
        {"file": str(home.policy), "policy": document},
        _policy_text(home, document, home.policy.exists()),
    )


def _edit_policy(
    args: argparse.Namespace, policy: SpendingPolicy, tokens: TokenRegistry
) -> SpendingPolicy:
    changes: dict[str, Any] = {}
    limits = dict(policy.max_per_payment)
    for text in args.max_per_payment or ():
        number, _, symbol = text.partition(" ")
        if number.lower() == "none":
            limits.pop(token_by_symbol(symbol, tokens), None)
        else:
            amount = parse_amount(text, tokens, positive=False)
            limits[amount.token] = amount.units
    if args.max_per_payment is not None:
        changes["max_per_payment"] = limits
    if args.max_per_payment_usd is not None:
        changes["max_per_payment_usd"] = _usd_or_none(args.max_per_payment_usd, "max per payment")
    if args.budget_usd is not None:
        changes["budget_usd"] = _usd_or_none(args.budget_usd, "budget")
    if args.period is not None:
        changes["period"] = _duration(args.period, "period")
    if args.max_price_age is not None:
        changes["max_price_age"] = _duration(args.max_price_age, "max price age")
    if args.default_payee_cap_usd is not None:
        changes["default_payee_cap_usd"] = _usd_or_none(
            args.default_payee_cap_usd, "default payee cap"
        )
    allow = None if policy.allow is None else set(policy.allow)
    if args.allow_anyone:
        allow = None
    for text in args.allow or ():
        allow = (allow or set()) | {parse_account(text, field="--allow")}
    for text in args.disallow or ():
        if allow is not None:
            allow.discard(parse_account(text, field="--disallow"))
    if args.allow_anyone or args.allow or args.disallow:
        changes["allow"] = None if allow is None else frozenset(allow)
    deny = set(policy.deny)
    deny |= {parse_account(text, field="--deny") for text in args.deny or ()}
    deny -= {parse_account(text, field="--undeny") for text in args.undeny or ()}
    changes["deny"] = frozenset(deny)
    caps = dict(policy.payee_caps_usd)
    for text in args.payee_cap or ():
        who, equals, value = text.partition("=")
        if not equals:
            raise EncodingError("--payee-cap", "expected ADDRESS=USD (or ADDRESS=none)")
        payee = parse_account(who, field="--payee-cap")
        cap = _usd_or_none(value, "--payee-cap")
        if cap is None:
            caps.pop(payee, None)
        else:
            caps[payee] = cap
    changes["payee_caps_usd"] = caps
    return replace(policy, **changes)


def _policy_spent(args: argparse.Namespace, out: Output, home: Home) -> None:
    tokens = _policy_tokens(args)
    policy = home.load_policy(tokens)
    ledger = SpendLedger.open(home.spend_ledger)
    now = int(time.time())
    window = ledger.window_spend(now, policy.period)
    references = ledger.references()
    if args.reference is not None:
        wanted = parse_reference(args.reference)
        references = {wanted: ledger.spent_by_reference(wanted)}
    rows: list[dict[str, Any]] = [
        {
            "reference": hash_hex(reference),
            "usd": format_units(spend.usd, USD_DECIMALS),
            "amounts": [
                {"token": a.token.symbol, "amount": a.decimal, "base_units": str(a.units)}
                for a in spend.amounts
            ],
            "payments": spend.payments,
        }
        for reference, spend in sorted(references.items())
    ]
    budget = policy.budget_usd
    document = {
        "period_seconds": policy.period,
        "spent_in_period_usd": format_units(window, USD_DECIMALS),
        "budget_usd": None if budget is None else format_units(budget, USD_DECIMALS),
        "pending_reservations": len(ledger.pending()),
        "references": rows,
    }
    limit = "no budget" if budget is None else format_usd(budget)
    head = pairs(
        [
            ("spent in the last period", f"{format_usd(window)} of {limit}"),
            ("pending", f"{len(ledger.pending())} reservation(s)"),
        ]
    )
    body = table(
        ["reference", "USD", "amounts", "payments"],
        [
            [
                r["reference"],
                r["usd"],
                " + ".join(f"{a['amount']} {a['token']}" for a in r["amounts"]) or "nothing",
                r["payments"],
            ]
            for r in rows
        ],
    )
    out.result(document, f"{head}\n{body}")
