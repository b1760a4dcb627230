from __future__ import annotations

import json
from decimal import Decimal, localcontext
from pathlib import Path

from eth_utils.address import to_checksum_address
from hypothesis import given
from hypothesis import strategies as st

from devnet.manifest import Contracts
from devnet.status import (
    AgentStatus,
    DevnetStatus,
    MemberStatus,
    Price,
    ProcessStatus,
    Token,
    format_status,
    format_units,
)

VAULT = to_checksum_address("0xCf7Ed3AccA5a467e9e704C703E8D87F634fB0Fc9")
STABLE = to_checksum_address("0x5FbDB2315678afecb367f032d93F642f64180aa3")
NATIVE = to_checksum_address("0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512")
FEED = to_checksum_address("0x9fE46736679d2D9a65F0992F2272dE9f3c7fa6e0")
MEMBER = to_checksum_address("0x70997970C51812dc3A010C7d01b50e0d17dc79C8")
AGENT = to_checksum_address("0x9965507D1a55bcC2695C58ba16FB37d819B0A4dc")


def test_format_units_examples() -> None:
    assert format_units(250_000_000, 8) == "2.50"
    assert format_units(10_000 * 10**6, 6) == "10000.00"
    assert format_units(1, 6) == "0.000001"
    assert format_units(1_234_500, 6) == "1.2345"
    assert format_units(0, 18) == "0.00"
    assert format_units(7, 0) == "7.00"
    assert format_units(7, 0, places=0) == "7"
    assert format_units(-1_500_000, 6) == "-1.50"


@given(st.integers(min_value=0, max_value=10**40), st.integers(min_value=0, max_value=30))
def test_format_units_is_exact(amount: int, decimals: int) -> None:
    text = format_units(amount, decimals)
    with localcontext() as exact:
        exact.prec = 100
        assert Decimal(text) * 10**decimals == amount
    assert "." in text


def make_status() -> DevnetStatus:
    return DevnetStatus(
        state_dir=Path("state"),
        rpc_url="http://127.0.0.1:8545",
        chain_id=31337,
        block_number=27,
        contracts=Contracts(VAULT, STABLE, NATIVE, FEED),
        stable=Token(STABLE, "USDF", 6),
        native=Token(NATIVE, "FAR", 18),
        price=Price("FAR / USD", 250_000_000, 8, 1, 1_700_000_000),
        epoch=1,
        quorum=1,
        members=(MemberStatus(MEMBER, "http://127.0.0.1:9001", 1000 * 10**18),),
        agents=(AgentStatus(AGENT, 10_000 * 10**6, 1000 * 10**18, 10**22),),
        processes=(ProcessStatus("anvil", 4242, True),),
    )


def test_table_shows_the_essentials() -> None:
    table = format_status(make_status())
    for expected in [
        "chain id     31337",
        "block        27",
        "anvil (pid 4242, running)",
        VAULT,
        "USDF, 6 decimals",
        "FAR, 18 decimals",
        "2.50 USD per FAR",
        "epoch 1, quorum 1 of 1",
        MEMBER,
        "1000.00",
        "http://127.0.0.1:9001",
        AGENT,
        "10000.00",
    ]:
        assert expected in table


def test_json_amounts_are_strings() -> None:
    doc = json.loads(json.dumps(make_status().to_dict()))
    assert doc["members"][0]["bond"] == str(1000 * 10**18)
    assert doc["agents"][0] == {
        "address": AGENT,
        "stable": "10000000000",
        "native": str(1000 * 10**18),
        "eth": str(10**22),
    }
    assert doc["price"]["answer"] == "250000000"
    assert doc["processes"] == [{"name": "anvil", "pid": 4242, "running": True}]
