"""The devnet's Python API: bring one up, look at it, bring it down.

    with Devnet.up(DevnetConfig(state_dir=tmp_path)) as devnet:
        devnet.manifest.contracts.vault

    async with running_devnet() as manifest:   # a temporary state dir, a free port
        ...

:func:`devnet_status` and :func:`devnet.shutdown.stop_devnet` work on a state dir whose
devnet another process started (as ``devnet status`` and ``devnet down`` do).
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
import tempfile
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from eth_account.signers.local import LocalAccount

from devnet.anvil import (
    PROJECT_ROOT,
    AnvilConfig,
    find_anvil,
    start_anvil,
    wait_until_ready,
)
from devnet.deploy import Deployment, check_artifacts, deploy
from devnet.errors import AlreadyRunningError, AnvilError, ConfigError, NotRunningError
from devnet.keys import DevnetKeys, account_count, derive_keys
from devnet.manifest import (
    Committee,
    KeyPair,
    Manifest,
    Member,
    ProcessInfo,
    read_manifest,
    write_manifest,
)
from devnet.nodes import start_nodes
from devnet.ports import check_port_free, free_port, free_ports, http_url
from devnet.processes import ProcessRecord, is_running, stop_child
from devnet.rpc import connect
from devnet.shutdown import stop_devnet
from devnet.state import StateDir
from devnet.status import DevnetStatus, ProcessStatus, read_status

#: Where the (future) ledger nodes listen; their ports are picked free on it.
NODE_HOST = "127.0.0.1"


@dataclass(frozen=True, slots=True)
class DevnetConfig:
    """How to bring a devnet up. The defaults suit tests: a temporary state dir (removed
    by ``down``) and a free port; the CLI passes ``.devnet`` and 8545."""

    state_dir: Path | None = None
    nodes: int = 4
    agents: int = 4
    host: str = "127.0.0.1"
    port: int | None = None
    startup_timeout: float = 10.0
    anvil_path: Path | None = None  # None: the one in PROJECT_ROOT/node_modules
    start_nodes: bool = False  # the CLI starts them; most tests only need the chain

    def __post_init__(self) -> None:
        if self.nodes < 1:
            raise ConfigError(f"a committee needs at least 1 node, got {self.nodes}")
        if self.agents < 0:
            raise ConfigError(f"agents must be >= 0, got {self.agents}")
        if self.port is not None and not 1 <= self.port <= 65535:
            raise ConfigError(f"port must be in 1..65535, got {self.port}")
        if self.startup_timeout <= 0:
            raise ConfigError(f"startup timeout must be > 0, got {self.startup_timeout}")


def _hex_key(account: LocalAccount) -> str:
    return "0x" + bytes(account.key).hex()


def _key_pair(account: LocalAccount) -> KeyPair:
    return KeyPair(account.address, _hex_key(account))


def _build_manifest(
    chain_id: int,
    rpc_url: str,
    keys: DevnetKeys,
    endpoints: Sequence[str],
    deployment: Deployment,
    processes: Sequence[ProcessRecord],
) -> Manifest:
    return Manifest(
        chain_id=chain_id,
        rpc_url=rpc_url,
        deploy_block=deployment.deploy_block,
        contracts=deployment.contracts,
        governance=_key_pair(keys.governance),
        committee=Committee(
            epoch=deployment.epoch,
            quorum=deployment.quorum,
            members=tuple(
                Member(node.address, _hex_key(node), endpoint)
                for node, endpoint in zip(keys.nodes, endpoints, strict=True)
            ),
        ),
        agents=tuple(_key_pair(agent) for agent in keys.agents),
        processes=tuple(ProcessInfo(p.name, p.pid) for p in processes),
    )


class Devnet:
    """A running devnet: its state dir, its manifest, and the processes it started."""

    def __init__(
        self,
        state: StateDir,
        manifest: Manifest,
        children: Sequence[subprocess.Popen[bytes]] = (),
        remove_dir: bool = False,
    ) -> None:
        self._state = state
        self._manifest = manifest
        self._children = list(children)
        self._remove_dir = remove_dir

    @property
    def manifest(self) -> Manifest:
        return self._manifest

    @property
    def state_dir(self) -> Path:
        return self._state.path

    @classmethod
    def up(cls, config: DevnetConfig | None = None) -> Devnet:
        """Start anvil, deploy, register the committee, fund the agents, write the
        manifest. If any step fails, what was started is stopped before raising."""
        config = config or DevnetConfig()
        temporary = config.state_dir is None
        path = (
            Path(tempfile.mkdtemp(prefix="farthing-devnet-"))
            if config.state_dir is None
            else config.state_dir
        )
        state = StateDir(path.absolute())
        try:
            with state.lock(wait=False):
                return cls._start(config, state, remove_dir=temporary)
        except BaseException:
            if temporary:
                shutil.rmtree(path, ignore_errors=True)
            raise

    @classmethod
    def _start(cls, config: DevnetConfig, state: StateDir, remove_dir: bool) -> Devnet:
        running = [r for r in state.read_processes() if is_running(r)]
        if running:
            names = ", ".join(f"{r.name} pid {r.pid}" for r in running)
            raise AlreadyRunningError(
                f"a devnet is already running in {state.path} ({names}): "
                "use it, or run `devnet down` first"
            )
        state.clear()  # what a dead devnet left
        anvil_path = config.anvil_path or find_anvil(PROJECT_ROOT)
        check_artifacts()
        port = config.port if config.port is not None else free_port(config.host)
        check_port_free(config.host, port)
        keys = derive_keys(config.nodes, config.agents)
        anvil = AnvilConfig(
            host=config.host, port=port, accounts=account_count(config.nodes, config.agents)
        )
        log_path = state.log_path("anvil")
        process = start_anvil(anvil, anvil_path, log_path)
        records = [ProcessRecord("anvil", process.pid, str(anvil_path))]
        try:
            state.write_processes(records)
            chain_id = wait_until_ready(process, anvil.rpc_url, log_path, config.startup_timeout)
            if chain_id != anvil.chain_id:
                raise AnvilError(
                    f"{anvil.rpc_url} answers with chain id {chain_id}, not {anvil.chain_id}: "
                    "another chain took the port"
                )
            ports = free_ports(NODE_HOST, config.nodes, exclude={port})
            endpoints = [http_url(NODE_HOST, p) for p in ports]
            with connect(anvil.rpc_url) as w3:
                deployment = deploy(w3, keys, endpoints)
            manifest = _build_manifest(
                chain_id, anvil.rpc_url, keys, endpoints, deployment, records
            )
            write_manifest(state.manifest_path, manifest)
            children = [process]
            if config.start_nodes:
                nodes = start_nodes(state, manifest)
                children += [p for p, _ in nodes]
                records += [r for _, r in nodes]
                manifest = _build_manifest(
                    chain_id, anvil.rpc_url, keys, endpoints, deployment, records
                )
                write_manifest(state.manifest_path, manifest)
        except BaseException:
            stop_child(process)
            state.clear()
            raise
        return cls(state, manifest, children, remove_dir)

    @classmethod
    def attach(cls, state_dir: Path) -> Devnet:
        """The devnet another process brought up in ``state_dir``."""
        state = StateDir(state_dir.absolute())
        try:
            manifest = read_manifest(state.manifest_path)
        except FileNotFoundError:
            raise NotRunningError(f"no devnet in {state.path}: run `devnet up`") from None
        return cls(state, manifest)

    def wait_for_commands(self) -> None:
        """Return once no `devnet up` or `devnet down` holds this devnet's state (one that
        is stopping it right now holds the lock until the records are cleared)."""
        with self._state.lock(wait=True):
            pass

    def processes(self) -> tuple[ProcessStatus, ...]:
        """The recorded processes, and whether each still runs."""
        return tuple(
            ProcessStatus(r.name, r.pid, is_running(r)) for r in self._state.read_processes()
        )

    def status(self) -> DevnetStatus:
        """Read the devnet's state from its chain (:class:`NotRunningError` if it is silent)."""
        try:
            with connect(self._manifest.rpc_url, timeout=5.0) as w3:
                return read_status(w3, self._manifest, self._state.path, self.processes())
        except OSError as exc:  # requests' connection errors are OSErrors
            raise NotRunningError(
                f"the devnet in {self._state.path} does not answer at "
                f"{self._manifest.rpc_url}: run `devnet down`, then `devnet up`"
            ) from exc

    def down(self) -> list[ProcessRecord]:
        """Stop every process of this devnet and remove its pid file and manifest.
        Returns the processes that were running; calling it again does nothing."""
        stopped = stop_devnet(self._state.path)
        for child in self._children:
            stop_child(child)  # normally stopped already: this collects its exit status
        self._children.clear()
        if self._remove_dir:
            shutil.rmtree(self._state.path, ignore_errors=True)
        return stopped

    def __enter__(self) -> Devnet:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.down()


def devnet_status(state_dir: Path) -> DevnetStatus:
    """The status of the devnet in ``state_dir`` (:class:`NotRunningError` if there is none)."""
    return Devnet.attach(state_dir).status()


@contextlib.asynccontextmanager
async def running_devnet(config: DevnetConfig | None = None) -> AsyncIterator[Manifest]:
    """Bring a devnet up for the ``async with`` body and down after it, whatever
    happens. The blocking work runs in a thread, never on the event loop."""
    starting = asyncio.ensure_future(asyncio.to_thread(Devnet.up, config))
    try:
        devnet = await asyncio.shield(starting)
    except asyncio.CancelledError:
        # up() goes on in its thread: let it finish, then stop what it started.
        with contextlib.suppress(Exception):
            started = await asyncio.shield(starting)
            await asyncio.to_thread(started.down)
        raise
    try:
        yield devnet.manifest
    finally:
        await asyncio.to_thread(devnet.down)
