"""Keccak-256: the fast path on pycryptodome's C library is in use, and equals the public
API and eth-hash on any input, from any number of threads at once."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from eth_hash.auto import keccak as eth_keccak
from hypothesis import given
from hypothesis import strategies as st

from wallet import keccak as module
from wallet.keccak import keccak256, public_keccak256


def test_known_values() -> None:
    empty = "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"
    assert keccak256(b"").hex() == empty
    assert public_keccak256(b"").hex() == empty
    assert keccak256(b"abc").hex() == (
        "4e03657aea45a94fc7d47ba826c8d667c0d1e6e33a64a036ec44f58fa12d6c45"
    )


def test_the_fast_path_is_in_use() -> None:
    # pycryptodome is pinned; if an upgrade moves its internals, this says so (the
    # wallet still works, on the slower public API).
    assert module.IMPLEMENTATION == "pycryptodome-raw"
    assert keccak256 is not public_keccak256


@given(data=st.binary(max_size=600))
def test_equals_the_public_api_and_eth_hash(data: bytes) -> None:
    assert keccak256(data) == public_keccak256(data) == eth_keccak(data)
    assert type(keccak256(data)) is bytes


def test_accepts_other_byte_strings() -> None:
    data = b"farthing" * 30
    assert keccak256(bytearray(data)) == keccak256(memoryview(data)) == eth_keccak(data)  # type: ignore[arg-type]


def test_threads_do_not_share_a_state() -> None:
    inputs = [bytes([i % 251]) * (i % 400) for i in range(4000)]
    expected = [eth_keccak(x) for x in inputs]
    with ThreadPoolExecutor(max_workers=8) as pool:
        assert list(pool.map(keccak256, inputs, chunksize=7)) == expected
