"""anvil, the local chain: find the binary, build its command line, start it, wait for it.

The binary comes from the npm package ``@foundry-rs/anvil`` (its per-platform package
``@foundry-rs/anvil-<os>-<arch>``), installed into ``node_modules`` by ``scripts/setup.sh``.
"""

from __future__ import annotations

import contextlib
import json
import platform
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from devnet.errors import AnvilError, ConfigError, ToolchainMissingError
from devnet.keys import DEVNET_MNEMONIC
from devnet.ports import check_port_free, http_url
from devnet.processes import stop_child

DEVNET_CHAIN_ID = 31337

#: The checkout this package lives in; ``node_modules`` is looked for here.
PROJECT_ROOT = Path(__file__).resolve().parent.parent

_OS = {"linux": "linux", "darwin": "darwin", "win32": "win32"}
_ARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}


@dataclass(frozen=True, slots=True)
class AnvilConfig:
    """What anvil is told on its command line."""

    host: str = "127.0.0.1"
    port: int = 8545
    chain_id: int = DEVNET_CHAIN_ID
    accounts: int = 10
    mnemonic: str = DEVNET_MNEMONIC
    extra_args: tuple[str, ...] = ()  # appended verbatim, e.g. ("--steps-tracing",)

    def __post_init__(self) -> None:
        if not 1 <= self.port <= 65535:
            raise ConfigError(f"port must be in 1..65535, got {self.port}")
        if self.accounts < 1:
            raise ConfigError(f"anvil needs at least 1 account, got {self.accounts}")
        if self.chain_id < 1:
            raise ConfigError(f"chain id must be positive, got {self.chain_id}")

    @property
    def rpc_url(self) -> str:
        """The URL a local client uses to reach this anvil."""
        return http_url(self.host, self.port)


def build_command(config: AnvilConfig, anvil_path: Path) -> list[str]:
    """anvil's argv for ``config``: automine, prefunded accounts from the mnemonic."""
    return [
        str(anvil_path),
        "--host",
        config.host,
        "--port",
        str(config.port),
        "--chain-id",
        str(config.chain_id),
        "--accounts",
        str(config.accounts),
        "--mnemonic",
        config.mnemonic,
        *config.extra_args,
    ]


def platform_package(os_name: str = sys.platform, machine: str = "") -> str:
    """The npm package holding anvil for this platform, e.g. ``anvil-linux-amd64``."""
    machine = (machine or platform.machine()).lower()
    os_part = _OS.get(os_name)
    arch_part = _ARCH.get(machine)
    if os_part is None or arch_part is None:
        raise ToolchainMissingError(f"anvil is not packaged for {os_name}/{machine}")
    return f"anvil-{os_part}-{arch_part}"


def find_anvil(root: Path) -> Path:
    """The anvil binary under ``root/node_modules``, or :class:`ToolchainMissingError`."""
    modules = root / "node_modules"
    if not modules.is_dir():
        raise ToolchainMissingError("node_modules is missing: run ./scripts/setup.sh")
    package = platform_package()
    name = "anvil.exe" if sys.platform == "win32" else "anvil"
    path = modules / "@foundry-rs" / package / "bin" / name
    if not path.is_file():
        raise ToolchainMissingError(f"anvil is not installed (no {path}): run ./scripts/setup.sh")
    return path


def start_anvil(config: AnvilConfig, anvil_path: Path, log_path: Path) -> subprocess.Popen[bytes]:
    """Start anvil in its own session (Ctrl-C in the terminal does not reach it), its
    output written to ``log_path`` (replaced). Does not wait for it to answer."""
    with open(log_path, "wb") as log:
        log_path.chmod(0o600)  # anvil prints the (public) test keys
        try:
            return subprocess.Popen(
                build_command(config, anvil_path),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError as exc:
            raise AnvilError(
                f"could not start {anvil_path}: {exc}: run ./scripts/setup.sh"
            ) from exc


def log_tail(log_path: Path, lines: int = 15) -> str:
    """The last ``lines`` lines of a log file ('' if it cannot be read)."""
    try:
        text = log_path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.rstrip().splitlines()[-lines:])


def rpc_chain_id(url: str, timeout: float = 1.0) -> int:
    """``eth_chainId`` at ``url``; raises ``OSError`` if nothing answers there."""
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []})
    request = urllib.request.Request(  # noqa: S310 (an http URL we built)
        url, data=body.encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
        reply = json.loads(response.read())
    try:
        return int(reply["result"], 16)
    except (KeyError, TypeError, ValueError) as exc:
        raise OSError(f"unexpected eth_chainId reply from {url}: {reply!r}") from exc


def wait_until_ready(
    process: subprocess.Popen[bytes],
    url: str,
    log_path: Path,
    timeout: float = 10.0,
    poll: float = 0.02,
) -> int:
    """Poll ``eth_chainId`` until anvil answers; return the chain id.

    Raises :class:`AnvilError` with the log's tail if anvil exits first, or if it has
    not answered after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        code = process.poll()
        if code is not None:
            raise AnvilError(
                f"anvil exited with code {code} before answering on {url} (if the binary "
                f"is broken, run ./scripts/setup.sh); last lines of {log_path}:\n"
                f"{log_tail(log_path)}"
            )
        try:
            return rpc_chain_id(url)
        except (OSError, ValueError):
            pass
        if time.monotonic() > deadline:
            raise AnvilError(
                f"anvil did not answer on {url} within {timeout:g} s; "
                f"last lines of {log_path}:\n{log_tail(log_path)}"
            )
        time.sleep(poll)


@contextlib.contextmanager
def running_anvil(
    config: AnvilConfig,
    log_path: Path,
    anvil_path: Path | None = None,
    timeout: float = 10.0,
) -> Iterator[str]:
    """A bare anvil (nothing deployed) for the ``with`` body, e.g. one chain for a test
    session: yields its RPC URL, and stops it afterwards whatever happens."""
    check_port_free(config.host, config.port)
    process = start_anvil(config, anvil_path or find_anvil(PROJECT_ROOT), log_path)
    try:
        wait_until_ready(process, config.rpc_url, log_path, timeout)
        yield config.rpc_url
    finally:
        stop_child(process)
