"""bench.node_resources (the arithmetic and the directory walk) and bench.machine."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

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
