"""The agent façade (wallet.agent) over the fake committee: connecting from a manifest,
amounts as text, balances as TokenAmounts, a policy refusal and spend per reference."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.wallet.client_fakes import TOKEN, FakeCommittee, make_committee
from wallet.agent import PayRequest, connect
from wallet.codec import address_hex
from wallet.errors import AmountTypeError, PolicyRefused, WalletError
from wallet.policy import SpendingPolicy, parse_usd
from wallet.signing import PrivateKey

PAYER = PrivateKey(bytes([0x11] * 32))
PAYEE = "0x" + "22" * 20
FAR = "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512"
TASK = "0x" + "07" * 32


@pytest.fixture
def net() -> FakeCommittee:
    committee = make_committee()
    committee.credit(PAYER.address, 1_000_000)
    return committee


def manifest(net: FakeCommittee, path: Path) -> Path:
    network = net.network
    data = {
        "version": 1,
        "chain_id": network.domain.chain_id,
        "rpc_url": "http://127.0.0.1:9",  # never asked: only USDF is paid
        "contracts": {
            "vault": address_hex(network.domain.vault),
            "stable": address_hex(TOKEN),
            "native": FAR,
            "price_feed": "0x" + "44" * 20,
        },
        "committee": {
            "epoch": network.committee.epoch,
            "quorum": network.committee.quorum,
            "members": [
                {"address": address_hex(member), "endpoint": endpoint}
                for member, endpoint in zip(
                    network.committee.members, network.endpoints, strict=True
                )
            ],
        },
    }
    file = path / "manifest.json"
    file.write_text(json.dumps(data))
    return file


@pytest.mark.asyncio
async def test_pay_with_text_amounts_under_a_policy(net: FakeCommittee, tmp_path: Path) -> None:
    policy = {"version": 1, "max_per_payment": {"USDF": "0.5"}}
    (tmp_path / "policy.json").write_text(json.dumps(policy))
    async with connect(
        manifest=manifest(net, tmp_path),
        key=PAYER,
        data_dir=tmp_path / "data",
        policy=tmp_path / "policy.json",
        transport=net.transport,
    ) as w:
        receipt = await w.pay(PAYEE, "0.25 USDF", reference=TASK)
        assert receipt.certificate.order.amount == 250_000
        await w.pay_many([PayRequest(PAYEE, 1_000, "USDF", TASK), PayRequest(PAYEE, "0.001 usdf")])
        with pytest.raises(PolicyRefused) as refused:
            await w.pay(PAYEE, "0.6 USDF")
        assert (refused.value.rule, refused.value.over_by) == ("max_per_payment", 100_000)
        with pytest.raises(AmountTypeError):
            await w.pay(PAYEE, 0.1, "USDF")  # type: ignore[arg-type]
        balance = await w.balance("USDF")
        assert str(balance) == "0.748 USDF"
        assert str(w.spent_by_reference(TASK)) == "0.251 USDF (0.251 USD, 2 payment(s))"
    # The spend ledger is kept in the data directory, per account.
    assert (tmp_path / "data" / "spend" / f"{address_hex(PAYER.address)}.json").exists()


@pytest.mark.asyncio
async def test_connect_needs_one_place_and_one_key(net: FakeCommittee, tmp_path: Path) -> None:
    with pytest.raises(WalletError, match="manifest"):
        async with connect(key=PAYER, data_dir=tmp_path, rpc_url="http://127.0.0.1:9"):
            pass
    with pytest.raises(WalletError, match="key"):
        async with connect(manifest=manifest(net, tmp_path), data_dir=tmp_path):
            pass
    async with connect(
        manifest=manifest(net, tmp_path), key=PAYER, data_dir=tmp_path, transport=net.transport
    ) as w:
        with pytest.raises(WalletError, match="no spend ledger"):
            w.spent_by_reference(TASK)


@pytest.mark.asyncio
async def test_the_policy_runs_on_the_clock_given_to_connect(
    net: FakeCommittee, tmp_path: Path
) -> None:
    # connect(clock=...) is the policy's time (here: a rolling budget's window), not the
    # local clock: a devnet whose chain time was moved passes the chain's time.
    now = [1_000_000]
    policy = SpendingPolicy(budget_usd=parse_usd("0.3"), period=100)
    async with connect(
        manifest=manifest(net, tmp_path),
        key=PAYER,
        data_dir=tmp_path / "data",
        policy=policy,
        transport=net.transport,
        clock=lambda: now[0],
    ) as w:
        await w.pay(PAYEE, "0.25 USDF")
        with pytest.raises(PolicyRefused) as refused:
            await w.pay(PAYEE, "0.1 USDF")
        assert (refused.value.rule, refused.value.over_by) == ("budget", parse_usd("0.05"))
        now[0] += 100  # the first payment leaves the window
        await w.pay(PAYEE, "0.1 USDF")
        assert w.client.spending is not None
        assert [r.time for r in w.client.spending.ledger.records()] == [1_000_000, 1_000_100]
