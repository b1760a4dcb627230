"""Key files: Web3 Secret Storage v3 (the JSON keystore of geth, MetaMask and eth-account).

A keystore holds one private key encrypted under a passphrase:

- the passphrase (its UTF-8 bytes, as geth and eth-account take them) is stretched with
  **scrypt** into 32 bytes ``dk`` (random 32-byte salt; by default geth's standard
  parameters n = 2^18, r = 8, p = 1, about 256 MiB and a second of work);
- the key is encrypted with **AES-128-CTR** under ``dk[:16]`` (random 16-byte IV);
- ``mac = keccak256(dk[16:32] ‖ ciphertext)`` tells a wrong passphrase from a right one.

Files written here open with geth and eth-account, and theirs open here (including
eth-account's PBKDF2 files). Reading refuses, each with its own error
(:mod:`wallet.errors`): a wrong passphrase (:class:`WrongPassphrase`), a file that is not a
keystore or asks for more work than :data:`MAX_KDF_MEMORY` / :data:`MAX_KDF_WORK`
(:class:`KeystoreCorrupt`), a file that group or others may read or write
(:class:`UnsafePermissions`).

Files are written atomically with mode 0600: a temporary file created with ``O_EXCL`` and
mode 0600 in the same directory, synced, then linked into place (refusing an existing file
unless ``overwrite=True``, then renamed over it). At no moment is there a partial or
world-readable key file. POSIX only (the modes mean nothing on Windows).

The passphrase comes from the caller, the :data:`PASSPHRASE_ENV` environment variable, or
an interactive prompt that does not echo (:func:`read_passphrase`). Neither the passphrase
nor the key is ever logged or put in an error.
"""

from __future__ import annotations

import getpass
import hashlib
import hmac
import json
import logging
import os
import secrets
import stat
import sys
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, TypedDict

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from wallet.codec import address_hex
from wallet.errors import (
    EncodingError,
    InvalidKey,
    InvalidPassphrase,
    KeystoreCorrupt,
    KeystoreExists,
    KeystoreNotFound,
    NoPassphrase,
    UnsafePermissions,
    WrongPassphrase,
)
from wallet.keccak import keccak256
from wallet.signing import PrivateKey

_log = logging.getLogger(__name__)

#: The environment variable :func:`read_passphrase` reads first.
PASSPHRASE_ENV = "FARTHING_PASSPHRASE"  # noqa: S105 (a variable name, not a password)
#: Reading refuses KDF parameters that need more memory than this (scrypt: 128 · r · n).
MAX_KDF_MEMORY = 1 << 30
#: ... or more work than this (scrypt: 128 · n · r · p bytes hashed; 16 times geth's).
MAX_KDF_WORK = 1 << 32
#: ... or more PBKDF2 iterations than this (eth-account writes 10^6).
MAX_PBKDF2_ITERATIONS = 10_000_000
#: ... or a file larger than this.
MAX_FILE_SIZE = 1 << 16

_DKLEN = 32


@dataclass(frozen=True, slots=True)
class ScryptParams:
    """scrypt's cost parameters: ``n`` (a power of two: memory and time), ``r`` (block
    size), ``p`` (parallelism). Memory is about 128 · r · n bytes. Out-of-range values
    raise :class:`EncodingError` (field ``scrypt.n``…)."""

    n: int = 1 << 18
    r: int = 8
    p: int = 1

    def __post_init__(self) -> None:
        for name in ("n", "r", "p"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise EncodingError(f"scrypt.{name}", "must be a positive integer")
        if self.n < 2 or self.n & (self.n - 1):
            raise EncodingError("scrypt.n", "must be a power of two, at least 2")
        if 128 * self.r * self.n > MAX_KDF_MEMORY or 128 * self.n * self.r * self.p > MAX_KDF_WORK:
            raise EncodingError("scrypt", "parameters beyond MAX_KDF_MEMORY or MAX_KDF_WORK")


#: geth's standard parameters (``StandardScryptN``, ``StandardScryptP``): the default.
STANDARD_SCRYPT = ScryptParams()
#: geth's light parameters (``LightScryptN``, ``LightScryptP``): 4 MiB, for small devices.
LIGHT_SCRYPT = ScryptParams(n=1 << 12, r=8, p=6)


class CipherParamsJSON(TypedDict):
    iv: str


class ScryptParamsJSON(TypedDict):
    dklen: int
    n: int
    r: int
    p: int
    salt: str


class CryptoJSON(TypedDict):
    cipher: Literal["aes-128-ctr"]
    cipherparams: CipherParamsJSON
    ciphertext: str
    kdf: Literal["scrypt"]
    kdfparams: ScryptParamsJSON
    mac: str


class KeystoreJSON(TypedDict):
    """A v3 keystore as this module writes it (``address``: 40 lower-case hex digits
    without ``0x``, as geth writes it)."""

    address: str
    crypto: CryptoJSON
    id: str
    version: Literal[3]


# ---------------------------------------------------------------- primitives


def _passphrase_bytes(passphrase: str | bytes) -> bytes:
    if isinstance(passphrase, str):
        return passphrase.encode("utf-8")
    if isinstance(passphrase, bytes):
        return bytes(passphrase)
    raise InvalidPassphrase(f"a passphrase is text, got {type(passphrase).__name__}")


def _scrypt(password: bytes, salt: bytes, n: int, r: int, p: int) -> bytes:
    maxmem = 128 * r * (n + p + 2) + (1 << 20)
    return hashlib.scrypt(password, salt=salt, n=n, r=r, p=p, maxmem=maxmem, dklen=_DKLEN)


def _aes_128_ctr(key: bytes, iv: bytes, data: bytes) -> bytes:
    """AES-128 in CTR mode with ``iv`` as the initial 128-bit big-endian counter (the same
    function encrypts and decrypts)."""
    encryptor = Cipher(algorithms.AES(key), modes.CTR(iv)).encryptor()
    return encryptor.update(data) + encryptor.finalize()


def _mac(derived: bytes, ciphertext: bytes) -> bytes:
    return keccak256(derived[16:32] + ciphertext)


# ---------------------------------------------------------------- encrypt / decrypt


def encrypt_key(
    key: PrivateKey, passphrase: str | bytes, *, scrypt: ScryptParams = STANDARD_SCRYPT
) -> KeystoreJSON:
    """``key`` as a v3 keystore document, encrypted under ``passphrase`` with scrypt
    (``scrypt``: :data:`STANDARD_SCRYPT` by default; tests use a light setting).

    Raises :class:`InvalidPassphrase` for an empty passphrase.
    """
    password = _passphrase_bytes(passphrase)
    if not password:
        raise InvalidPassphrase("an empty passphrase does not protect a key")
    if not isinstance(scrypt, ScryptParams):
        raise TypeError("scrypt must be a ScryptParams")
    salt, iv = secrets.token_bytes(32), secrets.token_bytes(16)
    derived = _scrypt(password, salt, scrypt.n, scrypt.r, scrypt.p)
    secret = bytes.fromhex(key.export_private_key_hex()[2:])
    ciphertext = _aes_128_ctr(derived[:16], iv, secret)
    return {
        "address": key.address.hex(),
        "crypto": {
            "cipher": "aes-128-ctr",
            "cipherparams": {"iv": iv.hex()},
            "ciphertext": ciphertext.hex(),
            "kdf": "scrypt",
            "kdfparams": {
                "dklen": _DKLEN,
                "n": scrypt.n,
                "r": scrypt.r,
                "p": scrypt.p,
                "salt": salt.hex(),
            },
            "mac": _mac(derived, ciphertext).hex(),
        },
        "id": str(uuid.uuid4()),
        "version": 3,
    }


class _Reader:
    """Typed access to an untrusted JSON document; every problem is a KeystoreCorrupt
    naming the source and the field."""

    def __init__(self, source: str) -> None:
        self.source = source

    def corrupt(self, field: str, problem: str) -> KeystoreCorrupt:
        return KeystoreCorrupt(f"{self.source}: {field}: {problem}")

    def mapping(self, parent: Mapping[str, object], name: str, field: str) -> Mapping[str, object]:
        value = parent.get(name)
        if not isinstance(value, Mapping):
            raise self.corrupt(field, "missing or not an object")
        return value

    def text(self, parent: Mapping[str, object], name: str, field: str) -> str:
        value = parent.get(name)
        if not isinstance(value, str):
            raise self.corrupt(field, "missing or not a string")
        return value

    def integer(
        self, parent: Mapping[str, object], name: str, field: str, low: int, high: int
    ) -> int:
        value = parent.get(name)
        if not isinstance(value, int) or isinstance(value, bool):
            raise self.corrupt(field, "missing or not an integer")
        if not low <= value <= high:
            raise self.corrupt(field, f"must be from {low} to {high}")
        return value

    def hex_bytes(
        self, parent: Mapping[str, object], name: str, field: str, size: int | None = None
    ) -> bytes:
        text = self.text(parent, name, field)
        body = text[2:] if text[:2] == "0x" else text
        try:
            value = bytes.fromhex(body)
        except ValueError:
            raise self.corrupt(field, "not hex") from None
        if any(c.isspace() for c in body) or (size is not None and len(value) != size):
            raise self.corrupt(field, f"expected {size} bytes in hex")
        return value


def _derive(reader: _Reader, crypto: Mapping[str, object], password: bytes) -> bytes:
    kdf = reader.text(crypto, "kdf", "crypto.kdf")
    params = reader.mapping(crypto, "kdfparams", "crypto.kdfparams")
    if reader.integer(params, "dklen", "crypto.kdfparams.dklen", 0, 1 << 10) != _DKLEN:
        raise reader.corrupt("crypto.kdfparams.dklen", f"must be {_DKLEN}")
    salt = reader.hex_bytes(params, "salt", "crypto.kdfparams.salt")
    if kdf == "scrypt":
        n = reader.integer(params, "n", "crypto.kdfparams.n", 2, MAX_KDF_MEMORY)
        r = reader.integer(params, "r", "crypto.kdfparams.r", 1, MAX_KDF_MEMORY)
        p = reader.integer(params, "p", "crypto.kdfparams.p", 1, MAX_KDF_WORK)
        if n & (n - 1):
            raise reader.corrupt("crypto.kdfparams.n", "must be a power of two")
        if 128 * r * n > MAX_KDF_MEMORY or 128 * n * r * p > MAX_KDF_WORK:
            raise reader.corrupt(
                "crypto.kdfparams", "scrypt parameters beyond this wallet's limits"
            )
        return _scrypt(password, salt, n, r, p)
    if kdf == "pbkdf2":
        if reader.text(params, "prf", "crypto.kdfparams.prf") != "hmac-sha256":
            raise reader.corrupt("crypto.kdfparams.prf", "only hmac-sha256 is supported")
        rounds = reader.integer(params, "c", "crypto.kdfparams.c", 1, MAX_PBKDF2_ITERATIONS)
        return hashlib.pbkdf2_hmac("sha256", password, salt, rounds, _DKLEN)
    raise reader.corrupt("crypto.kdf", "only scrypt and pbkdf2 are supported")


def decrypt_keystore(
    document: Mapping[str, object] | str | bytes,
    passphrase: str | bytes,
    *,
    source: str = "keystore",
) -> PrivateKey:
    """The key in a v3 keystore ``document`` (parsed JSON, or its text).

    ``source`` names the document in errors (a path). Raises :class:`WrongPassphrase`
    when the MAC does not match, :class:`KeystoreCorrupt` for anything structurally wrong
    (checked before the expensive KDF runs) or a decrypted key that is not the file's.
    """
    reader = _Reader(source)
    password = _passphrase_bytes(passphrase)
    if isinstance(document, str | bytes):
        try:
            document = json.loads(document)
        except (ValueError, UnicodeDecodeError):
            raise reader.corrupt("document", "not JSON") from None
    if not isinstance(document, Mapping):
        raise reader.corrupt("document", "not a JSON object")
    version = document.get("version")
    if version != 3 or isinstance(version, bool):
        raise reader.corrupt("version", "only version 3 keystores are supported")
    crypto_name = "crypto" if "crypto" in document else "Crypto"  # very old geth files
    crypto = reader.mapping(document, crypto_name, "crypto")
    if reader.text(crypto, "cipher", "crypto.cipher") != "aes-128-ctr":
        raise reader.corrupt("crypto.cipher", "only aes-128-ctr is supported")
    cipherparams = reader.mapping(crypto, "cipherparams", "crypto.cipherparams")
    iv = reader.hex_bytes(cipherparams, "iv", "crypto.cipherparams.iv", 16)
    ciphertext = reader.hex_bytes(crypto, "ciphertext", "crypto.ciphertext", 32)
    mac = reader.hex_bytes(crypto, "mac", "crypto.mac", 32)
    expected = None
    if document.get("address") is not None:
        expected = reader.hex_bytes(document, "address", "address", 20)

    derived = _derive(reader, crypto, password)
    if not hmac.compare_digest(_mac(derived, ciphertext), mac):
        raise WrongPassphrase(f"{source}: wrong passphrase (the file's MAC does not match)")
    try:
        key = PrivateKey(_aes_128_ctr(derived[:16], iv, ciphertext))
    except InvalidKey:
        key = None
    if key is None:
        raise reader.corrupt("crypto.ciphertext", "decrypts to a value that is not a key")
    if expected is not None and expected != key.address:
        raise reader.corrupt("address", f"the key in the file is {address_hex(key.address)}")
    return key


# ---------------------------------------------------------------- files


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def save_keystore(
    path: str | os.PathLike[str],
    key: PrivateKey,
    passphrase: str | bytes,
    *,
    scrypt: ScryptParams = STANDARD_SCRYPT,
    overwrite: bool = False,
) -> Path:
    """Encrypts ``key`` under ``passphrase`` (see :func:`encrypt_key`) into the file
    ``path``, atomically, with mode 0600; returns the path.

    Raises :class:`KeystoreExists` if ``path`` exists and ``overwrite`` is false,
    :class:`KeystoreNotFound` if its directory does not exist.
    """
    target = Path(path)
    directory = target.parent
    if not directory.is_dir():
        raise KeystoreNotFound(f"{directory}: no such directory")
    if target.exists() and not overwrite:  # checked again, atomically, by os.link
        raise KeystoreExists(f"{target}: already exists (pass overwrite=True to replace it)")
    data = json.dumps(encrypt_key(key, passphrase, scrypt=scrypt), indent=2).encode() + b"\n"

    temporary = directory / f".{target.name}.{secrets.token_hex(8)}.tmp"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(temporary, flags | getattr(os, "O_CLOEXEC", 0), 0o600)
    try:
        try:
            os.fchmod(fd, 0o600)  # whatever the umask did
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        if overwrite:
            os.replace(temporary, target)
        else:
            try:
                os.link(temporary, target)
            except FileExistsError:
                raise KeystoreExists(
                    f"{target}: already exists (pass overwrite=True to replace it)"
                ) from None
    finally:
        temporary.unlink(missing_ok=True)
    _fsync_directory(directory)
    _log.info("wrote keystore %s for %s", target, address_hex(key.address))
    return target


def load_keystore(path: str | os.PathLike[str], passphrase: str | bytes) -> PrivateKey:
    """The key in the keystore file ``path``, decrypted with ``passphrase``.

    Refuses, before reading it, a file that group or others may read or write
    (:class:`UnsafePermissions`: fix it with ``chmod 600``), and raises
    :class:`KeystoreNotFound`, :class:`WrongPassphrase` or :class:`KeystoreCorrupt`.
    """
    target = Path(path)
    try:
        fd = os.open(target, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise KeystoreNotFound(f"{target}: no such keystore file") from None
    try:
        info = os.fstat(fd)  # of the file opened, not of whatever the path names now
        if not stat.S_ISREG(info.st_mode):
            raise KeystoreCorrupt(f"{target}: not a regular file")
        if info.st_mode & 0o077:
            raise UnsafePermissions(str(target), stat.S_IMODE(info.st_mode))
        chunks: list[bytes] = []
        size = 0
        while size <= MAX_FILE_SIZE and (chunk := os.read(fd, 1 << 14)):
            chunks.append(chunk)
            size += len(chunk)
    finally:
        os.close(fd)
    if size > MAX_FILE_SIZE:
        raise KeystoreCorrupt(f"{target}: larger than {MAX_FILE_SIZE} bytes")
    data = b"".join(chunks)
    key = decrypt_keystore(data, passphrase, source=str(target))
    _log.debug("opened keystore %s for %s", target, address_hex(key.address))
    return key


# ---------------------------------------------------------------- passphrases


def read_passphrase(
    *,
    env: str = PASSPHRASE_ENV,
    prompt: str = "Passphrase: ",
    confirm: bool = False,
    environ: Mapping[str, str] | None = None,
) -> str:
    """The passphrase from the environment variable ``env`` if it is set and not empty,
    else typed at the terminal without echo (twice with ``confirm``, for a new keystore).

    Raises :class:`NoPassphrase` when the variable is unset and standard input is not a
    terminal (getpass would fall back to reading it with echo), :class:`InvalidPassphrase`
    when the two typed passphrases differ.
    """
    value = (os.environ if environ is None else environ).get(env)
    if value:
        return value
    if not sys.stdin.isatty():
        raise NoPassphrase(f"no passphrase: set {env}, or run in a terminal to be asked")
    first = getpass.getpass(prompt)
    if confirm and getpass.getpass("Repeat the passphrase: ") != first:
        raise InvalidPassphrase("the two passphrases differ")
    return first
