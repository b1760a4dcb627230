"""A node SIGKILLed in the middle of a burst of payments: the other 3 (the quorum) go on;
restarted from its own store, the node catches up, and then all 4 agree on everything:
the log's entries, every balance, every certificate applied exactly once, nothing lost
or created, and the killed node still holds the vote it gave before dying."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from web3 import Web3

from contracts import load_artifact
from devnet import Devnet, DevnetConfig
from devnet.processes import stop_child
from node.merkle import CompactRange
from node.state.entries import deposit_leaf, order_leaf
from tests.node.devnet_helpers import (
    alive,
    call,
    certificate_of,
    domain_of,
    endpoints,
    log_leaves,
    restart_node,
    send_transaction,
    wait_for,
)
from wallet import wire
from wallet.codec import address_hex, hash_hex, parse_address
from wallet.eip712 import order_digest
from wallet.merkle import hash_leaf
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
)

pytestmark = pytest.mark.integration

USDF = 10**6
FAR = 10**18
PAYERS = 4  # agents 0..3 pay each other; agent 4 only leaves a vote behind (the probe)
PAYMENTS_EACH = 75  # 300 payments in all
KILL_AFTER = 100  # confirmed payments before the SIGKILL
VICTIM = 2  # the node that is killed
DEPOSITS = {"stable": 100 * USDF, "native": 10 * FAR}  # per payer
PROBE_DEPOSIT = 5 * USDF


@pytest.fixture(scope="module")
def devnet() -> Iterator[Devnet]:
    with Devnet.up(DevnetConfig(start_nodes=True, agents=PAYERS + 1)) as net:
        yield net


@dataclass
class Burst:
    """What the wallets did during the burst."""

    certificates: list[Certificate] = field(default_factory=list)
    confirmed: int = 0
    confirmed_at_kill: int | None = None
    after_kill_without_victim: int = 0  # certificates formed without the victim's vote
    probe: SignedOrder | None = None
    probe_vote: Vote | None = None  # the victim's vote for the probe, just before it died
    reached: asyncio.Event = field(default_factory=asyncio.Event)


async def _post(session: aiohttp.ClientSession, url: str, body: Any) -> tuple[int, Any] | None:
    """POST ``body``; None when the node is down (or dies while answering)."""
    try:
        async with session.post(url, json=body) as reply:
            return reply.status, await reply.json()
    except (aiohttp.ClientError, TimeoutError):
        return None


async def _votes(
    session: aiohttp.ClientSession, nodes: list[str], signed: SignedOrder
) -> list[Vote | None]:
    body = wire.signed_order_to_json(signed)
    replies = await asyncio.gather(*(_post(session, f"{n}/v1/orders", body) for n in nodes))
    return [
        wire.vote_from_json(r[1]["vote"]) if r is not None and r[0] == 200 else None
        for r in replies
    ]


def _payment(keys: list[PrivateKey], tokens: list[Address], payer: int, sequence: int) -> Transfer:
    """Payer ``payer``'s payment at ``sequence``: to the next payer, in USDF and FAR by
    turns, amounts that differ from one payment to the next."""
    token = tokens[sequence % 2]
    amount = (1_000 + sequence) if sequence % 2 == 0 else (10**15 + sequence)
    payee = keys[(payer + 1) % PAYERS].address
    return Transfer(keys[payer].address, payee, token, Amount(amount), Sequence(sequence))


async def _pay(
    session: aiohttp.ClientSession,
    nodes: list[str],
    quorum: int,
    domain: Domain,
    keys: list[PrivateKey],
    tokens: list[Address],
    payer: int,
    burst: Burst,
) -> None:
    """One agent's payments, one after the other (each waits for its certificate)."""
    for sequence in range(PAYMENTS_EACH):
        signed = sign_order(keys[payer], domain, _payment(keys, tokens, payer, sequence))
        votes = await _votes(session, nodes, signed)
        got = [v for v in votes if v is not None]
        assert len(got) >= quorum, f"payer {payer} sequence {sequence}: votes {votes}"
        certificate = certificate_of(signed, got)
        burst.certificates.append(certificate)
        if burst.confirmed_at_kill is not None and votes[VICTIM] is None:
            burst.after_kill_without_victim += 1
        body = wire.certificate_to_json(certificate)
        replies = await asyncio.gather(
            *(_post(session, f"{n}/v1/certificates", body) for n in nodes)
        )
        accepted = [
            r for r in replies if r is not None and r[1].get("status") in ("applied", "duplicate")
        ]
        assert len(accepted) >= quorum, f"payer {payer} sequence {sequence}: {replies}"
        burst.confirmed += 1
        if burst.confirmed >= KILL_AFTER:
            burst.reached.set()


async def _kill_mid_burst(
    session: aiohttp.ClientSession,
    nodes: list[str],
    domain: Domain,
    prober: PrivateKey,
    payee: Address,
    token: Address,
    victim_pid: int,
    burst: Burst,
) -> None:
    """Once KILL_AFTER payments are confirmed: the probe's order gets a vote from every
    node (its certificate is never formed), then the victim is SIGKILLed."""
    await burst.reached.wait()
    probe = sign_order(
        prober, domain, Transfer(prober.address, payee, token, Amount(1 * USDF), Sequence(0))
    )
    votes = await _votes(session, nodes, probe)
    assert all(v is not None for v in votes), votes
    os.kill(victim_pid, signal.SIGKILL)
    burst.confirmed_at_kill = burst.confirmed
    burst.probe, burst.probe_vote = probe, votes[VICTIM]


async def _run_burst(
    nodes: list[str],
    quorum: int,
    domain: Domain,
    keys: list[PrivateKey],
    tokens: list[Address],
    victim_pid: int,
) -> Burst:
    burst = Burst()
    timeout = aiohttp.ClientTimeout(total=20)
    async with aiohttp.ClientSession(timeout=timeout) as session, asyncio.TaskGroup() as group:
        for payer in range(PAYERS):
            group.create_task(_pay(session, nodes, quorum, domain, keys, tokens, payer, burst))
        group.create_task(
            _kill_mid_burst(
                session, nodes, domain, keys[PAYERS], keys[0].address, tokens[0], victim_pid, burst
            )
        )
    return burst


def _root(leaves: list[bytes]) -> Hash32:
    frontier = CompactRange()
    for leaf in leaves:
        frontier.append(hash_leaf(leaf), lambda level, index, h: None)
    return frontier.root()


def test_a_node_killed_mid_burst_restarts_and_agrees(devnet: Devnet) -> None:
    m = devnet.manifest
    nodes, quorum, domain = endpoints(m), m.committee.quorum, domain_of(m)
    assert len(nodes) == 4 and quorum == 3
    w3 = Web3(Web3.HTTPProvider(m.rpc_url))
    vault = w3.eth.contract(address=m.contracts.vault, abi=load_artifact("Vault").abi)
    usdf = w3.eth.contract(address=m.contracts.stable, abi=load_artifact("FarthingUSD").abi)
    far = w3.eth.contract(address=m.contracts.native, abi=load_artifact("FarthingToken").abi)
    tokens = [parse_address(usdf.address), parse_address(far.address)]
    keys = [PrivateKey.from_hex(agent.private_key) for agent in m.agents]
    assert len(keys) == PAYERS + 1

    # Deposits on chain: every payer in both tokens, the prober in USDF.
    expected_leaves: Counter[bytes] = Counter()
    balances: dict[tuple[Address, Address], int] = Counter()
    deposited: Counter[Address] = Counter()
    plan = [(i, usdf, DEPOSITS["stable"]) for i in range(PAYERS)]
    plan += [(i, far, DEPOSITS["native"]) for i in range(PAYERS)]
    plan += [(PAYERS, usdf, PROBE_DEPOSIT)]
    for deposit_id, (i, token, amount) in enumerate(plan, 1):
        agent = m.agents[i]
        send_transaction(w3, agent.private_key, token.functions.approve(vault.address, amount))
        send_transaction(
            w3, agent.private_key, vault.functions.deposit(token.address, amount, agent.address)
        )
        address, token_address = keys[i].address, parse_address(token.address)
        expected_leaves[deposit_leaf(deposit_id, address, token_address, amount)] += 1
        balances[(address, token_address)] += amount
        deposited[token_address] += amount
    wait_for(
        lambda: all(call(f"{e}/v1/log/head")[1]["tree_size"] == len(plan) for e in nodes),
        timeout=15,
    )

    # The burst; the victim dies a third of the way through.
    victim_pid = next(p.pid for p in m.processes if p.name == f"node-{VICTIM}")
    burst = asyncio.run(_run_burst(nodes, quorum, domain, keys, tokens, victim_pid))
    total = PAYERS * PAYMENTS_EACH
    assert burst.confirmed == len(burst.certificates) == total
    assert burst.confirmed_at_kill is not None and burst.confirmed_at_kill < total - 100
    # The other three went on without it: certificates of exactly their votes.
    assert burst.after_kill_without_victim >= total - burst.confirmed_at_kill - PAYERS
    assert not alive(nodes[VICTIM])
    for certificate in burst.certificates:
        order = certificate.order
        assert isinstance(order, Transfer)
        expected_leaves[order_leaf(order, order_digest(domain, order))] += 1
        balances[(order.owner, order.token)] -= order.amount
        balances[(order.payee, order.token)] += order.amount

    restarted: subprocess.Popen[bytes] | None = None
    try:
        # The victim comes back from its own store (same key, data dir and port).
        restarted = restart_node(devnet, VICTIM)
        wait_for(lambda: alive(nodes[VICTIM]), timeout=20)
        size = len(plan) + total
        wait_for(
            lambda: all(call(f"{e}/v1/log/head")[1]["tree_size"] == size for e in nodes),
            timeout=20,
        )
        _check_agreement(nodes, keys, tokens, domain, burst, expected_leaves, balances)
        # Nothing lost, nothing created: per token, the ledger's balances add up to the
        # deposits the Vault took.
        on_chain: Counter[Address] = Counter()
        for event in vault.events.Deposited.get_logs(from_block=m.deploy_block):
            on_chain[parse_address(event["args"]["token"])] += event["args"]["amount"]
        assert on_chain == deposited
        assert vault.functions.nextDepositId().call() == len(plan) + 1
        for listed in tokens:
            assert sum(v for (_, t), v in balances.items() if t == listed) == deposited[listed]
        _check_no_second_vote(nodes, domain, keys[PAYERS], burst)
    finally:
        if restarted is not None:
            stop_child(restarted)


def _check_agreement(
    nodes: list[str],
    keys: list[PrivateKey],
    tokens: list[Address],
    domain: Domain,
    burst: Burst,
    expected_leaves: Counter[bytes],
    balances: dict[tuple[Address, Address], int],
) -> None:
    size = sum(expected_leaves.values())
    for endpoint in nodes:
        _, head = call(f"{endpoint}/v1/log/head")
        assert head["tree_size"] == size
        leaves = log_leaves(endpoint, size)
        # Every deposit and every payment once, nothing else; the root is that log's. The
        # roots of two nodes may differ: each logs in the order it applied (concurrent
        # payers' certificates reach the nodes in different orders; protocol.md 1a).
        assert Counter(leaves) == expected_leaves, endpoint
        assert hash_hex(_root(leaves)) == head["root"], endpoint
        # Every certificate applied once, at the log index of its leaf.
        indexes = set()
        for certificate in burst.certificates:
            digest = order_digest(domain, certificate.order)
            status, found = call(f"{endpoint}/v1/certificates/{hash_hex(digest)}")
            assert status == 200, (endpoint, found)
            assert wire.certificate_from_json(found["certificate"]).order == certificate.order
            assert leaves[found["log_index"]] == order_leaf(certificate.order, digest)
            indexes.add(found["log_index"])
        assert len(indexes) == len(burst.certificates)
        # Every account: the balances the payments leave, its sequence where it stopped.
        for i, key in enumerate(keys):
            _, account = call(f"{endpoint}/v1/accounts/{address_hex(key.address)}")
            want = {
                address_hex(t): str(balances[(key.address, t)])
                for t in sorted(tokens)
                if balances[(key.address, t)]
            }
            assert account["balances"] == want, (endpoint, i)
            assert account["next_sequence"] == (PAYMENTS_EACH if i < PAYERS else 0)
            if i < PAYERS:
                assert account["pending_order"] is None
            else:  # the probe's lock, on the victim too: it survived the SIGKILL
                assert burst.probe is not None
                assert account["pending_order"] == wire.signed_order_to_json(burst.probe)


def _check_no_second_vote(
    nodes: list[str], domain: Domain, prober: PrivateKey, burst: Burst
) -> None:
    """The victim voted for the probe just before it died: asked again it gives the same
    vote, and it refuses any other order at that (account, sequence); so do the others."""
    probe, vote = burst.probe, burst.probe_vote
    assert probe is not None and vote is not None
    status, body = call(f"{nodes[VICTIM]}/v1/orders", wire.signed_order_to_json(probe))
    assert status == 200, body
    assert wire.vote_from_json(body["vote"]) == vote
    order = probe.order
    assert isinstance(order, Transfer)
    other = sign_order(
        prober, domain, Transfer(order.owner, order.payee, order.token, Amount(2), order.sequence)
    )
    for endpoint in nodes:
        status, body = call(f"{endpoint}/v1/orders", wire.signed_order_to_json(other))
        assert status == 409, (endpoint, body)
        assert body["code"] == "conflicting_order"
        assert body["conflicting"] == hash_hex(order_digest(domain, order))
