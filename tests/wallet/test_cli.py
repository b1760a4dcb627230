"""``farthing-wallet`` called in process (``main(argv)``) with a temporary home, the
passphrase in FARTHING_PASSPHRASE and light scrypt: keys, policy, offline verification,
and the one-line messages and exit codes of the errors. The last test runs the whole
command line on a devnet (integration)."""

from __future__ import annotations

import asyncio
import io
import json
import stat
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.wallet.client_fakes import DOMAIN, TOKEN, make_committee
from wallet.amounts import Token
from wallet.cli import context, main
from wallet.cli.app import EXIT_CALLER, EXIT_CHAIN, EXIT_POLICY, EXIT_RETRY, EXIT_USAGE, explain
from wallet.cli.output import Output, table
from wallet.client import Receipt, Wallet, receipt_to_json
from wallet.codec import address_hex
from wallet.errors import (
    ChainUnavailable,
    InsufficientBalance,
    PolicyRefused,
    QuorumUnavailable,
    TransactionReverted,
)
from wallet.keccak import keccak256
from wallet.keys import agent_address, key_from_mnemonic
from wallet.keystore import ScryptParams
from wallet.signing import PrivateKey
from wallet.spend_ledger import SpendLedger, SpendRecord
from wallet.types import Amount, Hash32

PASSPHRASE = "a test passphrase"
# anvil's PUBLIC test mnemonic and its accounts 0 and 1: never for real value.
TEST_MNEMONIC = "test test test test test test test test test test test junk"
ANVIL_0 = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
ANVIL_1 = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
ANVIL_0_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
PAYEE = "0xB0B0b0B0B0B0B0b0B0B0B0b0b0b0b0B0b0b0B0B0"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(context, "KEYSTORE_SCRYPT", ScryptParams(n=1 << 10, r=8, p=1))
    monkeypatch.setenv("FARTHING_PASSPHRASE", PASSPHRASE)
    monkeypatch.setenv("FARTHING_HOME", str(tmp_path / "home"))
    for name in (context.MANIFEST_ENV, context.RPC_URL_ENV, context.VAULT_ENV):
        monkeypatch.delenv(name, raising=False)
    return tmp_path / "home"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> Any:
    code, out, err = run(capsys, "--json", *argv)
    assert code == 0, err
    return json.loads(out)


def one_line_error(err: str) -> str:
    """The single stderr line of a failure (and no traceback)."""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("farthing-wallet: ")
    assert "Traceback" not in err
    return lines[0]


def stdin(monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(text))


# ---------------------------------------------------------------- keys


def test_new_writes_a_private_keystore_and_prints_both_addresses(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    document = run_json(capsys, "new")
    keystore = home / "keystore.json"
    assert document["keystore"] == str(keystore)
    assert stat.S_IMODE(keystore.stat().st_mode) == 0o600
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    assert document["address"].startswith("0x") and len(document["address"]) == 42
    assert document["agent_address"].startswith("agent1")
    assert "mnemonic" not in document
    assert run_json(capsys, "address") == document

    code, out, _ = run(capsys, "address")
    assert code == 0
    assert document["address"] in out and document["agent_address"] in out


def test_new_with_mnemonic_shows_it_once_with_a_warning(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "new", "--mnemonic", "--words", "24")
    assert code == 0
    assert "WRITE THIS MNEMONIC DOWN" in out
    words = out.strip().splitlines()[-1].split()
    assert len(words) == 24
    key = key_from_mnemonic(" ".join(words))
    assert address_hex(key.address) in out
    # Shown once: not in the keystore, not by `address`.
    _, again, _ = run(capsys, "address")
    assert words[0] + " " + words[1] not in again


def test_new_refuses_to_replace_a_keystore(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    first = run_json(capsys, "new")
    code, _, err = run(capsys, "new")
    assert code == EXIT_CALLER
    assert "already there" in one_line_error(err) and "--force" in err
    assert run_json(capsys, "address") == first
    assert run_json(capsys, "new", "--force")["address"] != first["address"]


def test_import_a_hex_key_from_stdin(
    home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    stdin(monkeypatch, ANVIL_0_KEY + "\n")
    document = run_json(capsys, "import")
    assert document["address"] == ANVIL_0
    assert document["agent_address"] == agent_address(PrivateKey.from_hex(ANVIL_0_KEY))
    assert ANVIL_0_KEY[2:] not in (home / "keystore.json").read_text()


def test_import_a_mnemonic_account(
    home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    stdin(monkeypatch, TEST_MNEMONIC + "\n")
    assert run_json(capsys, "import", "--mnemonic", "--index", "1")["address"] == ANVIL_1


def test_import_never_takes_or_echoes_a_key_argument(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "import", ANVIL_0_KEY)
    assert code == EXIT_USAGE
    assert ANVIL_0_KEY[2:12] not in out + err
    assert not (home / "keystore.json").exists()


def test_import_refuses_bad_or_missing_input(
    home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    stdin(monkeypatch, "")
    code, _, err = run(capsys, "import")
    assert code == EXIT_CALLER
    assert "pipe it on standard input" in one_line_error(err)

    secret = "ab" * 31  # not 32 bytes
    stdin(monkeypatch, secret + "\n")
    code, _, err = run(capsys, "import")
    assert code == EXIT_CALLER
    assert secret not in err
    one_line_error(err)

    stdin(monkeypatch, "test " * 11 + "test\n")  # a wrong checksum
    code, _, err = run(capsys, "import", "--mnemonic")
    assert code == EXIT_CALLER
    assert "test test" not in one_line_error(err)


def test_wrong_passphrase(
    home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    run_json(capsys, "new")
    monkeypatch.setenv("FARTHING_PASSPHRASE", "not the passphrase")
    code, out, err = run(capsys, "address")
    assert code == EXIT_CALLER
    line = one_line_error(err)
    assert "wrong passphrase" in line and "FARTHING_PASSPHRASE" in line
    assert out == ""


def test_no_passphrase_and_no_terminal(
    home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FARTHING_PASSPHRASE")
    stdin(monkeypatch, "")
    code, _, err = run(capsys, "new")
    assert code == EXIT_CALLER
    assert "set FARTHING_PASSPHRASE" in one_line_error(err)
    assert not (home / "keystore.json").exists()


def test_no_keystore(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "address")
    assert code == EXIT_CALLER
    assert "farthing-wallet new" in one_line_error(err)


def test_keystore_option_and_json_error_document(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = tmp_path / "elsewhere" / "agent.json"
    created = run_json(capsys, "--keystore", str(other), "new")
    assert created["keystore"] == str(other)
    # Global options are accepted after the command too.
    assert run_json(capsys, "address", "--keystore", str(other)) == created

    code, out, err = run(capsys, "--json", "address")  # the default keystore: none
    assert code == EXIT_CALLER
    error = json.loads(out)["error"]
    assert error["exit_code"] == EXIT_CALLER and error["retryable"] is False
    assert error["message"] in err


def test_usage_errors(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "frobnicate")
    assert code == EXIT_USAGE
    assert "invalid choice" in err
    code, out, _ = run(capsys, "--json", "pay")
    assert code == EXIT_USAGE
    assert json.loads(out)["error"]["exit_code"] == EXIT_USAGE


# ---------------------------------------------------------------- the network, unreachable


def write_manifest(path: Path) -> Path:
    """A manifest whose committee's nodes and chain do not answer (closed ports)."""
    members = [
        {
            "address": address_hex(PrivateKey(bytes([i + 1] * 32)).address),
            "endpoint": f"http://127.0.0.1:{9 + i}",
        }
        for i in range(4)
    ]
    manifest = {
        "version": 1,
        "chain_id": 31337,
        "rpc_url": "http://127.0.0.1:9",
        "contracts": {
            "vault": "0x" + "cf" * 20,
            "stable": "0x" + "5f" * 20,
            "native": "0x" + "e7" * 20,
            "price_feed": "0x" + "9f" * 20,
        },
        "committee": {"epoch": 1, "quorum": 3, "members": members},
        "agents": [],
    }
    path.write_text(json.dumps(manifest))
    return path


def test_no_network_named(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_json(capsys, "new")
    code, _, err = run(capsys, "balance")
    assert code == EXIT_CALLER
    assert "--manifest PATH" in one_line_error(err) and "--rpc-url" in err
    code, _, err = run(capsys, "balance", "--manifest", "/nonexistent/manifest.json")
    assert code == EXIT_CALLER
    assert "devnet up" in one_line_error(err)


def test_unreachable_nodes(home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_json(capsys, "new")
    manifest = write_manifest(tmp_path / "manifest.json")
    code, _, err = run(capsys, "--manifest", str(manifest), "--timeout", "1", "balance")
    assert code == EXIT_RETRY
    line = one_line_error(err)
    assert "cannot reach a quorum" in line and "retry" in line


def test_unknown_token(home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_json(capsys, "new")
    manifest = write_manifest(tmp_path / "manifest.json")
    code, _, err = run(capsys, "--manifest", str(manifest), "pay", PAYEE, "1 XYZ")
    assert code == EXIT_CALLER
    assert one_line_error(err).endswith("unknown token XYZ: known are USDF, FAR")
    code, _, err = run(capsys, "policy", "set", "--max-per-payment", "2 DOGE")
    assert code == EXIT_CALLER
    assert "unknown token DOGE: known are USDF, FAR" in one_line_error(err)


def test_unreachable_rpc(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_json(capsys, "new")
    vault = "0x" + "cf" * 20
    code, _, err = run(capsys, "--rpc-url", "http://127.0.0.1:9", "--vault", vault, "balance")
    assert code == EXIT_RETRY
    line = one_line_error(err)
    assert "the chain does not answer" in line and "--rpc-url" in line


@pytest.mark.parametrize(
    ("error", "code", "words"),
    [
        (InsufficientBalance("insufficient_balance", "x"), EXIT_CALLER, "deposit more"),
        (PolicyRefused("budget", "over by 1 USD"), EXIT_POLICY, "policy show"),
        (QuorumUnavailable("paying", {"http://n1": "refused"}), EXIT_RETRY, "retry"),
        (ChainUnavailable("http://rpc: no answer"), EXIT_RETRY, "--rpc-url"),
        (TransactionReverted("reverted", error="TokenNotRegistered"), EXIT_CHAIN, "refused"),
        (RuntimeError("boom"), 70, "report"),
    ],
)
def test_every_error_has_a_code_and_says_what_to_do(
    error: BaseException, code: int, words: str
) -> None:
    assert explain(error)[0] == code
    assert words in explain(error)[1]


# ---------------------------------------------------------------- the policy


def test_policy_show_set_reset(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shown = run_json(capsys, "policy", "show")
    assert shown["file"] == str(home / "policy.json")
    assert shown["policy"]["budget_usd"] is None
    agent = agent_address(PrivateKey.from_hex(ANVIL_0_KEY))

    edited = run_json(
        capsys, "policy", "set",
        "--budget-usd", "10", "--period", "1d", "--max-per-payment", "0.5 USDF",
        "--max-per-payment", "2 far", "--max-per-payment-usd", "1", "--deny", PAYEE,
        "--allow", ANVIL_1, "--payee-cap", f"{agent}=2.5", "--default-payee-cap-usd", "1",
        "--max-price-age", "15m",
    )["policy"]  # fmt: skip
    assert edited["budget_usd"] == "10"
    assert edited["period_seconds"] == 86_400
    assert edited["max_price_age_seconds"] == 900
    assert edited["max_per_payment"] == {"FAR": "2", "USDF": "0.5"}
    assert edited["deny"] == [PAYEE] and edited["allow"] == [ANVIL_1]
    assert edited["payee_caps_usd"] == {ANVIL_0: "2.5"}  # the agent address's 0x account
    assert json.loads((home / "policy.json").read_text()) == edited
    assert stat.S_IMODE((home / "policy.json").stat().st_mode) == 0o600

    removed = run_json(
        capsys, "policy", "set", "--budget-usd", "none", "--max-per-payment", "none USDF",
        "--undeny", PAYEE, "--allow-anyone", "--payee-cap", f"{ANVIL_0}=none",
    )["policy"]  # fmt: skip
    assert removed["budget_usd"] is None
    assert removed["max_per_payment"] == {"FAR": "2"}
    assert removed["deny"] == [] and removed["allow"] is None
    assert removed["payee_caps_usd"] == {}
    assert removed["max_per_payment_usd"] == "1"  # untouched

    code, out, _ = run(capsys, "policy", "show")
    assert code == 0 and "max per payment (USD)  1 USD" in out

    assert run_json(capsys, "policy", "reset")["policy"]["max_per_payment"] == {}


def test_policy_set_refuses_bad_values(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (
        ["--budget-usd", "-1"],
        ["--budget-usd", "1e3"],
        ["--period", "soon"],
        ["--deny", "0x1234"],
        ["--payee-cap", PAYEE],
    ):
        code, _, err = run(capsys, "policy", "set", *argv)
        assert code == EXIT_CALLER, argv
        one_line_error(err)
    assert not (home / "policy.json").exists()


def test_policy_spent_per_reference(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    home.mkdir(mode=0o700)
    usdf = next(t for t in context.OFFLINE_TOKENS if t.symbol == "USDF")
    ledger = SpendLedger.open(home / "spend.json")
    task = Hash32(keccak256(b"quote-17"))
    for units in (1_500_000, 500_000):
        ledger.record(
            SpendRecord(0, bytes(20), Token(usdf.address, "USDF", 6, True), Amount(units),
                        units * 10**12, task)  # type: ignore[arg-type]
        )  # fmt: skip
    spent = run_json(capsys, "policy", "spent", "--reference", "quote-17")
    [row] = spent["references"]
    assert row["reference"] == "0x" + task.hex()
    assert row["usd"] == "2" and row["payments"] == 2
    assert row["amounts"] == [{"token": "USDF", "amount": "2", "base_units": "2000000"}]
    code, out, _ = run(capsys, "policy", "spent")
    assert code == 0 and "2 USDF" in out


# ---------------------------------------------------------------- verify, offline


@pytest.fixture(scope="module")
def fake_receipt() -> tuple[Receipt, dict[str, Any]]:
    """A real receipt of the fake committee and its committee document."""

    async def scenario() -> tuple[Receipt, dict[str, Any]]:
        net = make_committee()
        payer = PrivateKey(bytes([0x11] * 32))
        net.credit(payer.address, 100)
        with tempfile.TemporaryDirectory() as data:
            async with Wallet(payer, net.network, data_dir=data, transport=net.transport) as w:
                receipt = await w.pay(PrivateKey(bytes([0x22] * 32)).address, Amount(3), TOKEN)
        committee = net.network.committee
        return receipt, {
            "chain_id": DOMAIN.chain_id,
            "vault": address_hex(DOMAIN.vault),
            "committees": [
                {
                    "epoch": committee.epoch,
                    "quorum": committee.quorum,
                    "members": [address_hex(m) for m in committee.members],
                }
            ],
        }

    return asyncio.run(scenario())


def test_verify_a_receipt_offline(
    home: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    fake_receipt: tuple[Receipt, dict[str, Any]],
) -> None:
    receipt, committee = fake_receipt
    receipt_file = tmp_path / "receipt.json"
    receipt_file.write_text(json.dumps(receipt_to_json(receipt)))
    committee_file = tmp_path / "committee.json"
    committee_file.write_text(json.dumps(committee))

    verified = run_json(capsys, "verify", str(receipt_file), "--committee", str(committee_file))
    assert verified["valid"] is True
    assert verified["kind"] == "transfer" and verified["base_units"] == "3"
    assert verified["node"] == address_hex(receipt.node)
    code, out, _ = run(capsys, "verify", str(receipt_file), "--committee", str(committee_file))
    assert code == 0 and "valid" in out

    tampered = receipt_to_json(receipt)
    tampered["log_index"] += 1
    receipt_file.write_text(json.dumps(tampered))
    code, _, err = run(capsys, "verify", str(receipt_file), "--committee", str(committee_file))
    assert code == 5
    assert "does NOT verify" in one_line_error(err)

    other = dict(committee, chain_id=1)  # another domain: every signature is wrong
    committee_file.write_text(json.dumps(other))
    receipt_file.write_text(json.dumps(receipt_to_json(receipt)))
    code, _, err = run(capsys, "verify", str(receipt_file), "--committee", str(committee_file))
    assert code == 5


def test_verify_needs_a_committee_and_a_receipt(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "verify", str(tmp_path / "missing.json"))
    assert code == EXIT_CALLER
    assert "no receipt at" in one_line_error(err)
    (tmp_path / "receipt.json").write_text("{}")
    code, _, err = run(capsys, "verify", str(tmp_path / "receipt.json"))
    assert code == EXIT_CALLER
    one_line_error(err)


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(
    ("stream", "json_mode", "shown"),
    [(Terminal, False, True), (Terminal, True, False), (io.StringIO, False, False)],
)
def test_progress_only_on_a_terminal_and_never_with_json(
    stream: type[io.StringIO], json_mode: bool, shown: bool
) -> None:
    err, out = stream(), io.StringIO()
    output = Output(json_mode=json_mode, stdout=out, stderr=err)

    async def wait() -> None:
        async with output.progress("waiting for the chain"):
            await asyncio.sleep(0.25)

    asyncio.run(wait())
    assert ("waiting for the chain" in err.getvalue()) is shown
    assert err.getvalue().endswith("\r\033[K") is shown
    assert out.getvalue() == ""


def test_a_receipt_file_that_cannot_be_written_is_refused_before_paying(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_json(capsys, "new")
    manifest = write_manifest(tmp_path / "manifest.json")
    nowhere = str(tmp_path / "missing" / "receipt.json")
    code, _, err = run(
        capsys, "--manifest", str(manifest), "pay", PAYEE, "1 USDF", "--receipt-out", nowhere
    )
    assert code == EXIT_CALLER
    assert "no such directory" in one_line_error(err)
    assert not (home / "journal").exists()  # nothing was signed


def test_tables_are_aligned() -> None:
    text = table(["token", "amount"], [["USDF", "1.5"], ["FAR", "12"]])
    assert text.splitlines() == [
        "token  amount",
        "-----  ------",
        "USDF      1.5",
        "FAR        12",
    ]
    assert table(["a"], []).splitlines()[-1] == "(none)"


# ---------------------------------------------------------------- a devnet (integration)


@pytest.fixture(scope="module")
def devnet() -> Iterator[Any]:
    from devnet import Devnet, DevnetConfig

    with Devnet.up(DevnetConfig(start_nodes=True, agents=2)) as net:
        yield net


@pytest.mark.integration
def test_the_command_line_on_a_devnet(
    devnet: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(context, "KEYSTORE_SCRYPT", ScryptParams(n=1 << 10, r=8, p=1))
    monkeypatch.setenv("FARTHING_PASSPHRASE", PASSPHRASE)
    monkeypatch.setenv(context.MANIFEST_ENV, str(devnet.state_dir / "manifest.json"))
    m = devnet.manifest
    alice, bob = m.agents[0], m.agents[1]
    a = ["--home", str(tmp_path / "alice")]
    b = ["--home", str(tmp_path / "bob")]

    def cli(*argv: str) -> Any:
        return run_json(capsys, *argv)

    stdin(monkeypatch, alice.private_key + "\n")  # the manifest's PUBLIC test key
    assert cli(*a, "import")["address"] == alice.address
    stdin(monkeypatch, bob.private_key + "\n")
    assert cli(*b, "import")["address"] == bob.address

    deposit = cli(*a, "deposit", "10 USDF")
    assert deposit["credited"] is True
    assert deposit["base_units"] == "10000000" and deposit["token"] == "USDF"
    start = int(cli(*a, "balance", "--token", "USDF")["balances"][0]["base_units"])
    assert start >= 10 * 10**6

    cli(*a, "policy", "set", "--max-per-payment", "5 USDF")
    code, out, err = run(capsys, *a, "--json", "pay", bob.address, "6 USDF")
    assert code == EXIT_POLICY
    assert json.loads(out)["error"]["type"] == "PolicyRefused"
    assert "max_per_payment" in one_line_error(err)

    receipt_file = tmp_path / "receipt.json"
    paid = cli(
        *a, "pay", bob.address, "1.5 USDF", "--reference", "quote-1",
        "--receipt-out", str(receipt_file),
    )  # fmt: skip
    assert paid["payee"] == bob.address and paid["amount"] == "1.5"
    assert paid["reference"] == "0x" + keccak256(b"quote-1").hex()
    assert paid["reference_spent_usd"] == "1.5"
    assert cli(*a, "policy", "spent", "--reference", "quote-1")["references"][0]["usd"] == "1.5"

    code, _, err = run(capsys, *a, "pay", bob.address, "100000000 USDF")
    assert code == EXIT_POLICY  # the policy refuses before the nodes are asked
    cli(*a, "policy", "reset")
    code, _, err = run(capsys, *a, "pay", bob.address, f"{start} USDF")
    assert code == EXIT_CALLER
    assert "insufficient balance" in one_line_error(err)

    bob_balance = cli(*b, "balance")["balances"]
    assert {"token": "USDF", "amount": "1.5", "base_units": "1500000"} in bob_balance

    history = cli(*a, "history")
    assert history["verified"] is True
    sent = [e for e in history["entries"] if e["direction"] == "sent"]
    assert [(e["counterparty"], e["amount"]) for e in sent] == [(bob.address, "1.5")]
    received = cli(*b, "history")["entries"]
    assert [(e["direction"], e["counterparty"]) for e in received] == [("received", alice.address)]

    verified = cli("verify", str(receipt_file))  # committee from the manifest
    assert verified["valid"] is True and verified["amount"] == "1.5"
    committee_file = tmp_path / "committee.json"
    cli("committee", "--out", str(committee_file))
    monkeypatch.delenv(context.MANIFEST_ENV)
    assert cli("verify", str(receipt_file), "--committee", str(committee_file))["valid"] is True
    monkeypatch.setenv(context.MANIFEST_ENV, str(devnet.state_dir / "manifest.json"))

    withdrawal_file = tmp_path / "withdrawal.json"
    withdrawn = cli(*a, "withdraw", "2 USDF", "--redeem", "--receipt-out", str(withdrawal_file))
    assert withdrawn["recipient"] == alice.address and withdrawn["amount"] == "2"
    assert withdrawn["redeem"]["status"] == "redeemed"
    again = cli(*a, "redeem", str(withdrawal_file))
    assert again["status"] == "already_redeemed"
    after = int(cli(*a, "balance", "--token", "USDF")["balances"][0]["base_units"])
    assert after == start - 1_500_000 - 2_000_000
