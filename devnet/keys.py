"""The devnet's keys, all derived from one PUBLIC TEST mnemonic.

BIP-44 path ``m/44'/60'/0'/0/i``: index 0 is governance (it deploys and owns the
contracts), 1..N are the committee's node keys, N+1..N+M the agents' keys. anvil is
started with the same mnemonic and ``--accounts 1+N+M``, so it prefunds each with ETH.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Final

from eth_account import Account
from eth_account.hdaccount import key_from_seed, seed_from_mnemonic
from eth_account.signers.local import LocalAccount

#: PUBLIC TEST mnemonic: anvil's default, printed in every Foundry tutorial, so every key
#: derived from it is known to the whole world. Never send real funds to these addresses.
DEVNET_MNEMONIC: Final = "test test test test test test test test test test test junk"

#: The BIP-44 path of key ``i`` is this prefix followed by ``i`` (anvil's default too).
DERIVATION_PATH_PREFIX: Final = "m/44'/60'/0'/0/"


@dataclass(frozen=True, slots=True)
class DevnetKeys:
    """The devnet's accounts, by role. Each ``LocalAccount`` holds its private key."""

    governance: LocalAccount
    nodes: tuple[LocalAccount, ...]
    agents: tuple[LocalAccount, ...]


def account_count(nodes: int, agents: int) -> int:
    """How many accounts anvil must prefund: governance, the nodes and the agents."""
    return 1 + nodes + agents


@cache
def _seed(mnemonic: str) -> bytes:
    return seed_from_mnemonic(mnemonic, passphrase="")


def derive_account(index: int, mnemonic: str = DEVNET_MNEMONIC) -> LocalAccount:
    """The account at ``m/44'/60'/0'/0/<index>`` of ``mnemonic``."""
    if index < 0:
        raise ValueError(f"key index must be >= 0, got {index}")
    key = key_from_seed(_seed(mnemonic), f"{DERIVATION_PATH_PREFIX}{index}")
    account: LocalAccount = Account.from_key(key)
    return account


def derive_keys(nodes: int, agents: int, mnemonic: str = DEVNET_MNEMONIC) -> DevnetKeys:
    """Governance (index 0), ``nodes`` node keys (1..N), ``agents`` agent keys (N+1..N+M)."""
    return DevnetKeys(
        governance=derive_account(0, mnemonic),
        nodes=tuple(derive_account(1 + i, mnemonic) for i in range(nodes)),
        agents=tuple(derive_account(1 + nodes + i, mnemonic) for i in range(agents)),
    )
