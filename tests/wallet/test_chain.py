"""wallet.chain without a chain: transaction and permit signing against eth-account (the
reference), revert decoding, log decoding and block ranges, URL redaction, and what an
unreachable RPC URL gives."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp import web
from eth_abi.abi import encode as abi_encode
from eth_account import Account
from eth_account.messages import _hash_eip191_message, encode_typed_data
from hypothesis import given, settings
from hypothesis import strategies as st

from devnet import free_port
from wallet.chain import (
    DEPOSITED_TOPIC,
    TOKEN_DEREGISTERED_TOPIC,
    TOKEN_REGISTERED_TOPIC,
    BlockRange,
    CommitteeInfo,
    FeedRound,
    LogDecodeError,
    LogPosition,
    VaultClient,
    VaultReader,
    compute_token_sets,
    decode_deposit,
    decode_revert,
    decode_token_event,
    permit_digest,
    redact_url,
    sign_transaction,
)
from wallet.codec import address_hex, parse_address
from wallet.errors import ChainUnavailable, EncodingError, WalletError
from wallet.keccak import keccak256
from wallet.signing import PrivateKey
from wallet.types import Address, Epoch, Hash32

#: PUBLIC TEST KEY (anvil's account 0); never for real funds.
TEST_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
ALICE = parse_address("0x" + "a1" * 20)
BOB = parse_address("0x" + "b0" * 20)
TOKEN = parse_address("0x" + "70" * 20)
HERE = LogPosition(7, Hash32(bytes(32)), 0)


def topic_of(address: Address) -> bytes:
    return bytes(12) + address


# ---------------------------------------------------------------- signing


@settings(max_examples=25, deadline=None)
@given(
    nonce=st.integers(0, 2**32),
    gas=st.integers(21_000, 30_000_000),
    tip=st.integers(0, 10**11),
    base=st.integers(0, 10**12),
    data=st.binary(max_size=200),
    chain_id=st.sampled_from([1, 31337, 8453, 2**32]),
)
def test_sign_transaction_matches_eth_account(
    nonce: int, gas: int, tip: int, base: int, data: bytes, chain_id: int
) -> None:
    tx: dict[str, Any] = {
        "type": 2,
        "chainId": chain_id,
        "nonce": nonce,
        "to": address_hex(TOKEN),
        "value": 0,
        "data": "0x" + data.hex(),
        "gas": gas,
        "maxFeePerGas": 2 * base + tip,
        "maxPriorityFeePerGas": tip,
        "accessList": [],
    }
    ours = sign_transaction(PrivateKey.from_hex(TEST_KEY), tx)
    reference = Account.sign_transaction(tx, TEST_KEY)
    assert ours == bytes(reference.raw_transaction)
    assert keccak256(ours) == bytes(reference.hash)


def test_permit_digest_matches_eth_account() -> None:
    domain = {
        "name": "Farthing USD",
        "version": "1",
        "chainId": 31337,
        "verifyingContract": address_hex(TOKEN),
    }
    message = {
        "owner": address_hex(ALICE),
        "spender": address_hex(BOB),
        "value": 25 * 10**6,
        "nonce": 3,
        "deadline": 2**40,
    }
    signable = encode_typed_data(
        full_message={
            "types": {
                "EIP712Domain": [
                    {"name": "name", "type": "string"},
                    {"name": "version", "type": "string"},
                    {"name": "chainId", "type": "uint256"},
                    {"name": "verifyingContract", "type": "address"},
                ],
                "Permit": [
                    {"name": "owner", "type": "address"},
                    {"name": "spender", "type": "address"},
                    {"name": "value", "type": "uint256"},
                    {"name": "nonce", "type": "uint256"},
                    {"name": "deadline", "type": "uint256"},
                ],
            },
            "primaryType": "Permit",
            "domain": domain,
            "message": message,
        }
    )
    expected = bytes(_hash_eip191_message(signable))
    got = permit_digest(bytes(signable.header), ALICE, BOB, 25 * 10**6, 3, 2**40)
    assert got == expected


@pytest.mark.parametrize(
    ("field", "value", "nonce", "deadline"),
    [("value", -1, 0, 1), ("value", 2**256, 0, 1), ("nonce", 1, -1, 1), ("deadline", 1, 0, 2**256)],
)
def test_permit_digest_refuses_values_out_of_range(
    field: str, value: int, nonce: int, deadline: int
) -> None:
    with pytest.raises(EncodingError, match=field):
        permit_digest(bytes(32), ALICE, BOB, value, nonce, deadline)


# ---------------------------------------------------------------- reverts


def error_data(signature: str, types: list[str], values: list[Any]) -> bytes:
    return keccak256(signature.encode())[:4] + abi_encode(types, values)


def test_decode_revert_names_the_vaults_custom_errors() -> None:
    data = error_data(
        "AlreadyRedeemed(address,uint64)", ["address", "uint64"], [address_hex(ALICE), 9]
    )
    reason = decode_revert(data)
    assert reason is not None
    assert reason.name == "AlreadyRedeemed"
    assert dict(reason.arguments) == {"account": address_hex(ALICE), "sequence": 9}
    assert str(reason) == f"AlreadyRedeemed(account={address_hex(ALICE)}, sequence=9)"


def test_decode_revert_knows_the_tokens_errors_strings_and_panics() -> None:
    balance = error_data(
        "ERC20InsufficientBalance(address,uint256,uint256)",
        ["address", "uint256", "uint256"],
        [address_hex(ALICE), 1, 2],
    )
    reason = decode_revert(balance)
    assert reason is not None
    assert reason.name == "ERC20InsufficientBalance"
    assert [n for n, _ in reason.arguments] == ["sender", "balance", "needed"]
    text = decode_revert(error_data("Error(string)", ["string"], ["no"]))
    assert text is not None
    assert (text.name, dict(text.arguments)) == ("Error", {"message": "no"})
    panic = decode_revert(error_data("Panic(uint256)", ["uint256"], [0x11]))
    assert panic is not None
    assert (panic.name, dict(panic.arguments)) == ("Panic", {"code": 0x11})


@pytest.mark.parametrize(
    "data",
    [b"", b"\x01\x02", keccak256(b"Nope()")[:4], keccak256(b"UnknownEpoch(uint64)")[:4] + b"\x01"],
)
def test_decode_revert_gives_none_for_what_it_cannot_read(data: bytes) -> None:
    assert decode_revert(data) is None


# ---------------------------------------------------------------- logs and values


def test_decode_deposit_and_token_events() -> None:
    topics = [DEPOSITED_TOPIC, (5).to_bytes(32, "big"), topic_of(BOB), topic_of(TOKEN)]
    log = decode_deposit(topics, abi_encode(["uint256", "address"], [42, address_hex(ALICE)]), HERE)
    assert (log.deposit_id, log.beneficiary, log.token, log.amount, log.depositor) == (
        5,
        BOB,
        TOKEN,
        42,
        ALICE,
    )
    assert log.block_number == 7
    with pytest.raises(LogDecodeError):
        decode_deposit(topics[:3], b"", HERE)
    with pytest.raises(LogDecodeError):
        decode_deposit(topics, b"\x00", HERE)
    event = decode_token_event([TOKEN_DEREGISTERED_TOPIC, topic_of(TOKEN)], HERE)
    assert (event.token, event.registered) == (TOKEN, False)
    with pytest.raises(LogDecodeError):
        decode_token_event([DEPOSITED_TOPIC, topic_of(TOKEN)], HERE)


def test_token_sets_replay_in_chain_order() -> None:
    def at(block: int, index: int, token: Address, registered: bool) -> Any:
        topic = TOKEN_REGISTERED_TOPIC if registered else TOKEN_DEREGISTERED_TOPIC
        return decode_token_event(
            [topic, topic_of(token)], LogPosition(block, Hash32(bytes(32)), index)
        )

    events = [at(3, 0, ALICE, False), at(1, 0, ALICE, True), at(2, 1, BOB, True)]
    assert compute_token_sets(events) == (frozenset({BOB}), frozenset({ALICE}))


def test_block_range_and_committee_checks() -> None:
    with pytest.raises(ValueError, match="not a block range"):
        BlockRange(5, 4)
    assert 4 in BlockRange(3, 4)
    with pytest.raises(ValueError, match="one endpoint per"):
        CommitteeInfo(Epoch(1), (ALICE, BOB), 2, ("http://a",), 0)
    with pytest.raises(ValueError, match="quorum"):
        CommitteeInfo(Epoch(1), (ALICE,), 2, ("http://a",), 0)
    with pytest.raises(ValueError, match="distinct"):
        CommitteeInfo(Epoch(1), (ALICE, ALICE), 2, ("http://a", "http://b"), 0)
    committee = CommitteeInfo(Epoch(1), (ALICE, BOB), 2, ("http://a", "http://b"), 0)
    assert committee.endpoint_of(BOB) == "http://b"
    assert committee.is_current


def test_feed_round_value_age_and_policy_reading() -> None:
    reading = FeedRound(TOKEN, "FAR / USD", 4, 250_000_000, 8, 1_000)
    assert str(reading.value) == "2.50000000"
    assert reading.age(now=1_090) == 90
    policy = reading.price_reading()
    assert (policy.answer, policy.decimals, policy.updated_at) == (250_000_000, 8, 1_000)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("http://127.0.0.1:8545", "http://127.0.0.1:8545"),
        ("https://mainnet.example/v3/SECRET", "https://mainnet.example/…"),
        ("https://user:pw@host.example", "https://host.example/…"),
        ("not a url", "<the configured RPC URL, which has no scheme or host>"),
    ],
)
def test_redact_url_hides_paths_and_credentials(url: str, shown: str) -> None:
    assert redact_url(url) == shown


# ---------------------------------------------------------------- no chain


@pytest.mark.asyncio
async def test_an_unreachable_rpc_url_is_retryable_and_hides_its_key() -> None:
    url = f"http://127.0.0.1:{free_port()}/v3/SECRET-API-KEY"
    async with VaultReader(url, TOKEN, timeout=2) as reader:
        with pytest.raises(ChainUnavailable) as caught:
            await reader.check_vault()
    assert caught.value.retryable
    assert isinstance(caught.value, WalletError)
    assert "SECRET-API-KEY" not in str(caught.value)


@pytest.mark.asyncio
async def test_a_deposit_of_nothing_is_refused_before_any_request() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    async with VaultClient(url, TOKEN, PrivateKey.from_hex(TEST_KEY), timeout=2) as client:
        for amount in (0, -1, 2**256):
            with pytest.raises(EncodingError, match="amount"):
                await client.deposit(TOKEN, amount)


async def _rpc_stub(answers: list[Any]) -> tuple[web.AppRunner, str, list[dict[str, Any]]]:
    """A JSON-RPC endpoint that replies with ``answers`` in turn; the requests it got."""
    seen: list[dict[str, Any]] = []

    async def handle(request: web.Request) -> web.Response:
        seen.append(await request.json())
        return web.json_response(answers[len(seen) - 1])

    app = web.Application()
    app.router.add_post("/", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, f"http://127.0.0.1:{port}/", seen


@pytest.mark.asyncio
async def test_head_is_one_raw_request_on_a_kept_connection() -> None:
    runner, url, seen = await _rpc_stub(
        [{"jsonrpc": "2.0", "id": i, "result": hex(100 + i)} for i in (1, 2)]
    )
    try:
        async with VaultReader(url, TOKEN, timeout=2) as reader:
            assert [await reader.head(), await reader.head()] == [101, 102]
    finally:
        await runner.cleanup()
    assert [r["method"] for r in seen] == ["eth_blockNumber"] * 2
    assert [r["id"] for r in seen] == [1, 2]


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "answer",
    [
        {"jsonrpc": "2.0", "id": 1, "error": {"code": -32000, "message": "boom"}},
        {"jsonrpc": "2.0", "id": 1, "result": "12"},
        {"jsonrpc": "2.0", "id": 1, "result": "0x1_0"},
        {"jsonrpc": "2.0", "id": 1, "result": None},
        ["not", "an", "object"],
    ],
)
async def test_a_bad_head_answer_is_chain_unavailable(answer: Any) -> None:
    runner, url, _ = await _rpc_stub([answer])
    try:
        async with VaultReader(url, TOKEN, timeout=2) as reader:
            with pytest.raises(ChainUnavailable, match=r"eth_blockNumber|block number"):
                await reader.head()
    finally:
        await runner.cleanup()


@pytest.mark.asyncio
async def test_block_hash_reads_one_block_or_none_past_the_head() -> None:
    block = {"number": "0x5", "hash": "0x" + "ab" * 32}
    runner, url, seen = await _rpc_stub(
        [
            {"jsonrpc": "2.0", "id": 1, "result": block},
            {"jsonrpc": "2.0", "id": 2, "result": None},
            {"jsonrpc": "2.0", "id": 3, "result": {"hash": "0x12"}},
        ]
    )
    try:
        async with VaultReader(url, TOKEN, timeout=2) as reader:
            assert await reader.block_hash(5) == bytes.fromhex("ab" * 32)
            assert await reader.block_hash(6) is None
            with pytest.raises(ChainUnavailable, match="no block hash"):
                await reader.block_hash(7)
    finally:
        await runner.cleanup()
    assert [r["params"] for r in seen] == [["0x5", False], ["0x6", False], ["0x7", False]]
