"""Chaos: under a steady load of payments and withdrawals from several wallets, a random
node is SIGKILLed again and again (never more than f = 1 at once), left down a random
short while, and restarted from its own store. Afterwards every node agrees on
everything and nothing was lost, created or applied twice.

The load: ``PAYERS`` wallets (the real :class:`wallet.client.Wallet`, each with its own
crash-safe journal) pay one another concurrently, in USDF and FAR by turns, and every
``WITHDRAW_EVERY``-th order is a withdrawal. A payment that fails while a node is down
(no quorum in time) is finished with ``Wallet.resume()``: the same signed order at the
same sequence, until it is certified and delivered; the wallet never signs another order
at a used sequence (checked below from every order the wallets sent). Every reply a node
gave to an order goes through a recording transport, so every vote any wallet received is
known.

The checks, once the last node is back and all have caught up:

* every certificate any wallet obtained (its journal's) is applied on every node exactly
  once: ``GET /v1/certificates/{digest}`` shows it at the log index of its leaf, and each
  node's log holds exactly the deposits and those orders, no order digest twice;
* every node shows the same balances, the ones the certificates leave, and per token
  they add up to the deposits (as the Vault's events count them) minus the withdrawals;
* no node ever signed two different orders at one (account, sequence): the votes the
  wallets received, grouped by (signer, account, sequence), name one digest each;
* the locks survive the kills: a probe order every node voted for before the chaos (its
  certificate never formed) is still each node's pending order, voted again with the same
  vote, and a conflicting order is refused by every node; an order that differs from an
  applied one at its sequence gets no vote anywhere.

The figures (kills, payments, retries, mismatches) are printed (``pytest -s`` shows them).

``FARTHING_LONG=1``: the long run, at least 50 kills (the default is a bounded run of 6
kills for CI, well under 90 s on a 2-core machine). ``FARTHING_CHAOS_SEED=N`` replays a
run's schedule of kills and waits (the seed is printed; the timing of the load is not
reproducible).
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import statistics
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import aiohttp
import pytest
from web3 import Web3

from contracts import load_artifact
from devnet import Devnet, DevnetConfig
from node.state.entries import deposit_leaf, order_leaf
from tests.node.devnet_helpers import (
    NodeProcesses,
    alive,
    call,
    deposit_on_chain,
    domain_of,
    endpoints,
    log_leaves,
    wait_for,
)
from tests.support.long_runs import LONG
from wallet import wire
from wallet.client import HttpTransport, Journal, Network, Wallet
from wallet.client.transport import Refusal
from wallet.codec import address_hex, hash_hex, parse_address
from wallet.eip712 import order_digest
from wallet.errors import QuorumUnavailable
from wallet.signing import PrivateKey, sign_order
from wallet.types import (
    Address,
    Amount,
    Certificate,
    Domain,
    Hash32,
    Sequence,
    SignedOrder,
    Transfer,
    Vote,
    Withdrawal,
)

KILLS = 50 if LONG else 6

pytestmark = [pytest.mark.integration, pytest.mark.timeout(2400 if LONG else 300)]

USDF = 10**6
FAR = 10**18
PAYERS = 5  # agents 0..4 pay one another; agent 5 only holds the probe's lock
PROBE = PAYERS
DEPOSIT_USDF = 100 * USDF
DEPOSIT_FAR = 10 * FAR
PROBE_DEPOSIT = 5 * USDF
WITHDRAW_EVERY = 10
#: The chance that, while a node is down, another one stops answering for a while.
STALL_CHANCE = 0.4
#: The wallets' round timeout: short, so a stalled node makes rounds fail and retry.
WALLET_TIMEOUT = 2.0
#: How long a wallet may take to finish one order once a quorum is up again.
FINISH_TIMEOUT = 120.0
#: How long the nodes may take to agree once the chaos is over.
CATCH_UP_TIMEOUT = 120.0


@pytest.fixture(scope="module")
def devnet() -> Iterator[Devnet]:
    with Devnet.up(DevnetConfig(start_nodes=True, agents=PAYERS + 1)) as net:
        yield net


# ---------------------------------------------------------------- what the wallets saw


@dataclass
class Seen:
    """Every order the wallets sent and every vote they received."""

    domain: Domain
    #: (account, sequence) -> the digests of the orders sent at it
    orders: defaultdict[tuple[Address, int], set[Hash32]] = field(
        default_factory=lambda: defaultdict(set)
    )
    #: (signer, account, sequence) -> the digests the signer voted for there
    votes: defaultdict[tuple[Address, Address, int], set[Hash32]] = field(
        default_factory=lambda: defaultdict(set)
    )
    #: each vote's signature, by (signer, digest): a node asked again gives the same
    signatures: dict[tuple[Address, Hash32], set[bytes]] = field(
        default_factory=lambda: defaultdict(set)
    )

    def sent(self, signed: SignedOrder) -> None:
        order = signed.order
        self.orders[(order.owner, order.sequence)].add(order_digest(self.domain, order))

    def voted(self, signed: SignedOrder, vote: Vote) -> None:
        order = signed.order
        self.votes[(vote.signer, order.owner, order.sequence)].add(vote.order)
        self.signatures[(vote.signer, vote.order)].add(bytes(vote.signature))

    def certified(self, certificate: Certificate) -> None:
        order = certificate.order
        digest = order_digest(self.domain, order)
        for signer, _ in certificate.votes:
            self.votes[(signer, order.owner, order.sequence)].add(digest)


class RecordingTransport(HttpTransport):
    """The wallet's HTTP transport, noting every order sent and every vote received."""

    def __init__(self, seen: Seen, *, timeout: float) -> None:
        super().__init__(timeout=timeout)
        self._seen = seen

    async def post_order(self, endpoint: str, signed: SignedOrder) -> Vote | Refusal:
        self._seen.sent(signed)
        reply = await super().post_order(endpoint, signed)
        if isinstance(reply, Vote):
            self._seen.voted(signed, reply)
        return reply


# ---------------------------------------------------------------- the load and the chaos


@dataclass
class Load:
    calls: int = 0  # pay_final / withdraw calls that returned
    retries: int = 0  # transient failures (no quorum in time), each finished by resume()
    during_outage: int = 0  # calls that returned while a node was down
    kills: int = 0
    stalls: int = 0
    downtime: float = 0.0
    restarts: list[float] = field(default_factory=list)  # restart to answering, seconds
    stop: asyncio.Event = field(default_factory=asyncio.Event)


async def _finish(wallet: Wallet, load: Load) -> None:
    """Finishes the journal's unfinished order (the same signed order, again and again)."""
    deadline = time.monotonic() + FINISH_TIMEOUT
    while True:
        try:
            await wallet.resume()
            return
        except QuorumUnavailable:
            load.retries += 1
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)


async def _pay(wallet: Wallet, payee: Address, amount: Amount, token: Address, load: Load) -> None:
    """One payment, asked for again while it fails: the wallet finishes the order in
    flight (the same signed order) rather than signing another."""
    deadline = time.monotonic() + FINISH_TIMEOUT
    while True:
        try:
            await wallet.pay_final(payee, amount, token)
            return
        except QuorumUnavailable:
            load.retries += 1
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)


async def _payer(
    wallet: Wallet,
    payees: list[Address],
    tokens: list[Address],
    rng: random.Random,
    processes: NodeProcesses,
    load: Load,
) -> None:
    """Payments and, every WITHDRAW_EVERY-th order, a withdrawal, until the chaos is
    over. A failed payment is asked for again (half the time) or finished with
    ``resume()``; a failed withdrawal is finished with ``resume()`` (it may have failed
    after it was final, waiting for its receipt: asking again would withdraw twice)."""
    n = 0
    while not load.stop.is_set():
        n += 1
        token = tokens[n % 2]
        amount = Amount(rng.randrange(1, 1_000) * (1 if n % 2 == 0 else 10**12))
        withdrawal = n % WITHDRAW_EVERY == 0
        payee = rng.choice(payees)
        try:
            if withdrawal:
                await wallet.withdraw(amount, token)
            else:
                await wallet.pay_final(payee, amount, token)
        except QuorumUnavailable:  # a node down (or dying, or catching up): finish it
            load.retries += 1
            if withdrawal or rng.random() < 0.5:
                await _finish(wallet, load)
            else:
                await _pay(wallet, payee, amount, token, load)
        load.calls += 1
        if processes.down:
            load.during_outage += 1


async def _stall(processes: NodeProcesses, index: int, seconds: float, load: Load) -> None:
    """SIGSTOP node ``index`` for ``seconds`` (a node that does not answer, not a crash:
    with another one down, no quorum answers and the wallets retry), then SIGCONT."""
    pid = processes.pid(index)
    os.kill(pid, signal.SIGSTOP)
    load.stalls += 1
    try:
        await asyncio.sleep(seconds)
    finally:
        os.kill(pid, signal.SIGCONT)


async def _chaos(
    processes: NodeProcesses, nodes: list[str], rng: random.Random, load: Load
) -> None:
    """KILLS times: a while with every node up, SIGKILL a random node, a while down,
    restart it and wait until it answers (so at most one is ever down)."""
    try:
        for _ in range(KILLS):
            await asyncio.sleep(rng.uniform(0.1, 1.2))
            victim = rng.randrange(len(nodes))
            await asyncio.to_thread(processes.kill, victim)
            load.kills += 1
            down = time.monotonic()
            if rng.random() < STALL_CHANCE:  # no quorum for a while: the wallets retry
                await _stall(
                    processes,
                    rng.choice([i for i in range(len(nodes)) if i != victim]),
                    rng.uniform(0.5, 2.5),
                    load,
                )
            await asyncio.sleep(rng.uniform(0.05, 1.5))
            await asyncio.to_thread(processes.restart, victim)
            restarted = time.monotonic()
            await asyncio.to_thread(wait_for, partial(alive, nodes[victim]), 60.0)
            load.restarts.append(time.monotonic() - restarted)
            load.downtime += time.monotonic() - down
        await asyncio.sleep(0.5)  # a little load with every node up
    finally:
        load.stop.set()


async def _run(
    wallets: list[Wallet],
    keys: list[PrivateKey],
    tokens: list[Address],
    processes: NodeProcesses,
    nodes: list[str],
    seed: int,
) -> Load:
    load = Load()
    async with asyncio.TaskGroup() as group:
        for i, wallet in enumerate(wallets):
            payees = [k.address for j, k in enumerate(keys[:PAYERS]) if j != i]
            rng = random.Random(f"{seed}/payer/{i}")
            group.create_task(_payer(wallet, payees, tokens, rng, processes, load))
        group.create_task(_chaos(processes, nodes, random.Random(f"{seed}/chaos"), load))
    return load


async def _pay_under_chaos(
    network: Network,
    keys: list[PrivateKey],
    tokens: list[Address],
    processes: NodeProcesses,
    data: Path,
    seen: Seen,
    seed: int,
) -> Load:
    transports = [RecordingTransport(seen, timeout=WALLET_TIMEOUT) for _ in range(PAYERS)]
    wallets = [
        Wallet(
            keys[i],
            network,
            data_dir=data / f"payer-{i}",
            transport=transports[i],
            timeout=WALLET_TIMEOUT,
        )
        for i in range(PAYERS)
    ]
    try:
        for wallet in wallets:
            wallet.open()
        return await _run(wallets, keys, tokens, processes, list(network.endpoints), seed)
    finally:
        for wallet, transport in zip(wallets, transports, strict=True):
            await wallet.close()
            await transport.close()


# ---------------------------------------------------------------- the checks


async def _applied_everywhere(
    nodes: list[str], certificates: list[Certificate], domain: Domain
) -> dict[str, dict[Hash32, tuple[int, Certificate]]]:
    """Each node's ``GET /v1/certificates/{digest}`` of every certificate: the log index
    and certificate it shows (digests it does not know are left out)."""
    found: dict[str, dict[Hash32, tuple[int, Certificate]]] = {n: {} for n in nodes}
    limit = asyncio.Semaphore(16)
    timeout = aiohttp.ClientTimeout(total=30)

    async def get(session: aiohttp.ClientSession, node: str, digest: Hash32) -> None:
        async with limit, session.get(f"{node}/v1/certificates/{hash_hex(digest)}") as reply:
            if reply.status == 200:
                body = await reply.json()
                found[node][digest] = (
                    body["log_index"],
                    wire.certificate_from_json(body["certificate"]),
                )

    digests = [order_digest(domain, c.order) for c in certificates]
    async with aiohttp.ClientSession(timeout=timeout) as session:
        await asyncio.gather(*(get(session, n, d) for n in nodes for d in digests))
    return found


def _journal_entries(data: Path, key: PrivateKey) -> list[Certificate]:
    """The certificates of the wallet's journal (each entry must be confirmed)."""
    journal = Journal(data, key.address)
    journal.open()
    try:
        entries = journal.entries()
    finally:
        journal.close()
    assert [e.sequence for e in entries] == list(range(len(entries)))
    assert all(e.state == "confirmed" for e in entries), [
        (e.sequence, e.state, e.note) for e in entries if e.state != "confirmed"
    ]
    return [e.certificate for e in entries if e.certificate is not None]


def test_random_node_kills_under_load(devnet: Devnet, tmp_path: Path) -> None:
    started = time.monotonic()
    seed = int(os.environ.get("FARTHING_CHAOS_SEED") or random.SystemRandom().randrange(2**32))
    print(f"\nchaos: seed {seed}, {KILLS} kills{' (FARTHING_LONG)' if LONG else ''}", flush=True)
    m = devnet.manifest
    nodes, domain = endpoints(m), domain_of(m)
    assert len(nodes) == 4 and m.committee.quorum == 3
    network = Network.from_manifest(devnet.state_dir / "manifest.json")
    w3 = Web3(Web3.HTTPProvider(m.rpc_url))
    vault = w3.eth.contract(address=m.contracts.vault, abi=load_artifact("Vault").abi)
    usdf = w3.eth.contract(address=m.contracts.stable, abi=load_artifact("FarthingUSD").abi)
    far = w3.eth.contract(address=m.contracts.native, abi=load_artifact("FarthingToken").abi)
    tokens = [parse_address(usdf.address), parse_address(far.address)]
    keys = [PrivateKey.from_hex(agent.private_key) for agent in m.agents]
    assert len(keys) == PAYERS + 1

    # Deposits on chain: every payer in both tokens, the probe in USDF.
    expected_leaves: Counter[bytes] = Counter()
    balances: Counter[tuple[Address, Address]] = Counter()
    deposited: Counter[Address] = Counter()
    plan = [(i, usdf, DEPOSIT_USDF) for i in range(PAYERS)]
    plan += [(i, far, DEPOSIT_FAR) for i in range(PAYERS)]
    plan += [(PROBE, usdf, PROBE_DEPOSIT)]
    for deposit_id, (i, token, amount) in enumerate(plan, 1):
        deposit_on_chain(w3, m.agents[i].private_key, vault, token, amount)
        address, token_address = keys[i].address, parse_address(token.address)
        expected_leaves[deposit_leaf(deposit_id, address, token_address, amount)] += 1
        balances[(address, token_address)] += amount
        deposited[token_address] += amount
    wait_for(
        lambda: all(call(f"{e}/v1/log/head")[1]["tree_size"] == len(plan) for e in nodes),
        timeout=30,
    )

    # The probe: every node votes for it (and locks the probe's sequence 0); its
    # certificate is never formed.
    seen = Seen(domain)
    prober = keys[PROBE]
    probe = sign_order(
        prober,
        domain,
        Transfer(prober.address, keys[0].address, tokens[0], Amount(USDF), Sequence(0)),
    )
    probe_votes: dict[str, Vote] = {}
    for endpoint in nodes:
        status, body = call(f"{endpoint}/v1/orders", wire.signed_order_to_json(probe))
        assert status == 200, body
        probe_votes[endpoint] = wire.vote_from_json(body["vote"])
        seen.voted(probe, probe_votes[endpoint])

    processes = NodeProcesses(devnet)
    try:
        load = asyncio.run(_pay_under_chaos(network, keys, tokens, processes, tmp_path, seen, seed))
        chaos_over = time.monotonic()
        assert not processes.down

        # What the wallets obtained: every journal entry, confirmed.
        certificates = [
            c for i in range(PAYERS) for c in _journal_entries(tmp_path / f"payer-{i}", keys[i])
        ]
        withdrawn: Counter[Address] = Counter()
        for certificate in certificates:
            seen.certified(certificate)
            order = certificate.order
            expected_leaves[order_leaf(order, order_digest(domain, order))] += 1
            balances[(order.owner, order.token)] -= order.amount
            if isinstance(order, Withdrawal):
                withdrawn[order.token] += order.amount
            else:
                assert isinstance(order, Transfer)
                balances[(order.payee, order.token)] += order.amount
        withdrawals = sum(isinstance(c.order, Withdrawal) for c in certificates)
        size = sum(expected_leaves.values())

        # Every node catches up.
        try:
            wait_for(
                lambda: all(call(f"{e}/v1/log/head")[1]["tree_size"] >= size for e in nodes),
                timeout=CATCH_UP_TIMEOUT,
            )
        finally:
            sizes = [call(f"{e}/v1/log/head")[1]["tree_size"] for e in nodes]
            print(f"chaos: log sizes {sizes}, expected {size}", flush=True)
        caught_up = time.monotonic() - chaos_over

        mismatches: Counter[str] = Counter()
        applied = asyncio.run(_applied_everywhere(nodes, certificates, domain))
        for endpoint in nodes:
            _, head = call(f"{endpoint}/v1/log/head")
            mismatches["log size"] += head["tree_size"] != size
            leaves = log_leaves(endpoint, head["tree_size"])
            found = Counter(leaves)
            mismatches["log entries"] += sum(
                ((found - expected_leaves) + (expected_leaves - found)).values()
            )
            digests = Counter(leaf[1:] for leaf in leaves if leaf[0] != 0)
            mismatches["digest twice in a log"] += sum(n > 1 for n in digests.values())
            for certificate in certificates:
                digest = order_digest(domain, certificate.order)
                shown = applied[endpoint].get(digest)
                if shown is None:
                    mismatches["certificate not applied"] += 1
                    continue
                index, served = shown
                mismatches["certificate served"] += served.order != certificate.order
                mismatches["leaf at log index"] += not (
                    index < len(leaves) and leaves[index] == order_leaf(certificate.order, digest)
                )
            for i, key in enumerate(keys):
                _, account = call(f"{endpoint}/v1/accounts/{address_hex(key.address)}")
                want = {
                    address_hex(t): str(balances[(key.address, t)])
                    for t in sorted(tokens)
                    if balances[(key.address, t)]
                }
                mismatches["balances"] += account["balances"] != want
                if i < PAYERS:
                    sent = sum(c.order.owner == key.address for c in certificates)
                    mismatches["next sequence"] += account["next_sequence"] != sent
                    mismatches["lock left"] += account["pending_order"] is not None

        # Nothing lost, nothing created: per token, the balances are the deposits the
        # Vault took minus the withdrawals.
        on_chain: Counter[Address] = Counter()
        for event in vault.events.Deposited.get_logs(from_block=m.deploy_block):
            on_chain[parse_address(event["args"]["token"])] += event["args"]["amount"]
        for listed in tokens:
            total = sum(v for (_, t), v in balances.items() if t == listed)
            mismatches["supply"] += total != on_chain[listed] - withdrawn[listed]

        # One order per (account, sequence) sent; one digest per (signer, account,
        # sequence) voted; a node asked again gives the same vote.
        _check_locks(nodes, domain, keys, probe, probe_votes, certificates, seen, mismatches)
        mismatches["two orders sent at a sequence"] += sum(len(d) > 1 for d in seen.orders.values())
        mismatches["two votes at a sequence"] += sum(len(d) > 1 for d in seen.votes.values())
        mismatches["two signatures of a vote"] += sum(len(s) > 1 for s in seen.signatures.values())

        total_mismatches = sum(mismatches.values())
        elapsed = time.monotonic() - started
        print(
            f"chaos: kills {load.kills} (down {load.downtime:.1f} s in all; a restart "
            f"answered after {statistics.median(load.restarts):.1f} s median, "
            f"{max(load.restarts):.1f} s max; {load.stalls} times another node stalled "
            "meanwhile), "
            f"payments {len(certificates) - withdrawals} + withdrawals {withdrawals} "
            f"= {len(certificates)} certificates ({load.during_outage} calls returned with a "
            f"node down), retries {load.retries}, votes seen "
            f"{sum(len(d) for d in seen.votes.values())} at "
            f"{len(seen.votes)} (signer, account, sequence), caught up "
            f"{caught_up:.1f} s after the chaos, mismatches {total_mismatches}"
            f"{'' if not total_mismatches else ' ' + str(dict(+mismatches))}; "
            f"{elapsed:.1f} s",
            flush=True,
        )
        assert load.kills == KILLS
        assert total_mismatches == 0, dict(+mismatches)
        assert 0 < len(certificates) <= load.calls
        assert load.during_outage > 0
    finally:
        processes.stop()


def _check_locks(
    nodes: list[str],
    domain: Domain,
    keys: list[PrivateKey],
    probe: SignedOrder,
    probe_votes: dict[str, Vote],
    certificates: list[Certificate],
    seen: Seen,
    mismatches: Counter[str],
) -> None:
    """The probe's lock survived on every node (same vote again, a conflicting order
    refused); a different order at a sequence already applied gets no vote."""
    order = probe.order
    assert isinstance(order, Transfer)
    other = sign_order(
        keys[PROBE],
        domain,
        Transfer(order.owner, order.payee, order.token, Amount(2), order.sequence),
    )
    probe_digest = hash_hex(order_digest(domain, order))
    for endpoint in nodes:
        _, account = call(f"{endpoint}/v1/accounts/{address_hex(order.owner)}")
        mismatches["probe lock"] += account["pending_order"] != wire.signed_order_to_json(probe)
        status, body = call(f"{endpoint}/v1/orders", wire.signed_order_to_json(probe))
        if status == 200:
            vote = wire.vote_from_json(body["vote"])
            seen.voted(probe, vote)
            mismatches["probe vote changed"] += vote != probe_votes[endpoint]
        else:
            mismatches["probe vote refused"] += 1
        status, body = call(f"{endpoint}/v1/orders", wire.signed_order_to_json(other))
        if status == 200:
            seen.voted(other, wire.vote_from_json(body["vote"]))
        mismatches["conflicting probe not refused"] += not (
            status == 409
            and body.get("code") == "conflicting_order"
            and body.get("conflicting") == probe_digest
        )
    # Each payer: another order at its sequence 0, long applied.
    for key in keys[:PAYERS]:
        first = next(
            c.order for c in certificates if c.order.owner == key.address and c.order.sequence == 0
        )
        changed = sign_order(
            key,
            domain,
            Withdrawal(key.address, key.address, first.token, Amount(1), Sequence(0)),
        )
        for endpoint in nodes:
            status, body = call(f"{endpoint}/v1/orders", wire.signed_order_to_json(changed))
            if status == 200:
                seen.voted(changed, wire.vote_from_json(body["vote"]))
            mismatches["order at a used sequence voted"] += status == 200
