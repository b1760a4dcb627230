"""What every command starts from: the wallet home (keystore, journal, spend ledger,
policy), the key, the network (a devnet manifest, or the chain alone), and the parsing
of what a person types (amounts, addresses, references)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from wallet.amounts import Token, TokenAmount, TokenRegistry
from wallet.client.network import Network
from wallet.codec import parse_address, parse_hash32
from wallet.errors import EncodingError, UnknownToken, WalletError
from wallet.keccak import keccak256
from wallet.keys import agent_payment_address
from wallet.keystore import STANDARD_SCRYPT, ScryptParams, load_keystore, read_passphrase
from wallet.policy import SpendingPolicy
from wallet.signing import PrivateKey
from wallet.types import ZERO_HASH, Address, Hash32

#: The wallet home when neither ``--home`` nor this variable is given: ``~/.farthing``.
HOME_ENV = "FARTHING_HOME"
#: Defaults of the connection options.
MANIFEST_ENV = "FARTHING_MANIFEST"
RPC_URL_ENV = "FARTHING_RPC_URL"
VAULT_ENV = "FARTHING_VAULT"

#: The scrypt cost of keystores the CLI writes. Tests replace it with a light setting
#: (monkeypatch ``wallet.cli.context.KEYSTORE_SCRYPT``); there is no option for it.
KEYSTORE_SCRYPT: ScryptParams = STANDARD_SCRYPT

#: Symbols and decimals of the policy file when no network is named: the file is keyed by
#: symbol, so placeholder addresses are enough to read and write it.
OFFLINE_TOKENS = TokenRegistry.farthing(
    stable=b"\x00" * 19 + b"\x01", native=b"\x00" * 19 + b"\x02"
)


class CliError(WalletError):
    """A problem the command line itself finds (a missing option or file); ``exit_code``
    as the table in :mod:`wallet.cli.app`."""

    exit_code: ClassVar[int] = 1


class NotConnected(CliError):  # noqa: N818 (what the user is told)
    """No network was named, and the command needs one."""


@dataclass(frozen=True, slots=True)
class Home:
    """The wallet's files: ``root`` (mode 0700) holds ``keystore.json`` (unless
    ``--keystore`` names another), the order journal (``journal/``), the spend ledger
    (``spend.json``) and the spending policy (``policy.json``)."""

    root: Path
    keystore: Path

    @classmethod
    def resolve(cls, home: str | None, keystore: str | None) -> Home:
        root = Path(home or os.environ.get(HOME_ENV) or Path.home() / ".farthing").expanduser()
        return cls(root, Path(keystore).expanduser() if keystore else root / "keystore.json")

    @property
    def spend_ledger(self) -> Path:
        return self.root / "spend.json"

    @property
    def policy(self) -> Path:
        return self.root / "policy.json"

    def ensure(self) -> None:
        """Create the home folder (mode 0700) if it is missing."""
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.keystore.parent.mkdir(mode=0o700, parents=True, exist_ok=True)

    def load_key(self) -> PrivateKey:
        """The key of the keystore, with the passphrase of ``FARTHING_PASSPHRASE`` or the
        terminal."""
        if not self.keystore.exists():
            raise CliError(
                f"no keystore at {self.keystore}: create one with `farthing-wallet new` or "
                "`farthing-wallet import`, or name it with --keystore / --home"
            )
        return load_keystore(self.keystore, read_passphrase())

    def load_policy(self, tokens: TokenRegistry) -> SpendingPolicy:
        """The policy file, or the default policy (no limits) when there is none."""
        if not self.policy.exists():
            return SpendingPolicy()
        return SpendingPolicy.load(self.policy, tokens)


@dataclass(frozen=True, slots=True)
class Connection:
    """The network as the command line reaches it."""

    network: Network
    tokens: TokenRegistry
    rpc_url: str | None
    price_feed: Address | None
    source: str

    @property
    def vault(self) -> Address:
        return self.network.domain.vault


def read_json(path: str | Path, what: str) -> Any:
    """The JSON in the file ``path``; a :class:`CliError` saying what is wrong."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CliError(f"no {what} at {path}") from None
    except OSError as exc:
        raise CliError(f"cannot read the {what} {path}: {exc.strerror}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise CliError(f"the {what} {path} is not JSON (line {exc.lineno})") from None


def manifest_connection(path: str) -> Connection:
    """The network of a devnet manifest: committee, endpoints, tokens, RPC URL, feed."""
    data = read_json(path, "manifest")
    network = Network.from_manifest_dict(data)
    try:
        contracts = data["contracts"]
        tokens = TokenRegistry.farthing(stable=contracts["stable"], native=contracts["native"])
        feed = contracts.get("price_feed")
        rpc_url = data.get("rpc_url")
    except (KeyError, TypeError, AttributeError):
        raise EncodingError("manifest", "missing or malformed contracts") from None
    return Connection(
        network,
        tokens,
        rpc_url if isinstance(rpc_url, str) else None,
        parse_address(feed, field="contracts.price_feed") if feed else None,
        f"manifest {path}",
    )


async def chain_connection(rpc_url: str, vault: str, price_feed: str | None) -> Connection:
    """The network as the Vault holds it: the committee with its endpoints and the
    registered tokens, read through ``rpc_url``."""
    from wallet.chain import VaultReader, redact_url

    feed = parse_address(price_feed, field="--price-feed") if price_feed else None
    async with VaultReader(rpc_url, parse_address(vault, field="--vault")) as reader:
        overview = await reader.overview()
    if overview.committee is None:
        raise NotConnected("the Vault has no committee yet (epoch 0): nothing to pay through")
    infos = {t.address: t for t in (*overview.tokens, overview.native)}
    triples = [(t.symbol, t.address, t.decimals) for t in infos.values()]
    pegged = [t.symbol for t in infos.values() if t.symbol.upper() == "USDF"]
    return Connection(
        Network.from_committee(overview.domain, overview.committee),
        TokenRegistry.from_triples(triples, usd_pegged=pegged),
        rpc_url,
        feed,
        f"chain {redact_url(rpc_url)}",
    )


def connection_options(
    manifest: str | None, rpc_url: str | None, vault: str | None
) -> tuple[str | None, str | None, str | None]:
    """(manifest, rpc_url, vault) from the options or their environment variables: a
    manifest, or an RPC URL and a Vault (which win when both are given)."""
    manifest = manifest or os.environ.get(MANIFEST_ENV)
    rpc_url = rpc_url or os.environ.get(RPC_URL_ENV)
    vault = vault or os.environ.get(VAULT_ENV)
    if rpc_url and vault:
        return None, rpc_url, vault
    if manifest:
        if not Path(manifest).is_file():
            raise CliError(
                f"no manifest at {manifest}: start a devnet (`.venv/bin/devnet up`, it writes "
                ".devnet/manifest.json) or pass --manifest PATH"
            )
        return manifest, None, None
    raise NotConnected(
        "no network: pass --manifest PATH (a devnet's manifest.json) or --rpc-url URL "
        f"--vault ADDRESS (or set {MANIFEST_ENV}, or {RPC_URL_ENV} and {VAULT_ENV})"
    )


async def connect(
    manifest: str | None, rpc_url: str | None, vault: str | None, price_feed: str | None
) -> Connection:
    """The connection the options (or their environment variables) name, without a key
    (committee, endpoints, tokens): for ``verify`` and ``committee``."""
    manifest, rpc_url, vault = connection_options(manifest, rpc_url, vault)
    if rpc_url and vault:
        return await chain_connection(rpc_url, vault, price_feed)
    assert manifest is not None
    connection = manifest_connection(manifest)
    if price_feed:
        feed = parse_address(price_feed, field="--price-feed")
        connection = Connection(
            connection.network, connection.tokens, connection.rpc_url, feed, connection.source
        )
    return connection


# ---------------------------------------------------------------- what people type


def parse_amount(text: str, tokens: TokenRegistry, *, positive: bool = True) -> TokenAmount:
    """``"10 USDF"``: a positive amount of a known token. An unknown symbol is an
    :class:`UnknownToken` that lists the known ones."""
    _, space, symbol = text.strip().partition(" ")
    if space and symbol.strip() and symbol.strip().upper() not in _symbols(tokens):
        known = ", ".join(t.symbol for t in tokens)
        shown = symbol.strip() if symbol.strip().isalnum() and len(symbol) <= 16 else "that"
        raise UnknownToken(f"unknown token {shown}: known are {known}")
    return tokens.parse(text, positive=positive)


def _symbols(tokens: TokenRegistry) -> set[str]:
    return {t.symbol.upper() for t in tokens}


def token_by_symbol(symbol: str, tokens: TokenRegistry) -> Token:
    """The token ``symbol`` (any case); an :class:`UnknownToken` listing the known ones."""
    if symbol.upper() not in _symbols(tokens):
        known = ", ".join(t.symbol for t in tokens)
        shown = symbol if symbol.isalnum() and len(symbol) <= 16 else "that"
        raise UnknownToken(f"unknown token {shown}: known are {known}")
    return tokens.by_symbol(symbol)


def parse_account(text: str, *, field: str = "address") -> Address:
    """A payment address: ``0x`` + 40 hex digits, or an ``agent1...`` address (the
    payment address of its key)."""
    if text.lower().startswith("agent1"):
        return agent_payment_address(text, field=field)
    return parse_address(text, field=field)


def parse_reference(text: str | None) -> Hash32:
    """A payment's reference: ``0x`` + 64 hex digits as is, any other text hashed with
    keccak256 (``--reference quote-17``); none: zero."""
    if text is None:
        return ZERO_HASH
    if text.startswith("0x") and len(text) == 66:
        return parse_hash32(text, field="--reference")
    return Hash32(keccak256(text.encode("utf-8")))
