"""Keys: where they come from (a CSPRNG, hex, a BIP-39 mnemonic, a uAgents seed) and the
two addresses of one key.

The key type is :class:`wallet.signing.PrivateKey` (it never shows itself in ``repr``,
``str`` or errors). Create one with :meth:`PrivateKey.generate` (``secrets``), read one
with :meth:`PrivateKey.from_hex`, :func:`key_from_mnemonic` or :func:`key_from_agent_seed`;
write it out only with the deliberately named :meth:`PrivateKey.export_private_key_hex`, or
better, encrypted with :mod:`wallet.keystore`.

One secp256k1 key has two addresses:

- :func:`payment_address`: the Ethereum address (``0x`` + 40 hex digits, EIP-55), the
  account that pays and is paid on the ledger and on chain;
- :func:`agent_address`: the uAgents address (``agent1`` + bech32 of the 33-byte
  compressed public key, always 65 characters), the identity that signs messages.

:func:`agent_payment_address` goes from the second to the first, so that an agent's
payment address can be checked against the identity that signs its messages.

Mnemonics (BIP-39, English word list) and HD derivation (BIP-32, secp256k1) are written
here with ``hmac``/``hashlib`` and coincurve and checked against the BIP-39 and BIP-32 test
vectors and against eth-account. The default path is ``m/44'/60'/0'/0/{index}``, MetaMask's
and anvil's. Nothing here echoes a mnemonic, a seed or a key in an error.
"""

from __future__ import annotations

import hashlib
import hmac
import importlib.resources
import secrets
import unicodedata
from functools import cache

import coincurve

from wallet.bech32 import bech32_decode, bech32_encode
from wallet.codec import SECP256K1_N, address_hex
from wallet.errors import EncodingError, InvalidKey
from wallet.keccak import keccak256
from wallet.signing import PrivateKey
from wallet.types import Address

#: The BIP-44 path of Ethereum accounts used by MetaMask, anvil and eth-account;
#: ``{index}`` is replaced by the account index.
ETHEREUM_PATH = "m/44'/60'/0'/0/{index}"
#: The human-readable part of a uAgents address.
AGENT_PREFIX = "agent"
#: Every ``agent1...`` address has this many characters (33 bytes of public key).
AGENT_ADDRESS_LENGTH = 65
#: Number of words of a BIP-39 mnemonic, and the entropy behind each.
MNEMONIC_LENGTHS = {12: 16, 15: 20, 18: 24, 21: 28, 24: 32}

_HARDENED = 0x8000_0000
_WORDLIST_SHA256 = "187db04a869dd9bc7be80d21a86497d692c0db6abd3aa8cb6be5d618ff757fae"


# ---------------------------------------------------------------- addresses


def payment_address(key: PrivateKey) -> str:
    """The key's Ethereum address as text: ``0x`` + 40 hex digits, EIP-55 checksummed."""
    return address_hex(key.address)


def agent_address(key: PrivateKey) -> str:
    """The key's uAgents address: ``agent1`` + bech32 of its compressed public key."""
    return bech32_encode(AGENT_PREFIX, key.public_key)


def _public_key(compressed: bytes, field: str) -> coincurve.PublicKey:
    if len(compressed) != 33 or compressed[0] not in (2, 3):
        raise EncodingError(field, "expected a 33-byte compressed secp256k1 public key")
    try:
        return coincurve.PublicKey(compressed)
    except ValueError:
        raise EncodingError(field, "not a point of secp256k1") from None


def agent_address_from_public_key(public_key: bytes, *, field: str = "public_key") -> str:
    """The uAgents address of a 33-byte compressed public key (checked to be on the curve)."""
    if not isinstance(public_key, bytes):
        raise EncodingError(field, f"expected bytes, got {type(public_key).__name__}")
    _public_key(public_key, field)
    return bech32_encode(AGENT_PREFIX, bytes(public_key))


def parse_agent_address(text: str, *, field: str = "agent_address") -> bytes:
    """The 33-byte compressed public key an ``agent1...`` address encodes.

    Accepts exactly what uAgents writes (65 characters; upper case too, as bech32 allows)
    and refuses anything else with :class:`EncodingError` naming ``field``: another length
    or prefix, a bad checksum, or bytes that are not a point of secp256k1.
    """
    if not isinstance(text, str) or len(text) != AGENT_ADDRESS_LENGTH:
        got = f"{len(text)} characters" if isinstance(text, str) else type(text).__name__
        raise EncodingError(
            field, f"an agent address is {AGENT_ADDRESS_LENGTH} characters, got {got}"
        )
    _, public_key = bech32_decode(text, hrp=AGENT_PREFIX, field=field)
    _public_key(public_key, field)
    return public_key


def agent_payment_address(agent: str, *, field: str = "agent_address") -> Address:
    """The Ethereum address of the key behind an ``agent1...`` address (see
    :func:`parse_agent_address` for what is refused)."""
    point = _public_key(parse_agent_address(agent, field=field), field)
    return Address(keccak256(point.format(compressed=False)[1:])[12:])


# ---------------------------------------------------------------- BIP-39 mnemonics


@cache
def _wordlist() -> tuple[tuple[str, ...], dict[str, int]]:
    """BIP-39's English word list (shipped in eth-account), checked against the SHA-256 of
    the official list."""
    resource = importlib.resources.files("eth_account.hdaccount") / "wordlist" / "english.txt"
    words = tuple(resource.read_text(encoding="utf-8").split())
    digest = hashlib.sha256("\n".join(words).encode()).hexdigest()
    if len(words) != 2048 or digest != _WORDLIST_SHA256:
        raise RuntimeError("eth-account's BIP-39 English word list is not the official one")
    return words, {word: index for index, word in enumerate(words)}


def mnemonic_from_entropy(entropy: bytes) -> str:
    """The BIP-39 English mnemonic of ``entropy`` (16, 20, 24, 28 or 32 bytes).

    The result is as secret as the entropy. Raises :class:`InvalidKey` for another length.
    """
    if not isinstance(entropy, bytes) or len(entropy) not in MNEMONIC_LENGTHS.values():
        raise InvalidKey("mnemonic entropy is 16, 20, 24, 28 or 32 bytes")
    words, _ = _wordlist()
    checksum_bits = len(entropy) // 4
    value = int.from_bytes(entropy, "big") << checksum_bits
    value |= hashlib.sha256(entropy).digest()[0] >> (8 - checksum_bits)
    count = (len(entropy) * 8 + checksum_bits) // 11
    return " ".join(words[(value >> (11 * (count - 1 - i))) & 0x7FF] for i in range(count))


def generate_mnemonic(words: int = 12) -> str:
    """A new random BIP-39 English mnemonic of ``words`` words (12, 15, 18, 21 or 24),
    from the operating system's CSPRNG. The result is a SECRET: show it to the user once,
    never log it."""
    if words not in MNEMONIC_LENGTHS:
        raise InvalidKey("a mnemonic has 12, 15, 18, 21 or 24 words")
    return mnemonic_from_entropy(secrets.token_bytes(MNEMONIC_LENGTHS[words]))


def normalize_mnemonic(mnemonic: str) -> str:
    """The canonical form of a mnemonic (NFKD, lower case, single spaces), after checking
    its words and checksum. Raises :class:`InvalidKey` naming a word by its position only.
    """
    if not isinstance(mnemonic, str):
        raise InvalidKey(f"a mnemonic is text, got {type(mnemonic).__name__}")
    given = unicodedata.normalize("NFKD", mnemonic).lower().split()
    if len(given) not in MNEMONIC_LENGTHS:
        raise InvalidKey(f"a mnemonic has 12, 15, 18, 21 or 24 words, got {len(given)}")
    _, index = _wordlist()
    value = 0
    for position, word in enumerate(given, start=1):
        number = index.get(word)
        if number is None:
            raise InvalidKey(f"mnemonic word {position} is not in the BIP-39 English list")
        value = value << 11 | number
    checksum_bits = len(given) // 3
    entropy = (value >> checksum_bits).to_bytes(MNEMONIC_LENGTHS[len(given)], "big")
    expected = hashlib.sha256(entropy).digest()[0] >> (8 - checksum_bits)
    if value & ((1 << checksum_bits) - 1) != expected:
        raise InvalidKey("the mnemonic's checksum does not match: a word is wrong or misplaced")
    return " ".join(given)


def mnemonic_to_seed(mnemonic: str, passphrase: str = "") -> bytes:
    """The 64-byte BIP-39 seed: PBKDF2-HMAC-SHA512 of the (checked, normalized) mnemonic,
    salt ``"mnemonic" + passphrase`` (NFKD), 2048 iterations.

    ``passphrase`` is BIP-39's optional extra word (MetaMask uses none): another
    passphrase gives another, equally valid, wallet.
    """
    if not isinstance(passphrase, str):
        raise InvalidKey("a mnemonic passphrase is text")
    sentence = normalize_mnemonic(mnemonic).encode()
    salt = ("mnemonic" + unicodedata.normalize("NFKD", passphrase)).encode()
    return hashlib.pbkdf2_hmac("sha512", sentence, salt, 2048)


# ---------------------------------------------------------------- BIP-32 derivation


def parse_path(path: str) -> tuple[int, ...]:
    """The child indices of a BIP-32 path such as ``m/44'/60'/0'/0/0`` (``'``, ``h`` or
    ``H`` marks a hardened index). Raises :class:`EncodingError` for anything else."""
    if not isinstance(path, str):
        raise EncodingError("path", f"expected text, got {type(path).__name__}")
    parts = path.split("/")
    if parts[0] != "m":
        raise EncodingError("path", "a derivation path starts with 'm'")
    indices = []
    for depth, part in enumerate(parts[1:], start=1):
        hardened = part[-1:] in ("'", "h", "H")
        digits = part[:-1] if hardened else part
        if not digits.isascii() or not digits.isdigit() or (len(digits) > 1 and digits[0] == "0"):
            raise EncodingError("path", f"level {depth} is not a decimal index")
        number = int(digits)
        if number >= _HARDENED:
            raise EncodingError("path", f"level {depth} is 2^31 or more")
        indices.append(number + _HARDENED if hardened else number)
    return tuple(indices)


def key_from_seed(seed: bytes, path: str) -> PrivateKey:
    """The BIP-32 key at ``path`` below the master key of ``seed`` (16 to 64 bytes).

    Raises :class:`InvalidKey` for a seed of another length or, with probability below
    2^-127, a path that leads to an invalid key (BIP-32 says to skip that index: choose
    another).
    """
    if not isinstance(seed, bytes) or not 16 <= len(seed) <= 64:
        raise InvalidKey("a BIP-32 seed is 16 to 64 bytes")
    indices = parse_path(path)
    derived = hmac.digest(b"Bitcoin seed", seed, "sha512")
    secret, chain_code = int.from_bytes(derived[:32], "big"), derived[32:]
    if not 0 < secret < SECP256K1_N:
        raise InvalidKey("this seed gives no valid master key")
    for index in indices:
        secret_bytes = secret.to_bytes(32, "big")
        if index >= _HARDENED:
            data = b"\x00" + secret_bytes
        else:
            data = coincurve.PublicKey.from_secret(secret_bytes).format(compressed=True)
        derived = hmac.digest(chain_code, data + index.to_bytes(4, "big"), "sha512")
        tweak, chain_code = int.from_bytes(derived[:32], "big"), derived[32:]
        secret = (tweak + secret) % SECP256K1_N
        if tweak >= SECP256K1_N or secret == 0:
            raise InvalidKey("this derivation path leads to an invalid key: use another index")
    return PrivateKey(secret.to_bytes(32, "big"))


def key_from_mnemonic(
    mnemonic: str, index: int = 0, *, passphrase: str = "", path: str = ETHEREUM_PATH
) -> PrivateKey:
    """The key of account ``index`` of a BIP-39 mnemonic, at ``path`` (``{index}`` in it is
    replaced by ``index``; the default is MetaMask's ``m/44'/60'/0'/0/{index}``).

    Raises :class:`InvalidKey` for a mnemonic with a wrong word or checksum (never echoing
    it), :class:`EncodingError` for a malformed path.
    """
    if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < _HARDENED:
        raise EncodingError("index", "an account index is an integer from 0 to 2^31 - 1")
    if not isinstance(path, str):
        raise EncodingError("path", f"expected text, got {type(path).__name__}")
    return key_from_seed(
        mnemonic_to_seed(mnemonic, passphrase), path.replace("{index}", str(index))
    )


# ---------------------------------------------------------------- uAgents seeds


def key_from_agent_seed(seed: str, index: int = 0) -> PrivateKey:
    """The key uAgents derives from a seed phrase (``Agent(seed=...)``,
    ``Identity.from_seed(seed, index)``): ``sha256(sha256("agent" ‖ byte(index)) ‖
    sha256(seed))``. Use it to keep an existing uAgents identity; prefer a mnemonic or a
    keystore for new keys (a seed phrase has no checksum and no key stretching).
    """
    if not isinstance(seed, str):
        raise InvalidKey(f"a uAgents seed is text, got {type(seed).__name__}")
    if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < 256:
        raise EncodingError("index", "a uAgents key index is an integer from 0 to 255")
    prefix = hashlib.sha256(AGENT_PREFIX.encode() + bytes([index])).digest()
    return PrivateKey(hashlib.sha256(prefix + hashlib.sha256(seed.encode()).digest()).digest())
