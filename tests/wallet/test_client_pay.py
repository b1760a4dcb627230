"""The wallet client against an in-process fake committee (4 nodes, quorum 3): paying
with one node down, lying, garbage or very slow; refusals; the journal across a crash."""

from __future__ import annotations

import asyncio
import json
import stat
import time
from pathlib import Path

import pytest

from tests.wallet.client_fakes import DOMAIN, TOKEN, FakeCommittee, make_committee
from wallet.client import PaymentRequest, Wallet, verify_receipt
from wallet.client.journal import Journal
from wallet.eip712 import order_digest
from wallet.errors import (
    BatchIncomplete,
    ConflictingOrder,
    InsufficientBalance,
    JournalError,
    QuorumUnavailable,
    ReceiptUnavailable,
)
from wallet.signing import PrivateKey, sign_order
from wallet.types import Amount, Certificate, Sequence, Transfer

PAYER = PrivateKey(bytes([0x11] * 32))
PAYEE = PrivateKey(bytes([0x22] * 32)).address


class Crash(BaseException):
    """The process dies here (not an Exception: nothing may catch it on the way out)."""


@pytest.fixture
def net() -> FakeCommittee:
    committee = make_committee()
    committee.credit(PAYER.address, 1_000)
    return committee


def wallet_of(net: FakeCommittee, data_dir: Path, **options: object) -> Wallet:
    return Wallet(PAYER, net.network, data_dir=data_dir, transport=net.transport, **options)  # type: ignore[arg-type]


@pytest.mark.asyncio
async def test_pay_returns_a_receipt_that_verifies_and_moves_the_money(
    net: FakeCommittee, tmp_path: Path
) -> None:
    async with wallet_of(net, tmp_path) as wallet:
        receipt = await wallet.pay(PAYEE, Amount(250), TOKEN)
        second = await wallet.pay(PAYEE, Amount(50), TOKEN, reference=bytes(range(32)))  # type: ignore[arg-type]
        assert await wallet.balance(TOKEN) == 700
        assert await wallet.balance(TOKEN, account=PAYEE) == 300
    verify_receipt(receipt, net.network.committee, DOMAIN)
    verify_receipt(second, net.network.committee, DOMAIN)
    assert receipt.certificate.order.sequence == 0
    assert second.certificate.order.sequence == 1
    assert len(receipt.certificate.votes) == 3


@pytest.mark.asyncio
async def test_pay_final_returns_the_certificate_and_the_receipt_comes_later(
    net: FakeCommittee, tmp_path: Path
) -> None:
    async with wallet_of(net, tmp_path) as wallet:
        certificate = await wallet.pay_final(PAYEE, Amount(40), TOKEN)
        assert certificate.order.sequence == 0 and len(certificate.votes) == 3
        assert await wallet.balance(TOKEN, account=PAYEE) == 40  # final: applied
        receipt = await wallet.receipt(certificate)
    assert receipt.certificate == certificate
    verify_receipt(receipt, net.network.committee, DOMAIN)


@pytest.mark.parametrize("fault", ["down", "bad_votes", "garbage", "wrong_shape"])
@pytest.mark.asyncio
async def test_one_faulty_node_does_not_stop_a_payment(
    net: FakeCommittee, tmp_path: Path, fault: str
) -> None:
    setattr(net.nodes[1], fault, True)
    async with wallet_of(net, tmp_path) as wallet:
        receipts = [await wallet.pay(PAYEE, Amount(10), TOKEN) for _ in range(3)]
        assert await wallet.balance(TOKEN) == 970
    for receipt in receipts:
        verify_receipt(receipt, net.network.committee, DOMAIN)
        assert net.nodes[1].key.address not in {signer for signer, _ in receipt.certificate.votes}


@pytest.mark.asyncio
async def test_a_very_slow_node_is_not_waited_for(net: FakeCommittee, tmp_path: Path) -> None:
    net.nodes[3].slow = 30.0
    async with wallet_of(net, tmp_path, timeout=60.0) as wallet:
        started = time.monotonic()
        receipt = await wallet.pay(PAYEE, Amount(10), TOKEN)
        await wallet.pay(PAYEE, Amount(10), TOKEN)
        assert await wallet.balance(TOKEN) == 980
        elapsed = time.monotonic() - started
    assert elapsed < 2.0  # << 30 s
    verify_receipt(receipt, net.network.committee, DOMAIN)


@pytest.mark.asyncio
async def test_two_faulty_nodes_leave_the_order_in_the_journal_until_they_return(
    net: FakeCommittee, tmp_path: Path
) -> None:
    async with wallet_of(net, tmp_path) as wallet:
        await wallet.pay(PAYEE, Amount(1), TOKEN)  # sequence 0
        net.nodes[0].down = True
        net.nodes[2].garbage = True
        with pytest.raises(QuorumUnavailable) as raised:
            await wallet.pay(PAYEE, Amount(10), TOKEN)
        assert raised.value.retryable
        assert set(raised.value.faults) == {net.nodes[0].url, net.nodes[2].url}
        unfinished = wallet._journal.unfinished()
        assert unfinished is not None and unfinished.sequence == 1
        net.nodes[0].down = net.nodes[2].garbage = False
        # The next payment first finishes the pending one (sequence 1), then pays at 2.
        receipt = await wallet.pay(PAYEE, Amount(20), TOKEN)
        assert receipt.certificate.order.sequence == 2
        assert await wallet.balance(TOKEN, account=PAYEE) == 31


@pytest.mark.asyncio
async def test_insufficient_balance_is_the_callers_error_and_frees_the_sequence(
    net: FakeCommittee, tmp_path: Path
) -> None:
    async with wallet_of(net, tmp_path) as wallet:
        with pytest.raises(InsufficientBalance) as raised:
            await wallet.pay(PAYEE, Amount(5_000), TOKEN)
        assert not raised.value.retryable
        # Every node refused without a lock: sequence 0 may carry another order.
        receipt = await wallet.pay(PAYEE, Amount(5), TOKEN)
    assert receipt.certificate.order.sequence == 0


@pytest.mark.asyncio
async def test_a_crash_between_votes_and_certificate_then_resume_finishes_that_order(
    net: FakeCommittee, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = Journal.write

    def crash_when_certified(self: Journal, entry: object, durable: bool = True) -> None:
        if getattr(entry, "state", None) == "certified":
            raise Crash
        original(self, entry, durable=durable)  # type: ignore[arg-type]

    monkeypatch.setattr(Journal, "write", crash_when_certified)
    wallet = wallet_of(net, tmp_path)
    wallet.open()
    with pytest.raises(Crash):
        await wallet.pay(PAYEE, Amount(30), TOKEN)
    wallet._journal.close()  # the process died: its lock goes with it
    monkeypatch.setattr(Journal, "write", original)
    assert all(n.locks for n in net.nodes)  # the nodes voted; no certificate was sent

    async with wallet_of(net, tmp_path) as restarted:
        finished = await restarted.resume()
        assert finished is not None and finished.order.amount == 30
        receipt = await restarted.pay(PAYEE, Amount(1), TOKEN)
    assert receipt.certificate.order.sequence == 1
    for node in net.nodes:
        # Exactly one order was ever signed for sequence 0, and it is applied.
        assert len(node.seen_orders[PAYER.address, 0]) == 1
        assert node.next_sequence[PAYER.address] == 2


@pytest.mark.asyncio
async def test_a_crash_after_the_certificate_delivers_it_again(
    net: FakeCommittee, tmp_path: Path
) -> None:
    original = net.transport.post_certificate
    calls = 0

    async def crash_after_first_delivery(endpoint: str, certificate: object) -> object:
        nonlocal calls
        calls += 1
        if calls > 1:
            raise Crash  # the process dies mid-delivery
        return await original(endpoint, certificate)  # type: ignore[arg-type]

    net.transport.post_certificate = crash_after_first_delivery  # type: ignore[method-assign,assignment]
    wallet = wallet_of(net, tmp_path)
    wallet.open()
    with pytest.raises(Crash):
        await wallet.pay(PAYEE, Amount(7), TOKEN)
    wallet._journal.close()
    del net.transport.post_certificate
    assert sum(bool(n.log) for n in net.nodes) == 1  # one node got it before the crash
    # The same certificate, delivered by a new process; then the next payment.
    async with wallet_of(net, tmp_path) as wallet:
        receipt = await wallet.pay(PAYEE, Amount(8), TOKEN)
        assert await wallet.balance(TOKEN, account=PAYEE) == 15
    assert receipt.certificate.order.sequence == 1


@pytest.mark.asyncio
async def test_a_lost_journal_adopts_the_order_the_nodes_locked(
    net: FakeCommittee, tmp_path: Path
) -> None:
    # Signed and voted for by every node, then the data directory was lost.
    locked = sign_order(
        PAYER, DOMAIN, Transfer(PAYER.address, PAYEE, TOKEN, Amount(40), Sequence(0))
    )
    from wallet import wire

    for node in net.nodes:
        node.handle("POST", "/v1/orders", json.loads(json.dumps(wire.signed_order_to_json(locked))))
    async with wallet_of(net, tmp_path / "fresh") as wallet:
        receipt = await wallet.pay(PAYEE, Amount(1), TOKEN)
        assert await wallet.balance(TOKEN, account=PAYEE) == 41
    assert receipt.certificate.order.sequence == 1
    assert net.nodes[0].log[0].signed == locked


@pytest.mark.asyncio
async def test_another_wallet_with_the_same_key_is_reported_as_a_conflict(
    net: FakeCommittee, tmp_path: Path
) -> None:
    async with wallet_of(net, tmp_path / "a") as first, wallet_of(net, tmp_path / "b") as second:
        await first.pay(PAYEE, Amount(1), TOKEN)  # sequence 0 from the first data dir
        second._next = 0  # the second believes sequence 0 is still free
        with pytest.raises(ConflictingOrder) as raised:
            await second.pay(PAYEE, Amount(2), TOKEN)
        assert raised.value.sequence == 0 and not raised.value.retryable
        # Its order at 0 is abandoned (sequence 0 is used); the next payment goes on.
        receipt = await second.pay(PAYEE, Amount(3), TOKEN)
    assert receipt.certificate.order.sequence == 1


@pytest.mark.asyncio
async def test_a_lock_held_by_another_order_is_surfaced(net: FakeCommittee, tmp_path: Path) -> None:
    other = sign_order(PAYER, DOMAIN, Transfer(PAYER.address, PAYEE, TOKEN, Amount(9), Sequence(0)))
    from wallet import wire

    for node in net.nodes[:2]:  # two nodes locked another order: a quorum is impossible
        node.handle("POST", "/v1/orders", json.loads(json.dumps(wire.signed_order_to_json(other))))
    async with wallet_of(net, tmp_path) as wallet:
        wallet._next = 0
        with pytest.raises(ConflictingOrder) as raised:
            await wallet.pay(PAYEE, Amount(2), TOKEN)
    assert raised.value.conflicting == order_digest(DOMAIN, other.order)


@pytest.mark.asyncio
async def test_pay_many_pays_in_order_and_reports_a_partial_batch(
    net: FakeCommittee, tmp_path: Path
) -> None:
    async with wallet_of(net, tmp_path) as wallet:
        receipts = await wallet.pay_many(
            [PaymentRequest(PAYEE, Amount(i), TOKEN) for i in (1, 2, 3)]
        )
        assert [r.certificate.order.sequence for r in receipts] == [0, 1, 2]
        with pytest.raises(BatchIncomplete) as raised:
            await wallet.pay_many(
                [
                    PaymentRequest(PAYEE, Amount(4), TOKEN),
                    PaymentRequest(PAYEE, Amount(10**6), TOKEN),
                ]
            )
    assert len(raised.value.receipts) == 1
    assert isinstance(raised.value.cause, InsufficientBalance)


@pytest.mark.asyncio
async def test_the_policy_hook_sees_the_order_before_it_is_signed(
    net: FakeCommittee, tmp_path: Path
) -> None:
    seen: list[Transfer] = []

    async def refuse_big(order: Transfer) -> None:
        seen.append(order)
        if order.amount > 100:
            raise PermissionError("over budget")

    async with wallet_of(net, tmp_path, before_sign=refuse_big) as wallet:
        with pytest.raises(PermissionError):
            await wallet.pay(PAYEE, Amount(500), TOKEN)
        assert wallet._journal.entries() == []  # nothing signed, nothing stored
        await wallet.pay(PAYEE, Amount(5), TOKEN)
    assert [o.amount for o in seen] == [500, 5]
    assert all(not n.seen_orders.get((PAYER.address, 1)) for n in net.nodes)


@pytest.mark.asyncio
async def test_the_journal_is_private_durable_and_exclusive(
    net: FakeCommittee, tmp_path: Path
) -> None:
    async with wallet_of(net, tmp_path) as wallet:
        await wallet.pay(PAYEE, Amount(5), TOKEN)
        with pytest.raises(JournalError):
            Journal(tmp_path, PAYER.address).open()  # another process would be refused
        directory = wallet._journal.directory
    files = sorted(directory.glob("*.json"))
    assert [f.name for f in files] == [f"{0:020d}.json"]
    assert stat.S_IMODE(files[0].stat().st_mode) == 0o600
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert json.loads(files[0].read_text())["state"] == "confirmed"
    journal = Journal(tmp_path, PAYER.address)
    journal.open()
    other = sign_order(PAYER, DOMAIN, Transfer(PAYER.address, PAYEE, TOKEN, Amount(6), Sequence(0)))
    from wallet.client.journal import Entry

    with pytest.raises(JournalError):
        journal.write(Entry(other, "signed"))  # never a second order at one sequence
    journal.close()


@pytest.mark.asyncio
async def test_concurrent_pays_from_one_wallet_take_consecutive_sequences(
    net: FakeCommittee, tmp_path: Path
) -> None:
    async with wallet_of(net, tmp_path) as wallet:
        receipts = await asyncio.gather(*(wallet.pay(PAYEE, Amount(1), TOKEN) for _ in range(5)))
    assert sorted(r.certificate.order.sequence for r in receipts) == [0, 1, 2, 3, 4]


@pytest.mark.asyncio
async def test_the_certificate_still_reaches_a_slow_node(
    net: FakeCommittee, tmp_path: Path
) -> None:
    """pay_final returns at a quorum of votes and of deliveries; the requests to the slow
    node go on in the background (it gets the certificate from the wallet), and closing
    the wallet ends what is left."""
    slow = net.nodes[3]
    async with wallet_of(net, tmp_path) as wallet:
        await wallet.pay_final(PAYEE, Amount(10), TOKEN)  # node 3 votes late: no matter
        slow.slow = 0.3
        certificate = await wallet.pay_final(PAYEE, Amount(20), TOKEN)
        digest = order_digest(DOMAIN, certificate.order)
        assert digest not in slow.applied and len(wallet._background) == 2  # vote, delivery
        await asyncio.wait_for(asyncio.gather(*wallet._background), 5)
        assert digest in slow.applied and not wallet._background
        slow.slow = 5.0
        await wallet.pay_final(PAYEE, Amount(30), TOKEN)
        assert len(wallet._background) == 2
    assert not wallet._background  # closed: cancelled


@pytest.mark.asyncio
async def test_the_same_payment_asked_again_after_no_quorum_is_that_payment(
    net: FakeCommittee, tmp_path: Path
) -> None:
    async with wallet_of(net, tmp_path) as wallet:
        await wallet.pay(PAYEE, Amount(1), TOKEN)  # sequence 0
        net.nodes[0].down = True
        net.nodes[2].garbage = True
        with pytest.raises(QuorumUnavailable):
            await wallet.pay_final(PAYEE, Amount(10), TOKEN)  # sequence 1, not final
        assert wallet._journal.get(1) is not None
        net.nodes[0].down = net.nodes[2].garbage = False
        # Retried: the order in flight is finished and returned; nothing is paid twice.
        retried = await wallet.pay_final(PAYEE, Amount(10), TOKEN)
        assert retried.order.sequence == 1
        assert await wallet.balance(TOKEN, account=PAYEE) == 11
        # The same payment asked once more, with nothing in flight: a new payment.
        again = await wallet.pay_final(PAYEE, Amount(10), TOKEN)
        assert again.order.sequence == 2
        assert await wallet.balance(TOKEN, account=PAYEE) == 21
    for node in net.nodes:
        assert all(len(digests) == 1 for digests in node.seen_orders.values())


@pytest.mark.asyncio
async def test_the_same_payment_asked_again_after_a_crash_is_paid_once(
    net: FakeCommittee, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = Journal.write

    def crash_when_certified(self: Journal, entry: object, durable: bool = True) -> None:
        if getattr(entry, "state", None) == "certified":
            raise Crash
        original(self, entry, durable=durable)  # type: ignore[arg-type]

    monkeypatch.setattr(Journal, "write", crash_when_certified)
    wallet = wallet_of(net, tmp_path)
    wallet.open()
    with pytest.raises(Crash):
        await wallet.pay(PAYEE, Amount(30), TOKEN, reference=bytes(range(32)))  # type: ignore[arg-type]
    wallet._journal.close()  # the process died
    monkeypatch.setattr(Journal, "write", original)

    # A new process asks for the same payment (the agent, or the shell user, runs it
    # again): the journaled order is finished, not followed by a second one.
    async with wallet_of(net, tmp_path) as restarted:
        receipt = await restarted.pay(PAYEE, Amount(30), TOKEN, reference=bytes(range(32)))  # type: ignore[arg-type]
        assert receipt.certificate.order.sequence == 0
        assert await restarted.balance(TOKEN, account=PAYEE) == 30
        # Another reference is another payment: the next sequence.
        other = await restarted.pay_final(PAYEE, Amount(30), TOKEN)
        assert other.order.sequence == 1
    for node in net.nodes:
        assert len(node.seen_orders[PAYER.address, 0]) == 1
        assert node.next_sequence[PAYER.address] == 2


@pytest.mark.asyncio
async def test_a_different_request_finishes_the_order_in_flight_then_makes_its_own(
    net: FakeCommittee, tmp_path: Path
) -> None:
    async with wallet_of(net, tmp_path) as wallet:
        await wallet.pay(PAYEE, Amount(1), TOKEN)  # sequence 0 (and the next one is known)
        net.nodes[1].down = net.nodes[3].down = True
        with pytest.raises(QuorumUnavailable):
            await wallet.withdraw(Amount(5), TOKEN)  # sequence 1, in flight
        net.nodes[1].down = net.nodes[3].down = False
        # A withdrawal of another amount is another order; the one in flight goes first.
        other = await wallet.withdraw(Amount(6), TOKEN)
        assert other.certificate.order.sequence == 2
        # The same withdrawal asked again, nothing in flight: a new one.
        again = await wallet.withdraw(Amount(5), TOKEN)
        assert again.certificate.order.sequence == 3
        assert await wallet.balance(TOKEN) == 1_000 - 17


@pytest.mark.asyncio
async def test_the_same_withdrawal_asked_again_is_that_withdrawal(
    net: FakeCommittee, tmp_path: Path
) -> None:
    async with wallet_of(net, tmp_path) as wallet:
        await wallet.pay(PAYEE, Amount(1), TOKEN)  # sequence 0
        net.nodes[1].down = net.nodes[3].down = True
        with pytest.raises(QuorumUnavailable):
            await wallet.withdraw(Amount(5), TOKEN)  # sequence 1, in flight
        assert wallet._journal.get(1) is not None
        net.nodes[1].down = net.nodes[3].down = False
        retried = await wallet.withdraw(Amount(5), TOKEN)
        assert retried.certificate.order.sequence == 1
        assert await wallet.balance(TOKEN) == 994


@pytest.mark.asyncio
async def test_a_final_payment_without_a_receipt_in_time_is_not_retryable(
    net: FakeCommittee, tmp_path: Path
) -> None:
    for node in net.nodes:
        node.checkpoint_lag = 10**6  # no node signs a checkpoint covering anything
    async with wallet_of(net, tmp_path, receipt_timeout=0.3) as wallet:
        with pytest.raises(ReceiptUnavailable) as caught:
            await wallet.pay(PAYEE, Amount(250), TOKEN)
        assert not caught.value.retryable  # paying again would pay twice
        assert "is final" in str(caught.value) and "do not pay again" in str(caught.value)
        certificate = caught.value.certificate
        assert isinstance(certificate, Certificate) and certificate.order.amount == 250
        assert await wallet.balance(TOKEN, account=PAYEE) == 250  # paid once, final
        for node in net.nodes:
            node.checkpoint_lag = 0
        receipt = await wallet.receipt(certificate)
    verify_receipt(receipt, net.network.committee, DOMAIN)
