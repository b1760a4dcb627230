"""A writer killed with SIGKILL at random moments leaves a store that reopens consistent:
every batch is all or nothing, nothing is lost or applied twice, the Merkle frontier
matches the leaves."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from node.store import LedgerStore
from tests.merkle.reference import mth
from tests.node.crash_writer import DEPOSIT
from tests.node.factories import ALICE, BOB, DOMAIN, USDF

ROOT = Path(__file__).resolve().parents[2]


def run_and_kill(path: Path, lines: int) -> None:
    with subprocess.Popen(
        [sys.executable, "-m", "tests.node.crash_writer", str(path)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    ) as child:
        try:
            assert child.stdout is not None
            for _ in range(lines):
                if not child.stdout.readline():
                    raise AssertionError(f"writer exited early with {child.wait()}")
            time.sleep(random.uniform(0, 0.02))  # land the kill anywhere in a batch loop
        finally:
            os.kill(child.pid, signal.SIGKILL)
            child.wait()


def check_consistent(path: Path) -> int:
    store = LedgerStore(path, DOMAIN)
    try:
        deposits = store.next_deposit_id() - 1
        size = store.log_size()
        leaves = [store.leaf(i) for i in range(size)]
        assert store.root() == mth(leaves)  # the frontier agrees with the leaves
        transfers = sum(1 for leaf in leaves if leaf[0] == 0x01)
        withdrawals = sum(1 for leaf in leaves if leaf[0] == 0x02)
        assert sum(1 for leaf in leaves if leaf[0] == 0x00) == deposits
        alice, bob = store.account(ALICE.address), store.account(BOB.address)
        assert alice.next_sequence == transfers and bob.next_sequence == withdrawals
        assert alice.balance(USDF) == deposits * DEPOSIT - 3 * transfers
        assert bob.balance(USDF) == 3 * transfers - withdrawals
        return size
    finally:
        store.close()


def test_sigkill_at_random_moments_loses_nothing(tmp_path: Path) -> None:
    random.seed(7)
    sizes = []
    for round_ in range(4):
        run_and_kill(tmp_path, lines=5 + 5 * round_)
        sizes.append(check_consistent(tmp_path))
    assert sizes == sorted(sizes) and sizes[-1] > sizes[0]
