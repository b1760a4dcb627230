"""A node refuses to start, saying what to fix: a key outside the committee, a data
directory another node holds, a busy port (the chain-side refusals are in
test_chain_devnet.py)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest
import pytest_asyncio

from devnet import DevnetConfig, running_devnet
from devnet.manifest import Manifest
from node.app import run_node
from node.config import NodeConfig
from node.errors import DataDirLockedError, NodeConfigError
from node.store import LedgerStore
from wallet.codec import parse_address
from wallet.types import Domain

pytestmark = pytest.mark.integration


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def manifest() -> AsyncIterator[Manifest]:
    async with running_devnet(DevnetConfig(agents=1)) as m:
        yield m


def config_for(m: Manifest, tmp_path: Path, key_hex: str) -> NodeConfig:
    key_file = tmp_path / "key"
    key_file.write_text(key_hex)
    key_file.chmod(0o600)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return NodeConfig(
        data_dir=tmp_path / "data",
        rpc_url=m.rpc_url,
        vault=parse_address(m.contracts.vault),
        key_file=key_file,
        port=port,
        chain_id=m.chain_id,
        deploy_block=m.deploy_block,
    )


@pytest.mark.asyncio(loop_scope="module")
async def test_a_key_outside_the_committee_is_refused(manifest: Manifest, tmp_path: Path) -> None:
    config = config_for(manifest, tmp_path, manifest.agents[0].private_key)
    with pytest.raises(NodeConfigError, match="is not a member of the committee of epoch 1"):
        await run_node(config)


@pytest.mark.asyncio(loop_scope="module")
async def test_a_held_data_dir_is_refused(manifest: Manifest, tmp_path: Path) -> None:
    config = config_for(manifest, tmp_path, manifest.committee.members[0].private_key)
    domain = Domain(manifest.chain_id, config.vault)
    holder = LedgerStore(config.data_dir, domain)
    try:
        with pytest.raises(DataDirLockedError, match="in use by another node process"):
            await run_node(config)
    finally:
        holder.close()


@pytest.mark.asyncio(loop_scope="module")
async def test_a_busy_port_is_refused_and_a_good_node_starts(
    manifest: Manifest, tmp_path: Path
) -> None:
    config = config_for(manifest, tmp_path, manifest.committee.members[0].private_key)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = replace(config, port=busy.getsockname()[1])
        with pytest.raises(NodeConfigError, match="is in use: pass another --port"):
            await run_node(taken)
    stop = asyncio.Event()
    node = asyncio.create_task(run_node(config, stop=stop))
    for _ in range(100):
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", config.port)
            writer.close()
            await writer.wait_closed()
            break
        except OSError:
            await asyncio.sleep(0.05)
    else:
        pytest.fail("the node did not start listening")
    stop.set()
    await asyncio.wait_for(node, 10)
