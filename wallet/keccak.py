"""Ethereum's Keccak-256 (the original Keccak padding, not NIST SHA3-256).

Implementation choice, measured on the 2-core dev machine (224-byte input, the size of a
Transfer's struct encoding; medians, the machine is noisy to about ±30 %):

    eth_hash.auto.keccak(...)                                    about 7.1 µs
    Crypto.Hash.keccak.new(data=..., digest_bits=256).digest()    about 6.7 µs
    pycryptodome's C library driven directly (below)             about 2.2 µs

eth_hash picks pycryptodome as its backend here and adds a dispatch layer on top, so
pycryptodome's public API is the faster of the two public options. Nearly all of its cost
is per-call overhead in the Python wrapper (a new state object with a cffi finaliser,
three ctypes-style argument conversions), not hashing. The hot path hashes three times per
verified message (struct, digest, signer's address), so :func:`keccak256` drives the
same C library (``Crypto.Hash._keccak``, through the declarations pycryptodome itself
loads) with one reusable state per thread: ``keccak_reset``, ``keccak_absorb``,
``keccak_digest``. That reaches into pycryptodome internals (pinned in
requirements.lock), so it is guarded: it is only used when pycryptodome runs on its cffi
backend and when it reproduces the public API on a set of inputs at import; otherwise
:func:`keccak256` is the public API. ``tests/wallet/test_keccak.py`` checks both paths,
including from many threads at once.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable
from typing import Any

from Crypto.Hash import keccak as _keccak

from wallet.types import Hash32

_new = _keccak.new

#: Inputs the fast path must hash exactly like the public API before it is used
#: (empty, short, one byte either side of the 136-byte rate, several blocks).
_SELF_TEST = [b"", b"abc", bytes(135), bytes(136), bytes(137), bytes(range(256)) * 5]


def public_keccak256(data: bytes) -> Hash32:
    """Keccak-256 through pycryptodome's public API (the reference for the fast path)."""
    return Hash32(_new(data=data, digest_bits=256).digest())


def _fast_keccak256() -> Callable[[bytes], Hash32] | None:
    """Keccak-256 on pycryptodome's C library with a per-thread state, or None when the
    library is not reachable as expected."""
    try:
        raw_api: Any = importlib.import_module("Crypto.Util._raw_api")
        lib: Any = _keccak._raw_keccak_lib  # type: ignore[attr-defined]
        ffi: Any = raw_api.ffi
        if raw_api.backend != "cffi":
            return None
        reset, absorb, squeeze = lib.keccak_reset, lib.keccak_absorb, lib.keccak_digest
        init, destroy = lib.keccak_init, lib.keccak_destroy
    except (ImportError, AttributeError):
        return None

    local = threading.local()

    def new_state() -> tuple[Any, Any, Any]:
        pointer = ffi.new("void **")
        if init(pointer, 64, 24):  # capacity 2 x 32 bytes, 24 rounds: Keccak-256
            raise RuntimeError("keccak_init failed")
        out = ffi.new("uint8_t[32]")
        return ffi.gc(pointer[0], destroy), out, ffi.buffer(out)

    def keccak256(data: bytes) -> Hash32:
        try:
            state, out, buffer = local.state
        except AttributeError:
            state, out, buffer = local.state = new_state()
        if type(data) is not bytes:
            data = bytes(data)
        reset(state)
        if absorb(state, data, len(data)) or squeeze(state, out, 32, 1):
            raise RuntimeError("keccak failed")
        return Hash32(buffer[:])

    try:
        if all(keccak256(x) == public_keccak256(x) for x in _SELF_TEST):
            return keccak256
    except Exception:  # noqa: S110 (any surprise in the internals: use the public API)
        pass
    return None


#: Keccak-256 of ``data`` (32 bytes): the fast path when available (see the module).
keccak256: Callable[[bytes], Hash32] = _fast_keccak256() or public_keccak256

#: Which implementation :func:`keccak256` is: "pycryptodome-raw" or "pycryptodome".
IMPLEMENTATION = "pycryptodome" if keccak256 is public_keccak256 else "pycryptodome-raw"
