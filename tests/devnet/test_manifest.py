from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from eth_utils.address import to_checksum_address

from devnet.errors import ManifestError
from devnet.keys import derive_keys
from devnet.manifest import (
    MANIFEST_WARNING,
    Committee,
    Contracts,
    KeyPair,
    Manifest,
    Member,
    ProcessInfo,
    read_manifest,
    write_manifest,
)


def _hex(key: bytes) -> str:
    return "0x" + key.hex()


def make_manifest(nodes: int = 4, agents: int = 2) -> Manifest:
    keys = derive_keys(nodes, agents)
    return Manifest(
        chain_id=31337,
        rpc_url="http://127.0.0.1:8545",
        deploy_block=1,
        contracts=Contracts(
            vault=to_checksum_address("0xCf7Ed3AccA5a467e9e704C703E8D87F634fB0Fc9"),
            stable=to_checksum_address("0x5FbDB2315678afecb367f032d93F642f64180aa3"),
            native=to_checksum_address("0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512"),
            price_feed=to_checksum_address("0x9fE46736679d2D9a65F0992F2272dE9f3c7fa6e0"),
        ),
        governance=KeyPair(keys.governance.address, _hex(keys.governance.key)),
        committee=Committee(
            epoch=1,
            quorum=3,
            members=tuple(
                Member(n.address, _hex(n.key), f"http://127.0.0.1:{9000 + i}")
                for i, n in enumerate(keys.nodes)
            ),
        ),
        agents=tuple(KeyPair(a.address, _hex(a.key)) for a in keys.agents),
        processes=(ProcessInfo("anvil", 4242),),
    )


def test_json_round_trip() -> None:
    manifest = make_manifest()
    assert Manifest.from_json(manifest.to_json()) == manifest


def test_json_has_the_documented_shape() -> None:
    doc = json.loads(make_manifest().to_json())
    assert list(doc) == [
        "version",
        "warning",
        "chain_id",
        "rpc_url",
        "deploy_block",
        "contracts",
        "governance",
        "committee",
        "agents",
        "processes",
    ]
    assert doc["version"] == 1
    assert (
        doc["warning"] == MANIFEST_WARNING == ("PUBLIC DEVNET TEST KEYS - never use for real funds")
    )
    assert set(doc["contracts"]) == {"vault", "stable", "native", "price_feed"}
    assert set(doc["committee"]) == {"epoch", "quorum", "members"}
    assert set(doc["committee"]["members"][0]) == {"address", "private_key", "endpoint"}
    assert set(doc["agents"][0]) == {"address", "private_key"}
    assert doc["processes"] == [{"name": "anvil", "pid": 4242}]


def test_file_round_trip_is_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "manifest.json"
    manifest = make_manifest()
    write_manifest(path, manifest)
    assert path.stat().st_mode & 0o777 == 0o600
    assert read_manifest(path) == manifest


def test_repr_shows_no_private_key() -> None:
    manifest = make_manifest()
    text = repr(manifest)
    pairs: list[KeyPair | Member] = [manifest.governance, *manifest.committee.members]
    for pair in [*pairs, *manifest.agents]:
        assert pair.private_key not in text
        assert pair.private_key[2:] not in text
        assert pair.address in text


def test_missing_file() -> None:
    with pytest.raises(FileNotFoundError):
        read_manifest(Path("/nonexistent/manifest.json"))


def _doc() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(make_manifest().to_json())
    return doc


def _break(path: str, value: Any) -> str:
    """The manifest JSON with the field at dotted ``path`` set to ``value`` (or removed
    if ``value`` is ``...``)."""
    doc = _doc()
    *parents, last = path.split(".")
    node: Any = doc
    for part in parents:
        node = node[int(part)] if part.isdigit() else node[part]
    key: Any = int(last) if last.isdigit() else last
    if value is ...:
        del node[key]
    else:
        node[key] = value
    return json.dumps(doc)


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("version", 2, "version: expected 1"),
        ("chain_id", "31337", "chain_id: expected an integer >= 1"),
        ("chain_id", True, "chain_id: expected an integer >= 1"),
        ("rpc_url", ..., "rpc_url: missing"),
        ("deploy_block", -1, "deploy_block: expected an integer >= 0"),
        ("contracts.vault", ..., "contracts.vault: missing"),
        ("contracts.stable", "0x1234", "contracts.stable: expected a 0x address"),
        (
            "governance.address",
            "0x5FbDB2315678afecb367f032d93F642f64180aa3",
            "governance: private_key does not belong to address",
        ),
        ("committee.quorum", 5, "committee.quorum: larger than the 4 members"),
        ("committee.quorum", 0, "committee.quorum: expected an integer >= 1"),
        ("committee.members", [], "committee.members: expected at least one member"),
        ("committee.members.1.endpoint", "", r"committee.members\[1\].endpoint"),
        ("agents", {}, "agents: expected a list"),
        ("processes.0.pid", 0, r"processes\[0\].pid: expected an integer >= 1"),
    ],
)
def test_bad_field_is_named(path: str, value: Any, message: str) -> None:
    with pytest.raises(ManifestError, match=message) as info:
        Manifest.from_json(_break(path, value), source="manifest /x/manifest.json")
    assert str(info.value).startswith("bad manifest /x/manifest.json: ")


@pytest.mark.parametrize(
    "bad_key",
    ["0x" + "AB" * 32, "ab" * 32, "0x" + "ab" * 31, 12345],
    ids=["upper-case", "no-0x", "short", "number"],
)
def test_bad_private_key_is_refused_without_quoting_it(bad_key: Any) -> None:
    text = _break("agents.0.private_key", bad_key)
    with pytest.raises(ManifestError, match=r"agents\[0\].private_key: expected 0x") as info:
        Manifest.from_json(text)
    assert str(bad_key) not in str(info.value)


@pytest.mark.parametrize("text", ["", "{", "[1, 2]", "null"])
def test_not_a_manifest(text: str) -> None:
    with pytest.raises(ManifestError, match="bad manifest"):
        Manifest.from_json(text)


def test_addresses_are_checksummed_on_read() -> None:
    text = _break("contracts.vault", "0xcf7ed3acca5a467e9e704c703e8d87f634fb0fc9")
    manifest = Manifest.from_json(text)
    assert manifest.contracts.vault == "0xCf7Ed3AccA5a467e9e704C703E8D87F634fB0Fc9"
