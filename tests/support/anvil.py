"""Test support: an anvil on a free loopback port for the duration of a ``with`` block.

Temporary thin wrapper; the devnet package owns the real launcher."""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from tests.contracts.chain import PUBLIC_TEST_MNEMONIC

ROOT = Path(__file__).resolve().parents[2]
ANVIL = ROOT / "node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def running_anvil(accounts: int = 10) -> Iterator[str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [
            str(ANVIL),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--chain-id",
            "31337",
            "--mnemonic",
            PUBLIC_TEST_MNEMONIC,
            "--accounts",
            str(accounts),
            "--silent",
            "--steps-tracing",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                req = urllib.request.Request(
                    url,
                    data=json.dumps(
                        {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}
                    ).encode(),
                    headers={"content-type": "application/json"},
                )
                urllib.request.urlopen(req, timeout=1).read()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.05)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)
