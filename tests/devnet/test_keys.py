from __future__ import annotations

import pytest
from eth_account import Account

from devnet.keys import (
    DERIVATION_PATH_PREFIX,
    DEVNET_MNEMONIC,
    account_count,
    derive_account,
    derive_keys,
)

# anvil's well-known accounts 0..2 of the default mnemonic.
ANVIL_ACCOUNTS = [
    "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266",
    "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
    "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC",
]


def test_mnemonic_is_anvils_public_default() -> None:
    assert DEVNET_MNEMONIC == "test test test test test test test test test test test junk"


def test_governance_is_anvil_account_zero() -> None:
    keys = derive_keys(nodes=4, agents=4)
    assert keys.governance.address == ANVIL_ACCOUNTS[0]
    assert keys.nodes[0].address == ANVIL_ACCOUNTS[1]
    assert keys.nodes[1].address == ANVIL_ACCOUNTS[2]


@pytest.mark.parametrize("index", [0, 1, 4, 5, 9])
def test_derivation_matches_eth_account_hd_wallet(index: int) -> None:
    Account.enable_unaudited_hdwallet_features()
    reference = Account.from_mnemonic(
        DEVNET_MNEMONIC, account_path=f"{DERIVATION_PATH_PREFIX}{index}"
    )
    derived = derive_account(index)
    assert derived.address == reference.address
    assert derived.key == reference.key


def test_roles_take_consecutive_indices() -> None:
    keys = derive_keys(nodes=3, agents=2)
    assert [a.address for a in keys.nodes] == [derive_account(i).address for i in (1, 2, 3)]
    assert [a.address for a in keys.agents] == [derive_account(i).address for i in (4, 5)]
    everyone = [keys.governance, *keys.nodes, *keys.agents]
    assert len({a.address for a in everyone}) == account_count(3, 2) == 6


def test_negative_index_is_refused() -> None:
    with pytest.raises(ValueError, match="index"):
        derive_account(-1)


def test_a_local_account_does_not_show_its_key() -> None:
    account = derive_account(0)
    assert account.key.hex() not in repr(account)
