"""A payer that equivocates: it signs two different orders for one sequence and sends
them to different nodes of a 4-node devnet (quorum 3). At most one of them gets a
certificate; neither can be certified by mixing votes; the honest nodes' states agree;
and the money adds up.

* Split: order A to nodes 0 and 1, order B to nodes 2 and 3. Each gets two votes, neither
  a quorum; asking the other half afterwards is refused as ``conflicting_order`` (409,
  naming the digest the node holds); certificates made of two votes, or of votes for the
  other order, are refused. The account is stuck at that sequence: the payer's own doing,
  as in FastPay (docs/threat-model.md).
* Race: for each of several payers, A and B go to all four nodes at once, in a random
  order per node. Whatever wins where, at most one order per payer collects a quorum;
  its certificate is applied everywhere and the other never is.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest

from devnet import Devnet, DevnetConfig
from tests.node.adversity import agree, balances, deposit_stable, log_size
from tests.node.devnet_helpers import call, certificate_of, domain_of, endpoints, wait_for
from wallet import wire
from wallet.codec import address_hex, hash_hex, parse_address
from wallet.eip712 import order_digest
from wallet.signing import PrivateKey, sign_order
from wallet.types import Amount, Sequence, SignedOrder, Transfer, Vote

pytestmark = pytest.mark.integration

USDF = 10**6
AGENTS = 8  # agent 0 equivocates in the split; agents 1..7 race
DEPOSIT = 20 * USDF


@pytest.fixture(scope="module")
def devnet() -> Iterator[Devnet]:
    with Devnet.up(DevnetConfig(start_nodes=True, agents=AGENTS)) as net:
        deposit_stable(net.manifest, DEPOSIT)
        yield net


async def _post(session: aiohttp.ClientSession, url: str, body: Any) -> tuple[int, Any]:
    async with session.post(url, json=body) as reply:
        return reply.status, await reply.json()


async def _vote(session: aiohttp.ClientSession, node: str, signed: SignedOrder) -> Vote | str:
    """The node's vote, or its refusal's code."""
    status, body = await _post(session, f"{node}/v1/orders", wire.signed_order_to_json(signed))
    return wire.vote_from_json(body["vote"]) if status == 200 else str(body["code"])


def _pair(m: Any, payer: PrivateKey, a_to: PrivateKey, b_to: PrivateKey) -> list[SignedOrder]:
    """Two different orders of ``payer`` at sequence 0."""
    domain, token = domain_of(m), parse_address(m.contracts.stable)
    return [
        sign_order(
            payer, domain, Transfer(payer.address, to.address, token, Amount(amount), Sequence(0))
        )
        for to, amount in ((a_to, 3 * USDF), (b_to, 4 * USDF))
    ]


async def _split(devnet: Devnet, keys: list[PrivateKey]) -> None:
    m = devnet.manifest
    nodes, domain = endpoints(m), domain_of(m)
    a, b = _pair(m, keys[0], keys[1], keys[2])
    digest_a, digest_b = order_digest(domain, a.order), order_digest(domain, b.order)
    async with aiohttp.ClientSession() as session:
        first = await asyncio.gather(
            *(_vote(session, n, a) for n in nodes[:2]), *(_vote(session, n, b) for n in nodes[2:])
        )
        assert all(isinstance(v, Vote) for v in first), first
        votes_a, votes_b = (
            [v for v in first[:2] if isinstance(v, Vote)],
            [v for v in first[2:] if isinstance(v, Vote)],
        )

        # The other half refuses: each node holds a lock on the order it voted for.
        for node, other, held in [(n, b, digest_a) for n in nodes[:2]] + [
            (n, a, digest_b) for n in nodes[2:]
        ]:
            status, body = await _post(
                session, f"{node}/v1/orders", wire.signed_order_to_json(other)
            )
            assert status == 409 and body["code"] == "conflicting_order", body
            assert body["conflicting"] == hash_hex(held)

        # No certificate out of two votes, nor out of votes for the other order.
        forged = [
            certificate_of(a, votes_a),
            certificate_of(b, votes_b),
            certificate_of(a, votes_a + votes_b[:1]),
            certificate_of(b, votes_b + votes_a[:1]),
        ]
        for certificate in forged:
            for node in nodes:
                status, body = await _post(
                    session, f"{node}/v1/certificates", wire.certificate_to_json(certificate)
                )
                assert status in (409, 422), body
                assert body["code"] in ("insufficient_quorum", "bad_vote"), body


async def _race(devnet: Devnet, keys: list[PrivateKey], rng: random.Random) -> tuple[int, int]:
    """Returns (payers whose one order was certified, payers left with none)."""
    m = devnet.manifest
    nodes, quorum, domain = endpoints(m), m.committee.quorum, domain_of(m)
    certified = stuck = 0
    async with aiohttp.ClientSession() as session:
        for i in range(1, len(keys)):
            pair = _pair(m, keys[i], keys[(i + 1) % len(keys)], keys[(i + 2) % len(keys)])

            async def both(node: str, pair: list[SignedOrder] = pair) -> list[Vote | str]:
                first, second = rng.sample(pair, 2)
                one = asyncio.ensure_future(_vote(session, node, first))
                await asyncio.sleep(rng.random() * 0.003)
                return [await one, await _vote(session, node, second)]

            replies = await asyncio.gather(*(both(n) for n in nodes))
            by_order: list[list[Vote]] = [[], []]
            for per_node in replies:
                got = [v for v in per_node if isinstance(v, Vote)]
                assert len(got) == 1, per_node  # one vote per node, the other refused
                digests = [order_digest(domain, s.order) for s in pair]
                by_order[digests.index(got[0].order)].append(got[0])
            winners = [k for k in (0, 1) if len(by_order[k]) >= quorum]
            assert len(winners) <= 1
            if not winners:
                stuck += 1
                continue
            certificate = certificate_of(pair[winners[0]], by_order[winners[0]][:quorum])
            loser = (
                certificate_of(pair[1 - winners[0]], by_order[1 - winners[0]])
                if by_order[1 - winners[0]]
                else None
            )
            for node in nodes:
                status, body = await _post(
                    session, f"{node}/v1/certificates", wire.certificate_to_json(certificate)
                )
                assert status == 200 and body["status"] in ("applied", "duplicate"), body
                if loser is not None:
                    status, body = await _post(
                        session, f"{node}/v1/certificates", wire.certificate_to_json(loser)
                    )
                    assert status in (409, 422), body
            certified += 1
    return certified, stuck


def test_a_payer_equivocating_gets_at_most_one_certificate(devnet: Devnet) -> None:
    m = devnet.manifest
    nodes, token = endpoints(m), parse_address(m.contracts.stable)
    keys = [PrivateKey.from_hex(agent.private_key) for agent in m.agents]  # PUBLIC test keys
    accounts = [k.address for k in keys]
    size = log_size(nodes[0])

    asyncio.run(_split(devnet, keys))
    assert agree(nodes, accounts, token) and log_size(nodes[0]) == size  # nothing applied

    certified, stuck = asyncio.run(_race(devnet, keys, random.Random(7)))
    assert certified + stuck == AGENTS - 1
    print(f"race: {certified} payers certified one order, {stuck} stuck, none both", flush=True)
    wait_for(lambda: agree(nodes, accounts, token), timeout=20)
    assert log_size(nodes[0]) == size + certified
    for url in nodes:
        held = balances(url, accounts, token)
        assert sum(held) == AGENTS * DEPOSIT  # nothing created or lost
        assert held[0] == DEPOSIT  # the split payer paid nothing
    sequences = [
        call(f"{nodes[0]}/v1/accounts/{address_hex(a)}")[1]["next_sequence"] for a in accounts
    ]
    assert sequences[0] == 0 and sorted(sequences[1:]) == [0] * stuck + [1] * certified
