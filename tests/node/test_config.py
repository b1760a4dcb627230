"""The node's configuration: merging, validation and the key, each refusal with its message."""

from __future__ import annotations

from pathlib import Path

import pytest

from node.config import KEY_ENV, build_config
from node.errors import NodeConfigError
from tests.node.factories import MEMBERS

VAULT = "0xCf7Ed3AccA5a467e9e704C703E8D87F634fB0Fc9"
BASE = {"data_dir": "data", "rpc_url": "http://127.0.0.1:8545", "vault": VAULT}
SECRET_HEX = "4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318"  # a TEST key


def test_flags_override_the_file() -> None:
    config = build_config(
        {**BASE, "port": 9000, "peers": ["http://a"]}, {"port": 9100, "host": None}
    )
    assert config.port == 9100 and config.host == "127.0.0.1" and config.peers == ("http://a",)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({**BASE, "colour": "red"}, "unknown configuration keys: colour"),
        ({"rpc_url": "x", "vault": VAULT}, "missing setting data_dir"),
        ({**BASE, "vault": "0x1234"}, "--vault is not an Ethereum address"),
        ({**BASE, "port": 70000}, "--port must be 0..65535"),
        ({**BASE, "confirmations": 0}, "--confirmations must be a positive integer"),
    ],
)
def test_bad_settings_are_refused(values: dict[str, object], message: str) -> None:
    with pytest.raises(NodeConfigError, match=message):
        build_config(values, {})


def test_key_from_a_private_file_or_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key_file = tmp_path / "key"
    key_file.write_text(SECRET_HEX + "\n")
    key_file.chmod(0o600)
    config = build_config({**BASE, "key_file": str(key_file)}, {})
    assert config.load_key().address == config.load_key().address

    key_file.chmod(0o644)
    with pytest.raises(NodeConfigError, match="readable by others: chmod 600"):
        config.load_key()
    with pytest.raises(NodeConfigError, match="cannot read the key file"):
        build_config({**BASE, "key_file": str(tmp_path / "missing")}, {}).load_key()

    no_file = build_config(BASE, {})
    monkeypatch.delenv(KEY_ENV, raising=False)
    with pytest.raises(NodeConfigError, match=f"set {KEY_ENV}"):
        no_file.load_key()
    monkeypatch.setenv(KEY_ENV, "0x" + SECRET_HEX)
    assert no_file.load_key().address != MEMBERS[0].address
    monkeypatch.setenv(KEY_ENV, "not a key")
    with pytest.raises(NodeConfigError, match="not a 32-byte hex") as refused:
        no_file.load_key()
    assert "not a key" not in str(refused.value)


def test_checkpoint_policy_and_witness_interval_from_file_and_flags() -> None:
    from node.cli import _parser

    defaults = build_config(BASE, {})
    assert (defaults.checkpoint_entries, defaults.checkpoint_ms) == (100, 1_000)
    assert defaults.witness_interval == 2.0
    args = _parser().parse_args(
        ["run", "--checkpoint-entries", "5", "--checkpoint-ms", "250", "--witness-interval", "0.5"]
    )
    flags = {k: v for k, v in vars(args).items() if k not in {"command", "config", "log_level"}}
    config = build_config({**BASE, "checkpoint_entries": 50, "checkpoint_ms": 9}, flags)
    assert (config.checkpoint_entries, config.checkpoint_ms, config.witness_interval) == (
        5,
        250,
        0.5,
    )
    from_file = build_config({**BASE, "checkpoint_ms": 9, "witness_interval": 3}, {})
    assert (from_file.checkpoint_entries, from_file.checkpoint_ms) == (100, 9)
    for key, value, flag in [
        ("checkpoint_entries", 0, "--checkpoint-entries"),
        ("checkpoint_ms", -1, "--checkpoint-ms"),
        ("checkpoint_ms", 1.5, "--checkpoint-ms"),
        ("checkpoint_entries", True, "--checkpoint-entries"),
        ("witness_interval", 0, "--witness-interval"),
        ("witness_interval", "2", "--witness-interval"),
    ]:
        with pytest.raises(NodeConfigError, match=flag):
            build_config({**BASE, key: value}, {})


def test_connection_caps_from_file_and_flags() -> None:
    from node.cli import _parser

    defaults = build_config(BASE, {})
    assert (defaults.max_connections, defaults.max_client_connections) == (1_024, 256)
    args = _parser().parse_args(
        ["run", "--max-connections", "300", "--max-client-connections", "20"]
    )
    flags = {k: v for k, v in vars(args).items() if k not in {"command", "config", "log_level"}}
    config = build_config({**BASE, "max_connections": 50}, flags)
    assert (config.max_connections, config.max_client_connections) == (300, 20)
    for key, value, flag in [
        ("max_connections", 0, "--max-connections"),
        ("max_client_connections", -3, "--max-client-connections"),
        ("max_client_connections", "9", "--max-client-connections"),
    ]:
        with pytest.raises(NodeConfigError, match=flag):
            build_config({**BASE, key: value}, {})


def test_submitting_evidence_is_on_unless_turned_off() -> None:
    from node.cli import _parser

    assert build_config(BASE, {}).submit_evidence is True
    flags = {
        k: v
        for k, v in vars(_parser().parse_args(["run", "--no-submit-evidence"])).items()
        if k not in {"command", "config", "log_level"}
    }
    assert build_config(BASE, flags).submit_evidence is False
    assert build_config({**BASE, "submit_evidence": False}, {}).submit_evidence is False
    with pytest.raises(NodeConfigError, match="submit_evidence must be true or false"):
        build_config({**BASE, "submit_evidence": "no"}, {})
