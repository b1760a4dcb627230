"""The devnet manifest: what `devnet up` deployed and the keys to use it.

``<state dir>/manifest.json``, mode 0600, written atomically once the deploy is done::

    {
      "version": 1,                      format version; readers refuse any other
      "warning": "PUBLIC DEVNET TEST KEYS - never use for real funds",
      "chain_id": 31337,
      "rpc_url": "http://127.0.0.1:8545",
      "deploy_block": 1,                 block of the first deploy transaction
                                         (where a log scan for the contracts may start)
      "contracts": {
        "vault": "0x…",                  Vault: deposits, committee, bonds, redemptions
        "stable": "0x…",                 FarthingUSD (USDF, 6 decimals)
        "native": "0x…",                 FarthingToken (FAR, 18 decimals)
        "price_feed": "0x…"              PriceFeed: FAR / USD, AggregatorV3, 8 decimals
      },
      "governance": {"address": "0x…", "private_key": "0x…"},
                                         deployer, admin of every contract
      "committee": {
        "epoch": 1,                      the epoch the Vault reports after startEpoch
        "quorum": 3,                     floor(2n/3) + 1
        "members": [                     in the order registered in the Vault
          {"address": "0x…", "private_key": "0x…", "endpoint": "http://127.0.0.1:<port>"}
        ]
      },
      "agents": [{"address": "0x…", "private_key": "0x…"}],
                                         funded with USDF, FAR and ETH
      "processes": [{"name": "anvil", "pid": 12345}]
                                         what runs for this devnet (pids.json is the
                                         authority `devnet down` uses)
    }

Addresses are EIP-55 checksummed; private keys are 0x-prefixed, 64 lower-case hex digits,
derived from the PUBLIC TEST mnemonic in :mod:`devnet.keys`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypedDict

from eth_account import Account
from eth_typing import ChecksumAddress
from eth_utils.address import is_address, to_checksum_address

from devnet.errors import ManifestError
from devnet.files import write_private_file

MANIFEST_VERSION = 1
MANIFEST_WARNING = "PUBLIC DEVNET TEST KEYS - never use for real funds"

_PRIVATE_KEY = re.compile(r"0x[0-9a-f]{64}")


class KeyPairDict(TypedDict):
    address: str
    private_key: str


class MemberDict(KeyPairDict):
    endpoint: str


class CommitteeDict(TypedDict):
    epoch: int
    quorum: int
    members: list[MemberDict]


class ContractsDict(TypedDict):
    vault: str
    stable: str
    native: str
    price_feed: str


class ProcessDict(TypedDict):
    name: str
    pid: int


class ManifestDict(TypedDict):
    version: int
    warning: str
    chain_id: int
    rpc_url: str
    deploy_block: int
    contracts: ContractsDict
    governance: KeyPairDict
    committee: CommitteeDict
    agents: list[KeyPairDict]
    processes: list[ProcessDict]


@dataclass(frozen=True, slots=True)
class KeyPair:
    """An account and its private key (kept out of ``repr``)."""

    address: ChecksumAddress
    private_key: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class Member:
    """A committee member: its node key and the endpoint its node serves."""

    address: ChecksumAddress
    private_key: str = field(repr=False)
    endpoint: str


@dataclass(frozen=True, slots=True)
class Committee:
    epoch: int
    quorum: int
    members: tuple[Member, ...]


@dataclass(frozen=True, slots=True)
class Contracts:
    vault: ChecksumAddress
    stable: ChecksumAddress
    native: ChecksumAddress
    price_feed: ChecksumAddress


@dataclass(frozen=True, slots=True)
class ProcessInfo:
    name: str
    pid: int


@dataclass(frozen=True, slots=True)
class Manifest:
    """The parsed manifest (see the module docstring for the JSON)."""

    chain_id: int
    rpc_url: str
    deploy_block: int
    contracts: Contracts
    governance: KeyPair
    committee: Committee
    agents: tuple[KeyPair, ...]
    processes: tuple[ProcessInfo, ...]

    def to_dict(self) -> ManifestDict:
        c = self.contracts
        return {
            "version": MANIFEST_VERSION,
            "warning": MANIFEST_WARNING,
            "chain_id": self.chain_id,
            "rpc_url": self.rpc_url,
            "deploy_block": self.deploy_block,
            "contracts": {
                "vault": c.vault,
                "stable": c.stable,
                "native": c.native,
                "price_feed": c.price_feed,
            },
            "governance": _key_pair_dict(self.governance),
            "committee": {
                "epoch": self.committee.epoch,
                "quorum": self.committee.quorum,
                "members": [
                    {"address": m.address, "private_key": m.private_key, "endpoint": m.endpoint}
                    for m in self.committee.members
                ],
            },
            "agents": [_key_pair_dict(a) for a in self.agents],
            "processes": [{"name": p.name, "pid": p.pid} for p in self.processes],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str, source: str = "manifest") -> Manifest:
        """Parse and validate; :class:`ManifestError` names ``source`` and the bad field."""
        try:
            doc = json.loads(text)
        except ValueError as exc:
            raise ManifestError(f"bad {source}: not JSON ({exc})") from None
        return _parse(_Node(doc, "", source))


def _key_pair_dict(pair: KeyPair) -> KeyPairDict:
    return {"address": pair.address, "private_key": pair.private_key}


def write_manifest(path: Path, manifest: Manifest) -> None:
    """Write ``manifest`` to ``path`` atomically, mode 0600 (it holds test keys)."""
    write_private_file(path, manifest.to_json())


def read_manifest(path: Path) -> Manifest:
    """Read and validate the manifest at ``path`` (``FileNotFoundError`` if absent)."""
    return Manifest.from_json(path.read_text(encoding="utf-8"), source=f"manifest {path}")


class _Node:
    """A JSON value and where it sits, for error messages that name the field."""

    def __init__(self, value: Any, where: str, source: str) -> None:
        self.value = value
        self.where = where
        self.source = source

    def error(self, why: str) -> ManifestError:
        return ManifestError(f"bad {self.source}: {self.where or 'top level'}: {why}")

    def __getitem__(self, key: str) -> _Node:
        if not isinstance(self.value, dict):
            raise self.error("expected an object")
        where = f"{self.where}.{key}" if self.where else key
        if key not in self.value:
            raise ManifestError(f"bad {self.source}: {where}: missing")
        return _Node(self.value[key], where, self.source)

    def items(self) -> list[_Node]:
        if not isinstance(self.value, list):
            raise self.error("expected a list")
        return [_Node(v, f"{self.where}[{i}]", self.source) for i, v in enumerate(self.value)]

    def as_int(self, minimum: int = 0) -> int:
        if type(self.value) is not int or self.value < minimum:
            raise self.error(f"expected an integer >= {minimum}")
        return self.value

    def as_str(self) -> str:
        if not isinstance(self.value, str) or not self.value:
            raise self.error("expected a non-empty string")
        return self.value

    def as_address(self) -> ChecksumAddress:
        if not isinstance(self.value, str) or not is_address(self.value):
            raise self.error("expected a 0x address")
        return to_checksum_address(self.value)

    def as_private_key(self) -> str:
        # Never quote the value: it is a key.
        if not isinstance(self.value, str) or not _PRIVATE_KEY.fullmatch(self.value):
            raise self.error("expected 0x and 64 lower-case hex digits")
        return self.value


def _key_pair(node: _Node) -> tuple[ChecksumAddress, str]:
    address = node["address"].as_address()
    key = node["private_key"].as_private_key()
    if Account.from_key(key).address != address:
        raise node.error("private_key does not belong to address")
    return address, key


def _parse(root: _Node) -> Manifest:
    if root["version"].value != MANIFEST_VERSION:
        raise root["version"].error(f"expected {MANIFEST_VERSION} (written by another version)")
    contracts = root["contracts"]
    committee = root["committee"]
    members = []
    for node in committee["members"].items():
        address, key = _key_pair(node)
        members.append(Member(address, key, node["endpoint"].as_str()))
    if not members:
        raise committee["members"].error("expected at least one member")
    quorum = committee["quorum"].as_int(minimum=1)
    if quorum > len(members):
        raise committee["quorum"].error(f"larger than the {len(members)} members")
    return Manifest(
        chain_id=root["chain_id"].as_int(minimum=1),
        rpc_url=root["rpc_url"].as_str(),
        deploy_block=root["deploy_block"].as_int(),
        contracts=Contracts(
            vault=contracts["vault"].as_address(),
            stable=contracts["stable"].as_address(),
            native=contracts["native"].as_address(),
            price_feed=contracts["price_feed"].as_address(),
        ),
        governance=KeyPair(*_key_pair(root["governance"])),
        committee=Committee(
            epoch=committee["epoch"].as_int(), quorum=quorum, members=tuple(members)
        ),
        agents=tuple(KeyPair(*_key_pair(node)) for node in root["agents"].items()),
        processes=tuple(
            ProcessInfo(node["name"].as_str(), node["pid"].as_int(minimum=1))
            for node in root["processes"].items()
        ),
    )
