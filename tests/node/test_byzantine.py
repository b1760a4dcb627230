"""A Byzantine member in the committee (node 3, started with FARTHING_TEST_BYZANTINE:
node/byzantine.py): it votes for conflicting orders, publishes a forked checkpoint every
other time it is asked, and floods its peers with forged and malformed certificates.

With it among the four (f = 1):

* no double spend: a payer that gets node 3 to vote for a second order at a sequence
  already certified gets no second certificate (the honest nodes' locks hold);
* the honest nodes catch node 3: shown its second vote (the payer's short certificate),
  each keeps the two votes as slashing evidence (GET /v1/log/evidence) and takes it to
  the Vault, which slashes node 3's whole bond once and rewards the first reporter;
* its witnesses keep two of its checkpoints that cannot both be true (a forked log);
* its forged gossip changes nothing: the honest nodes agree on every entry and balance,
  and the balances add up to the deposits.
"""

from __future__ import annotations

import asyncio
import urllib.request
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest
from web3 import Web3

from contracts import load_artifact
from devnet import Devnet, DevnetConfig
from node.byzantine import ENV
from tests.node.adversity import (
    RunningNodes,
    agree,
    balances,
    deposit_stable,
    log_size,
    nodes_running,
)
from tests.node.devnet_helpers import call, certificate_of, domain_of, endpoints, wait_for
from wallet import wire
from wallet.chain import SlashResult, VaultClient
from wallet.signing import PrivateKey, check_equivocation, sign_order
from wallet.types import Amount, Equivocation, Sequence, SignedOrder, Transfer, Vote

pytestmark = pytest.mark.integration

USDF = 10**6
DEPOSIT = 20 * USDF
BYZANTINE = 3
HONEST = (0, 1, 2)


@pytest.fixture(scope="module")
def running() -> Iterator[tuple[Devnet, RunningNodes]]:
    with Devnet.up(DevnetConfig(start_nodes=False, agents=3)) as net:
        env = {BYZANTINE: {ENV: "votes,checkpoints,gossip"}}
        with nodes_running(net, extra_env=env) as nodes:
            deposit_stable(net.manifest, DEPOSIT)
            yield net, nodes


async def _post(session: aiohttp.ClientSession, url: str, body: Any) -> tuple[int, Any]:
    async with session.post(url, json=body) as reply:
        return reply.status, await reply.json()


async def _vote(session: aiohttp.ClientSession, node: str, signed: SignedOrder) -> Vote:
    status, body = await _post(session, f"{node}/v1/orders", wire.signed_order_to_json(signed))
    assert status == 200, body
    return wire.vote_from_json(body["vote"])


async def _double_spend(devnet: Devnet, keys: list[PrivateKey]) -> dict[str, Any]:
    m = devnet.manifest
    nodes, domain, token = (
        endpoints(m),
        domain_of(m),
        wire.decode_address(m.contracts.stable, "", "token"),
    )
    payer = keys[0]
    a, b = (
        sign_order(
            payer, domain, Transfer(payer.address, to.address, token, Amount(amount), Sequence(0))
        )
        for to, amount in ((keys[1], 3 * USDF), (keys[2], 4 * USDF))
    )
    async with aiohttp.ClientSession() as session:
        # B reaches honest node 2 first; A gets nodes 0, 1 and the Byzantine 3.
        vote_b2 = await _vote(session, nodes[2], b)
        votes_a = [await _vote(session, nodes[i], a) for i in (0, 1, BYZANTINE)]
        certificate_a = certificate_of(a, votes_a)
        for node in nodes:
            status, body = await _post(
                session, f"{node}/v1/certificates", wire.certificate_to_json(certificate_a)
            )
            assert status == 200 and body["status"] in ("applied", "duplicate"), (node, body)
        # Node 3 votes for B too, though it voted for A (an honest node refuses: 409).
        vote_b3 = await _vote(session, nodes[BYZANTINE], b)
        for i in (0, 1):
            status, body = await _post(
                session, f"{nodes[i]}/v1/orders", wire.signed_order_to_json(b)
            )
            assert status == 409, body
        # Two votes for B: no certificate. Shown to the honest nodes, it is refused, and
        # it reveals node 3's second vote.
        short = certificate_of(b, [vote_b2, vote_b3])
        for i in HONEST:
            status, body = await _post(
                session, f"{nodes[i]}/v1/certificates", wire.certificate_to_json(short)
            )
            assert (status, body["code"]) == (422, "insufficient_quorum"), body
    return {"a": a, "b": b}


def test_a_byzantine_member_cannot_double_spend_and_is_caught(
    running: tuple[Devnet, RunningNodes],
) -> None:
    devnet, processes = running
    m = devnet.manifest
    nodes, domain = endpoints(m), domain_of(m)
    keys = [PrivateKey.from_hex(agent.private_key) for agent in m.agents]  # PUBLIC test keys
    token = wire.decode_address(m.contracts.stable, "", "token")
    accounts = [k.address for k in keys]
    member = m.committee.members[BYZANTINE]
    size = log_size(nodes[0])

    orders = asyncio.run(_double_spend(devnet, keys))

    # No double spend: A is applied everywhere, B nowhere; the money adds up.
    honest = [nodes[i] for i in HONEST]
    wait_for(lambda: agree(honest, accounts, token), timeout=20)
    for url in honest:
        assert log_size(url) == size + 1
        held = balances(url, accounts, token)
        assert held == [DEPOSIT - 3 * USDF, DEPOSIT + 3 * USDF, DEPOSIT]
        assert sum(held) == 3 * DEPOSIT

    # Each honest node kept node 3's two votes; the evidence is sound.
    for url in honest:
        status, body = call(f"{url}/v1/log/evidence")
        assert status == 200
        (evidence,) = [wire.equivocation_from_json(e) for e in body["equivocations"]]
        assert evidence.member == wire.decode_address(member.address, "", "member")
        assert {evidence.first, evidence.second} == {orders["a"].order, orders["b"].order}
        assert check_equivocation(domain, evidence) is None

    # The honest nodes take it to the Vault themselves (node.evidence.EvidenceReporter):
    # node 3's whole bond is slashed, once, and the first honest node to ask is rewarded.
    w3 = Web3(Web3.HTTPProvider(m.rpc_url))
    vault = w3.eth.contract(address=m.contracts.vault, abi=load_artifact("Vault").abi)
    wait_for(lambda: vault.functions.bonds(member.address).call() == [0, 0, True], timeout=30)
    (slashed,) = vault.events.Slashed().get_logs(from_block=0)
    honest_members = {m.committee.members[i].address for i in HONEST}
    assert slashed["args"]["member"] == member.address
    assert slashed["args"]["reporter"] in honest_members
    bps = vault.functions.slashRewardBps().call()
    assert slashed["args"]["reward"] == slashed["args"]["amount"] * bps // 10_000 > 0

    # Each honest node reported it: one slashed, the others found nothing left to slash.
    def outcome(i: int) -> str:
        log = (devnet.state_dir / f"node-{i}.log").read_text()
        if "slashed on chain" in log:
            return "slashed"
        return "too late" if "has no bond left to slash" in log else "pending"

    wait_for(lambda: "pending" not in [outcome(i) for i in HONEST], timeout=30)
    assert sorted(outcome(i) for i in HONEST) == ["slashed", "too late", "too late"]
    # Anyone else who brings the evidence now finds nothing left (nothing is sent).
    result = asyncio.run(_slash_again(m.rpc_url, m.contracts.vault, keys[1], evidence))
    assert not result.slashed_now and result.amount == 0

    # Its forked checkpoints: the honest witnesses keep evidence against it.
    def forked() -> bool:
        reports = [call(f"{url}/v1/log/evidence")[1]["evidence"] for url in honest]
        return all(any(r["node"] == member.address for r in found) for found in reports)

    wait_for(forked, timeout=30)

    # Its forged gossip (a few seconds of it by now) was refused and changed nothing.
    for url in honest:
        with urllib.request.urlopen(f"{url}/v1/metrics", timeout=5) as reply:
            metrics = reply.read().decode()
        assert _count(metrics, 'farthing_refusals_total{code="not_a_member"}') > 0, url
        assert _count(metrics, "farthing_http_connections") >= 1, url  # this request's
        assert "farthing_http_connections_refused_total 0" in metrics, url
    assert all(log_size(url) == size + 1 for url in honest)
    assert agree(honest, accounts, token)

    # A restarted node hands the evidence its store kept to its reporter again: the
    # Vault has nothing left to take (and nothing is sent).
    log = devnet.state_dir / f"node-{HONEST[0]}.log"
    before = log.read_text().count("has no bond left to slash")
    processes.restart(HONEST[0])
    wait_for(lambda: log.read_text().count("has no bond left to slash") > before, timeout=30)
    assert vault.functions.bonds(member.address).call() == [0, 0, True]


def _count(metrics: str, series: str) -> float:
    """The value of one series in the Prometheus text format (0 when absent)."""
    for line in metrics.splitlines():
        if line.startswith(series + " "):
            return float(line.split()[-1])
    return 0.0


async def _slash_again(
    rpc_url: str, vault: str, key: PrivateKey, evidence: Equivocation
) -> SlashResult:
    address = wire.decode_address(vault, "", "vault")
    async with VaultClient(rpc_url, address, key) as client:
        return await client.slash_equivocation(evidence)
