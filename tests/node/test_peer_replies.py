"""Reading a peer's log entries for catch-up: what is unknown is fetched, a malformed
page is refused whole."""

from __future__ import annotations

from typing import Any

import pytest

from node.peers.client import _runs
from node.peers.replies import BadReplyError, entry_page, unknown_digests, unknown_orders
from node.state.entries import deposit_leaf
from wallet.types import Address, Hash32

KNOWN, NEW = Hash32(b"\x11" * 32), Hash32(b"\x22" * 32)
DEPOSIT = "0x" + deposit_leaf(1, Address(b"\x01" * 20), Address(b"\x02" * 20), 5).hex()


def page(*leaves: str, start: int = 0, size: int | None = None) -> dict[str, Any]:
    entries = [{"index": start + i, "leaf": leaf} for i, leaf in enumerate(leaves)]
    return {"entries": entries, "tree_size": start + len(leaves) if size is None else size}


def order(kind: str, digest: Hash32) -> str:
    return "0x" + kind + digest.hex()


def known(digest: Hash32) -> bool:
    return digest == KNOWN


def test_only_unknown_orders_are_wanted() -> None:
    reply = page(DEPOSIT, order("01", KNOWN), order("02", NEW), order("01", NEW), start=10)
    leaves, size = entry_page(reply, 10, 14)
    assert size == 14 and leaves[2] == b"\x02" + NEW
    assert unknown_orders(leaves, 10, known) == [12, 13]


@pytest.mark.parametrize(
    "reply",
    [
        page(order("01", NEW), size=0),  # the tree is smaller than the page
        page(),  # fewer entries than asked for
        {"entries": [{"index": 1, "leaf": order("01", NEW)}], "tree_size": 1},  # wrong index
        page(order("03", NEW)),  # an unknown kind
        page("0x01" + " " * 64),  # not hex (fromhex would skip the spaces)
        page(order("01", NEW)[:-2]),  # short
        page(DEPOSIT[:-2] + "zz"),
        {"entries": "no", "tree_size": 1},
        [],
    ],
)
def test_a_bad_page_is_refused(reply: Any) -> None:
    with pytest.raises(BadReplyError):
        entry_page(reply, 0, 1)


def test_runs_cover_the_wanted_indices_in_bounded_requests() -> None:
    assert _runs([], 256) == []
    assert _runs([3, 4, 9], 256) == [(3, 10)]
    assert _runs([0, 255, 256, 600], 256) == [(0, 256), (256, 257), (600, 601)]


def test_the_unknown_digests_of_an_offer() -> None:
    offered = [KNOWN, NEW]
    assert unknown_digests({"unknown": ["0x" + NEW.hex()]}, offered) == {NEW}
    assert unknown_digests({"unknown": []}, offered) == set()
    for bad in ({"unknown": ["0x" + "33" * 32]}, {"unknown": ["0x12"]}, {"unknown": 1}, []):
        with pytest.raises(BadReplyError):
            unknown_digests(bad, offered)
