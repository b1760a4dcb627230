from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from devnet.anvil import (
    PROJECT_ROOT,
    AnvilConfig,
    build_command,
    find_anvil,
    log_tail,
    platform_package,
    rpc_chain_id,
    running_anvil,
    start_anvil,
    wait_until_ready,
)
from devnet.errors import AnvilError, ConfigError, ToolchainMissingError
from devnet.keys import DEVNET_MNEMONIC
from devnet.ports import free_port, is_port_free


def test_build_command_is_the_exact_argv() -> None:
    config = AnvilConfig(host="127.0.0.1", port=9545, accounts=9)
    assert build_command(config, Path("/x/anvil")) == [
        "/x/anvil",
        "--host",
        "127.0.0.1",
        "--port",
        "9545",
        "--chain-id",
        "31337",
        "--accounts",
        "9",
        "--mnemonic",
        DEVNET_MNEMONIC,
    ]


def test_build_command_appends_extra_args() -> None:
    config = AnvilConfig(extra_args=("--silent", "--steps-tracing"))
    assert build_command(config, Path("anvil"))[-2:] == ["--silent", "--steps-tracing"]


def test_build_command_is_pure() -> None:
    config = AnvilConfig(port=1234, chain_id=5, accounts=2, mnemonic="a b c")
    first = build_command(config, Path("anvil"))
    assert build_command(config, Path("anvil")) == first
    assert first[first.index("--chain-id") + 1] == "5"
    assert first[-1] == "a b c"


@pytest.mark.parametrize("kwargs", [{"port": 0}, {"port": 65536}, {"accounts": 0}, {"chain_id": 0}])
def test_anvil_config_refuses_bad_values(kwargs: dict[str, int]) -> None:
    with pytest.raises(ConfigError):
        AnvilConfig(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("host", "url"),
    [
        ("127.0.0.1", "http://127.0.0.1:8545"),
        ("0.0.0.0", "http://127.0.0.1:8545"),  # noqa: S104
        ("::1", "http://[::1]:8545"),
        ("::", "http://[::1]:8545"),
    ],
)
def test_rpc_url(host: str, url: str) -> None:
    assert AnvilConfig(host=host).rpc_url == url


@pytest.mark.parametrize(
    ("os_name", "machine", "package"),
    [
        ("linux", "x86_64", "anvil-linux-amd64"),
        ("linux", "aarch64", "anvil-linux-arm64"),
        ("darwin", "arm64", "anvil-darwin-arm64"),
        ("darwin", "x86_64", "anvil-darwin-amd64"),
        ("win32", "AMD64", "anvil-win32-amd64"),
    ],
)
def test_platform_package(os_name: str, machine: str, package: str) -> None:
    assert platform_package(os_name, machine) == package


def test_unknown_platform_is_reported() -> None:
    with pytest.raises(ToolchainMissingError, match="not packaged for sunos/sparc"):
        platform_package("sunos", "sparc")


def test_find_anvil_without_node_modules_says_what_to_run(tmp_path: Path) -> None:
    with pytest.raises(ToolchainMissingError) as info:
        find_anvil(tmp_path)
    assert str(info.value) == "node_modules is missing: run ./scripts/setup.sh"


def test_find_anvil_without_the_platform_package(tmp_path: Path) -> None:
    (tmp_path / "node_modules" / "@foundry-rs").mkdir(parents=True)
    with pytest.raises(ToolchainMissingError, match=r"anvil is not installed .*setup\.sh"):
        find_anvil(tmp_path)


def test_find_anvil_in_this_checkout() -> None:
    path = find_anvil(PROJECT_ROOT)
    assert path.is_file()
    assert os.access(path, os.X_OK)


def test_log_tail(tmp_path: Path) -> None:
    log = tmp_path / "x.log"
    log.write_text("".join(f"line {i}\n" for i in range(30)))
    assert log_tail(log, 2) == "line 28\nline 29"
    assert log_tail(tmp_path / "missing.log") == ""


def test_anvil_exiting_early_is_reported_with_its_log(
    tmp_path: Path, fake_anvil: Callable[[str], Path]
) -> None:
    anvil = fake_anvil('echo "error: something broke" >&2\nexit 3')
    log = tmp_path / "anvil.log"
    process = start_anvil(AnvilConfig(port=free_port()), anvil, log)
    try:
        with pytest.raises(AnvilError) as info:
            wait_until_ready(process, "http://127.0.0.1:1", log, timeout=10)
    finally:
        process.wait()
    assert "exited with code 3" in str(info.value)
    assert "error: something broke" in str(info.value)
    assert log.stat().st_mode & 0o777 == 0o600


def test_anvil_that_never_answers_times_out(
    tmp_path: Path, fake_anvil: Callable[[str], Path]
) -> None:
    anvil = fake_anvil("echo starting\nexec sleep 30")
    log = tmp_path / "anvil.log"
    process = start_anvil(AnvilConfig(port=free_port()), anvil, log)
    try:
        with pytest.raises(AnvilError, match=r"did not answer .* within 0\.3 s"):
            wait_until_ready(process, f"http://127.0.0.1:{free_port()}", log, timeout=0.3)
    finally:
        process.kill()
        process.wait()


def test_a_missing_binary_is_an_anvil_error(tmp_path: Path) -> None:
    with pytest.raises(AnvilError, match="could not start"):
        start_anvil(AnvilConfig(), tmp_path / "no-such-anvil", tmp_path / "anvil.log")


def test_anvil_runs_in_its_own_session(tmp_path: Path, fake_anvil: Callable[[str], Path]) -> None:
    process = start_anvil(AnvilConfig(), fake_anvil("exec sleep 30"), tmp_path / "a.log")
    try:
        assert os.getpgid(process.pid) == process.pid
        assert os.getsid(process.pid) != os.getsid(0)
    finally:
        process.kill()
        process.wait()


@pytest.mark.integration
def test_running_anvil_answers_then_stops(tmp_path: Path) -> None:
    config = AnvilConfig(port=free_port(), accounts=2, extra_args=("--silent",))
    with running_anvil(config, tmp_path / "anvil.log") as url:
        assert rpc_chain_id(url) == 31337
        assert not is_port_free("127.0.0.1", config.port)
    assert is_port_free("127.0.0.1", config.port)
