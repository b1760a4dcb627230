"""One benchmark run: every part in order on one machine and one anvil, then the files.

1. the crypto bound (:mod:`bench.crypto_bound`), timed before anything else runs and
   again after part 2, the faster time of each operation counting;
2. a devnet with its 4 nodes: a deposit on chain backs the ledger accounts; Farthing
   throughput (:func:`bench.farthing.throughput`), then latency at the offered load
   (:func:`bench.farthing.latency`), with the nodes' disk measured around both
   (:mod:`bench.node_resources`); the latency run's payee settles once
   (:mod:`bench.settlement`); then, on the same anvil, as many ERC-20 transfers and
   EIP-3009 payments as the throughput run made (:mod:`bench.chain_payments`); the nodes'
   RSS at the end;
3. a node restart on a store of ``restart_entries`` entries (:mod:`bench.restart`, its
   own devnet without nodes: node 0's port must be free);
4. ``latest.json``, ``latest.md`` and ``latest.png`` in the output directory.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import aiohttp
from eth_account import Account

from bench import chain_payments, crypto_bound, farthing, node_resources, report, settlement
from bench.chart import draw
from bench.cpu import CpuMeter
from bench.ledger import USDF, Ledger, deposit, fund, wait_for_balance
from bench.machine import describe
from bench.restart import RestartResult, measure_restart
from bench.rpc import ChainRun, Rpc
from devnet import Devnet, DevnetConfig
from wallet.client.network import Network
from wallet.client.transport import HttpTransport
from wallet.signing import PrivateKey

MILLION = 1_000_000
#: Seconds the devnet is left idle (deposit credited, no payments) to time the nodes'
#: background work: chain polling, catch-up, witnessing, checkpoints.
IDLE_SECONDS = 3.0
DEFAULT_CACHE = Path(tempfile.gettempdir()) / "farthing-bench-restart"


@dataclass(frozen=True, slots=True)
class Profile:
    """The counts of a run."""

    name: str
    accounts: int  # throughput: ledger accounts, and chain senders
    rounds: int  # throughput: payments per account
    lanes: int
    latency_seconds: float
    crypto_iterations: int
    restart_entries: int
    latency_wallets: int = 20
    latency_rate: float = 250.0
    payment_amount: int = 1_000  # base units: 0.001 USDF
    restart_runs: int = 1

    @property
    def payments(self) -> int:
        """Farthing throughput payments, and the count of each chain benchmark."""
        return self.accounts * self.rounds


PROFILES: dict[str, Profile] = {
    "full": Profile("full", 200, 25, 2, 20.0, 5000, MILLION, restart_runs=3),
    "quick": Profile("quick", 100, 10, 2, 4.0, 1000, 10_000),
    "smoke": Profile("smoke", 20, 5, 1, 1.0, 200, 1_000),
}


def _log(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


async def _devnet_parts(devnet: Devnet, p: Profile) -> dict[str, Any]:
    """Everything measured on the devnet with its nodes (part 2 of the module)."""
    m = devnet.manifest
    ledger = Ledger.of(m)
    network = Network.from_manifest(devnet.state_dir / "manifest.json")
    funder = PrivateKey.from_hex(m.agents[0].private_key)
    keys = [PrivateKey.generate() for _ in range(p.accounts)]
    wallets = [PrivateKey.generate() for _ in range(p.latency_wallets)]
    merchant = PrivateKey.generate()
    out: dict[str, Any] = {}

    nodes = {s.name: s.pid for s in devnet.processes() if s.name.startswith("node-")}
    deposit_gas = await asyncio.to_thread(deposit, m, 0, 5_000 * USDF)
    connector = aiohttp.TCPConnector(limit=64)
    async with (
        aiohttp.ClientSession(connector=connector) as session,
        HttpTransport(timeout=10.0, connections=128) as transport,
    ):
        await wait_for_balance(session, ledger.nodes, m.agents[0].address)
        idle = CpuMeter(nodes)
        await asyncio.sleep(IDLE_SECONDS)
        out["idle_cpu_ms_per_s"] = {k: v * 1000 / IDLE_SECONDS for k, v in idle.spent().items()}
        _log(f"funding {len(keys) + len(wallets)} ledger accounts")
        await fund(session, ledger, funder, [k.address for k in keys + wallets], 10 * USDF)
        dirs = node_resources.node_data_dirs(devnet.state_dir, len(ledger.nodes))
        before = await node_resources.disk_snapshot(session, ledger.nodes, dirs)

        _log(f"throughput: {p.accounts} accounts x {p.rounds} rounds, {p.lanes} lane(s)")
        meter = CpuMeter({**nodes, "client": os.getpid()})
        t = await farthing.throughput(session, ledger, keys, p.rounds, p.lanes)
        out["throughput_cpu_us"] = meter.per_payment_us(t.payments)
        _log(f"  {t.payments} payments in {t.seconds:.2f} s: {t.per_s:.0f}/s")
        out["throughput"] = t

        _log(f"latency: {p.latency_rate:g}/s offered for {p.latency_seconds:g} s")
        meter = CpuMeter({**nodes, "client": os.getpid()})
        lat = await farthing.latency(
            transport,
            network,
            ledger,
            wallets,
            merchant.address,
            p.latency_rate,
            p.latency_seconds,
            p.payment_amount,
        )
        _log(f"  p50 {lat.p50_ms:.1f} ms, p99 {lat.p99_ms:.1f} ms, {lat.achieved_per_s:.0f}/s")
        out["latency"] = lat
        out["latency_cpu_us"] = meter.per_payment_us(lat.confirmed)

        after = await node_resources.disk_snapshot(session, ledger.nodes, dirs)
        out["disk_bytes_per_payment"] = node_resources.bytes_per_entry(before, after)
        out["disk_entries"] = after.entries[0] - before.entries[0]

        _log("settlement: the merchant withdraws once, redeemed on chain")
        out["settlement"] = await settlement.settle(
            transport, network, ledger, m, merchant, lat.confirmed, deposit_gas, 1
        )

    relayer = Account.from_key(m.agents[1].private_key)
    async with Rpc(m.rpc_url) as rpc:
        senders = chain_payments.new_senders(p.accounts)
        _log(f"chain: funding {len(senders)} senders")
        await chain_payments.fund_senders(rpc, relayer, m.contracts.stable, senders, 10 * USDF)
        _log(f"chain: signing {p.payments} ERC-20 transfers and EIP-3009 payments")
        erc20 = await chain_payments.erc20_rounds(
            rpc, m.contracts.stable, senders, p.payments, p.payment_amount
        )
        eip3009 = await chain_payments.eip3009_rounds(
            rpc, m.contracts.stable, senders, relayer, p.payments, p.payment_amount
        )
        _log("chain: sending them, round by round, alternately")
        out["erc20"], out["eip3009"] = await chain_payments.run_interleaved(rpc, erc20, eip3009)
        _log(f"  ERC-20 {out['erc20'].per_s:.0f}/s, {out['erc20'].mean_gas:.0f} gas")
        _log(f"  EIP-3009 {out['eip3009'].per_s:.0f}/s, {out['eip3009'].mean_gas:.0f} gas")
    out["rss"] = node_resources.node_rss_mb(m)
    return out


def run(profile: Profile, out_dir: Path, cache: Path = DEFAULT_CACHE) -> dict[str, Any]:
    """Runs every part of ``profile`` and writes the three files into ``out_dir``."""
    load = round(os.getloadavg()[0], 2)  # other work on the machine before this run: noise
    count = crypto_bound.count_operations()
    cores = crypto_bound.cores()
    _log(f"crypto bound: timing {profile.crypto_iterations} signatures and recoveries")
    before = crypto_bound.time_operations(profile.crypto_iterations)

    _log("devnet up (anvil, contracts, 4 nodes)")
    with tempfile.TemporaryDirectory(prefix="farthing-bench-") as state:
        with Devnet.up(DevnetConfig(start_nodes=True, agents=2, state_dir=Path(state))) as net:
            parts = asyncio.run(_devnet_parts(net, profile))
            dirs = node_resources.node_data_dirs(net.state_dir, len(net.manifest.committee.members))
        # The nodes have stopped: their stores can be opened and compacted.
        parts["disk_bytes_per_payment_uncompacted"] = parts["disk_bytes_per_payment"]
        parts["disk_bytes_per_payment"] = node_resources.compacted_bytes_per_entry(dirs)

    _log("crypto bound: timing them again, the faster of the two counts")
    after = crypto_bound.time_operations(profile.crypto_iterations)
    times = before.fastest(after)
    bound = crypto_bound.bound_per_s(count, times.sign_us / 1e6, times.recover_us / 1e6, cores)
    parts["crypto_timings"] = [asdict(before), asdict(after)]

    _log(f"restart: a node on {profile.restart_entries:,} log entries")
    restart = measure_restart(profile.restart_entries, cache, profile.restart_runs)

    results = compose(profile, parts, restart, count, times, bound, cores)
    results["machine"]["load_average_1m_at_start"] = load
    report.write(results, out_dir)
    draw(results, out_dir / "latest.png")
    return results


def compose(
    profile: Profile,
    parts: dict[str, Any],
    restart: RestartResult,
    count: crypto_bound.OperationCount,
    times: crypto_bound.CryptoTimes,
    bound: float,
    cores: int,
) -> dict[str, Any]:
    """The JSON document of a run."""
    t: farthing.Throughput = parts["throughput"]
    lat: farthing.Latency = parts["latency"]
    s: settlement.Settlement = parts["settlement"]
    erc20: ChainRun = parts["erc20"]
    eip3009: ChainRun = parts["eip3009"]
    rss: dict[str, float] = parts["rss"]
    busy: dict[str, float] = parts["throughput_cpu_us"]
    single: dict[str, float] = parts["latency_cpu_us"]
    idle: dict[str, float] = parts["idle_cpu_ms_per_s"]
    notes = [
        f"Farthing throughput: {t.accounts} ledger accounts paying round robin, "
        f"{t.rounds} rounds, {t.lanes} lane(s), each round's orders and certificates "
        "batched per node; the client signs inside the timed loop on this machine; "
        "a payment counts when a quorum (3 of 4) applied it.",
        f"Latency: {profile.latency_wallets} wallets, open loop at "
        f"{profile.latency_rate:g} payments/s offered for {profile.latency_seconds:g} s, one "
        "payment per call (the wallet's vote collection and delivery, as pay_final); "
        "from the start of signing to the certificate delivered to a quorum. "
        f"Achieved {lat.achieved_per_s:.0f}/s, {lat.failed} failed.",
        f"Chain: {erc20.sent} ERC-20 transfers (from {profile.accounts} senders) and "
        f"{eip3009.sent} EIP-3009 transferWithAuthorization (one relayer), all signed "
        "before the clock (the chain's best case); one transaction in flight per sending "
        "account (anvil's automine strands pipelined ones, foundry#10122), so the single "
        "relayer sends one after another; ERC-20 and EIP-3009 rounds alternate (anvil slows "
        "as blocks pile up); confirmed = receipts with status 1; anvil automines a block "
        "per transaction.",
        f"Crypto bound = cores / (signatures x t_sign + recoveries x t_recover), "
        f"{count.signatures} signatures and {count.recoveries} recoveries per payment "
        f"(n = 4, quorum 3; counted from node/state and wallet/client: "
        + "; ".join(f"{k}: {sg} sign, {rc} recover" for k, (sg, rc) in count.breakdown.items())
        + f"); t_sign {times.sign_us:.1f} us, t_recover {times.recover_us:.1f} us "
        f"(coincurve, one thread; timed before and after the devnet part, the faster of "
        f"the two for each), {cores} cores.",
        "settlement_gas_per_payment = (gas of the payee's one Vault.redeem of its whole "
        "balance + gas of one Vault.deposit) / N, N = the payments the payee received "
        f"(N = {s.payments}; target defined at N = 1,000): redeem {s.redeem_gas:,} gas, "
        f"deposit {s.deposit_gas:,} gas.",
        "disk_bytes_per_payment: each node's LevelDB directory once the nodes stopped and "
        "it was compacted, divided by its log entries (the whole store: the devnet's "
        "deposits and LevelDB's fixed files count too), mean of the 4 nodes; before "
        "compaction, the growth over the throughput and latency runs was "
        f"{parts['disk_bytes_per_payment_uncompacted']:,.0f} bytes per entry "
        f"({parts['disk_entries']} entries; the write-ahead log and overwritten account "
        "records included).",
        "node_rss_mb_max: the largest VmRSS of the 4 node processes after the run.",
        "CPU per payment: user + system time (/proc/<pid>/stat) of the 4 node processes "
        "together, and of the benchmark's client process, over the throughput run (batched) "
        "and over the latency run (single payments), divided by the payments confirmed; "
        "background work (chain polling, catch-up, witnessing) included. Idle: the nodes' "
        f"CPU over {IDLE_SECONDS:g} s with the devnet up and no payments, the busiest node.",
    ]
    if restart.entries == MILLION:
        notes.append(
            "restart_s_1m_entries: spawn of `python -m node run` to its first /v1/health "
            f"200 on a store of 10^6 entries ({restart.store_bytes / 1e6:.0f} MB, warm page "
            f"cache), median of {profile.restart_runs}."
        )
    else:
        notes.append(
            f"restart_s_1m_entries: MEASURED WITH {restart.entries:,} ENTRIES, not 10^6 "
            f"(profile {profile.name}; {restart.store_bytes / 1e6:.1f} MB): spawn of "
            "`python -m node run` to its first /v1/health 200, warm page cache."
        )
    results: dict[str, Any] = {
        "farthing_payments_per_s": t.per_s,
        "erc20_transfers_per_s": erc20.per_s,
        "eip3009_payments_per_s": eip3009.per_s,
        "crypto_bound_payments_per_s": bound,
        "ratio_vs_erc20": t.per_s / erc20.per_s if erc20.per_s else 0.0,
        "ratio_vs_crypto_bound": t.per_s / bound,
        "p50_ms": lat.p50_ms,
        "p99_ms": lat.p99_ms,
        "p99_from_schedule_ms": lat.p99_from_schedule_ms,
        "latency_achieved_per_s": lat.achieved_per_s,
        "settlement_gas_per_payment": s.gas_per_payment,
        "erc20_gas_per_transfer": erc20.mean_gas,
        "eip3009_gas_per_payment": eip3009.mean_gas,
        "disk_bytes_per_payment": parts["disk_bytes_per_payment"],
        "disk_bytes_per_payment_uncompacted": parts["disk_bytes_per_payment_uncompacted"],
        "node_rss_mb_max": max(rss.values()),
        "node_cpu_us_per_payment": _nodes_sum(busy),
        "client_cpu_us_per_payment": busy.get("client", 0.0),
        "single_node_cpu_us_per_payment": _nodes_sum(single),
        "single_client_cpu_us_per_payment": single.get("client", 0.0),
        "node_idle_cpu_ms_per_s": max(idle.values(), default=0.0),
        "restart_s_1m_entries": restart.health_s,
        "restart_entries": restart.entries,
        "profile": profile.name,
        "machine": describe(cores),
        "counts": {
            **asdict(profile),
            "farthing_payments": t.payments,
            "latency_scheduled": lat.scheduled,
            "latency_confirmed": lat.confirmed,
            "latency_failed": lat.failed,
            "erc20_sent": erc20.sent,
            "erc20_confirmed": erc20.confirmed,
            "eip3009_sent": eip3009.sent,
            "eip3009_confirmed": eip3009.confirmed,
            "settlement_payments": s.payments,
            "crypto_signatures_per_payment": count.signatures,
            "crypto_recoveries_per_payment": count.recoveries,
        },
        "details": {
            "throughput_seconds": t.seconds,
            "throughput_median_round_ms": t.median_round_ms,
            "latency": asdict(lat),
            "erc20_seconds": erc20.seconds,
            "eip3009_seconds": eip3009.seconds,
            "settlement": asdict(s),
            "crypto_sign_us": times.sign_us,
            "crypto_recover_us": times.recover_us,
            "crypto_timings": parts.get("crypto_timings", []),
            "node_rss_mb": rss,
            "throughput_cpu_us_per_payment": busy,
            "latency_cpu_us_per_payment": single,
            "idle_cpu_ms_per_s": idle,
            "restart": asdict(restart),
        },
        "notes": notes,
    }
    results["verdicts"] = report.verdicts(results)
    return results


def _nodes_sum(cpu: dict[str, float]) -> float:
    """The CPU of the node processes together (the client left out)."""
    return sum(v for k, v in cpu.items() if k.startswith("node-"))
