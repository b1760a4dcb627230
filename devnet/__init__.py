"""Farthing's local devnet: anvil, the contracts, a bonded committee, funded agents.

Command line: ``devnet up | status | down`` (:mod:`devnet.cli`). From Python::

    from devnet import DevnetConfig, running_devnet

    async with running_devnet(DevnetConfig(nodes=4, agents=2)) as manifest:
        manifest.rpc_url, manifest.contracts.vault, manifest.agents[0].private_key

Every key comes from :data:`DEVNET_MNEMONIC`, a PUBLIC TEST mnemonic: never real funds.
The names that need web3.py or eth-account (slow to import) load on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from devnet.errors import (
    AlreadyRunningError,
    AnvilError,
    ConfigError,
    DeployError,
    DevnetError,
    ManifestError,
    NotRunningError,
    PortInUseError,
    StaleManifestError,
    StopError,
    ToolchainMissingError,
)
from devnet.ports import free_port
from devnet.shutdown import stop_devnet

if TYPE_CHECKING:
    from devnet.api import Devnet, DevnetConfig, devnet_status, running_devnet
    from devnet.keys import DEVNET_MNEMONIC, derive_keys
    from devnet.manifest import Manifest, read_manifest

_LAZY = {
    "Devnet": "devnet.api",
    "DevnetConfig": "devnet.api",
    "devnet_status": "devnet.api",
    "running_devnet": "devnet.api",
    "DEVNET_MNEMONIC": "devnet.keys",
    "derive_keys": "devnet.keys",
    "Manifest": "devnet.manifest",
    "read_manifest": "devnet.manifest",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'devnet' has no attribute {name!r}")


__all__ = [
    "DEVNET_MNEMONIC",
    "AlreadyRunningError",
    "AnvilError",
    "ConfigError",
    "DeployError",
    "Devnet",
    "DevnetConfig",
    "DevnetError",
    "Manifest",
    "ManifestError",
    "NotRunningError",
    "PortInUseError",
    "StaleManifestError",
    "StopError",
    "ToolchainMissingError",
    "derive_keys",
    "devnet_status",
    "free_port",
    "read_manifest",
    "running_devnet",
    "stop_devnet",
]
