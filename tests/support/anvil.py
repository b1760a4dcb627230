"""Test support: a bare anvil (nothing deployed) on a free loopback port for a ``with``
block, through the devnet package's launcher."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path

from devnet import free_port
from devnet.anvil import AnvilConfig
from devnet.anvil import running_anvil as _running_anvil


@contextlib.contextmanager
def running_anvil(accounts: int = 10, steps_tracing: bool = False) -> Iterator[str]:
    """Yields the RPC URL of a fresh anvil (chain id 31337, the public test mnemonic)."""
    extra = ("--silent", "--steps-tracing") if steps_tracing else ("--silent",)
    config = AnvilConfig(port=free_port("127.0.0.1"), accounts=accounts, extra_args=extra)
    with (
        tempfile.TemporaryDirectory(prefix="farthing-anvil-") as tmp,
        _running_anvil(config, Path(tmp) / "anvil.log") as url,
    ):
        yield url
