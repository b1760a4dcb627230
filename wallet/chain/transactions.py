"""Transaction signing (pure): EIP-1559 transactions signed with
:class:`~wallet.signing.PrivateKey` (the key never leaves it, :func:`sign_transaction`) and
the EIP-712 digest of an EIP-2612 permit (:func:`permit_digest`).
"""

from __future__ import annotations

from typing import Any, Final

from eth_account.typed_transactions.typed_transaction import TypedTransaction

from wallet.errors import EncodingError
from wallet.keccak import keccak256
from wallet.signing import PrivateKey
from wallet.types import UINT256_MAX, Address, Hash32

#: EIP-2612: ``Permit(address owner,address spender,uint256 value,uint256 nonce,uint256
#: deadline)``
PERMIT_TYPEHASH: Final = keccak256(
    b"Permit(address owner,address spender,uint256 value,uint256 nonce,uint256 deadline)"
)


def permit_digest(
    domain_separator: bytes,
    owner: Address,
    spender: Address,
    value: int,
    nonce: int,
    deadline: int,
) -> Hash32:
    """The EIP-712 digest of an EIP-2612 ``Permit`` under the token's domain separator."""
    if len(domain_separator) != 32:
        raise EncodingError("domain_separator", "expected 32 bytes")
    words = [PERMIT_TYPEHASH, bytes(12) + owner, bytes(12) + spender]
    for field, number in (("value", value), ("nonce", nonce), ("deadline", deadline)):
        if not isinstance(number, int) or not 0 <= number <= UINT256_MAX:
            raise EncodingError(field, "expected an integer in 0..2**256-1")
        words.append(number.to_bytes(32, "big"))
    if len(owner) != 20 or len(spender) != 20:
        raise EncodingError("owner/spender", "expected 20-byte addresses")
    return Hash32(keccak256(b"\x19\x01" + bytes(domain_separator) + keccak256(b"".join(words))))


def sign_transaction(key: PrivateKey, transaction: dict[str, Any]) -> bytes:
    """The raw signed bytes of a typed (EIP-1559 or EIP-2930) transaction, signed with
    ``key`` (it never leaves :class:`~wallet.signing.PrivateKey`; eth-account only
    serializes and hashes). ``transaction`` is eth-account's dict form (``chainId``,
    ``nonce``, ``to``, ``data``, ``gas``, ``maxFeePerGas``, ``maxPriorityFeePerGas``,
    ``value``)."""
    unsigned = TypedTransaction.from_dict(dict(transaction))
    signature = key.unsafe_sign_digest(Hash32(bytes(unsigned.hash())))
    signed = (
        dict(transaction)
        | {
            "v": signature[64] - 27,  # typed transactions carry the y parity
            "r": int.from_bytes(signature[:32], "big"),
            "s": int.from_bytes(signature[32:64], "big"),
        }
    )
    return TypedTransaction.from_dict(signed).encode()
