"""One anvil and one deployment per test session; every test runs between an
``evm_snapshot`` and an ``evm_revert``, so tests are independent and no chain is rebuilt."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.contract import Contract

from tests.contracts.chain import deploy, dev_account, domain, evm_revert, evm_snapshot, transact
from tests.support.anvil import running_anvil

USDF = 10**6
FAR = 10**18
MIN_BOND = 1_000 * FAR
FAR_CAP = 1_000_000_000 * FAR
PRICE = 250_000_000  # 2.50 USD, 8 decimals
COMMITTEE_SIZE = 4
QUORUM = 3


@dataclass(frozen=True)
class Deployment:
    w3: Web3
    chain_id: int
    gov: LocalAccount
    members: list[LocalAccount]
    alice: LocalAccount
    bob: LocalAccount
    carol: LocalAccount  # a recipient that already holds USDF
    outsider: LocalAccount  # no role anywhere; reporter of slashes
    spare: list[LocalAccount]  # bonded, not in the committee: for rotations
    usdf: Contract
    far: Contract
    feed: Contract
    vault: Contract

    @property
    def domain(self) -> dict[str, object]:
        return domain(self.chain_id, self.vault.address)

    def endpoints(self, members: list[LocalAccount]) -> list[str]:
        return [f"http://127.0.0.1:{9000 + i}" for i, _ in enumerate(members)]


@pytest.fixture(scope="session")
def w3() -> Iterator[Web3]:
    with running_anvil(accounts=16) as url:
        yield Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": 30}))


@pytest.fixture(scope="session")
def dep(w3: Web3) -> Deployment:
    gov = dev_account(0)
    members = [dev_account(i) for i in range(1, 1 + COMMITTEE_SIZE)]
    alice, bob, carol, outsider = (dev_account(i) for i in range(5, 9))
    spare = [dev_account(i) for i in range(9, 13)]
    g = gov.address

    usdf = deploy(w3, "FarthingUSD", g, g)
    far = deploy(w3, "FarthingToken", g, g, FAR_CAP)
    feed = deploy(w3, "PriceFeed", g, g, 8, "FAR / USD", PRICE)
    vault = deploy(w3, "Vault", g, g, far.address, MIN_BOND)
    transact(vault.functions.registerToken(usdf.address), g)
    transact(vault.functions.registerToken(far.address), g)

    for m in members + spare:
        transact(far.functions.mint(m.address, 10 * MIN_BOND), g)
        transact(far.functions.approve(vault.address, 2**256 - 1), m.address)
        transact(vault.functions.bond(m.address, MIN_BOND), m.address)
    dep = Deployment(
        w3,
        w3.eth.chain_id,
        gov,
        members,
        alice,
        bob,
        carol,
        outsider,
        spare,
        usdf,
        far,
        feed,
        vault,
    )
    transact(
        vault.functions.startEpoch([m.address for m in members], dep.endpoints(members), QUORUM),
        g,
    )
    for agent in (alice, bob):
        transact(usdf.functions.mint(agent.address, 10_000 * USDF), g)
        transact(far.functions.mint(agent.address, 1_000 * FAR), g)
        transact(usdf.functions.approve(vault.address, 2**256 - 1), agent.address)
        transact(far.functions.approve(vault.address, 2**256 - 1), agent.address)
    transact(usdf.functions.mint(carol.address, 1 * USDF), g)
    # The Vault holds what alice deposited; withdrawals in the tests pay out of it.
    transact(vault.functions.deposit(usdf.address, 5_000 * USDF, alice.address), alice.address)
    transact(vault.functions.deposit(far.address, 500 * FAR, alice.address), alice.address)
    return dep


@pytest.fixture(autouse=True)
def _chain_snapshot(request: pytest.FixtureRequest) -> Iterator[None]:
    if "dep" not in request.fixturenames and "w3" not in request.fixturenames:
        yield
        return
    chain: Web3 = request.getfixturevalue("w3")
    snapshot = evm_snapshot(chain)
    yield
    evm_revert(chain, snapshot)
