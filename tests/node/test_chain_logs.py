"""The Vault's logs as values (wallet.chain, which the node imports): topics match the
ABI, decoding round-trips what the EVM encodes into the node's deposit input, block ranges
tile, the token set replays, RPC URLs are shown without secrets."""

from __future__ import annotations

import itertools

import pytest
from eth_abi import encode
from eth_utils import event_abi_to_log_topic
from hypothesis import given
from hypothesis import strategies as st

from contracts import load_artifact
from node.chain.deposits import deposit_change
from node.state.changes import ContractReceiveDeposit
from wallet.chain import (
    DEPOSITED_TOPIC,
    TOKEN_DEREGISTERED_TOPIC,
    TOKEN_REGISTERED_TOPIC,
    BlockRange,
    LogDecodeError,
    LogPosition,
    TokenEvent,
    compute_token_sets,
    decode_deposit,
    decode_token_event,
    redact_url,
    split_range,
)
from wallet.types import Address, Hash32

POSITION = LogPosition(7, Hash32(b"\x07" * 32), 3)
addresses = st.binary(min_size=20, max_size=20).map(Address)


def word(value: int) -> bytes:
    return value.to_bytes(32, "big")


def address_word(address: bytes) -> bytes:
    return bytes(12) + address


def test_topics_are_those_of_the_vault_abi() -> None:
    events = {e["name"]: e for e in load_artifact("Vault").abi if e["type"] == "event"}
    assert event_abi_to_log_topic(events["Deposited"]) == DEPOSITED_TOPIC
    assert event_abi_to_log_topic(events["TokenRegistered"]) == TOKEN_REGISTERED_TOPIC
    assert event_abi_to_log_topic(events["TokenDeregistered"]) == TOKEN_DEREGISTERED_TOPIC


@given(
    deposit_id=st.integers(0, 2**64 - 1),
    who=addresses,
    token=addresses,
    amount=st.integers(0, 2**256 - 1),
    depositor=addresses,
)
def test_deposit_decodes_what_the_evm_encodes(
    deposit_id: int, who: Address, token: Address, amount: int, depositor: Address
) -> None:
    topics = [DEPOSITED_TOPIC, word(deposit_id), address_word(who), address_word(token)]
    data = encode(["uint256", "address"], [amount, depositor])
    log = decode_deposit(topics, data, POSITION)
    assert deposit_change(log) == ContractReceiveDeposit(deposit_id, who, token, amount)  # type: ignore[arg-type]
    assert deposit_change(log).block_number == 7
    assert log.depositor == depositor
    assert log.block_number == 7
    assert log.position == POSITION


GOOD_TOPICS = [DEPOSITED_TOPIC, word(1), address_word(b"\x01" * 20), address_word(b"\x02" * 20)]
GOOD_DATA = encode(["uint256", "address"], [5, "0x" + "03" * 20])


@pytest.mark.parametrize(
    ("topics", "data"),
    [
        pytest.param([TOKEN_REGISTERED_TOPIC, *GOOD_TOPICS[1:]], GOOD_DATA, id="other-event"),
        pytest.param(GOOD_TOPICS[:3], GOOD_DATA, id="three-topics"),
        pytest.param(
            [*GOOD_TOPICS[:2], word(2**160), GOOD_TOPICS[3]], GOOD_DATA, id="dirty-address"
        ),
        pytest.param(
            [GOOD_TOPICS[0], word(2**64), *GOOD_TOPICS[2:]], GOOD_DATA, id="id-over-uint64"
        ),
        pytest.param(GOOD_TOPICS, GOOD_DATA[:40], id="short-data"),
    ],
)
def test_a_malformed_deposit_log_is_refused(topics: list[bytes], data: bytes) -> None:
    with pytest.raises(LogDecodeError):
        decode_deposit(topics, data, POSITION)


def test_token_events_decode() -> None:
    token = Address(b"\x09" * 20)
    registered = decode_token_event([TOKEN_REGISTERED_TOPIC, address_word(token)], POSITION)
    removed = decode_token_event([TOKEN_DEREGISTERED_TOPIC, address_word(token)], POSITION)
    assert (registered.token, registered.registered) == (token, True)
    assert (removed.token, removed.registered) == (token, False)
    with pytest.raises(LogDecodeError):
        decode_token_event([DEPOSITED_TOPIC, address_word(token)], POSITION)


@given(first=st.integers(0, 10_000), length=st.integers(-3, 10_000), span=st.integers(1, 3_000))
def test_split_range_tiles_the_range(first: int, length: int, span: int) -> None:
    last = first + length - 1
    ranges = list(split_range(first, last, span))
    if length <= 0:
        assert ranges == []
        return
    assert ranges[0].first == first
    assert ranges[-1].last == last
    assert all(r.last - r.first + 1 <= span for r in ranges)
    assert all(a.last + 1 == b.first for a, b in itertools.pairwise(ranges))


def test_block_range_is_checked() -> None:
    with pytest.raises(ValueError, match="not a block range"):
        BlockRange(5, 4)
    assert 5 in BlockRange(5, 5)
    assert 6 not in BlockRange(5, 5)
    with pytest.raises(ValueError, match="max_span"):
        list(split_range(0, 10, 0))


@given(
    ops=st.lists(st.tuples(st.integers(0, 4), st.booleans()), max_size=40),
    order=st.randoms(use_true_random=False),
)
def test_registered_tokens_replay_in_chain_order(
    ops: list[tuple[int, bool]], order: object
) -> None:
    # A model of the Vault: only valid operations happen (no double register/deregister).
    tokens = [Address(bytes([i + 1]) * 20) for i in range(5)]
    model: set[Address] = set()
    events: list[TokenEvent] = []
    for block, (index, register) in enumerate(ops):
        token = tokens[index]
        if register == (token in model):
            continue
        (model.add if register else model.discard)(token)
        events.append(
            TokenEvent(token, register, LogPosition(block // 3, Hash32(bytes(32)), block))
        )
    shuffled = list(events)
    order.shuffle(shuffled)  # type: ignore[attr-defined]
    assert compute_token_sets(shuffled)[0] == frozenset(model)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("http://127.0.0.1:8545", "http://127.0.0.1:8545"),
        ("http://127.0.0.1:8545/", "http://127.0.0.1:8545"),
        ("https://mainnet.infura.io/v3/SECRETKEY", "https://mainnet.infura.io/…"),
        ("https://user:pw@rpc.example/?key=SECRET", "https://rpc.example/…"),
        ("http://[::1]:8545", "http://[::1]:8545"),
        ("localhost:8545", "<the configured RPC URL, which has no scheme or host>"),
        ("http://h:99999999", "<the configured RPC URL, which does not parse>"),
    ],
)
def test_rpc_urls_are_shown_without_their_secrets(url: str, shown: str) -> None:
    assert redact_url(url) == shown
