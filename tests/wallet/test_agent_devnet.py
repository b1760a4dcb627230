"""The agent façade (wallet.agent) on a real devnet: connect from the RPC URL and the
Vault address alone, deposit with permit, pay under a policy (one allowed, one refused by
the budget with the exact over-by), withdraw, redeem on chain (again: reported), and the
on-chain and off-chain balances agree."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from web3 import Web3

from contracts import load_artifact
from devnet import Devnet, DevnetConfig
from wallet.agent import connect
from wallet.chain import RedeemStatus
from wallet.codec import parse_address
from wallet.errors import PolicyRefused
from wallet.policy import SpendingPolicy, parse_usd
from wallet.signing import PrivateKey

pytestmark = pytest.mark.integration
USDF = 10**6
TASK = "0x" + "5a" * 32


@pytest.fixture(scope="module")
def devnet() -> Iterator[Devnet]:
    with Devnet.up(DevnetConfig(start_nodes=True, agents=2)) as net:
        yield net


def test_connect_deposit_pay_withdraw_redeem(devnet: Devnet, tmp_path: Path) -> None:
    m = devnet.manifest
    a, b = m.agents[0], m.agents[1]
    w3 = Web3(Web3.HTTPProvider(m.rpc_url))
    usdf = w3.eth.contract(address=m.contracts.stable, abi=load_artifact("FarthingUSD").abi)

    def on_chain(who: str) -> int:
        return int(usdf.functions.balanceOf(who).call())

    chain_before = on_chain(a.address)
    vault_before = on_chain(m.contracts.vault)

    async def scenario() -> None:
        policy = SpendingPolicy(budget_usd=parse_usd("2"))
        async with connect(
            rpc_url=m.rpc_url,
            vault=m.contracts.vault,
            key=PrivateKey.from_hex(a.private_key),
            data_dir=tmp_path / "a",
            policy=policy,
            receipt_timeout=10.0,
        ) as w:
            assert w.network.committee.quorum == m.committee.quorum
            assert w.tokens.by_symbol("USDF").decimals == 6
            ledger_before = (await w.balance("USDF")).units

            await w.deposit("5 USDF", timeout=30)
            assert (await w.balance("USDF")).units == ledger_before + 5 * USDF

            receipt = await w.pay(b.address, "1.5 USDF", reference=TASK)
            assert receipt.certificate.order.amount == 1_500_000
            with pytest.raises(PolicyRefused) as refused:
                await w.pay(b.address, "0.75 USDF", reference=TASK)
            assert refused.value.rule == "budget"
            assert refused.value.over_by == parse_usd("0.25")
            spent = w.spent_by_reference(TASK)
            assert (spent.payments, spent.usd) == (1, parse_usd("1.5"))

            withdrawal = await w.withdraw("2 USDF")
            paid = await w.redeem(withdrawal)
            again = await w.redeem(withdrawal.certificate)
            assert paid.status is RedeemStatus.REDEEMED
            assert again.status is RedeemStatus.ALREADY_REDEEMED

            ledger_after = (await w.balance("USDF")).units
            assert ledger_after == ledger_before + 5 * USDF - 1_500_000 - 2 * USDF
            # On chain: 5 went into the Vault, 2 came back out.
            assert on_chain(a.address) == chain_before - 3 * USDF
            assert on_chain(m.contracts.vault) == vault_before + 3 * USDF
            sent = (await w.history()).sent
            assert [c.order.amount for c in sent][-2:] == [1_500_000, 2 * USDF]
        payee = parse_address(b.address)
        assert receipt.certificate.order.payee == payee  # type: ignore[union-attr]

    asyncio.run(scenario())
