"""A web3.py client for the devnet's chain, with its HTTP session closed after use."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import requests
from web3 import HTTPProvider, Web3


@contextlib.contextmanager
def connect(rpc_url: str, timeout: float = 10.0) -> Iterator[Web3]:
    """A ``Web3`` on ``rpc_url`` that fails fast (no retries) when nothing answers."""
    session = requests.Session()
    try:
        provider = HTTPProvider(
            rpc_url,
            request_kwargs={"timeout": timeout},
            session=session,
            exception_retry_configuration=None,
        )
        yield Web3(provider)
    finally:
        session.close()
