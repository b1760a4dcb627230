"""Deploy the contracts, bond and register the committee, fund the agents.

Every transaction is signed locally (see :mod:`devnet.transactions`), so this works on
any EVM chain where the keys hold ETH for gas; on anvil the mnemonic prefunds them.
Groups of independent transactions, in order:

1. deploy FarthingUSD, FarthingToken (capped) and PriceFeed (FAR / USD at 2.50);
2. deploy the Vault (bond token FAR); mint FAR to each node, USDF and FAR to each agent;
3. register USDF and FAR in the Vault; each node approves the Vault for its bond;
4. each node bonds ``MIN_BOND`` for itself;
5. governance starts the first epoch with the nodes, their endpoints and the quorum.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from eth_typing import ChecksumAddress
from web3 import Web3
from web3.contract import Contract
from web3.types import TxReceipt

from contracts import CONTRACT_NAMES, ArtifactError, load_artifact
from devnet.errors import DeployError, ToolchainMissingError
from devnet.keys import DevnetKeys
from devnet.manifest import Contracts
from devnet.transactions import Transactor, Tx

FAR = 10**18
USDF = 10**6
NATIVE_CAP = 1_000_000_000 * FAR
MIN_BOND = 1_000 * FAR
NODE_NATIVE = 10_000 * FAR
AGENT_STABLE = 10_000 * USDF
AGENT_NATIVE = 1_000 * FAR
PRICE_DECIMALS = 8
PRICE_DESCRIPTION = "FAR / USD"
INITIAL_PRICE = 250_000_000  # 2.50 USD with 8 decimals


@dataclass(frozen=True, slots=True)
class Deployment:
    """What :func:`deploy` left on chain."""

    contracts: Contracts
    deploy_block: int
    epoch: int
    quorum: int


def quorum_for(members: int) -> int:
    """The quorum of a committee of ``members`` nodes: floor(2n/3) + 1."""
    return 2 * members // 3 + 1


def check_artifacts() -> None:
    """Raise :class:`ToolchainMissingError` unless every contract artifact loads."""
    for name in CONTRACT_NAMES:
        try:
            load_artifact(name)
        except (ArtifactError, OSError, ValueError, KeyError) as exc:
            raise ToolchainMissingError(f"contract artifact {name!r} is unusable: {exc}") from exc


def contract_at(w3: Web3, name: str, address: ChecksumAddress) -> Contract:
    """The deployed contract ``name`` (an artifact name) at ``address``."""
    return w3.eth.contract(address=address, abi=load_artifact(name).abi)


def _factory(w3: Web3, name: str) -> type[Contract]:
    artifact = load_artifact(name)
    return w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)


def _created(receipt: TxReceipt, name: str) -> ChecksumAddress:
    address = receipt["contractAddress"]
    if address is None:
        raise DeployError(f"deploy {name}: the receipt has no contract address")
    return address


def deploy(w3: Web3, keys: DevnetKeys, endpoints: Sequence[str]) -> Deployment:
    """Deploy everything with ``keys.governance``, bond and register ``keys.nodes`` with
    ``endpoints`` (one per node) as the first committee, and fund ``keys.agents``."""
    if len(endpoints) != len(keys.nodes) or not keys.nodes:
        raise ValueError("need one endpoint per node, and at least one node")
    gov = keys.governance
    send = Transactor(w3)

    tokens = send.send_group(
        [
            Tx(gov, _factory(w3, "FarthingUSD").constructor(gov.address), "deploy FarthingUSD"),
            Tx(
                gov,
                _factory(w3, "FarthingToken").constructor(gov.address, NATIVE_CAP),
                "deploy FarthingToken",
            ),
            Tx(
                gov,
                _factory(w3, "PriceFeed").constructor(
                    gov.address, PRICE_DECIMALS, PRICE_DESCRIPTION, INITIAL_PRICE
                ),
                "deploy PriceFeed",
            ),
        ]
    )
    stable_address = _created(tokens[0], "FarthingUSD")
    native_address = _created(tokens[1], "FarthingToken")
    feed_address = _created(tokens[2], "PriceFeed")
    stable = contract_at(w3, "FarthingUSD", stable_address)
    native = contract_at(w3, "FarthingToken", native_address)

    vault_group = [
        Tx(
            gov,
            _factory(w3, "Vault").constructor(gov.address, native_address, MIN_BOND),
            "deploy Vault",
        ),
        *(
            Tx(gov, native.functions.mint(node.address, NODE_NATIVE), f"mint FAR to node {i}")
            for i, node in enumerate(keys.nodes, 1)
        ),
    ]
    for i, agent in enumerate(keys.agents, 1):
        vault_group += [
            Tx(gov, stable.functions.mint(agent.address, AGENT_STABLE), f"mint USDF to agent {i}"),
            Tx(gov, native.functions.mint(agent.address, AGENT_NATIVE), f"mint FAR to agent {i}"),
        ]
    vault_address = _created(send.send_group(vault_group)[0], "Vault")
    vault = contract_at(w3, "Vault", vault_address)

    send.send_group(
        [
            Tx(gov, vault.functions.registerToken(stable_address), "register USDF in the Vault"),
            Tx(gov, vault.functions.registerToken(native_address), "register FAR in the Vault"),
            *(
                Tx(node, native.functions.approve(vault_address, MIN_BOND), f"approve by node {i}")
                for i, node in enumerate(keys.nodes, 1)
            ),
        ]
    )
    send.send_group(
        [
            Tx(node, vault.functions.bond(node.address, MIN_BOND), f"bond by node {i}")
            for i, node in enumerate(keys.nodes, 1)
        ]
    )
    quorum = quorum_for(len(keys.nodes))
    members = [node.address for node in keys.nodes]
    send.send(
        Tx(gov, vault.functions.startEpoch(members, list(endpoints), quorum), "start the epoch")
    )

    epoch: int = vault.functions.currentEpoch().call()
    registered: Any = vault.functions.committee(epoch).call()
    if list(registered[0]) != members or int(registered[2]) != quorum:
        raise DeployError(f"the Vault's committee of epoch {epoch} is not the one registered")
    return Deployment(
        contracts=Contracts(
            vault=vault_address,
            stable=stable_address,
            native=native_address,
            price_feed=feed_address,
        ),
        deploy_block=tokens[0]["blockNumber"],
        epoch=epoch,
        quorum=quorum,
    )
