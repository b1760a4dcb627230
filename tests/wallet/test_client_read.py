"""The payee's side and the reads, against the fake committee: balances as
strong-majority lower bounds, verified history, wait_for_payment, recover."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from pathlib import Path

import pytest

from tests.wallet.client_fakes import DOMAIN, TOKEN, FakeCommittee, make_committee
from wallet.client import Network, Wallet
from wallet.eip712 import order_digest
from wallet.errors import EncodingError, PaymentNotSeen, QuorumUnavailable
from wallet.signing import PrivateKey
from wallet.types import Amount, Hash32, Signature

PAYER = PrivateKey(bytes([0x11] * 32))
PAYEE_KEY = PrivateKey(bytes([0x22] * 32))
PAYEE = PAYEE_KEY.address
REFERENCE = Hash32(bytes(range(32)))


@pytest.fixture
def net() -> FakeCommittee:
    committee = make_committee()
    committee.credit(PAYER.address, 1_000)
    return committee


def wallet_of(net: FakeCommittee, key: PrivateKey, data_dir: Path) -> Wallet:
    return Wallet(key, net.network, data_dir=data_dir, transport=net.transport, poll_interval=0.01)


@pytest.mark.asyncio
async def test_a_faulty_node_cannot_inflate_a_balance(net: FakeCommittee, tmp_path: Path) -> None:
    net.nodes[2].credit(PAYER.address, 10**9)
    async with wallet_of(net, PAYER, tmp_path) as wallet:
        assert await wallet.balance(TOKEN) == 1_000
        assert await wallet.balances() == {TOKEN: 1_000}


@pytest.mark.asyncio
async def test_a_balance_is_a_lower_bound_and_never_negative(
    net: FakeCommittee, tmp_path: Path
) -> None:
    net.nodes[1].credit(PAYER.address, -1_200)  # lagging: applied a debit before a credit
    net.nodes[0].credit(PAYER.address, -5_000)
    async with wallet_of(net, PAYER, tmp_path) as wallet:
        # Answers 1000, 1000, -200, -4000: the quorum-th (3rd) largest, floored at 0.
        assert await wallet.balance(TOKEN) == 0
        net.nodes[0].credit(PAYER.address, 4_700)
        assert await wallet.balance(TOKEN) == 700  # 1000, 1000, 700, -200
        net.nodes[0].credit(PAYER.address, 300)
        assert await wallet.balance(TOKEN) == 1_000  # one lagging node does not count


@pytest.mark.asyncio
async def test_reads_need_a_quorum(net: FakeCommittee, tmp_path: Path) -> None:
    net.nodes[0].down = net.nodes[1].wrong_shape = True
    async with wallet_of(net, PAYER, tmp_path) as wallet:
        with pytest.raises(QuorumUnavailable):
            await wallet.balance(TOKEN)


@pytest.mark.asyncio
async def test_history_is_verified_and_a_forged_certificate_is_ignored(
    net: FakeCommittee, tmp_path: Path
) -> None:
    async with wallet_of(net, PAYER, tmp_path / "a") as payer:
        for amount in (5, 6, 7):
            await payer.pay(PAYEE, Amount(amount), TOKEN)
        # Node 0 forges its copy of sequence 1 (a vote signature is broken).
        forged = net.nodes[0].by_sequence[PAYER.address, 1]
        signer, signature = forged.votes[0]
        broken = bytes([signature[0] ^ 1]) + signature[1:]
        net.nodes[0].by_sequence[PAYER.address, 1] = dataclasses.replace(
            forged, votes=((signer, Signature(broken)), *forged.votes[1:])
        )
        history = await payer.history()
    assert [c.order.amount for c in history.sent] == [5, 6, 7]
    assert history.received == ()
    async with wallet_of(net, PAYEE_KEY, tmp_path / "b") as payee:
        received = (await payee.history()).received
    assert [c.order.amount for c in received] == [5, 6, 7]


@pytest.mark.asyncio
async def test_wait_for_payment_sees_a_live_payment_by_reference(
    net: FakeCommittee, tmp_path: Path
) -> None:
    async with (
        wallet_of(net, PAYER, tmp_path / "a") as payer,
        wallet_of(net, PAYEE_KEY, tmp_path / "b") as payee,
    ):
        waiting = asyncio.ensure_future(payee.wait_for_payment(reference=REFERENCE, timeout=5))
        await asyncio.sleep(0.05)
        await payer.pay(PAYEE, Amount(3), TOKEN)  # another payment: not this one
        assert not waiting.done()
        await payer.pay(PAYEE, Amount(4), TOKEN, reference=REFERENCE)
        certificate = await waiting
    assert certificate.order.amount == 4


@pytest.mark.asyncio
async def test_wait_for_payment_finds_one_made_just_before_and_survives_a_bad_node(
    net: FakeCommittee, tmp_path: Path
) -> None:
    async with (
        wallet_of(net, PAYER, tmp_path / "a") as payer,
        wallet_of(net, PAYEE_KEY, tmp_path / "b") as payee,
    ):
        await payer.pay(PAYEE, Amount(9), TOKEN)
        net.nodes[0].garbage = True  # the payee listens to every node: one honest suffices
        net.nodes[1].down = True
        net.nodes[2].wrong_shape = True
        certificate = await payee.wait_for_payment(payer=PAYER.address, timeout=5)
        assert certificate.order.amount == 9
        started = time.monotonic()
        with pytest.raises(PaymentNotSeen):
            await payee.wait_for_payment(payer=PAYEE, timeout=0.2)
        assert time.monotonic() - started < 1


def test_a_manifest_gives_the_network(tmp_path: Path) -> None:
    net = make_committee()
    manifest = {
        "version": 1,
        "chain_id": DOMAIN.chain_id,
        "contracts": {"vault": "0x" + DOMAIN.vault.hex()},
        "committee": {
            "epoch": 1,
            "quorum": 3,
            "members": [
                {"address": "0x" + m.hex(), "private_key": "0x" + "00" * 32, "endpoint": e + "/"}
                for m, e in zip(net.network.committee.members, net.network.endpoints, strict=True)
            ],
        },
    }
    import json

    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(manifest))
    assert Network.from_manifest(path) == net.network
    with pytest.raises(EncodingError):
        Network.from_manifest_dict({"version": 1, "committee": {}})


@pytest.mark.asyncio
async def test_recover_finishes_the_locked_order_and_rebuilds_the_view(
    net: FakeCommittee, tmp_path: Path
) -> None:
    async with wallet_of(net, PAYER, tmp_path / "lost") as old:
        await old.pay(PAYEE, Amount(100), TOKEN)
        net.nodes[0].down = net.nodes[1].down = True
        with pytest.raises(QuorumUnavailable):
            await old.pay(PAYEE, Amount(50), TOKEN)  # voted by two nodes, then lost
    net.nodes[0].down = net.nodes[1].down = False
    async with wallet_of(net, PAYER, tmp_path / "new") as wallet:
        recovery = await wallet.recover()
    assert recovery.finished is None  # the new journal had nothing to finish ...
    assert recovery.next_sequence == 2  # ... but the nodes' lock at 1 was adopted
    assert [c.order.amount for c in recovery.history.sent] == [100, 50]
    assert recovery.balances == {TOKEN: 850}


@pytest.mark.asyncio
async def test_a_certificate_by_its_digest(net: FakeCommittee, tmp_path: Path) -> None:
    """certificate(digest): what a payee told of a payment checks; verified, from the
    first node that shows it; a node showing a forged copy is passed over; None when no
    node has it in time."""
    async with (
        wallet_of(net, PAYER, tmp_path / "a") as payer,
        wallet_of(net, PAYEE_KEY, tmp_path / "b") as payee,
    ):
        certificate = await payer.pay_final(PAYEE, Amount(5), TOKEN, reference=REFERENCE)
        digest = order_digest(DOMAIN, certificate.order)
        assert await payee.certificate(digest) == certificate

        # Only node 3 shows it honestly; node 0 breaks a vote, the others lost it.
        forged = dataclasses.replace(certificate, votes=certificate.votes[1:])
        for node in net.nodes[:3]:
            del node.applied[digest]
        net.nodes[0].applied[digest] = 0
        net.nodes[0].log[0] = forged
        net.nodes[3].slow = 0.1  # node 0 answers first
        assert await payee.certificate(digest) == certificate

        started = time.monotonic()
        assert await payee.certificate(Hash32(bytes(32)), timeout=0.2) is None
        assert time.monotonic() - started >= 0.2
