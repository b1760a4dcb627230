"""Keystores (Web3 Secret Storage v3): round trips, interoperability with eth-account both
ways, wrong passphrase and corrupt files told apart, files written 0600 atomically and
refused when others can read them, passphrases from the environment or a prompt, and no
key or passphrase in any error, repr or log line.

scrypt runs with n = 2^10 here (:data:`LIGHT`): the standard n = 2^18 costs a second and
256 MiB per call."""

from __future__ import annotations

import copy
import io
import json
import logging
import os
import stat
import sys
import traceback
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from hypothesis import given, settings
from hypothesis import strategies as st

from wallet.errors import (
    InvalidPassphrase,
    KeystoreCorrupt,
    KeystoreError,
    KeystoreExists,
    KeystoreNotFound,
    NoPassphrase,
    UnsafePermissions,
    WalletError,
    WrongPassphrase,
)
from wallet.keystore import (
    LIGHT_SCRYPT,
    PASSPHRASE_ENV,
    STANDARD_SCRYPT,
    ScryptParams,
    _aes_128_ctr,
    _mac,
    _scrypt,
    decrypt_keystore,
    encrypt_key,
    load_keystore,
    read_passphrase,
    save_keystore,
)
from wallet.signing import PrivateKey

# anvil's account 0: a PUBLIC TEST KEY (its mnemonic is printed by every anvil), never
# for value. Used because a test key must be known to check the decrypted bytes.
ANVIL_PUBLIC_TEST_KEY_0 = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
KEY = PrivateKey.from_hex(ANVIL_PUBLIC_TEST_KEY_0)
SECRET_HEX = ANVIL_PUBLIC_TEST_KEY_0[2:]
PASSPHRASE = "correct horse battery staple"
LIGHT = ScryptParams(n=2**10, r=8, p=1)


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return dict(encrypt_key(KEY, PASSPHRASE, scrypt=LIGHT))


def mutated(document: dict[str, Any], path: str, value: object) -> dict[str, Any]:
    """A deep copy of ``document`` with the dotted ``path`` set to ``value`` (or removed
    when ``value`` is ``...``)."""
    copied = copy.deepcopy(document)
    *parents, last = path.split(".")
    node = copied
    for name in parents:
        node = node[name]
    if value is ...:
        del node[last]
    else:
        node[last] = value
    return copied


def assert_no_secret(text: str) -> None:
    assert SECRET_HEX not in text.lower()
    assert PASSPHRASE not in text


# ---------------------------------------------------------------- documents


def test_round_trip_and_shape(document: dict[str, Any]) -> None:
    assert decrypt_keystore(document, PASSPHRASE) == KEY
    assert document["version"] == 3
    assert document["address"] == KEY.address.hex()
    crypto = document["crypto"]
    assert crypto["cipher"] == "aes-128-ctr"
    assert crypto["kdf"] == "scrypt"
    assert {k: crypto["kdfparams"][k] for k in ("dklen", "n", "r", "p")} == {
        "dklen": 32,
        "n": 1024,
        "r": 8,
        "p": 1,
    }
    assert len(bytes.fromhex(crypto["kdfparams"]["salt"])) == 32
    assert len(bytes.fromhex(crypto["cipherparams"]["iv"])) == 16
    assert_no_secret(json.dumps(document))


def test_each_encryption_is_fresh() -> None:
    first, second = (
        encrypt_key(KEY, PASSPHRASE, scrypt=LIGHT),
        encrypt_key(KEY, PASSPHRASE, scrypt=LIGHT),
    )
    assert first["crypto"]["ciphertext"] != second["crypto"]["ciphertext"]
    assert first["crypto"]["kdfparams"]["salt"] != second["crypto"]["kdfparams"]["salt"]
    assert first["id"] != second["id"]


def test_default_parameters_are_geths_standard() -> None:
    assert (STANDARD_SCRYPT.n, STANDARD_SCRYPT.r, STANDARD_SCRYPT.p) == (2**18, 8, 1)
    assert (LIGHT_SCRYPT.n, LIGHT_SCRYPT.r, LIGHT_SCRYPT.p) == (2**12, 8, 6)


@pytest.mark.parametrize(
    "params", [{"n": 1000}, {"n": 1}, {"r": 0}, {"p": 0}, {"n": True}, {"n": 2**30}]
)
def test_scrypt_parameters_are_checked(params: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="scrypt"):
        ScryptParams(**params)


def test_text_and_bytes_documents_and_passphrases(document: dict[str, Any]) -> None:
    text = json.dumps(document)
    assert decrypt_keystore(text, PASSPHRASE) == KEY
    assert decrypt_keystore(text.encode(), PASSPHRASE.encode()) == KEY


def test_empty_passphrase_is_refused_for_a_new_keystore() -> None:
    with pytest.raises(InvalidPassphrase, match="empty"):
        encrypt_key(KEY, "", scrypt=LIGHT)
    with pytest.raises(InvalidPassphrase):
        encrypt_key(KEY, 1234, scrypt=LIGHT)  # type: ignore[arg-type]


# ---------------------------------------------------------------- eth-account interop


def test_eth_account_decrypts_ours(document: dict[str, Any]) -> None:
    assert Account.decrypt(document, PASSPHRASE).hex() == SECRET_HEX


@pytest.mark.parametrize("passphrase", [PASSPHRASE, "pässwörd 🔑", "a"])
def test_we_decrypt_eth_accounts_scrypt_files(passphrase: str) -> None:
    theirs = Account.encrypt(ANVIL_PUBLIC_TEST_KEY_0, passphrase, kdf="scrypt", iterations=2**10)
    assert theirs["crypto"]["kdf"] == "scrypt"
    assert decrypt_keystore(theirs, passphrase) == KEY
    ours = encrypt_key(KEY, passphrase, scrypt=LIGHT)
    assert Account.decrypt(ours, passphrase).hex() == SECRET_HEX


def test_we_decrypt_eth_accounts_pbkdf2_files() -> None:
    theirs = Account.encrypt(ANVIL_PUBLIC_TEST_KEY_0, PASSPHRASE, kdf="pbkdf2", iterations=1000)
    assert decrypt_keystore(theirs, PASSPHRASE) == KEY
    with pytest.raises(WrongPassphrase):
        decrypt_keystore(theirs, "wrong")


def test_geths_capitalised_crypto_key_is_read(document: dict[str, Any]) -> None:
    old = mutated(document, "crypto", ...)
    old["Crypto"] = document["crypto"]
    assert decrypt_keystore(old, PASSPHRASE) == KEY


@settings(max_examples=15, deadline=None)
@given(passphrase=st.text(min_size=1, max_size=40), secret=st.binary(min_size=32, max_size=32))
def test_round_trip_with_eth_account_on_random_passphrases(passphrase: str, secret: bytes) -> None:
    try:
        key = PrivateKey(secret)
    except WalletError:
        return
    ours = encrypt_key(key, passphrase, scrypt=LIGHT)
    assert decrypt_keystore(ours, passphrase) == key
    assert bytes(Account.decrypt(ours, passphrase)) == secret


# ---------------------------------------------------------------- wrong passphrase, corrupt files


def test_wrong_passphrase(document: dict[str, Any]) -> None:
    with pytest.raises(WrongPassphrase, match="wrong passphrase") as caught:
        decrypt_keystore(document, PASSPHRASE + " ", source="alice.json")
    error = caught.value
    assert isinstance(error, KeystoreError) and isinstance(error, ValueError)
    assert not error.retryable
    assert str(error).startswith("alice.json: ")
    assert_no_secret("".join(traceback.format_exception(error)))


@pytest.mark.parametrize(
    ("path", "value", "problem"),
    [
        ("version", 4, "version 3"),
        ("version", ..., "version 3"),
        ("version", True, "version 3"),
        ("crypto", ..., "crypto: missing"),
        ("crypto", [], "crypto: missing or not an object"),
        ("crypto.cipher", "aes-128-cbc", "aes-128-ctr"),
        ("crypto.cipherparams.iv", "00" * 15, "16 bytes"),
        ("crypto.cipherparams.iv", "zz" * 16, "not hex"),
        ("crypto.ciphertext", "00" * 33, "32 bytes"),
        ("crypto.ciphertext", 12, "not a string"),
        ("crypto.mac", "00" * 31, "32 bytes"),
        ("crypto.kdf", "argon2", "scrypt and pbkdf2"),
        ("crypto.kdfparams.n", 1000, "power of two"),
        ("crypto.kdfparams.n", 2**31, "must be from"),
        ("crypto.kdfparams.n", 2**22, "limits"),
        ("crypto.kdfparams.p", 2**20, "limits"),
        ("crypto.kdfparams.r", "8", "not an integer"),
        ("crypto.kdfparams.dklen", 16, "must be 32"),
        ("crypto.kdfparams.salt", ..., "salt: missing"),
        ("address", "00" * 19, "20 bytes"),
    ],
)
def test_corrupt_documents(
    document: dict[str, Any], path: str, value: object, problem: str
) -> None:
    with pytest.raises(KeystoreCorrupt, match=problem) as caught:
        decrypt_keystore(mutated(document, path, value), PASSPHRASE)
    assert isinstance(caught.value, ValueError) and not caught.value.retryable
    assert_no_secret(str(caught.value))


@pytest.mark.parametrize("text", ["", "not json", "[1, 2]", "null", b"\xff\xfe"])
def test_documents_that_are_not_json_objects(text: str | bytes) -> None:
    with pytest.raises(KeystoreCorrupt, match="document"):
        decrypt_keystore(text, PASSPHRASE)


def test_an_address_that_is_not_the_keys(document: dict[str, Any]) -> None:
    other = mutated(document, "address", "11" * 20)  # the address is not under the MAC
    with pytest.raises(KeystoreCorrupt, match="the key in the file is 0xf39F"):
        decrypt_keystore(other, PASSPHRASE)
    assert decrypt_keystore(mutated(document, "address", ...), PASSPHRASE) == KEY
    assert decrypt_keystore(mutated(document, "address", "0x" + document["address"]), PASSPHRASE)


def test_altered_ciphertext_or_mac_reads_as_a_wrong_passphrase(document: dict[str, Any]) -> None:
    ciphertext = bytearray.fromhex(document["crypto"]["ciphertext"])
    ciphertext[0] ^= 1
    with pytest.raises(WrongPassphrase):
        decrypt_keystore(mutated(document, "crypto.ciphertext", ciphertext.hex()), PASSPHRASE)
    with pytest.raises(WrongPassphrase):
        decrypt_keystore(mutated(document, "crypto.mac", "00" * 32), PASSPHRASE)


def test_a_file_that_decrypts_to_no_key(document: dict[str, Any]) -> None:
    # Encrypt the invalid scalar 0 by hand, with a correct MAC.
    salt, iv = bytes(32), bytes(16)
    derived = _scrypt(PASSPHRASE.encode(), salt, 1024, 8, 1)
    ciphertext = _aes_128_ctr(derived[:16], iv, bytes(32))
    zero = mutated(document, "address", ...)
    zero["crypto"] = {
        **document["crypto"],
        "ciphertext": ciphertext.hex(),
        "cipherparams": {"iv": iv.hex()},
        "kdfparams": {**document["crypto"]["kdfparams"], "salt": salt.hex()},
        "mac": _mac(derived, ciphertext).hex(),
    }
    with pytest.raises(KeystoreCorrupt, match="not a key") as caught:
        decrypt_keystore(zero, PASSPHRASE)
    assert caught.value.__context__ is None


# ---------------------------------------------------------------- files


def test_save_then_load(tmp_path: Path) -> None:
    path = save_keystore(tmp_path / "agent.json", KEY, PASSPHRASE, scrypt=LIGHT)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_keystore(path, PASSPHRASE) == KEY
    assert Account.decrypt(path.read_text(), PASSPHRASE).hex() == SECRET_HEX
    assert sorted(p.name for p in tmp_path.iterdir()) == ["agent.json"]


def test_mode_is_0600_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        path = save_keystore(tmp_path / "agent.json", KEY, PASSPHRASE, scrypt=LIGHT)
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


@pytest.mark.parametrize("overwrite", [False, True])
def test_the_file_is_never_partial_or_readable_by_others(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, overwrite: bool
) -> None:
    """At the moment the file gets its name it is complete and 0600 (watched by wrapping
    the link or rename that publishes it)."""
    target = tmp_path / "agent.json"
    if overwrite:
        save_keystore(target, PrivateKey.generate(), PASSPHRASE, scrypt=LIGHT)
    seen: list[tuple[int, bytes]] = []
    name = "replace" if overwrite else "link"
    original = getattr(os, name)

    def publish(source: str | os.PathLike[str], destination: str | os.PathLike[str]) -> None:
        seen.append((stat.S_IMODE(os.stat(source).st_mode), Path(source).read_bytes()))
        original(source, destination)

    monkeypatch.setattr(os, name, publish)
    save_keystore(target, KEY, PASSPHRASE, scrypt=LIGHT, overwrite=overwrite)
    assert len(seen) == 1
    mode, data = seen[0]
    assert mode == 0o600
    assert decrypt_keystore(data, PASSPHRASE) == KEY
    assert sorted(p.name for p in tmp_path.iterdir()) == ["agent.json"]


def test_refuses_to_overwrite_unless_asked(tmp_path: Path) -> None:
    target = tmp_path / "agent.json"
    other = PrivateKey.generate()
    save_keystore(target, other, PASSPHRASE, scrypt=LIGHT)
    before = target.read_bytes()
    with pytest.raises(KeystoreExists, match="overwrite=True") as caught:
        save_keystore(target, KEY, PASSPHRASE, scrypt=LIGHT)
    assert isinstance(caught.value, FileExistsError)
    assert target.read_bytes() == before
    save_keystore(target, KEY, PASSPHRASE, scrypt=LIGHT, overwrite=True)
    assert load_keystore(target, PASSPHRASE) == KEY
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["agent.json"]


def test_a_file_that_appears_during_the_write_is_not_overwritten(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "agent.json"
    real_link = os.link

    def racing_link(source: str | os.PathLike[str], destination: str | os.PathLike[str]) -> None:
        Path(destination).write_text("someone else's")
        real_link(source, destination)

    monkeypatch.setattr(os, "link", racing_link)
    with pytest.raises(KeystoreExists):
        save_keystore(target, KEY, PASSPHRASE, scrypt=LIGHT)
    assert target.read_text() == "someone else's"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["agent.json"]


def test_missing_directory_and_file(tmp_path: Path) -> None:
    with pytest.raises(KeystoreNotFound, match="no such directory"):
        save_keystore(tmp_path / "nowhere" / "agent.json", KEY, PASSPHRASE, scrypt=LIGHT)
    with pytest.raises(KeystoreNotFound) as caught:
        load_keystore(tmp_path / "absent.json", PASSPHRASE)
    assert isinstance(caught.value, FileNotFoundError)


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o620, 0o602, 0o666])
def test_a_file_others_can_read_or_write_is_refused(tmp_path: Path, mode: int) -> None:
    path = save_keystore(tmp_path / "agent.json", KEY, PASSPHRASE, scrypt=LIGHT)
    path.chmod(mode)
    with pytest.raises(UnsafePermissions, match="chmod 600") as caught:
        load_keystore(path, PASSPHRASE)
    assert isinstance(caught.value, PermissionError)
    assert caught.value.mode == mode
    assert f"{mode:04o}" in str(caught.value)


def test_a_read_only_file_is_fine(tmp_path: Path) -> None:
    path = save_keystore(tmp_path / "agent.json", KEY, PASSPHRASE, scrypt=LIGHT)
    path.chmod(0o400)
    assert load_keystore(path, PASSPHRASE) == KEY


def test_files_that_are_not_keystores(tmp_path: Path) -> None:
    directory = tmp_path / "directory"
    directory.mkdir(mode=0o700)
    with pytest.raises(KeystoreCorrupt, match="not a regular file"):
        load_keystore(directory, PASSPHRASE)
    big = tmp_path / "big.json"
    big.write_bytes(b" " * (1 << 17))
    big.chmod(0o600)
    with pytest.raises(KeystoreCorrupt, match="larger than"):
        load_keystore(big, PASSPHRASE)
    garbage = tmp_path / "garbage.json"
    garbage.write_text("{")
    garbage.chmod(0o600)
    with pytest.raises(KeystoreCorrupt, match=r"garbage\.json: document: not JSON"):
        load_keystore(garbage, PASSPHRASE)


def test_wrong_passphrase_on_a_file_names_the_file(tmp_path: Path) -> None:
    path = save_keystore(tmp_path / "agent.json", KEY, PASSPHRASE, scrypt=LIGHT)
    with pytest.raises(WrongPassphrase, match=r"agent\.json: wrong passphrase"):
        load_keystore(path, "not it")


# ---------------------------------------------------------------- secrets stay secret


def test_no_key_or_passphrase_in_logs_errors_or_reprs(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    path = save_keystore(tmp_path / "agent.json", KEY, PASSPHRASE, scrypt=LIGHT)
    key = load_keystore(path, PASSPHRASE)
    errors: list[BaseException] = []
    for attempt in (
        lambda: load_keystore(path, PASSPHRASE + "!"),
        lambda: save_keystore(path, KEY, PASSPHRASE, scrypt=LIGHT),
        lambda: decrypt_keystore(
            mutated(json.loads(path.read_text()), "crypto.kdf", "x"), PASSPHRASE
        ),
    ):
        with pytest.raises(KeystoreError) as caught:
            attempt()
        errors.append(caught.value)
    path.chmod(0o644)
    with pytest.raises(UnsafePermissions) as unsafe:
        load_keystore(path, PASSPHRASE)
    errors.append(unsafe.value)
    assert "agent.json" in caplog.text  # the log says what happened...
    shown = caplog.text + repr(key) + str(key)
    shown += "".join("".join(traceback.format_exception(error)) + repr(error) for error in errors)
    assert_no_secret(shown)  # ...never with what protects it


# ---------------------------------------------------------------- passphrases


def test_passphrase_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PASSPHRASE_ENV, PASSPHRASE)
    assert read_passphrase() == PASSPHRASE
    assert read_passphrase(env="OTHER", environ={"OTHER": "x"}) == "x"


def test_no_passphrase_without_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PASSPHRASE_ENV, raising=False)
    monkeypatch.setattr(sys, "stdin", io.StringIO("typed\n"))
    with pytest.raises(NoPassphrase, match=PASSPHRASE_ENV):
        read_passphrase()
    with pytest.raises(NoPassphrase):  # an empty variable counts as unset
        read_passphrase(environ={PASSPHRASE_ENV: ""})


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_passphrase_prompt_does_not_echo(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PASSPHRASE_ENV, raising=False)
    monkeypatch.setattr(sys, "stdin", _Terminal())
    answers = iter(["first", "first", "one", "two"])
    prompts: list[str] = []

    def fake_getpass(prompt: str = "Password: ") -> str:
        prompts.append(prompt)
        return next(answers)

    monkeypatch.setattr("getpass.getpass", fake_getpass)
    assert read_passphrase(confirm=True) == "first"
    with pytest.raises(InvalidPassphrase, match="differ"):
        read_passphrase(confirm=True, prompt="New passphrase: ")
    assert prompts == [
        "Passphrase: ",
        "Repeat the passphrase: ",
        "New passphrase: ",
        "Repeat the passphrase: ",
    ]
