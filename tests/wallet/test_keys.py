"""Keys: BIP-39 and BIP-32 test vectors, anvil's public test mnemonic, agreement with
eth-account's HD wallet, the two addresses of one key, uAgents seeds, and secrets that
never show up in errors."""

from __future__ import annotations

import hashlib
import traceback

import coincurve
import pytest
from eth_account.hdaccount import key_from_seed as reference_key_from_seed
from eth_account.hdaccount import seed_from_mnemonic as reference_seed_from_mnemonic
from eth_account.hdaccount.mnemonic import Mnemonic
from hypothesis import given, settings
from hypothesis import strategies as st
from uagents_core.identity import Identity

from tests.wallet.reference import key_secrets
from wallet.bech32 import bech32_decode, bech32_encode
from wallet.codec import address_hex, parse_address
from wallet.errors import EncodingError, InvalidKey, WalletError
from wallet.keys import (
    AGENT_ADDRESS_LENGTH,
    agent_address,
    agent_address_from_public_key,
    agent_payment_address,
    generate_mnemonic,
    key_from_agent_seed,
    key_from_mnemonic,
    key_from_seed,
    mnemonic_from_entropy,
    mnemonic_to_seed,
    normalize_mnemonic,
    parse_agent_address,
    parse_path,
    payment_address,
)
from wallet.signing import PrivateKey

# anvil's (and hardhat's) well-known mnemonic: PUBLIC TEST KEYS, never for value.
ANVIL_TEST_MNEMONIC = "test test test test test test test test test test test junk"
ANVIL_TEST_ADDRESSES = [
    "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266",
    "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
    "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC",
]
ANVIL_PUBLIC_TEST_KEY_0 = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"

# trezor/python-mnemonic vectors.json (English, passphrase "TREZOR"): entropy, mnemonic, seed.
BIP39_VECTORS = [
    (
        "00000000000000000000000000000000",
        "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon "
        "abandon about",
        "c55257c360c07c72029aebc1b53c05ed0362ada38ead3e3e9efa3708e53495531f09a6987599d18264c1e1"
        "c92f2cf141630c7a3c4ab7c81b2f001698e7463b04",
    ),
    (
        "7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f",
        "legal winner thank year wave sausage worth useful legal winner thank yellow",
        "2e8905819b8723fe2c1d161860e5ee1830318dbf49a83bd451cfb8440c28bd6fa457fe1296106559a3c809"
        "37a1c1069be3a3a5bd381ee6260e8d9739fce1f607",
    ),
    (
        "80808080808080808080808080808080",
        "letter advice cage absurd amount doctor acoustic avoid letter advice cage above",
        "d71de856f81a8acc65e6fc851a38d4d7ec216fd0796d0a6827a3ad6ed5511a30fa280f12eb2e47ed2ac03b"
        "5c462a0358d18d69fe4f985ec81778c1b370b652a8",
    ),
    (
        "ffffffffffffffffffffffffffffffff",
        "zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo wrong",
        "ac27495480225222079d7be181583751e86f571027b0497b5b5d11218e0a8a13332572917f0f8e5a589620"
        "c6f15b11c61dee327651a14c34e18231052e48c069",
    ),
    (
        "000000000000000000000000000000000000000000000000",
        "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon "
        "abandon abandon abandon abandon abandon abandon abandon agent",
        "035895f2f481b1b0f01fcf8c289c794660b289981a78f8106447707fdd9666ca06da5a9a565181599b79f5"
        "3b844d8a71dd9f439c52a3d7b3e8a79c906ac845fa",
    ),
    (
        "0000000000000000000000000000000000000000000000000000000000000000",
        "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon "
        "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon "
        "abandon abandon abandon art",
        "bda85446c68413707090a52022edd26a1c9462295029f2e60cd7c4f2bbd3097170af7a4d73245cafa9c3cc"
        "a8d561a7c3de6f5d4a10be8ed2a5e608d68f92fcc8",
    ),
]

# BIP-32 test vector 1: seed 000102...0f, the private key at each step of the chain.
BIP32_SEED = bytes(range(16))
BIP32_VECTOR_1 = [
    ("m", "e8f32e723decf4051aefac8e2c93c9c5b214313817cdb01a1494b917c8436b35"),
    ("m/0'", "edb2e14f9ee77d26dd93b4ecede8d16ed408ce149b6cd80b0715a2d911a0afea"),
    ("m/0'/1", "3c6cb8d0f6a264c91ea8b5030fadaa8e538b020f0a387421a12de9319dc93368"),
    ("m/0'/1/2'", "cbce0d719ecf7431d88e6a89fa1483e02e35092af60c042b1df2ff59fa424dca"),
    ("m/0'/1/2'/2", "0f479245fb19a38a1954c5c7c0ebab2f9bdfd96a17563ef28a6a4b1a2a764ef4"),
    ("m/0'/1/2'/2/1000000000", "471b76e389e528d6de6d816857e012c5455051cad6660850e58372a6c3e6e7c8"),
]

# An address uAgents' own test suite uses (python/tests/test_agent_address.py).
UAGENTS_ADDRESS = "agent1qfl32tdwlyjatc7f9tjng6sm9y7yzapy6awx4h9rrwenputzmnv5g6skess"

secp256k1_keys = key_secrets.map(PrivateKey)
hd_settings = settings(max_examples=25, deadline=None)


# ---------------------------------------------------------------- mnemonics and HD paths


@pytest.mark.parametrize("index", range(len(ANVIL_TEST_ADDRESSES)))
def test_anvil_test_mnemonic_gives_anvils_accounts(index: int) -> None:
    key = key_from_mnemonic(ANVIL_TEST_MNEMONIC, index)
    assert payment_address(key) == ANVIL_TEST_ADDRESSES[index]


def test_anvil_test_key_0_exports_as_anvil_prints_it() -> None:
    key = key_from_mnemonic(ANVIL_TEST_MNEMONIC)
    assert key.export_private_key_hex() == ANVIL_PUBLIC_TEST_KEY_0
    assert PrivateKey.from_hex(key.export_private_key_hex()) == key


@pytest.mark.parametrize(("entropy", "mnemonic", "seed"), BIP39_VECTORS, ids=lambda v: v[:8])
def test_bip39_vectors(entropy: str, mnemonic: str, seed: str) -> None:
    assert mnemonic_from_entropy(bytes.fromhex(entropy)) == mnemonic
    assert normalize_mnemonic(mnemonic) == mnemonic
    assert mnemonic_to_seed(mnemonic, "TREZOR").hex() == seed


@pytest.mark.parametrize(("path", "secret"), BIP32_VECTOR_1)
def test_bip32_vector_1(path: str, secret: str) -> None:
    key = key_from_seed(BIP32_SEED, path)
    assert key == PrivateKey(bytes.fromhex(secret))


def test_hardened_markers_are_equivalent() -> None:
    assert parse_path("m/44'/60h/0H/0/7") == (
        44 + 2**31,
        60 + 2**31,
        2**31,
        0,
        7,
    )
    assert parse_path("m") == ()


@pytest.mark.parametrize(
    "path", ["44'/60'", "m/", "m//0", "m/-1", "m/2147483648", "m/01", "m/1''", "m/x", "M/0"]
)
def test_malformed_paths_are_refused(path: str) -> None:
    with pytest.raises(EncodingError) as caught:
        parse_path(path)
    assert caught.value.field == "path"


def test_the_path_template_takes_the_index() -> None:
    seed = mnemonic_to_seed(ANVIL_TEST_MNEMONIC)
    ledger_live = key_from_mnemonic(ANVIL_TEST_MNEMONIC, 3, path="m/44'/60'/{index}'/0/0")
    assert ledger_live == key_from_seed(seed, "m/44'/60'/3'/0/0")
    fixed = key_from_mnemonic(ANVIL_TEST_MNEMONIC, path="m/44'/60'/0'/0/2")
    assert payment_address(fixed) == ANVIL_TEST_ADDRESSES[2]
    with_passphrase = key_from_mnemonic(ANVIL_TEST_MNEMONIC, passphrase="extra word")
    assert payment_address(with_passphrase) != ANVIL_TEST_ADDRESSES[0]


@pytest.mark.parametrize("index", [-1, 2**31, True, "0"])
def test_account_index_is_checked(index: object) -> None:
    with pytest.raises(EncodingError):
        key_from_mnemonic(ANVIL_TEST_MNEMONIC, index)  # type: ignore[arg-type]


def test_mnemonic_spacing_and_case_do_not_matter() -> None:
    messy = "  TEST test\ttest test  test test test test test test test\njunk "
    assert normalize_mnemonic(messy) == ANVIL_TEST_MNEMONIC
    assert key_from_mnemonic(messy) == key_from_mnemonic(ANVIL_TEST_MNEMONIC)


def test_english_word_list_is_the_official_one() -> None:
    # The BIP-39 English list is checked against its SHA-256 when loaded; the first and
    # last words pin its order.
    assert mnemonic_from_entropy(bytes(16)).split()[0] == "abandon"
    assert mnemonic_from_entropy(b"\xff" * 16).split()[0] == "zoo"


@pytest.mark.parametrize(
    ("mnemonic", "problem"),
    [
        (" ".join(["abandon"] * 12), "checksum"),
        ("test test test test test test test test test test junk test", "checksum"),
        ("test test test test test test test test test test test farthingx", "word 12 is not"),
        ("test test test test test test test test test test junk", "got 11"),
        ("", "got 0"),
    ],
)
def test_invalid_mnemonics_are_refused_without_echoing_them(mnemonic: str, problem: str) -> None:
    with pytest.raises(InvalidKey, match=problem) as caught:
        key_from_mnemonic(mnemonic)
    error = caught.value
    assert isinstance(error, WalletError)
    assert error.__context__ is None and error.__cause__ is None
    shown = "".join(traceback.format_exception(error)) + repr(error)
    for word in ("abandon", "junk", "farthingx"):
        assert word not in shown


@pytest.mark.parametrize("words", [12, 15, 18, 21, 24])
def test_generated_mnemonics_are_valid_and_fresh(words: int) -> None:
    first, second = generate_mnemonic(words), generate_mnemonic(words)
    assert len(first.split()) == words
    assert normalize_mnemonic(first) == first
    assert first != second


@pytest.mark.parametrize("words", [0, 11, 13, 25])
def test_other_mnemonic_lengths_are_refused(words: int) -> None:
    with pytest.raises(InvalidKey):
        generate_mnemonic(words)
    with pytest.raises(InvalidKey):
        mnemonic_from_entropy(bytes(words))


def test_seed_length_is_checked() -> None:
    with pytest.raises(InvalidKey):
        key_from_seed(bytes(15), "m")
    with pytest.raises(InvalidKey):
        key_from_seed(bytes(65), "m")


@hd_settings
@given(
    entropy=st.sampled_from([16, 20, 24, 28, 32]).flatmap(
        lambda size: st.binary(min_size=size, max_size=size)
    ),
    index=st.integers(min_value=0, max_value=2**31 - 1),
    passphrase=st.sampled_from(["", "TREZOR", "pässwörd"]),
)
def test_agrees_with_eth_account_hd_wallet(entropy: bytes, index: int, passphrase: str) -> None:
    mnemonic = mnemonic_from_entropy(entropy)
    assert mnemonic == Mnemonic().to_mnemonic(entropy)
    path = f"m/44'/60'/0'/0/{index}"
    expected = reference_key_from_seed(reference_seed_from_mnemonic(mnemonic, passphrase), path)
    assert key_from_mnemonic(mnemonic, index, passphrase=passphrase) == PrivateKey(expected)


# ---------------------------------------------------------------- the two addresses


def test_agent_address_format_by_hand() -> None:
    # The key whose secret is 1 has the generator G as its public key.
    generator = bytes.fromhex("0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798")
    key = PrivateKey((1).to_bytes(32, "big"))
    assert key.public_key == generator
    address = agent_address(key)
    assert address == bech32_encode("agent", generator)
    assert address.startswith("agent1")
    assert len(address) == AGENT_ADDRESS_LENGTH
    assert bech32_decode(address) == ("agent", generator)
    assert payment_address(key) == "0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf"


def test_a_real_uagents_address_parses() -> None:
    public_key = parse_agent_address(UAGENTS_ADDRESS)
    assert len(public_key) == 33
    coincurve.PublicKey(public_key)  # a point of secp256k1
    assert agent_address_from_public_key(public_key) == UAGENTS_ADDRESS
    assert parse_agent_address(UAGENTS_ADDRESS.upper()) == public_key


@settings(max_examples=50, deadline=None)
@given(key=secp256k1_keys)
def test_the_two_addresses_belong_to_one_key(key: PrivateKey) -> None:
    agent = agent_address(key)
    assert len(agent) == AGENT_ADDRESS_LENGTH
    assert parse_agent_address(agent) == key.public_key
    assert agent_payment_address(agent) == key.address
    assert parse_address(payment_address(key)) == key.address
    assert payment_address(key) == address_hex(key.address)


def _not_a_point() -> bytes:
    p = 2**256 - 2**32 - 977
    x = 1
    while pow(x**3 + 7, (p - 1) // 2, p) == 1:  # Euler's criterion: x³ + 7 is a square
        x += 1
    return b"\x02" + x.to_bytes(32, "big")


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (UAGENTS_ADDRESS[:-1], "65 characters, got 64"),
        (UAGENTS_ADDRESS[:-1] + ("q" if UAGENTS_ADDRESS[-1] != "q" else "p"), "checksum"),
        (bech32_encode("agenx", bytes.fromhex("02" + "79" * 32)), "prefix 'agent'"),
        (bech32_encode("agent", _not_a_point()), "not a point"),
        (bech32_encode("agent", b"\x04" + bytes(32)), "compressed"),
    ],
)
def test_bad_agent_addresses_are_refused(text: str, problem: str) -> None:
    with pytest.raises(EncodingError, match=problem) as caught:
        parse_agent_address(text, field="sender")
    assert caught.value.field == "sender"
    with pytest.raises(EncodingError):
        agent_payment_address(text)


def test_agent_address_from_public_key_checks_the_point() -> None:
    with pytest.raises(EncodingError, match="not a point"):
        agent_address_from_public_key(_not_a_point())
    with pytest.raises(EncodingError, match="compressed"):
        agent_address_from_public_key(bytes(65))


# ---------------------------------------------------------------- uAgents seeds


def test_agent_seed_derivation_follows_uagents() -> None:
    # uagents_core.crypto.derive_key_from_seed, written out by hand.
    seed = "alice recovery password"
    inner = hashlib.sha256(b"agent" + bytes([0])).digest()
    expected = hashlib.sha256(inner + hashlib.sha256(seed.encode()).digest()).digest()
    assert key_from_agent_seed(seed) == PrivateKey(expected)
    assert key_from_agent_seed(seed, 1) != key_from_agent_seed(seed, 0)
    with pytest.raises(EncodingError):
        key_from_agent_seed(seed, 256)


def test_agrees_with_uagents_core() -> None:
    for seed in ("alice recovery password", "bob recovery password"):
        key = key_from_agent_seed(seed)
        assert Identity.from_seed(seed, 0).address == agent_address(key)
        assert Identity.from_string(key.export_private_key_hex()[2:]).address == agent_address(key)


# ---------------------------------------------------------------- the key type


@settings(max_examples=30, deadline=None)
@given(key=secp256k1_keys)
def test_export_and_public_key(key: PrivateKey) -> None:
    exported = key.export_private_key_hex()
    assert exported.startswith("0x") and len(exported) == 66 and exported == exported.lower()
    assert PrivateKey.from_hex(exported) == key
    secret = bytes.fromhex(exported[2:])
    assert key.public_key == coincurve.PrivateKey(secret).public_key.format(compressed=True)
    shown = repr(key) + str(key) + agent_address(key) + payment_address(key)
    assert exported[2:] not in shown.lower()
