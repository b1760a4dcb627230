"""Restart time of a node with a big log: the store it opens, and the node serving again.

A data directory for node 0 holding ``entries`` log entries is built once and cached
(default ``$TMPDIR/farthing-bench-restart``; 10^6 entries take ~4-5 minutes and ~500 MB):
1 deposit per account for 1,000 accounts, then transfers round robin, with the devnet's
domain and committee, written by ``LedgerStore.commit_all`` in batches of 256
(``sync=False``). The transitions are built directly, and checked first to write byte for
byte the records the node's own state machine writes (``transition`` over an
``Overlay``, as the writer batches) for the first 3,000 entries. The one shortcut:
signatures are placeholder bytes (signing and verifying 10^6 certificates would take ~10
minutes); the records, the log, the Merkle nodes and the sizes are the real ones.

A restart is measured as ``python -m node run`` for node 0 (the devnet's command line; no
peers, so only the node itself is measured) from spawning the process until its first
``GET /v1/health`` answers 200 (:func:`start_node`), with the data directory in the page
cache (a warm restart). ``scripts/bench_restart.py`` and ``python -m bench`` use this.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, replace
from pathlib import Path
from unittest import mock

import plyvel

from devnet import Devnet, DevnetConfig
from devnet.anvil import PROJECT_ROOT, log_tail
from devnet.files import write_private_file
from devnet.manifest import Manifest
from devnet.nodes import node_command
from devnet.processes import stop_child
from node.state import (
    ContractReceiveDeposit,
    NodeContext,
    ReceiveCertificate,
    Transition,
    transition,
)
from node.state import certificates as certificate_rules
from node.state.entries import deposit_leaf, order_leaf
from node.state.events import EventRefused
from node.state.records import AccountRecord, Committee, LogEntry
from node.store import LedgerStore
from node.writer import Overlay
from wallet.codec import parse_address
from wallet.eip712 import order_digest
from wallet.types import (
    Address,
    Amount,
    Certificate,
    Domain,
    Epoch,
    Hash32,
    Sequence,
    Signature,
    SignedOrder,
    Transfer,
)

ACCOUNTS = 1_000
BATCH = 256  # the writer's max_batch
EPOCH = Epoch(1)
FORMAT = 2  # bump when the generated data changes
DEPOSIT = Amount(10**12)


def _placeholder_signature(signer: Address, noise: bytes) -> Signature:
    """65 bytes that name their signer (for the stubbed recovery) and are as
    incompressible as a real signature (``noise``: 44 random bytes)."""
    return Signature(signer + noise + b"\x1b")


def _stub_recover(digest: Hash32, signature: Signature) -> Address:
    return Address(bytes(signature[:20]))


@dataclass(frozen=True, slots=True)
class Setup:
    domain: Domain
    committee: Committee
    token: Address

    @classmethod
    def of(cls, m: Manifest) -> Setup:
        members = tuple(parse_address(member.address) for member in m.committee.members)
        return cls(
            Domain(m.chain_id, parse_address(m.contracts.vault)),
            Committee(EPOCH, members, m.committee.quorum),
            parse_address(m.contracts.stable),
        )

    def cache_key(self, entries: int) -> str:
        text = f"{FORMAT}|{entries}|{self.domain}|{self.committee}|{self.token.hex()}"
        return f"{entries}-{hashlib.sha256(text.encode()).hexdigest()[:12]}"


class Workload:
    """The changes of the generated log: entry ``n`` is the deposit of account ``n`` for
    the first 1,000, then a transfer of account ``n mod 1000`` to the next account."""

    def __init__(self, setup: Setup) -> None:
        self.setup = setup
        self.accounts = [
            Address(hashlib.sha256(b"bench-account" + i.to_bytes(4, "big")).digest()[:20])
            for i in range(ACCOUNTS)
        ]
        self.sequences = [0] * ACCOUNTS
        self.random = random.Random(FORMAT)
        self.quorum_members = setup.committee.members[: setup.committee.quorum]

    def change(self, n: int) -> ContractReceiveDeposit | ReceiveCertificate:
        if n < ACCOUNTS:
            return ContractReceiveDeposit(n + 1, self.accounts[n], self.setup.token, DEPOSIT)
        payer = n % ACCOUNTS
        order = Transfer(
            self.accounts[payer],
            self.accounts[(payer + 1) % ACCOUNTS],
            self.setup.token,
            Amount(1 + n % 7),
            Sequence(self.sequences[payer]),
        )
        self.sequences[payer] += 1
        noise = self.random.randbytes
        return ReceiveCertificate(
            Certificate(
                SignedOrder(order, _placeholder_signature(order.owner, noise(44))),
                EPOCH,
                tuple((m, _placeholder_signature(m, noise(44))) for m in self.quorum_members),
            )
        )


def _context(setup: Setup) -> NodeContext:
    node = setup.committee.members[0]
    return NodeContext(
        domain=setup.domain,
        node=node,
        tokens=frozenset({setup.token}),
        current_epoch=EPOCH,
        sign=lambda digest: _placeholder_signature(node, digest + bytes(12)),
    )


def generate_by_rules(path: Path, entries: int, setup: Setup) -> None:
    """The reference: every change through the node's state machine, batched as the
    writer does (an Overlay over the store, one ``commit_all`` per batch); only the
    signature recovery is stubbed. About 2,000 entries/s here: used to check
    :func:`generate`, which writes the same records."""
    workload, context = Workload(setup), _context(setup)
    store = LedgerStore(path, setup.domain, sync=False)
    with mock.patch.object(certificate_rules, "recover", _stub_recover):
        try:
            store.put_committee(setup.committee)
            for first in range(0, entries, BATCH):
                overlay = Overlay(store)
                transitions = []
                for n in range(first, min(entries, first + BATCH)):
                    t = transition(overlay, context, workload.change(n))
                    refused = [e for e in t.events if isinstance(e, EventRefused)]
                    if refused or len(t.log) != 1:
                        raise RuntimeError(f"entry {n} was not appended: {refused}")
                    overlay.add(t)
                    transitions.append(t)
                store.commit_all(transitions)
        finally:
            store.close()


def generate(path: Path, entries: int, setup: Setup) -> None:
    """Write a store of ``entries`` log entries at ``path``: the transitions the state
    machine would produce for :class:`Workload` (checked against
    :func:`generate_by_rules`), built directly, one ``commit_all`` per batch."""
    workload = Workload(setup)
    accounts: dict[Address, AccountRecord] = {}
    store = LedgerStore(path, setup.domain, sync=False)
    try:
        store.put_committee(setup.committee)
        started = time.perf_counter()
        for first in range(0, entries, BATCH):
            transitions = []
            for n in range(first, min(entries, first + BATCH)):
                change = workload.change(n)
                if isinstance(change, ContractReceiveDeposit):
                    who = change.beneficiary
                    accounts[who] = accounts.get(who, AccountRecord()).with_balance(
                        change.token, change.amount
                    )
                    leaf = deposit_leaf(change.deposit_id, who, change.token, change.amount)
                    t = Transition(
                        accounts={who: accounts[who]},
                        next_deposit_id=change.deposit_id + 1,
                        log=(LogEntry(leaf),),
                    )
                else:
                    order = change.certificate.order
                    assert isinstance(order, Transfer)
                    digest = order_digest(setup.domain, order)
                    payer = replace(
                        accounts[order.payer].with_balance(order.token, -order.amount),
                        next_sequence=Sequence(order.sequence + 1),
                    )
                    accounts[order.payer] = payer
                    payee = accounts[order.payee].with_balance(order.token, order.amount)
                    accounts[order.payee] = payee
                    t = Transition(
                        accounts={order.payer: payer, order.payee: payee},
                        applied={(order.payer, order.sequence): digest},
                        log=(LogEntry(order_leaf(order, digest), change.certificate),),
                    )
                transitions.append(t)
            store.commit_all(transitions)
            done = first + len(transitions)
            if done % 100_000 < BATCH:
                rate = done / (time.perf_counter() - started)
                print(f"  {done:,} entries, {rate:,.0f}/s", file=sys.stderr, flush=True)
        if store.log_size() != entries:
            raise RuntimeError(f"built {store.log_size()} entries, not {entries}")
    finally:
        store.close()


def _records(path: Path) -> list[tuple[bytes, bytes]]:
    db = plyvel.DB(str(path))
    try:
        return list(db.iterator())
    finally:
        db.close()


def check_generator(setup: Setup, entries: int = 3 * ACCOUNTS) -> None:
    """:func:`generate` writes exactly the records :func:`generate_by_rules` writes."""
    with tempfile.TemporaryDirectory(prefix="farthing-bench-check-") as tmp:
        generate_by_rules(Path(tmp) / "rules", entries, setup)
        generate(Path(tmp) / "fast", entries, setup)
        if _records(Path(tmp) / "rules") != _records(Path(tmp) / "fast"):
            raise RuntimeError("the fast generator's records differ from the state machine's")


def data_dir(cache: Path, entries: int, setup: Setup) -> Path:
    """The cached data directory of ``entries`` entries, built if missing."""
    home = cache / setup.cache_key(entries)
    ready = home / "ready.json"
    if not ready.exists():
        shutil.rmtree(home, ignore_errors=True)
        home.mkdir(parents=True)
        print(f"building a store of {entries:,} entries in {home}", file=sys.stderr)
        check_generator(setup)
        started = time.perf_counter()
        generate(home / "data", entries, setup)
        seconds = time.perf_counter() - started
        ready.write_text(json.dumps({"entries": entries, "seconds": round(seconds, 1)}))
        print(f"  built in {seconds:.0f} s", file=sys.stderr)
    return home / "data"


def du(path: Path) -> int:
    return sum(f.stat().st_size for f in path.iterdir() if f.is_file())


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as reply:  # noqa: S310
            return bool(reply.status == 200)
    except OSError:
        return False


@dataclass(frozen=True, slots=True)
class Run:
    store_open: float  # seconds
    health: float  # seconds from spawning the process to the first 200 of /v1/health
    serving: float  # seconds from spawning the process to its "serving" log line
    cpu: float  # CPU seconds the process used until the first health
    rss_kib: int  # at the first health
    rss_later_kib: int  # 3 s later


def store_open(path: Path, setup: Setup) -> float:
    started = time.perf_counter()
    store = LedgerStore(path, setup.domain)
    store.log_size()
    store.root()
    seconds = time.perf_counter() - started
    store.close()
    return seconds


def start_node(m: Manifest, home: Path, data: Path, log_path: Path, later: float = 3.0) -> Run:
    """Spawns node 0 on ``data`` and times it to its first health answer; its RSS then
    and ``later`` seconds after; then stops it."""
    key_file, config = home / "key", home / "config.json"
    write_private_file(key_file, m.committee.members[0].private_key + "\n")
    config.write_text(json.dumps({"peers": []}))
    command = [*node_command(m, 0, key_file, data), "--config", str(config)]
    health_url = f"{m.committee.members[0].endpoint}/v1/health"
    with open(log_path, "wb") as log:
        spawned = time.time()
        started = time.perf_counter()
        process = subprocess.Popen(
            command,
            cwd=PROJECT_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        while not _healthy(health_url):
            if process.poll() is not None:
                raise RuntimeError(
                    f"the node exited with {process.returncode}:\n{log_tail(log_path)}"
                )
            if time.perf_counter() - started > 60:
                raise RuntimeError(f"the node did not answer in 60 s: see {log_path}")
            time.sleep(0.005)
        health = time.perf_counter() - started
        cpu = _cpu_seconds(process.pid)
        rss = rss_kib(process.pid)
        time.sleep(later)
        rss_later = rss_kib(process.pid)
    finally:
        stop_child(process)
    serving = _serving_time(log_path) - spawned
    return Run(0.0, health, serving, cpu, rss, rss_later)


def _serving_time(log_path: Path) -> float:
    for line in log_path.read_text().splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if "serving on" in entry.get("message", ""):
            return float(entry["ts"])
    raise RuntimeError(f"no 'serving on' line in {log_path}")


def imports() -> tuple[float, float]:
    """Wall and CPU seconds of a fresh interpreter importing what the node imports."""
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-c", "import node.app"], cwd=PROJECT_ROOT)
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode:
        raise RuntimeError(f"importing node.app failed with {process.returncode}")
    return time.perf_counter() - started, usage.ru_utime + usage.ru_stime


@dataclass(frozen=True, slots=True)
class RestartResult:
    """One restart of node 0 on a store of ``entries`` log entries."""

    entries: int
    store_bytes: int
    store_open_s: float  # LedgerStore(...) + log_size() + root(), in this process
    health_s: float  # spawn to the first 200 of /v1/health: the figure reported
    rss_mb: float  # the node's RSS at that moment


def measure_restart(entries: int, cache: Path, runs: int = 1) -> RestartResult:
    """Brings up a devnet without nodes (anvil and the contracts), builds or reuses the
    cached store of ``entries`` entries, then restarts node 0 on it ``runs`` times (after
    one store open in this process, which also warms the page cache) and keeps the
    median. The devnet goes down before returning."""
    with Devnet.up(DevnetConfig(agents=0)) as devnet:
        m = devnet.manifest
        setup = Setup.of(m)
        data = data_dir(cache, entries, setup)
        opened = store_open(data, setup)
        results = [
            start_node(
                m, devnet.state_dir, data, devnet.state_dir / f"node-restart-{i}.log", later=0
            )
            for i in range(runs)
        ]
    return RestartResult(
        entries=entries,
        store_bytes=du(data),
        store_open_s=opened,
        health_s=statistics.median(r.health for r in results),
        rss_mb=statistics.median(r.rss_kib for r in results) / 1024,
    )
