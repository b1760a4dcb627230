"""The chain side against a real devnet (anvil with everything deployed): start-up checks,
committee and tokens read back, deposits delivered once in id order after the
confirmations, and reorgs (evm_snapshot/evm_revert and anvil_reorg) that never
double-credit. One devnet per module; every test runs between a snapshot and a revert."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from web3 import Web3
from web3.contract import Contract
from web3.contract.contract import ContractFunction

from contracts import load_artifact
from devnet import Devnet, DevnetConfig, free_port
from devnet.manifest import Manifest
from devnet.rpc import connect
from node.chain import ChainReader, DepositWatcher, WatcherConfig
from node.chain.deposits import DepositAnchor
from node.errors import (
    RpcUnreachableError,
    UnknownEpochError,
    VaultNotFoundError,
    WrongChainError,
)
from node.state import transition
from node.state.changes import ContractReceiveDeposit
from node.store import LedgerStore
from tests.node.factories import ALICE, COMMITTEE, DOMAIN, USDF, Node
from wallet.codec import parse_address
from wallet.types import Amount, Hash32

CONFIRMATIONS = 3
CONFIG = WatcherConfig(confirmations=CONFIRMATIONS, poll_interval=0.02, step_timeout=5)
ALLOWANCE = 10**30


class Chain:
    """The devnet seen from a test: sync web3, the contracts, agents' transactions."""

    def __init__(self, manifest: Manifest, w3: Web3) -> None:
        self.manifest = manifest
        self.w3 = w3
        self.vault: Contract = w3.eth.contract(
            address=manifest.contracts.vault, abi=load_artifact("Vault").abi
        )
        self.tokens: dict[str, Contract] = {
            "stable": w3.eth.contract(
                address=manifest.contracts.stable, abi=load_artifact("FarthingUSD").abi
            ),
            "native": w3.eth.contract(
                address=manifest.contracts.native, abi=load_artifact("FarthingToken").abi
            ),
        }

    def signed(self, key: str, fn: ContractFunction, nonce: int | None = None) -> bytes:
        account = Account.from_key(key)
        tx = fn.build_transaction(
            {
                "from": account.address,
                "nonce": self.w3.eth.get_transaction_count(account.address)
                if nonce is None
                else nonce,
                "gas": 300_000,
            }
        )
        return bytes(account.sign_transaction(tx).raw_transaction)

    def send(self, key: str, fn: ContractFunction) -> Any:
        tx_hash = self.w3.eth.send_raw_transaction(self.signed(key, fn))
        receipt = self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=10)
        assert receipt["status"] == 1, receipt
        return receipt

    def deposit_fn(
        self, agent: int, amount: int, to: int, asset: str = "stable"
    ) -> ContractFunction:
        return self.vault.functions.deposit(
            self.tokens[asset].address, amount, self.manifest.agents[to].address
        )

    def deposit(self, agent: int, amount: int, to: int, asset: str = "stable") -> int:
        """Agent ``agent`` deposits for agent ``to``; returns the deposit's block."""
        key = self.manifest.agents[agent].private_key
        return int(self.send(key, self.deposit_fn(agent, amount, to, asset))["blockNumber"])

    def expected(
        self, amount: int, to: int, deposit_id: int, asset: str = "stable"
    ) -> ContractReceiveDeposit:
        return ContractReceiveDeposit(
            deposit_id,
            parse_address(self.manifest.agents[to].address),
            parse_address(self.tokens[asset].address),
            Amount(amount),
        )

    def rpc(self, method: str, *params: Any) -> Any:
        response = self.w3.provider.make_request(method, list(params))  # type: ignore[arg-type]
        assert "error" not in response, response
        return response["result"]

    def mine(self, blocks: int) -> None:
        for _ in range(blocks):
            self.rpc("evm_mine")

    def reader(self, vault: str | None = None) -> ChainReader:
        return ChainReader(
            self.manifest.rpc_url, parse_address(vault or self.manifest.contracts.vault), timeout=5
        )


@pytest.fixture(scope="module")
def devnet_chain() -> Iterator[Chain]:
    with Devnet.up(DevnetConfig(agents=2)) as devnet, connect(devnet.manifest.rpc_url) as w3:
        chain = Chain(devnet.manifest, w3)
        for agent in devnet.manifest.agents:
            for token in chain.tokens.values():
                chain.send(
                    agent.private_key, token.functions.approve(chain.vault.address, ALLOWANCE)
                )
        yield chain


@pytest.fixture
def chain(devnet_chain: Chain) -> Iterator[Chain]:
    snapshot = devnet_chain.rpc("evm_snapshot")
    yield devnet_chain
    assert devnet_chain.rpc("evm_revert", snapshot) is True


async def drain(watcher: DepositWatcher) -> list[ContractReceiveDeposit]:
    """Step the watcher until it has caught up with the final blocks."""
    got: list[ContractReceiveDeposit] = []
    async with asyncio.timeout(3):
        while True:
            batch = await watcher.step()
            assert batch.problem is None, batch.problem
            got.extend(batch.deposits)
            if batch.caught_up:
                return got


# ---------------------------------------------------------------- reads and start-up checks


@pytest.mark.integration
@pytest.mark.asyncio
async def test_check_vault_accepts_the_devnet_vault(chain: Chain) -> None:
    async with chain.reader() as reader:
        info = await reader.check_vault(expected_chain_id=31337)
    assert info.domain.chain_id == 31337
    assert info.domain.vault == parse_address(chain.manifest.contracts.vault)
    assert info.current_epoch == chain.manifest.committee.epoch
    assert info.next_deposit_id == 1
    assert info.head == chain.w3.eth.block_number


@pytest.mark.integration
@pytest.mark.asyncio
async def test_committee_and_epoch_read_back_as_devnet_registered(chain: Chain) -> None:
    registered = chain.manifest.committee
    async with chain.reader() as reader:
        epoch = await reader.current_epoch()
        info = await reader.committee(epoch)
        with pytest.raises(UnknownEpochError):
            await reader.committee(epoch + 1)
    assert epoch == registered.epoch
    assert info.epoch == registered.epoch
    assert info.members == tuple(parse_address(m.address) for m in registered.members)
    assert info.quorum == registered.quorum
    assert info.endpoints == tuple(m.endpoint for m in registered.members)
    assert info.retired_at == 0
    first = registered.members[0]
    assert info.endpoint_of(parse_address(first.address)) == first.endpoint


@pytest.mark.integration
@pytest.mark.asyncio
async def test_registered_tokens_follow_the_vaults_logs(chain: Chain) -> None:
    stable = parse_address(chain.manifest.contracts.stable)
    native = parse_address(chain.manifest.contracts.native)
    deploy_block = chain.manifest.deploy_block
    async with chain.reader() as reader:
        assert await reader.token_sets(deploy_block) == (frozenset({stable, native}), frozenset())
        governance = chain.manifest.governance.private_key
        chain.send(governance, chain.vault.functions.deregisterToken(native))
        assert await reader.token_sets(deploy_block, max_span=3) == (
            frozenset({stable}),
            frozenset({native}),
        )


@pytest.mark.integration
@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("which", "message"),
    [
        ("agent", "there is no contract at the Vault address"),
        ("stable", "is not a Farthing Vault"),
        ("native", "is not a Farthing Vault"),  # same EIP-712 name and version as the Vault
        ("price_feed", "is not a Farthing Vault"),
    ],
)
async def test_a_wrong_vault_address_is_refused_with_what_to_do(
    chain: Chain, which: str, message: str
) -> None:
    contracts = chain.manifest.contracts
    address = {
        "agent": chain.manifest.agents[0].address,
        "stable": contracts.stable,
        "native": contracts.native,
        "price_feed": contracts.price_feed,
    }[which]
    async with chain.reader(address) as reader:
        with pytest.raises(VaultNotFoundError, match=message) as caught:
            await reader.check_vault(expected_chain_id=31337)
    assert address in str(caught.value)
    assert "check the Vault address" in str(caught.value)


@pytest.mark.integration
@pytest.mark.asyncio
async def test_a_wrong_chain_id_is_refused(chain: Chain) -> None:
    async with chain.reader() as reader:
        with pytest.raises(
            WrongChainError,
            match="serves chain id 31337, but the node is configured for chain id 1",
        ):
            await reader.check_vault(expected_chain_id=1)


@pytest.mark.asyncio
async def test_an_unreachable_rpc_url_is_refused_with_what_to_do() -> None:
    url = f"http://127.0.0.1:{free_port()}/v3/SECRET-API-KEY"
    vault = parse_address("0x" + "11" * 20)
    async with ChainReader(url, vault, timeout=2) as reader:
        with pytest.raises(RpcUnreachableError, match="does not answer") as caught:
            await reader.check_vault()
    text = str(caught.value)
    assert "SECRET-API-KEY" not in text
    assert "RPC URL" in text


# ---------------------------------------------------------------- deposits


@pytest.mark.integration
@pytest.mark.asyncio
async def test_deposits_arrive_in_id_order_once_after_the_confirmations(chain: Chain) -> None:
    chain.deposit(0, 5, to=1)
    chain.deposit(1, 6, to=0, asset="native")
    chain.deposit(0, 7, to=0)
    async with chain.reader() as reader:
        watcher = DepositWatcher(reader, 1, chain.manifest.deploy_block, CONFIG)
        changes = watcher.deposits()
        try:
            # The last deposit has 1 confirmation, the first 3: only the first is final.
            async with asyncio.timeout(2):
                first = await anext(changes)
            assert first == chain.expected(5, to=1, deposit_id=1)
            chain.mine(CONFIRMATIONS - 1)
            async with asyncio.timeout(2):
                rest = [await anext(changes), await anext(changes)]
            assert rest == [
                chain.expected(6, to=0, deposit_id=2, asset="native"),
                chain.expected(7, to=0, deposit_id=3),
            ]
            chain.mine(CONFIRMATIONS)
            with pytest.raises(TimeoutError):  # nothing is delivered twice
                async with asyncio.timeout(0.3):
                    await anext(changes)
        finally:
            await changes.aclose()


@pytest.mark.integration
@pytest.mark.asyncio
async def test_a_restarted_watcher_resumes_at_the_next_id(chain: Chain) -> None:
    for amount in (1, 2, 3):
        chain.deposit(0, amount, to=0)
    chain.mine(CONFIRMATIONS)
    async with chain.reader() as reader:
        watcher = DepositWatcher(reader, 3, chain.manifest.deploy_block, CONFIG)
        assert await drain(watcher) == [chain.expected(3, to=0, deposit_id=3)]
        assert watcher.cursor.next_id == 4


@pytest.mark.integration
@pytest.mark.asyncio
async def test_a_deposit_reverted_before_its_confirmations_is_never_credited(chain: Chain) -> None:
    snapshot = chain.rpc("evm_snapshot")
    chain.deposit(0, 5, to=0)  # id 1, to be reorged away
    chain.mine(CONFIRMATIONS - 2)  # one confirmation short
    async with chain.reader() as reader:
        watcher = DepositWatcher(reader, 1, chain.manifest.deploy_block, CONFIG)
        assert await drain(watcher) == []
        assert chain.rpc("evm_revert", snapshot) is True
        chain.deposit(1, 9, to=1)  # the same id 1, another deposit
        assert await drain(watcher) == []  # not deep enough yet
        chain.mine(CONFIRMATIONS - 1)
        assert await drain(watcher) == [chain.expected(9, to=1, deposit_id=1)]
        chain.mine(CONFIRMATIONS)
        assert await drain(watcher) == []
    assert watcher.cursor.next_id == 2


@pytest.mark.integration
@pytest.mark.asyncio
async def test_anvil_reorg_replacing_a_deposit_credits_only_the_survivor(chain: Chain) -> None:
    block = chain.deposit(0, 5, to=0)  # id 1 in the head block
    replacement = chain.signed(chain.manifest.agents[1].private_key, chain.deposit_fn(1, 9, to=1))
    async with chain.reader() as reader:
        watcher = DepositWatcher(reader, 1, chain.manifest.deploy_block, CONFIG)
        assert await drain(watcher) == []
        # Replace the head block by one holding the other agent's deposit (id 1 again).
        chain.rpc("anvil_reorg", 1, [["0x" + replacement.hex(), 0]])
        assert chain.w3.eth.block_number == block
        logs = chain.vault.events.Deposited().get_logs(from_block=block, to_block=block)
        assert [(e["args"]["id"], e["args"]["amount"]) for e in logs] == [(1, 9)]
        chain.mine(CONFIRMATIONS - 1)
        assert await drain(watcher) == [chain.expected(9, to=1, deposit_id=1)]


@pytest.mark.integration
@pytest.mark.asyncio
async def test_anvil_reorg_deeper_than_the_confirmations_is_reported_never_credited_twice(
    chain: Chain, tmp_path: Path
) -> None:
    block = chain.deposit(0, 5, to=0)  # id 1
    chain.mine(CONFIRMATIONS - 1)
    async with chain.reader() as reader:
        watcher = DepositWatcher(reader, 1, chain.manifest.deploy_block, CONFIG)
        assert await drain(watcher) == [chain.expected(5, to=0, deposit_id=1)]
        # Replace the deposit's block and every block after it: the credited deposit is
        # gone and another one took its id, deeper than the confirmations.
        depth = chain.w3.eth.block_number - block + 1
        assert depth >= CONFIRMATIONS
        replacement = chain.signed(
            chain.manifest.agents[1].private_key, chain.deposit_fn(1, 9, to=1)
        )
        chain.rpc("anvil_reorg", depth, [["0x" + replacement.hex(), 0]])
        chain.mine(CONFIRMATIONS)
        batch = await watcher.step()
        assert batch.deposits == ()  # the replacement is not credited as a new id 1
        assert batch.problem is not None
        assert "held deposit 1 when this node credited it" in batch.problem
        assert watcher.cursor.next_id == 2
        # A node restarted after the reorg: its watcher starts from what the store kept
        # with the credit (the deposit's block number and hash), and reports it too.
        credited = watcher.cursor.anchor
        assert credited is not None and credited.block_number == block
        restarted = DepositWatcher(
            reader, 2, block, CONFIG, anchor=DepositAnchor(*_stored_anchor(tmp_path, credited))
        )
        again = await restarted.step()
        assert again.deposits == () and again.problem == batch.problem


def _stored_anchor(path: Path, anchor: DepositAnchor) -> tuple[int, int, Hash32]:
    """``anchor`` as a node's store keeps it: credited (a deposit change carrying the
    block of the watcher's anchor, through the state machine), closed and reopened."""
    store = LedgerStore(path, DOMAIN, sync=False)
    store.put_committee(COMMITTEE)
    credit = ContractReceiveDeposit(
        anchor.deposit_id,
        ALICE.address,
        USDF,
        Amount(1),
        block_number=anchor.block_number,
        block_hash=anchor.block_hash,
    )
    store.commit(transition(store, Node().context, credit))
    store.close()
    reopened = LedgerStore(path, DOMAIN, sync=False)
    try:
        stored = reopened.deposit_anchor()
        assert stored is not None
        return stored
    finally:
        reopened.close()
