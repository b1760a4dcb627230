"""wallet.chain against a devnet (anvil with the contracts deployed, the committee
registered, agents funded): reading the deployment from the RPC URL and the Vault address,
deposit with a permit in one transaction, redeeming withdrawal certificates (and again:
reported, not raised), decoded reverts, mined reverts, unconfirmed and rejected
transactions, the price feed.

Certificates are voted with the committee's PUBLIC TEST KEYS from the devnet manifest
(the Vault checks the votes, not the ledger). One devnet per module; every test runs
between an ``evm_snapshot`` and an ``evm_revert``."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from eth_account import Account
from hexbytes import HexBytes
from web3 import Web3
from web3.contract import Contract
from web3.contract.contract import ContractFunction
from web3.logs import DISCARD

from contracts import load_artifact
from devnet import Devnet, DevnetConfig
from devnet.manifest import Manifest
from devnet.rpc import connect
from wallet.chain import RedeemStatus, VaultClient, VaultReader
from wallet.codec import address_hex, parse_address
from wallet.eip712 import order_digest
from wallet.errors import (
    ChainConfigError,
    ContractReverted,
    TransactionRejected,
    TransactionReverted,
    TransactionUnconfirmed,
)
from wallet.keccak import keccak256
from wallet.signing import PrivateKey, sign_order, sign_vote
from wallet.types import Address, Amount, Certificate, Domain, Epoch, Sequence, Withdrawal

pytestmark = [pytest.mark.integration, pytest.mark.asyncio]

USDF = 10**6
DEPOSIT_WITH_PERMIT = keccak256(
    b"depositWithPermit(address,uint256,address,uint256,uint8,bytes32,bytes32)"
)[:4]


class Chain:
    """The devnet seen from a test: sync web3 for set-up and checks, the manifest's keys."""

    def __init__(self, manifest: Manifest, w3: Web3) -> None:
        self.m = manifest
        self.w3 = w3
        self.vault_address = parse_address(manifest.contracts.vault)
        self.usdf = parse_address(manifest.contracts.stable)
        self.far = parse_address(manifest.contracts.native)
        self.feed = parse_address(manifest.contracts.price_feed)
        self.domain = Domain(manifest.chain_id, self.vault_address)
        self.vault: Contract = w3.eth.contract(
            address=manifest.contracts.vault, abi=load_artifact("Vault").abi
        )
        self.usdf_contract: Contract = w3.eth.contract(
            address=manifest.contracts.stable, abi=load_artifact("FarthingUSD").abi
        )
        self.feed_contract: Contract = w3.eth.contract(
            address=manifest.contracts.price_feed, abi=load_artifact("PriceFeed").abi
        )

    def key(self, agent: int) -> PrivateKey:
        return PrivateKey.from_hex(self.m.agents[agent].private_key)

    def client(self, agent: int = 0, **options: Any) -> VaultClient:
        return VaultClient(self.m.rpc_url, self.vault_address, self.key(agent), **options)

    def reader(self, vault: str | None = None) -> VaultReader:
        address = self.vault_address if vault is None else parse_address(vault)
        return VaultReader(self.m.rpc_url, address, timeout=5)

    def rpc(self, method: str, *params: Any) -> Any:
        response = self.w3.provider.make_request(method, list(params))  # type: ignore[arg-type]
        assert "error" not in response, response
        return response["result"]

    def send_as_governance(self, fn: ContractFunction) -> None:
        account = Account.from_key(self.m.governance.private_key)
        tx = fn.build_transaction(
            {"from": account.address, "nonce": self.w3.eth.get_transaction_count(account.address)}
        )
        tx_hash = self.w3.eth.send_raw_transaction(account.sign_transaction(tx).raw_transaction)
        assert self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=10)["status"] == 1

    def usdf_balance(self, who: Address) -> int:
        return int(self.usdf_contract.functions.balanceOf(address_hex(who)).call())

    def nonce(self, who: Address) -> int:
        return int(self.w3.eth.get_transaction_count(Web3.to_checksum_address(address_hex(who))))

    def certificate(
        self, withdrawal: Withdrawal, owner: PrivateKey, voters: tuple[int, ...] = (0, 1, 2)
    ) -> Certificate:
        """``withdrawal`` signed by its owner and voted by the committee members at
        ``voters`` (their PUBLIC TEST KEYS) in the current epoch."""
        epoch = Epoch(self.m.committee.epoch)
        digest = order_digest(self.domain, withdrawal)
        votes = []
        for index in voters:
            member = PrivateKey.from_hex(self.m.committee.members[index].private_key)
            vote = sign_vote(member, self.domain, digest, epoch)
            votes.append((vote.signer, vote.signature))
        return Certificate(sign_order(owner, self.domain, withdrawal), epoch, tuple(sorted(votes)))

    def withdrawal(
        self, agent: int, amount: int, sequence: int, to: int | None = None
    ) -> Withdrawal:
        me = self.key(agent).address
        recipient = me if to is None else self.key(to).address
        return Withdrawal(me, recipient, self.usdf, Amount(amount), Sequence(sequence))


@pytest.fixture(scope="module")
def devnet_chain() -> Iterator[Chain]:
    with Devnet.up(DevnetConfig(agents=3)) as devnet, connect(devnet.manifest.rpc_url) as w3:
        yield Chain(devnet.manifest, w3)


@pytest.fixture
def chain(devnet_chain: Chain) -> Iterator[Chain]:
    snapshot = devnet_chain.rpc("evm_snapshot")
    yield devnet_chain
    devnet_chain.rpc("evm_setAutomine", True)
    assert devnet_chain.rpc("evm_revert", snapshot) is True


async def fund_vault(chain: Chain, amount: int = 100 * USDF) -> None:
    """Agent 2 deposits ``amount`` USDF, so the Vault has something to pay out."""
    async with chain.client(2) as client:
        await client.deposit(chain.usdf, amount)


async def pending_transactions(chain: Chain, count: int) -> None:
    """Waits until ``count`` transactions wait in the pool (automine off)."""
    async with asyncio.timeout(10):
        while len(chain.rpc("eth_getBlockByNumber", "pending", False)["transactions"]) < count:
            await asyncio.sleep(0.02)


# ---------------------------------------------------------------- reading


async def test_the_deployment_reads_back_from_the_rpc_url_and_vault_alone(chain: Chain) -> None:
    async with chain.reader() as reader:
        overview = await reader.overview(chain.feed)
    m = chain.m
    assert overview.domain == chain.domain
    assert overview.vault.current_epoch == m.committee.epoch
    assert overview.vault.native_token == chain.far
    committee = overview.committee
    assert committee is not None
    assert committee.epoch == m.committee.epoch
    assert committee.members == tuple(parse_address(x.address) for x in m.committee.members)
    assert committee.quorum == m.committee.quorum
    assert committee.endpoints == tuple(x.endpoint for x in m.committee.members)
    assert committee.is_current
    first = m.committee.members[0]
    assert committee.endpoint_of(parse_address(first.address)) == first.endpoint
    assert [(t.address, t.symbol, t.decimals) for t in overview.tokens] == [
        (chain.far, "FAR", 18),
        (chain.usdf, "USDF", 6),
    ]
    assert (overview.native.symbol, overview.native.decimals) == ("FAR", 18)
    price = overview.price
    assert price is not None
    assert (price.answer, price.decimals, price.description) == (250_000_000, 8, "FAR / USD")
    assert price.value == Decimal("2.5")
    assert 0 < price.updated_at <= chain.w3.eth.get_block("latest")["timestamp"]


async def test_the_deploy_block_is_found_and_token_logs_follow_deregistration(chain: Chain) -> None:
    async with chain.reader() as reader:
        deploy = await reader.deploy_block()
        assert chain.m.deploy_block <= deploy <= chain.w3.eth.block_number
        chain.send_as_governance(chain.vault.functions.deregisterToken(chain.m.contracts.native))
        registered, deregistered = await reader.token_sets(max_span=3)
        tokens = await reader.registered_tokens()
    assert (registered, deregistered) == (frozenset({chain.usdf}), frozenset({chain.far}))
    assert [t.symbol for t in tokens] == ["USDF"]


async def test_a_new_price_round_is_read(chain: Chain) -> None:
    chain.send_as_governance(chain.feed_contract.functions.updateAnswer(312_345_678))
    async with chain.reader() as reader:
        price = await reader.price(chain.feed)
    assert (price.round_id, price.answer, price.value) == (2, 312_345_678, Decimal("3.12345678"))
    assert price.updated_at == chain.w3.eth.get_block("latest")["timestamp"]


async def test_an_unknown_epoch_is_a_decoded_revert(chain: Chain) -> None:
    async with chain.reader() as reader:
        with pytest.raises(ContractReverted) as caught:
            await reader.committee(chain.m.committee.epoch + 1)
    assert caught.value.error == "UnknownEpoch"
    assert caught.value.arguments == {"epoch": chain.m.committee.epoch + 1}


@pytest.mark.parametrize("which", ["agent", "stable", "price_feed"])
async def test_a_wrong_vault_address_is_a_config_error(chain: Chain, which: str) -> None:
    address = {
        "agent": chain.m.agents[0].address,
        "stable": chain.m.contracts.stable,
        "price_feed": chain.m.contracts.price_feed,
    }[which]
    async with chain.reader(address) as reader:
        with pytest.raises(ChainConfigError, match="check the Vault address"):
            await reader.check_vault()
        with pytest.raises(ChainConfigError, match="serves chain id 31337, not the expected 1"):
            await reader.check_vault(expected_chain_id=1)


# ---------------------------------------------------------------- deposits


async def test_deposit_with_permit_is_one_transaction(chain: Chain) -> None:
    agent, beneficiary = chain.key(0), chain.key(1).address
    vault = chain.m.contracts.vault
    assert chain.usdf_contract.functions.allowance(address_hex(agent.address), vault).call() == 0
    nonce, before = chain.nonce(agent.address), chain.usdf_balance(agent.address)
    async with chain.client(0) as client:
        done = await client.deposit(chain.usdf, 25 * USDF, beneficiary)
    assert chain.nonce(agent.address) == nonce + 1  # one transaction, no approve
    tx = chain.w3.eth.get_transaction(HexBytes(done.transaction.tx_hash))
    assert tx["to"] == vault
    assert bytes(tx["input"])[:4] == DEPOSIT_WITH_PERMIT
    assert tx["nonce"] == nonce == done.transaction.nonce
    receipt = chain.w3.eth.get_transaction_receipt(HexBytes(done.transaction.tx_hash))
    [event] = chain.vault.events.Deposited().process_receipt(receipt, errors=DISCARD)
    assert dict(event["args"]) == {
        "id": done.deposit_id,
        "beneficiary": address_hex(beneficiary),
        "token": chain.m.contracts.stable,
        "amount": 25 * USDF,
        "depositor": address_hex(agent.address),
    }
    assert done.deposit_id == 1
    assert (done.deposit.beneficiary, done.deposit.token, done.deposit.amount) == (
        beneficiary,
        chain.usdf,
        25 * USDF,
    )
    assert chain.usdf_balance(agent.address) == before - 25 * USDF
    assert chain.usdf_contract.functions.allowance(address_hex(agent.address), vault).call() == 0


async def test_deposits_in_a_row_and_at_once_use_fresh_nonces(chain: Chain) -> None:
    async with chain.client(0) as client:
        first = await client.deposit(chain.usdf, 1 * USDF)
        more = await asyncio.gather(
            client.deposit(chain.usdf, 2 * USDF), client.deposit(chain.far, 3 * 10**18)
        )
    assert [first.deposit_id, *sorted(d.deposit_id for d in more)] == [1, 2, 3]
    assert sorted(d.transaction.nonce for d in (first, *more)) == [0, 1, 2]


async def test_a_refused_deposit_raises_the_decoded_error_and_sends_nothing(chain: Chain) -> None:
    chain.send_as_governance(chain.vault.functions.deregisterToken(chain.m.contracts.native))
    agent = chain.key(0).address
    nonce = chain.nonce(agent)
    async with chain.client(0) as client:
        with pytest.raises(TransactionReverted) as caught:
            await client.deposit(chain.far, 1)
        assert caught.value.error == "TokenNotRegistered"
        assert caught.value.arguments == {"token": chain.m.contracts.native}
        assert caught.value.tx_hash is None
        assert "TokenNotRegistered(token=" in str(caught.value)
        with pytest.raises(TransactionReverted) as too_much:
            await client.deposit(chain.usdf, 10**30)
        assert too_much.value.error == "ERC20InsufficientBalance"
        assert too_much.value.arguments["needed"] == 10**30
        with pytest.raises(ChainConfigError, match="does not support EIP-2612 permit"):
            await client.deposit(chain.feed, 1)
    assert chain.nonce(agent) == nonce


# ---------------------------------------------------------------- redemptions


async def test_redeem_then_redeem_again_is_reported(chain: Chain) -> None:
    await fund_vault(chain)
    owner = chain.key(0)
    certificate = chain.certificate(chain.withdrawal(0, 20 * USDF, 0), owner, voters=(1, 2, 3))
    before = chain.usdf_balance(owner.address)
    async with chain.client(1) as client:  # anyone may redeem; the recipient is paid
        first = await client.redeem(certificate)
        again = await client.redeem(certificate)
    assert first.status is RedeemStatus.REDEEMED and first.redeemed_now
    assert first.transaction is not None
    assert (first.account, first.sequence) == (owner.address, 0)
    assert chain.usdf_balance(owner.address) == before + 20 * USDF
    assert chain.vault.functions.isRedeemed(address_hex(owner.address), 0).call() is True
    receipt = chain.w3.eth.get_transaction_receipt(HexBytes(first.transaction.tx_hash))
    [event] = chain.vault.events.Redeemed().process_receipt(receipt, errors=DISCARD)
    assert (event["args"]["account"], event["args"]["sequence"]) == (address_hex(owner.address), 0)
    assert again.status is RedeemStatus.ALREADY_REDEEMED
    assert again.transaction is None  # found by isRedeemed: nothing was sent


async def test_a_redeem_race_lost_in_the_same_block_is_reported(chain: Chain) -> None:
    """Two redeemers send the same certificate before either is mined: one is paid, the
    other's transaction reverts on chain with AlreadyRedeemed, reported, not raised."""
    await fund_vault(chain)
    certificate = chain.certificate(chain.withdrawal(0, 5 * USDF, 0), chain.key(0))
    chain.rpc("evm_setAutomine", False)
    async with chain.client(0) as a, chain.client(1) as b:
        racing = [asyncio.create_task(c.redeem(certificate)) for c in (a, b)]
        await pending_transactions(chain, 2)
        chain.rpc("evm_mine")
        results = await asyncio.gather(*racing)
    statuses = sorted(r.status.value for r in results)
    assert statuses == ["already_redeemed", "redeemed"]
    assert all(r.transaction is not None for r in results)
    blocks = {r.transaction.block_number for r in results if r.transaction is not None}
    assert len(blocks) == 1


async def test_redeem_batch_reports_each_certificate(chain: Chain) -> None:
    await fund_vault(chain)
    owner = chain.key(0)
    paid_before = chain.certificate(chain.withdrawal(0, 1 * USDF, 0), owner)
    fresh = [chain.certificate(chain.withdrawal(0, n * USDF, n), owner) for n in (1, 2)]
    async with chain.client(1) as client:
        await client.redeem(paid_before)
        nonce = chain.nonce(client.address)
        results = await client.redeem_batch([paid_before, fresh[0], fresh[1], fresh[0]])
        assert chain.nonce(client.address) == nonce + 1  # one redeemBatch transaction
        assert [r.status for r in results] == [
            RedeemStatus.ALREADY_REDEEMED,  # found before sending: left out
            RedeemStatus.REDEEMED,
            RedeemStatus.REDEEMED,
            RedeemStatus.ALREADY_REDEEMED,  # twice in the batch: the Vault skips it
        ]
        assert [r.sequence for r in results] == [0, 1, 2, 1]
        assert results[0].transaction is None
        assert results[1].transaction == results[2].transaction == results[3].transaction
        nonce = chain.nonce(client.address)
        again = await client.redeem_batch(fresh)
        assert {r.status for r in again} == {RedeemStatus.ALREADY_REDEEMED}
        assert chain.nonce(client.address) == nonce  # nothing left to send
        assert await client.redeem_batch([]) == ()


async def test_an_invalid_certificate_raises_the_decoded_error(chain: Chain) -> None:
    await fund_vault(chain)
    owner = chain.key(0)
    short = chain.certificate(chain.withdrawal(0, 1 * USDF, 0), owner, voters=(0, 1))
    async with chain.client(1) as client:
        with pytest.raises(TransactionReverted) as caught:
            await client.redeem(short)
        assert caught.value.error == "InsufficientQuorum"
        assert caught.value.arguments == {"votes": 2, "quorum": 3}
        assert caught.value.tx_hash is None
        assert not caught.value.retryable
        too_much = chain.certificate(chain.withdrawal(0, 10**9 * USDF, 0), owner)
        with pytest.raises(TransactionReverted) as broke:
            await client.redeem(too_much)
        assert broke.value.error == "ERC20InsufficientBalance"  # the Vault does not hold it


async def test_a_transaction_mined_with_a_revert_is_decoded(chain: Chain) -> None:
    """Two permits signed with one token nonce (two clients of one key, before either is
    mined): the second deposit reverts in the block, and the replay names the error."""
    chain.rpc("evm_setAutomine", False)
    async with chain.client(0) as a, chain.client(0) as b:
        first = asyncio.create_task(a.deposit(chain.usdf, 1 * USDF))
        await pending_transactions(chain, 1)  # in the pool, not mined: the permit nonce is
        second = asyncio.create_task(b.deposit(chain.usdf, 2 * USDF))  # read again as is
        await pending_transactions(chain, 2)
        chain.rpc("evm_mine")
        done = await first
        with pytest.raises(TransactionReverted) as caught:
            await second
    assert done.deposit_id == 1
    failure = caught.value
    assert failure.error == "PermitFailed"
    assert failure.arguments == {"token": chain.m.contracts.stable}
    assert failure.tx_hash is not None
    assert chain.w3.eth.get_transaction_receipt(HexBytes(failure.tx_hash))["status"] == 0


async def test_no_receipt_in_time_is_unconfirmed_and_can_be_awaited(chain: Chain) -> None:
    chain.rpc("evm_setAutomine", False)
    async with chain.client(0, receipt_timeout=0.5) as client:
        with pytest.raises(TransactionUnconfirmed) as caught:
            await client.deposit(chain.usdf, 1 * USDF)
        assert not caught.value.retryable
        assert isinstance(caught.value, TimeoutError)
        chain.rpc("evm_mine")
        receipt = await client.wait_for_receipt(caught.value.tx_hash)
    assert receipt["status"] == 1
    assert receipt["transactionHash"] == caught.value.tx_hash


async def test_a_key_without_gas_money_is_rejected(chain: Chain) -> None:
    await fund_vault(chain)
    certificate = chain.certificate(chain.withdrawal(0, 1 * USDF, 0), chain.key(0))
    poor = PrivateKey.generate()
    async with VaultClient(chain.m.rpc_url, chain.vault_address, poor, timeout=5) as client:
        with pytest.raises(TransactionRejected, match="refused the transaction"):
            await client.redeem(certificate)
    assert not chain.vault.functions.isRedeemed(chain.m.agents[0].address, 0).call()
