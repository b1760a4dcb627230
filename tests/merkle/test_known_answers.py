"""The published RFC 6962 test tree, the one the Certificate Transparency implementations
share, against every implementation here: the reference, wallet.merkle, CompactRange and
node.merkle.proof.

Where the values come from (copied, as data):

- google/certificate-transparency, ``cpp/merkletree/merkle_tree_test.cc``: ``kInputs``
  (the 8 leaf inputs), ``kSHA256Roots`` (the roots of sizes 1..8) and
  ``kSHA256EmptyTreeHash``;
- transparency-dev/merkle, ``testonly/constants.go``: the same ``LeafInputs()`` and
  ``RootHashes()``, plus ``NodeHashes()`` (every perfect subtree) and ``CompactTrees()``
  (the frontier after each append); and ``proof/verify_test.go``: ``inclusionProofs``
  and ``consistencyProofs``.

RFC 9162 hashes the tree as RFC 6962 does (SHA-256, prefixes 0x00 and 0x01), so the values
hold for both.
"""

from __future__ import annotations

import hashlib

import pytest

from node.merkle import CompactRange, DictNodeStore, consistency_proof, inclusion_proof, root_at
from tests.merkle import reference
from wallet import merkle
from wallet.types import Hash32


def _h(value: str) -> Hash32:
    return Hash32(bytes.fromhex(value))


# testonly/constants.go, LeafInputs()
LEAF_INPUTS = [
    bytes.fromhex(x)
    for x in (
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    )
]

# testonly/constants.go, RootHashes(): the root of the first n leaves, n = 0..8.
ROOTS = [
    _h(x)
    for x in (
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    )
]

# testonly/constants.go, NodeHashes(): [level][index] of every perfect subtree of 8 leaves.
NODE_HASHES = [
    [
        _h(x)
        for x in (
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7",
            "07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1",
        )
    ],
    [
        _h(x)
        for x in (
            "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        )
    ],
    [
        _h(x)
        for x in (
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        )
    ],
    [_h("5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328")],
]

# proof/verify_test.go, inclusionProofs (its leaf numbers are 1-based; these are 0-based).
INCLUSION_PROOFS = [
    (
        0,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        5,
        8,
        [
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (
        1,
        5,
        [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
]

# proof/verify_test.go, consistencyProofs.
CONSISTENCY_PROOFS = [
    (
        1,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        5,
        [
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
    (
        6,
        7,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
]


def _built() -> tuple[CompactRange, DictNodeStore]:
    tree, store = CompactRange(), DictNodeStore()
    for data in LEAF_INPUTS:
        tree.append(merkle.hash_leaf(data), store.put)
    return tree, store


def test_the_hasher_and_the_empty_root() -> None:
    assert merkle.EMPTY_ROOT == ROOTS[0] == hashlib.sha256(b"").digest()
    assert CompactRange().root() == ROOTS[0]
    assert root_at(0, DictNodeStore().get_node) == ROOTS[0]
    assert reference.mth([]) == ROOTS[0]
    assert merkle.LEAF_PREFIX == b"\x00"
    assert merkle.NODE_PREFIX == b"\x01"
    assert merkle.hash_leaf(b"") == ROOTS[1]
    assert merkle.hash_children(merkle.hash_leaf(b""), merkle.hash_leaf(b"\x00")) == ROOTS[2]


@pytest.mark.parametrize("size", range(1, 9))
def test_published_roots(size: int) -> None:
    assert reference.mth(LEAF_INPUTS[:size]) == ROOTS[size]
    tree, store = CompactRange(), DictNodeStore()
    for data in LEAF_INPUTS[:size]:
        tree.append(merkle.hash_leaf(data), store.put)
    assert tree.root() == ROOTS[size]
    _, full = _built()
    assert root_at(size, full.get_node) == ROOTS[size]  # a past size, from the grown store


def test_the_store_holds_the_published_node_hashes() -> None:
    _, store = _built()
    expected = {
        (level, index): node
        for level, row in enumerate(NODE_HASHES)
        for index, node in enumerate(row)
    }
    assert store.nodes == expected


def test_the_frontiers_are_the_published_compact_trees() -> None:
    # testonly/constants.go, CompactTrees(): the peaks after each append.
    nh = NODE_HASHES
    expected = [
        [],
        [nh[0][0]],
        [nh[1][0]],
        [nh[1][0], nh[0][2]],
        [nh[2][0]],
        [nh[2][0], nh[0][4]],
        [nh[2][0], nh[1][2]],
        [nh[2][0], nh[1][2], nh[0][6]],
        [nh[3][0]],
    ]
    tree, store = CompactRange(), DictNodeStore()
    assert list(tree.peaks) == expected[0]
    for size, data in enumerate(LEAF_INPUTS, start=1):
        tree.append(merkle.hash_leaf(data), store.put)
        assert list(tree.peaks) == expected[size]


@pytest.mark.parametrize(("index", "size", "published"), INCLUSION_PROOFS)
def test_published_inclusion_proofs(index: int, size: int, published: list[str]) -> None:
    proof = [_h(x) for x in published]
    _, store = _built()
    assert inclusion_proof(index, size, store.get_node) == proof
    assert reference.path(index, LEAF_INPUTS[:size]) == proof
    leaf = merkle.hash_leaf(LEAF_INPUTS[index])
    merkle.verify_inclusion(leaf, index, size, proof, ROOTS[size])


@pytest.mark.parametrize(("size1", "size2", "published"), CONSISTENCY_PROOFS)
def test_published_consistency_proofs(size1: int, size2: int, published: list[str]) -> None:
    proof = [_h(x) for x in published]
    _, store = _built()
    assert consistency_proof(size1, size2, store.get_node) == proof
    assert reference.proof(size1, LEAF_INPUTS[:size2]) == proof
    merkle.verify_consistency(size1, size2, proof, ROOTS[size1], ROOTS[size2])
