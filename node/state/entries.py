"""The bytes of a log entry (a Merkle leaf), docs/protocol.md "Log entries".

    deposit:     0x00 ‖ id (8 bytes) ‖ beneficiary (20) ‖ token (20) ‖ amount (32)
    transfer:    0x01 ‖ the Transfer's EIP-712 digest (32)
    withdrawal:  0x02 ‖ the Withdrawal's EIP-712 digest (32)

The digest binds every field of the order and the domain (chain and Vault); the full
certificate is served next to the proof.
"""

from __future__ import annotations

from dataclasses import dataclass

from wallet.types import Address, Amount, Hash32, Order, Transfer

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


@dataclass(frozen=True, slots=True)
class DepositEntry:
    """A deposit log entry read back from its leaf (the leaf is all the log keeps of a
    deposit: the chain has the rest)."""

    deposit_id: int
    beneficiary: Address
    token: Address
    amount: Amount


DEPOSIT_LEAF_SIZE = 1 + 8 + 20 + 20 + 32


def parse_deposit_leaf(leaf: bytes) -> DepositEntry | None:
    """The deposit in ``leaf``, or None when the leaf is an order's."""
    if len(leaf) != DEPOSIT_LEAF_SIZE or leaf[0] != DEPOSIT:
        return None
    return DepositEntry(
        int.from_bytes(leaf[1:9], "big"),
        Address(leaf[9:29]),
        Address(leaf[29:49]),
        Amount(int.from_bytes(leaf[49:81], "big")),
    )
