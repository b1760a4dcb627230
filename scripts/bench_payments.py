"""Confirmed payments per second through a 4-node devnet (real processes, HTTP, LevelDB).

    .venv/bin/python scripts/bench_payments.py [--accounts 100] [--rounds 10] [--lanes 1]
        [--presign]

A devnet comes up with its 4 nodes; one agent deposits USDF on chain and funds
``accounts`` ledger accounts (fresh keys). Then, each round, every account pays the next
one: the driver sends all orders of the round to the 4 nodes in one batch request each,
forms a certificate from the first 3 votes of each order, and sends the certificates to
the 4 nodes in one batch each. A payment counts when a quorum of nodes answered
"applied". With ``--lanes N`` the accounts are split into N groups whose rounds run
concurrently (pipelining: the nodes work on one lane's certificates while another's
votes travel). With ``--presign`` every order is signed before the clock starts (the
wallets' signing is then not on this machine's two cores). Prints payments per second
and the median round time; the devnet goes down at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time

import aiohttp
from web3 import Web3

from bench.cpu import CpuMeter
from bench.ledger import run_round
from contracts import load_artifact
from devnet import Devnet, DevnetConfig
from wallet.codec import parse_address
from wallet.signing import PrivateKey, sign_order
from wallet.types import Amount, Domain, Sequence, SignedOrder, Transfer

USDF = 10**6


async def main_async(devnet: Devnet, accounts: int, rounds: int, lanes: int, presign: bool) -> None:
    m = devnet.manifest
    nodes = [member.endpoint for member in m.committee.members]
    quorum = m.committee.quorum
    domain = Domain(m.chain_id, parse_address(m.contracts.vault))
    token = parse_address(m.contracts.stable)

    w3 = Web3(Web3.HTTPProvider(m.rpc_url))
    agent = w3.eth.account.from_key(m.agents[0].private_key)
    usdf = w3.eth.contract(address=m.contracts.stable, abi=load_artifact("FarthingUSD").abi)
    vault = w3.eth.contract(address=m.contracts.vault, abi=load_artifact("Vault").abi)
    for fn in (
        usdf.functions.approve(vault.address, 10**15),
        vault.functions.deposit(usdf.address, 5_000 * USDF, agent.address),
    ):
        tx = fn.build_transaction(
            {"from": agent.address, "nonce": w3.eth.get_transaction_count(agent.address)}
        )
        w3.eth.wait_for_transaction_receipt(
            w3.eth.send_raw_transaction(agent.sign_transaction(tx).raw_transaction)
        )

    funder = PrivateKey.from_hex(m.agents[0].private_key)
    keys = [PrivateKey.generate() for _ in range(accounts)]
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64)) as session:
        for node in nodes:  # wait until every node credited the deposit
            while True:
                async with session.get(f"{node}/v1/accounts/{agent.address}") as reply:
                    if (await reply.json())["balances"]:
                        break
                await asyncio.sleep(0.1)
        # Funding: the funder pays every account once (sequential: one owner).
        for i, key in enumerate(keys):
            order = Transfer(funder.address, key.address, token, Amount(10 * USDF), Sequence(i))
            assert await run_round(session, nodes, [sign_order(funder, domain, order)], quorum) == 1

        def payment(i: int, r: int) -> SignedOrder:
            payer, payee = keys[i], keys[(i + 1) % accounts]
            transfer = Transfer(payer.address, payee.address, token, Amount(1), Sequence(r))
            return sign_order(payer, domain, transfer)

        presigned = (
            {(i, r): payment(i, r) for i in range(accounts) for r in range(rounds)}
            if presign
            else {}
        )
        times: list[float] = []

        async def lane(members: list[int]) -> int:
            confirmed = 0
            for r in range(rounds):
                signed = [presigned[(i, r)] if presign else payment(i, r) for i in members]
                t0 = time.perf_counter()
                confirmed += await run_round(session, nodes, signed, quorum)
                times.append(time.perf_counter() - t0)
            return confirmed

        pids = {p.name: p.pid for p in devnet.processes() if p.name.startswith("node-")}
        meter = CpuMeter({**pids, "client": os.getpid()})
        started = time.perf_counter()
        groups = [list(range(g, accounts, lanes)) for g in range(lanes)]
        confirmed = sum(await asyncio.gather(*(lane(g) for g in groups)))
        elapsed = time.perf_counter() - started
        cpu = meter.per_payment_us(confirmed)
    signing = "signed beforehand" if presign else "client signing included"
    print(
        f"{confirmed} confirmed payments in {elapsed:.2f} s: {confirmed / elapsed:.0f} payments/s "
        f"({lanes} lane(s) of {accounts // lanes} accounts, median round "
        f"{statistics.median(times) * 1000:.0f} ms, {signing})"
    )
    nodes_us = [us for name, us in cpu.items() if name.startswith("node-")]
    print(
        f"CPU per payment: nodes {', '.join(f'{us:.0f}' for us in nodes_us)} us "
        f"(sum {sum(nodes_us):.0f}), client {cpu.get('client', 0.0):.0f} us"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument(
        "--lanes", type=int, default=1, help="groups of accounts paying concurrently"
    )
    parser.add_argument("--presign", action="store_true", help="sign every order before timing")
    args = parser.parse_args()
    with Devnet.up(DevnetConfig(start_nodes=True, agents=1)) as devnet:
        asyncio.run(main_async(devnet, args.accounts, args.rounds, args.lanes, args.presign))


if __name__ == "__main__":
    main()
