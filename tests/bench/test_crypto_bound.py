"""bench.crypto_bound: the operation count of one payment and the bound's arithmetic."""

from __future__ import annotations

import pytest

from bench.crypto_bound import CryptoTimes, bound_per_s, count_operations, time_operations


def test_the_devnet_committee_needs_5_signatures_and_16_recoveries() -> None:
    count = count_operations(nodes=4, quorum=3)
    assert (count.signatures, count.recoveries) == (5, 16)
    assert count.breakdown["payer signs the order"] == (1, 0)
    assert count.breakdown["nodes vote: recover the payer, sign the vote"] == (4, 4)
    assert count.breakdown["client checks the quorum's votes"] == (0, 3)


@pytest.mark.parametrize(("nodes", "quorum"), [(1, 1), (4, 3), (7, 5), (10, 7)])
def test_count_follows_the_formula(nodes: int, quorum: int) -> None:
    count = count_operations(nodes, quorum)
    assert count.signatures == 1 + nodes
    assert count.recoveries == nodes + quorum + quorum * (quorum - 1) + (nodes - quorum) * quorum


def test_count_refuses_an_impossible_quorum() -> None:
    with pytest.raises(ValueError, match="quorum"):
        count_operations(4, 5)


def test_bound_scales_with_cores() -> None:
    count = count_operations(4, 3)
    # 5 x 50 us + 16 x 100 us = 1,850 us per payment.
    one = bound_per_s(count, 50e-6, 100e-6, 1)
    assert one == pytest.approx(1 / 1850e-6)
    assert bound_per_s(count, 50e-6, 100e-6, 8) == pytest.approx(8 * one)


def test_bound_refuses_nonsense() -> None:
    with pytest.raises(ValueError, match="positive"):
        bound_per_s(count_operations(), 0.0, 0.0, 2)
    with pytest.raises(ValueError, match="positive"):
        bound_per_s(count_operations(), 1e-6, 1e-6, 0)


def test_timing_gives_positive_microseconds() -> None:
    times = time_operations(iterations=20, repeats=1)
    assert 0 < times.sign_us < 10_000
    assert 0 < times.recover_us < 10_000


def test_fastest_takes_each_operation_s_faster_time() -> None:
    a, b = CryptoTimes(50.0, 60.0), CryptoTimes(40.0, 90.0)
    assert a.fastest(b) == CryptoTimes(40.0, 60.0) == b.fastest(a)
