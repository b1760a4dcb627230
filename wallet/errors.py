"""The wallet package's errors: one root, mixed into the standard type it refines.

Every error the wallet raises on purpose is a :class:`WalletError`, so a caller can catch
the package as a whole; each one is also the built-in exception it refines (``ValueError``
for a bad value), so code that knows nothing of Farthing still handles it sensibly.

The hierarchy is split by **whose fault** it is and **whether retrying can help**::

    WalletError
    │
    │   Bad input: retrying the same call can never succeed.
    │   Raised at an edge (a peer's message, JSON, the CLI), it is a refusal with a
    │   reason (the node answers 4xx), not a crash.
    ├── EncodingError (ValueError)     a field cannot be encoded or decoded: an address that
    │                                  is not 20 bytes, a hash that is not 32, an integer
    │                                  outside its uint range, malformed hex, a bad EIP-55
    │                                  checksum; or a malformed wire message (wallet.wire: a
    │                                  missing or unknown key, a value of the wrong JSON type)
    ├── InvalidSignature (ValueError)  a signature that is malformed (not 65 bytes, v not in
    │                                  {27, 28}, r or s zero or >= n), malleable (high s),
    │                                  or that recovers to no public key (in a wire message,
    │                                  text that is not 0x + 130 hex digits is an
    │                                  EncodingError of its field; the rest is checked when
    │                                  the signature is verified)
    └── InvalidKey (ValueError)        a private key that cannot be used: not 32 bytes, zero
                                       or >= n, or not the key of the account that must sign

    Reserved (added by the issues that need them), with the same split:
    ├── transport errors of the node client: timeouts, refused connections, a node
    │   that lags (recoverable: retry, possibly against another node)
    └── chain errors of the settlement helpers: a reverted or dropped transaction

Messages name the field and say what was expected. They never contain key material:
no error, ``repr`` or ``str`` in this package may reveal a private key.
"""

from __future__ import annotations


class WalletError(Exception):
    """The root of every error the wallet package raises on purpose."""


class EncodingError(WalletError, ValueError):
    """A value cannot be encoded as the protocol field it is meant to be.

    ``field`` names the field (``"amount"``, ``"payer"``, ``"address"``…; in a wire message,
    its dotted path: ``"order.amount"``, ``"votes[2].signature"``), so that an API can
    refuse a request with a precise reason.
    """

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


class InvalidSignature(WalletError, ValueError):  # noqa: N818 (the protocol's name for it)
    """A signature is malformed, malleable (high s), or recovers to no public key.

    Whoever produced the signature is at fault; the same bytes never become valid.
    """


class InvalidKey(WalletError, ValueError):  # noqa: N818 (named like InvalidSignature)
    """A private key cannot be used: malformed, out of range, or the wrong account's.

    The message never contains the key or the text it was parsed from.
    """
