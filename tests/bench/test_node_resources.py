"""bench.node_resources (the arithmetic and the directory walk) and bench.machine."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bench import node_resources
from bench.machine import describe, git_commit
from bench.node_resources import DiskSnapshot, bytes_per_entry, directory_bytes
from bench.restart import rss_kib


def test_bytes_per_entry_is_the_mean_over_nodes() -> None:
    before = DiskSnapshot((1000, 2000), (10, 10))
    after = DiskSnapshot((3000, 5000), (20, 20))
    assert bytes_per_entry(before, after) == pytest.approx((200 + 300) / 2)


def test_bytes_per_entry_skips_nodes_that_appended_nothing() -> None:
    before = DiskSnapshot((1000, 2000), (10, 10))
    assert bytes_per_entry(before, DiskSnapshot((1500, 2000), (15, 10))) == 100
    with pytest.raises(ValueError, match="no node"):
        bytes_per_entry(before, before)


def test_directory_bytes_counts_files_recursively(tmp_path: Path) -> None:
    (tmp_path / "a").write_bytes(b"x" * 10)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b").write_bytes(b"y" * 5)
    assert directory_bytes(tmp_path) == 15


def test_rss_of_this_process_is_positive() -> None:
    assert rss_kib(os.getpid()) > 0


def test_git_commit_reads_refs_loose_packed_and_detached(tmp_path: Path) -> None:
    git = tmp_path / ".git"
    (git / "refs" / "heads").mkdir(parents=True)
    (git / "HEAD").write_text("ref: refs/heads/main\n")
    (git / "refs" / "heads" / "main").write_text("a" * 40 + "\n")
    assert git_commit(tmp_path) == "a" * 40
    (git / "refs" / "heads" / "main").unlink()
    (git / "packed-refs").write_text(f"# pack-refs\n{'b' * 40} refs/heads/main\n")
    assert git_commit(tmp_path) == "b" * 40
    (git / "HEAD").write_text("c" * 40 + "\n")
    assert git_commit(tmp_path) == "c" * 40
    assert git_commit(tmp_path / "nowhere") is None


def test_describe_names_the_machine() -> None:
    machine = describe(2)
    assert machine["cores"] == 2
    assert machine["python"].count(".") == 2
    assert machine["cpu_model"]


def test_compacted_bytes_per_entry_drops_overwritten_records(tmp_path: Path) -> None:
    """Deposits to one account, one commit each: every commit rewrites its account record
    and the frontier; after compaction only the last of each is left."""
    from node.state import ContractReceiveDeposit, transition
    from node.store import LedgerStore
    from tests.node.factories import ALICE, COMMITTEE, DOMAIN, USDF, Node
    from wallet.types import Amount

    store = LedgerStore(tmp_path / "data", DOMAIN, sync=False)
    store.put_committee(COMMITTEE)
    context = Node().context
    for deposit in range(1, 2001):
        change = ContractReceiveDeposit(deposit, ALICE.address, USDF, Amount(1))
        store.commit(transition(store, context, change))
    assert store.log_size() == 2000
    store.close()
    uncompacted = node_resources.directory_bytes(tmp_path / "data") / 2000
    compacted = node_resources.compacted_bytes_per_entry([tmp_path / "data"])
    assert 0 < compacted < uncompacted
    LedgerStore(tmp_path / "empty", DOMAIN, sync=False).close()  # no log entry
    with pytest.raises(ValueError, match="no node store"):
        node_resources.compacted_bytes_per_entry([tmp_path / "empty"])
