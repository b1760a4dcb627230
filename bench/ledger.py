"""The Farthing side's clients: batched rounds for throughput, single payments for
latency, funding, and the on-chain deposit that backs them.

* :func:`run_round` (shared with ``scripts/bench_payments.py``): all orders of a round
  go to every node in one ``/v1/orders/batch`` request each; a certificate is formed
  from the first quorum of votes of each order; the certificates go to every node in one
  ``/v1/certificates/batch`` each. A payment counts when a quorum answered "applied" (or
  "duplicate"). Votes are not verified by this driver (the nodes verify what they get).
* :func:`pay_one`: one payment the way the wallet's ``pay_final`` makes it, through the
  wallet library's own :func:`wallet.client.votes.collect_votes` (one ``POST
  /v1/orders`` per node, each vote checked as it arrives, stop at a quorum) and
  :func:`wallet.client.votes.deliver` (``POST /v1/certificates`` to every node until a
  quorum took it), without the journal and spending policy of a ``Wallet``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp
from web3 import Web3

from contracts import load_artifact
from devnet.manifest import Manifest
from wallet import wire
from wallet.client.network import Network
from wallet.client.transport import Transport
from wallet.client.votes import collect_votes, deliver
from wallet.codec import parse_address
from wallet.signing import PrivateKey, sign_order
from wallet.types import (
    Address,
    Amount,
    Certificate,
    Domain,
    Order,
    SignedOrder,
    Transfer,
)
from wallet.types import (
    Sequence as Seq,
)

USDF = 10**6


@dataclass(frozen=True, slots=True)
class Ledger:
    """What the Farthing clients need of a devnet."""

    nodes: tuple[str, ...]
    quorum: int
    domain: Domain
    token: Address

    @classmethod
    def of(cls, m: Manifest) -> Ledger:
        return cls(
            tuple(member.endpoint for member in m.committee.members),
            m.committee.quorum,
            Domain(m.chain_id, parse_address(m.contracts.vault)),
            parse_address(m.contracts.stable),
        )


async def post_batch(
    session: aiohttp.ClientSession, url: str, key: str, items: list[Any]
) -> list[Any]:
    async with session.post(url, json={key: items}) as reply:
        reply.raise_for_status()
        return list((await reply.json())["results"])


async def run_round(
    session: aiohttp.ClientSession, nodes: Sequence[str], signed: list[SignedOrder], quorum: int
) -> int:
    """Takes ``signed`` (orders of distinct accounts) through votes and certificates in
    batches; returns how many were applied by a quorum."""
    orders = [wire.signed_order_to_json(s) for s in signed]
    replies = await asyncio.gather(
        *(post_batch(session, f"{n}/v1/orders/batch", "orders", orders) for n in nodes)
    )
    certificates = []
    for i, s in enumerate(signed):
        votes = [wire.vote_from_json(r[i]["vote"]) for r in replies if "vote" in r[i]][:quorum]
        if len(votes) == quorum:
            certificates.append(
                Certificate(
                    s, votes[0].epoch, tuple(sorted((v.signer, v.signature) for v in votes))
                )
            )
    bodies = [wire.certificate_to_json(c) for c in certificates]
    if not bodies:
        return 0
    results = await asyncio.gather(
        *(post_batch(session, f"{n}/v1/certificates/batch", "certificates", bodies) for n in nodes)
    )
    return sum(
        sum(r[i].get("status") in ("applied", "duplicate") for r in results) >= quorum
        for i in range(len(bodies))
    )


async def pay_one(
    transport: Transport,
    network: Network,
    signed: SignedOrder,
    timeout: float = 10.0,
    background: set[asyncio.Future[Any]] | None = None,
) -> Certificate:
    """Votes from a quorum (each checked), the certificate, delivered to a quorum: what
    ``Wallet.pay_final`` does after signing (``background`` as the wallet's: the
    requests past the quorum go on). Raises RuntimeError if no quorum voted."""
    result = await collect_votes(transport, network, signed, timeout=timeout, background=background)
    if result.applied is not None:
        certificate = result.applied
    elif len(result.votes) >= network.committee.quorum:
        certificate = result.certificate(signed, network.committee.quorum)
    else:
        raise RuntimeError(f"no quorum: {result.refusals or result.faults}")
    await deliver(transport, network, certificate, timeout=timeout, background=background)
    return certificate


async def wait_for_balance(session: aiohttp.ClientSession, nodes: Sequence[str], who: str) -> None:
    """Until every node shows a balance for ``who`` (a deposit credited)."""
    for node in nodes:
        for _ in range(600):
            async with session.get(f"{node}/v1/accounts/{who}") as reply:
                if (await reply.json())["balances"]:
                    break
            await asyncio.sleep(0.05)
        else:
            raise RuntimeError(f"{node} never credited the deposit")


def deposit(m: Manifest, agent_index: int, amount: int) -> int:
    """The agent approves the Vault and deposits ``amount`` USDF base units for itself;
    returns the gas of the deposit transaction (the approval is once per account)."""
    w3 = Web3(Web3.HTTPProvider(m.rpc_url))
    agent = w3.eth.account.from_key(m.agents[agent_index].private_key)
    usdf = w3.eth.contract(address=m.contracts.stable, abi=load_artifact("FarthingUSD").abi)
    vault = w3.eth.contract(address=m.contracts.vault, abi=load_artifact("Vault").abi)
    gas = 0
    for fn in (
        usdf.functions.approve(vault.address, 10**15),
        vault.functions.deposit(usdf.address, amount, agent.address),
    ):
        tx = fn.build_transaction(
            {"from": agent.address, "nonce": w3.eth.get_transaction_count(agent.address)}
        )
        receipt = w3.eth.wait_for_transaction_receipt(
            w3.eth.send_raw_transaction(agent.sign_transaction(tx).raw_transaction)
        )
        if receipt["status"] != 1:
            raise RuntimeError("the deposit failed")
        gas = int(receipt["gasUsed"])
    return gas


async def fund(
    session: aiohttp.ClientSession,
    ledger: Ledger,
    funder: PrivateKey,
    payees: Sequence[Address],
    amount: int,
    first_sequence: int = 0,
) -> int:
    """The funder pays ``amount`` to each payee (one after another: one owner's orders are
    sequential); returns the funder's next sequence."""
    sequence = first_sequence
    for payee in payees:
        order: Order = Transfer(funder.address, payee, ledger.token, Amount(amount), Seq(sequence))
        signed = sign_order(funder, ledger.domain, order)
        if await run_round(session, ledger.nodes, [signed], ledger.quorum) != 1:
            raise RuntimeError("funding a ledger account failed")
        sequence += 1
    return sequence
