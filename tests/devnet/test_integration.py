"""The devnet against a real anvil: up, status, down through the CLI and the API."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from web3 import Web3

from devnet.api import Devnet, DevnetConfig, running_devnet
from devnet.cli import main
from devnet.deploy import (
    AGENT_NATIVE,
    AGENT_STABLE,
    MIN_BOND,
    NODE_NATIVE,
    contract_at,
)
from devnet.errors import DeployError, NotRunningError
from devnet.keys import derive_keys
from devnet.manifest import KeyPair, Manifest, Member, read_manifest
from devnet.ports import free_port, is_port_free
from devnet.processes import is_alive
from devnet.rpc import connect
from devnet.state import StateDir
from devnet.transactions import Transactor, Tx

pytestmark = pytest.mark.integration

RunCli = Callable[..., subprocess.CompletedProcess[str]]
SpawnCli = Callable[..., subprocess.Popen[str]]

ANVIL_ACCOUNT_0 = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"


def anvil_pid(manifest: Manifest) -> int:
    return next(p.pid for p in manifest.processes if p.name == "anvil")


def private_keys(manifest: Manifest) -> list[str]:
    pairs: list[KeyPair | Member] = [manifest.governance, *manifest.committee.members]
    return [p.private_key for p in [*pairs, *manifest.agents]]


def assert_deployed(w3: Web3, manifest: Manifest, nodes: int, agents: int) -> None:
    """The chain holds what the manifest says: code, committee, bonds, balances."""
    c = manifest.contracts
    for address in (c.vault, c.stable, c.native, c.price_feed):
        assert len(w3.eth.get_code(address)) > 0, address
    vault = contract_at(w3, "Vault", c.vault)
    stable = contract_at(w3, "FarthingUSD", c.stable)
    native = contract_at(w3, "FarthingToken", c.native)
    feed = contract_at(w3, "PriceFeed", c.price_feed)

    epoch = vault.functions.currentEpoch().call()
    assert epoch == manifest.committee.epoch
    members, endpoints, quorum, retired_at = vault.functions.committee(epoch).call()
    assert list(members) == [m.address for m in manifest.committee.members]
    assert list(endpoints) == [m.endpoint for m in manifest.committee.members]
    assert quorum == manifest.committee.quorum == 2 * nodes // 3 + 1
    assert retired_at == 0
    assert len(members) == nodes
    for member in members:
        assert vault.functions.bonds(member).call()[0] == MIN_BOND
        assert native.functions.balanceOf(member).call() == NODE_NATIVE - MIN_BOND
    assert vault.functions.isTokenRegistered(c.stable).call()
    assert vault.functions.isTokenRegistered(c.native).call()

    assert len(manifest.agents) == agents
    for agent in manifest.agents:
        assert stable.functions.balanceOf(agent.address).call() == AGENT_STABLE
        assert native.functions.balanceOf(agent.address).call() == AGENT_NATIVE
        assert w3.eth.get_balance(agent.address) > 0
    assert feed.functions.latestRoundData().call()[1] == 250_000_000
    assert feed.functions.decimals().call() == 8


@pytest.fixture(scope="module")
def devnet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Devnet]:
    """One devnet for the read-only checks of this module."""
    with Devnet.up(DevnetConfig(state_dir=tmp_path_factory.mktemp("devnet"), agents=3)) as net:
        yield net


def test_api_devnet_is_deployed(devnet: Devnet) -> None:
    manifest = devnet.manifest
    assert manifest.chain_id == 31337
    assert manifest.governance.address == ANVIL_ACCOUNT_0
    with connect(manifest.rpc_url) as w3:
        assert w3.eth.chain_id == 31337
        assert_deployed(w3, manifest, nodes=4, agents=3)
        # anvil prefunded exactly the devnet's keys (same mnemonic, 1 + N + M accounts)
        keys = derive_keys(4, 3)
        expected = [a.address for a in (keys.governance, *keys.nodes, *keys.agents)]
        assert list(w3.eth.accounts) == expected


def test_manifest_file_matches_and_is_private(devnet: Devnet) -> None:
    path = devnet.state_dir / "manifest.json"
    assert read_manifest(path) == devnet.manifest
    assert path.stat().st_mode & 0o777 == 0o600
    assert devnet.state_dir.stat().st_mode & 0o777 == 0o700
    assert json.loads(path.read_text())["warning"].startswith("PUBLIC DEVNET TEST KEYS")
    assert is_alive(anvil_pid(devnet.manifest))


def test_status_reads_the_chain(devnet: Devnet) -> None:
    status = devnet.status()
    assert status.epoch == 1
    assert status.quorum == 3
    assert [m.bond for m in status.members] == [MIN_BOND] * 4
    assert status.stable.symbol == "USDF"
    assert status.native.decimals == 18
    assert status.processes[0].running


def test_a_refused_transaction_names_its_label(devnet: Devnet) -> None:
    agent = derive_keys(4, 3).agents[0]
    with connect(devnet.manifest.rpc_url) as w3:
        native = contract_at(w3, "FarthingToken", devnet.manifest.contracts.native)
        mint = native.functions.mint(agent.address, 1)
        with pytest.raises(DeployError, match="mint by an agent: could not send"):
            Transactor(w3).send(Tx(agent, mint, "mint by an agent"))


def test_cli_up_status_down(
    run_cli: RunCli, state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = state_dir
    port = free_port()
    up = run_cli("up", "--state-dir", str(state), "--port", str(port), "--agents", "2")
    assert up.returncode == 0, up.stderr
    assert f"chain 31337 at http://127.0.0.1:{port}" in up.stdout
    manifest = read_manifest(state / "manifest.json")
    pid = anvil_pid(manifest)
    try:
        assert is_alive(pid)  # detached: it outlives `up`
        with connect(manifest.rpc_url) as w3:
            assert_deployed(w3, manifest, nodes=4, agents=2)

        status = run_cli("status", "--state-dir", str(state), "--json")
        assert status.returncode == 0, status.stderr
        doc = json.loads(status.stdout)
        assert doc["chain_id"] == 31337
        assert doc["contracts"]["vault"] == manifest.contracts.vault
        assert doc["quorum"] == 3
        assert [m["address"] for m in doc["members"]] == [
            m.address for m in manifest.committee.members
        ]
        assert all(m["node"]["up"] and m["node"]["log_size"] == 0 for m in doc["members"])
        assert [int(a["stable"]) for a in doc["agents"]] == [AGENT_STABLE] * 2
        assert doc["processes"][0] == {"name": "anvil", "pid": pid, "running": True}
        nodes = doc["processes"][1:]
        assert [p["name"] for p in nodes] == [f"node-{i}" for i in range(4)]
        assert all(p["running"] for p in nodes)
        for member in manifest.committee.members:  # every node answers its health check
            with urllib.request.urlopen(f"{member.endpoint}/v1/health", timeout=2) as reply:
                assert json.loads(reply.read())["status"] == "ok"

        # The rest in-process: the same main(), without paying for imports again.
        assert main(["status", "--state-dir", str(state)]) == 0
        table = capsys.readouterr().out
        assert "quorum 3 of 4" in table
        assert "2.50 USD per FAR" in table
        assert (
            main(["up", "--no-nodes", "--state-dir", str(state), "--port", str(free_port())]) == 1
        )
        assert "already running" in capsys.readouterr().err

        for output in (up.stdout, up.stderr, status.stdout, status.stderr, table):
            for key in private_keys(manifest):
                assert key[2:] not in output
    finally:
        down = run_cli("down", "--state-dir", str(state))
    assert down.returncode == 0, down.stderr
    assert f"stopped anvil (pid {pid})" in down.stdout
    assert not is_alive(pid)
    assert not (state / "pids.json").exists()
    assert not (state / "manifest.json").exists()

    assert main(["down", "--state-dir", str(state)]) == 0
    assert capsys.readouterr().out == f"devnet: nothing running in {state}\n"
    assert main(["status", "--state-dir", str(state)]) == 1
    assert "no devnet" in capsys.readouterr().err


def test_cli_busy_port_starts_nothing(run_cli: RunCli, state_dir: Path) -> None:
    state = state_dir
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        up = run_cli("up", "--no-nodes", "--state-dir", str(state), "--port", str(port))
    assert up.returncode == 1
    assert (
        up.stderr
        == f"devnet: port {port} on 127.0.0.1 is in use: pass --port or run `devnet down`\n"
    )
    assert "Traceback" not in up.stderr
    assert not (state / "pids.json").exists()
    assert not (state / "anvil.log").exists()


def test_foreground_waits_for_a_down_in_progress(spawn_cli: SpawnCli, state_dir: Path) -> None:
    """`devnet down` elsewhere kills the processes, then clears their records, holding the
    state's lock: a foreground devnet that sees its anvil die in between must wait for
    that down to finish, not report an unexpected death."""
    args = ["--state-dir", str(state_dir), "--port", "0", "--agents", "1"]
    process = spawn_cli("up", "--foreground", "--no-nodes", *args)
    assert process.stdout is not None
    for line in process.stdout:
        if "running in the foreground" in line:
            break
    pid = anvil_pid(read_manifest(state_dir / "manifest.json"))
    state = StateDir(state_dir)
    with state.lock(wait=True):  # a down in progress, slowed down
        os.kill(pid, signal.SIGTERM)
        time.sleep(1.5)  # the foreground loop sees anvil dead meanwhile
        assert process.poll() is None
        state.clear()
    out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert "exited unexpectedly" not in err and "devnet: stopped" in out


@pytest.mark.parametrize("how", ["SIGTERM", "SIGINT", "devnet down"])
def test_foreground_stops_cleanly(how: str, spawn_cli: SpawnCli, state_dir: Path) -> None:
    state = state_dir
    args = ["--state-dir", str(state), "--port", "0", "--agents", "1"]
    process = spawn_cli("up", "--foreground", "--no-nodes", *args)
    assert process.stdout is not None
    for line in process.stdout:
        if "running in the foreground" in line:
            break
    pid = anvil_pid(read_manifest(state / "manifest.json"))
    assert is_alive(pid)
    if how == "devnet down":
        assert main(["down", "--state-dir", str(state)]) == 0
    else:
        process.send_signal(getattr(signal, how))
    out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert "devnet: stopped" in out
    assert not is_alive(pid)
    assert not (state / "pids.json").exists()
    assert not (state / "manifest.json").exists()


@pytest.mark.asyncio
async def test_running_devnet_async(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where its state dir goes
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    async with asyncio.TaskGroup() as tasks:
        ticking = tasks.create_task(ticker())
        async with running_devnet(DevnetConfig(nodes=4, agents=1)) as manifest:
            assert ticks > 0  # the event loop ran while the devnet came up
            pid = anvil_pid(manifest)
            assert is_alive(pid)
            with connect(manifest.rpc_url) as w3:
                assert_deployed(w3, manifest, nodes=4, agents=1)
        ticking.cancel()
    assert not is_alive(pid)
    assert list(tmp_path.iterdir()) == []  # the temporary state dir is gone


def test_a_crashed_anvil(tmp_path: Path) -> None:
    state = tmp_path / "state"
    config = DevnetConfig(state_dir=state, nodes=1, agents=0)
    first = Devnet.up(config)
    assert first.manifest.committee.quorum == 1
    os.kill(anvil_pid(first.manifest), signal.SIGKILL)
    deadline = time.monotonic() + 5
    while is_alive(anvil_pid(first.manifest)) and time.monotonic() < deadline:
        time.sleep(0.01)
    with pytest.raises(NotRunningError, match="does not answer"):
        first.status()
    assert not first.processes()[0].running

    # `up` over the dead devnet's leftovers starts afresh
    with Devnet.up(config) as second:
        assert anvil_pid(second.manifest) != anvil_pid(first.manifest)
        with connect(second.manifest.rpc_url) as w3:
            assert_deployed(w3, second.manifest, nodes=1, agents=0)
    first.down()  # reaps the killed child; nothing else left to stop


@pytest.mark.asyncio
async def test_cancelled_while_starting_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    port = free_port()
    entered = False

    async def use_devnet() -> None:
        nonlocal entered
        async with running_devnet(DevnetConfig(port=port)):
            entered = True

    task = asyncio.create_task(use_devnet())
    await asyncio.sleep(0.2)  # anvil is starting, or the deploy is under way
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not entered
    assert list(tmp_path.iterdir()) == []  # down() ran and removed the state dir
    assert is_port_free("127.0.0.1", port)  # anvil is gone
