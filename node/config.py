"""The node's configuration: a JSON file and/or command-line flags (flags win).

The private key never sits in the configuration itself: it comes from a key file (hex,
mode 0600) or the ``FARTHING_NODE_KEY`` environment variable, and is never logged.
"""

from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from node.errors import NodeConfigError
from wallet.codec import parse_address
from wallet.errors import EncodingError, InvalidKey
from wallet.signing import PrivateKey
from wallet.types import Address

KEY_ENV = "FARTHING_NODE_KEY"


@dataclass(frozen=True, slots=True)
class NodeConfig:
    data_dir: Path
    rpc_url: str
    vault: Address
    key_file: Path | None = None
    host: str = "127.0.0.1"
    port: int = 8700
    chain_id: int | None = None
    deploy_block: int = 0
    confirmations: int = 2
    poll_interval: float = 1.0
    sync: bool = True
    peers: tuple[str, ...] | None = None  # None: the committee's endpoints from the Vault
    checkpoint_entries: int = 100  # sign a checkpoint when the log grew by this many entries
    checkpoint_ms: int = 1_000  # or when it grew at all and this many ms passed
    witness_interval: float = 2.0  # seconds between rounds of witnessing the peers
    max_connections: int = 1_024  # open HTTP connections, all clients (wallet.serving)
    max_client_connections: int = 256  # open HTTP connections from one IP address
    submit_evidence: bool = True  # take equivocation evidence to the Vault (node.evidence)

    def load_key(self) -> PrivateKey:
        """The node's key, from the key file or the environment (never printed)."""
        if self.key_file is not None:
            try:
                mode = self.key_file.stat().st_mode
                text = self.key_file.read_text().strip()
            except OSError as exc:
                raise NodeConfigError(
                    f"cannot read the key file {self.key_file}: {exc.strerror}"
                ) from None
            if mode & (stat.S_IRWXG | stat.S_IRWXO):
                raise NodeConfigError(
                    f"the key file {self.key_file} is readable by others: chmod 600 it"
                )
        else:
            env = os.environ.get(KEY_ENV)
            if env is None:
                raise NodeConfigError(f"no key: pass --key-file or set {KEY_ENV}")
            text = env.strip()
        try:
            return PrivateKey.from_hex(text)
        except (InvalidKey, EncodingError, ValueError):
            raise NodeConfigError("the node key is not a 32-byte hex secp256k1 key") from None


_FIELDS = {
    "data_dir",
    "rpc_url",
    "vault",
    "key_file",
    "host",
    "port",
    "chain_id",
    "deploy_block",
    "confirmations",
    "poll_interval",
    "sync",
    "peers",
    "checkpoint_entries",
    "checkpoint_ms",
    "witness_interval",
    "max_connections",
    "max_client_connections",
    "submit_evidence",
}


def _positive_int(values: dict[str, Any], name: str, default: int) -> int:
    value = values.get(name, default)
    if type(value) is not int or value < 1:
        raise NodeConfigError(f"--{name.replace('_', '-')} must be a positive integer")
    return value


def _boolean(values: dict[str, Any], name: str, default: bool) -> bool:
    value = values.get(name, default)
    if type(value) is not bool:
        raise NodeConfigError(f"{name} must be true or false")
    return value


def build_config(file_values: dict[str, Any], flags: dict[str, Any]) -> NodeConfig:
    """Merge a config file's values and the flags that were given, and validate them."""
    unknown = set(file_values) - _FIELDS
    if unknown:
        raise NodeConfigError(f"unknown configuration keys: {', '.join(sorted(unknown))}")
    values = {**file_values, **{k: v for k, v in flags.items() if v is not None}}
    for required in ("data_dir", "rpc_url", "vault"):
        if values.get(required) in (None, ""):
            raise NodeConfigError(f"missing setting {required} (--{required.replace('_', '-')})")
    try:
        vault = parse_address(str(values["vault"]))
    except EncodingError:
        raise NodeConfigError("--vault is not an Ethereum address") from None
    port = values.get("port", 8700)
    if not isinstance(port, int) or not 0 <= port <= 65535:
        raise NodeConfigError(f"--port must be 0..65535, got {port!r}")
    confirmations = values.get("confirmations", 2)
    if not isinstance(confirmations, int) or confirmations < 1:
        raise NodeConfigError("--confirmations must be a positive integer")
    peers = values.get("peers")
    witness_interval = values.get("witness_interval", 2.0)
    if type(witness_interval) not in (int, float) or not 0 < witness_interval < 86_400:
        raise NodeConfigError("--witness-interval must be a number of seconds above 0")
    return NodeConfig(
        data_dir=Path(values["data_dir"]),
        rpc_url=str(values["rpc_url"]),
        vault=vault,
        key_file=None if values.get("key_file") is None else Path(values["key_file"]),
        host=str(values.get("host", "127.0.0.1")),
        port=port,
        chain_id=values.get("chain_id"),
        deploy_block=int(values.get("deploy_block", 0)),
        confirmations=confirmations,
        poll_interval=float(values.get("poll_interval", 1.0)),
        sync=bool(values.get("sync", True)),
        peers=None if peers is None else tuple(str(p) for p in peers),
        checkpoint_entries=_positive_int(values, "checkpoint_entries", 100),
        checkpoint_ms=_positive_int(values, "checkpoint_ms", 1_000),
        witness_interval=float(witness_interval),
        max_connections=_positive_int(values, "max_connections", 1_024),
        max_client_connections=_positive_int(values, "max_client_connections", 256),
        submit_evidence=_boolean(values, "submit_evidence", True),
    )


def read_config_file(path: Path) -> dict[str, Any]:
    try:
        values = json.loads(path.read_text())
    except OSError as exc:
        raise NodeConfigError(f"cannot read the config file {path}: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise NodeConfigError(f"the config file {path} is not JSON: {exc.msg}") from None
    if not isinstance(values, dict):
        raise NodeConfigError(f"the config file {path} must hold a JSON object")
    return values
