"""The bytes of a log entry (a Merkle leaf), docs/protocol.md "Log entries".

    deposit:     0x00 ‖ id (8 bytes) ‖ beneficiary (20) ‖ token (20) ‖ amount (32)
    transfer:    0x01 ‖ the Transfer's EIP-712 digest (32)
    withdrawal:  0x02 ‖ the Withdrawal's EIP-712 digest (32)

The digest binds every field of the order and the domain (chain and Vault); the full
certificate is served next to the proof.
"""

from __future__ import annotations

from wallet.types import Address, Hash32, Order, Transfer

DEPOSIT = 0x00
TRANSFER = 0x01
WITHDRAWAL = 0x02


def deposit_leaf(deposit_id: int, beneficiary: Address, token: Address, amount: int) -> bytes:
    return (
        bytes([DEPOSIT])
        + deposit_id.to_bytes(8, "big")
        + beneficiary
        + token
        + amount.to_bytes(32, "big")
    )


def order_leaf(order: Order, digest: Hash32) -> bytes:
    return bytes([TRANSFER if isinstance(order, Transfer) else WITHDRAWAL]) + digest
