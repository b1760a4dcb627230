"""The protocol's identifiers, amounts and messages, as immutable values.

Identifiers are raw bytes inside Farthing (20-byte addresses, 32-byte hashes): that is
what gets hashed and signed, and comparing bytes is cheap. Text forms (``0x…`` checksummed
addresses, hex hashes) exist only at the edges (JSON, CLI) through :mod:`wallet.codec`.
Amounts are integers in the token's base units, never floats.

The message types mirror the EIP-712 types of docs/protocol.md section 1:
``Transfer``, ``Withdrawal`` (together: an :data:`Order`), ``Vote``, ``Checkpoint`` and
``Cosignature``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NewType

#: A 20-byte Ethereum address (an account, a token, a contract, a node).
Address = NewType("Address", bytes)
#: A 32-byte hash (an EIP-712 digest, a Merkle root, a reference).
Hash32 = NewType("Hash32", bytes)
#: An amount in a token's base units (USDF: 6 decimals, FAR: 18), 0 <= amount < 2**256.
Amount = NewType("Amount", int)
#: An account's sequence number: transfers and withdrawals of one account share it.
Sequence = NewType("Sequence", int)
#: A committee epoch (1 is the first).
Epoch = NewType("Epoch", int)
#: A 65-byte secp256k1 signature r ‖ s ‖ v, v in {27, 28}, s in the lower half order.
Signature = NewType("Signature", bytes)

ZERO_HASH = Hash32(bytes(32))
ZERO_ADDRESS = Address(bytes(20))
UINT64_MAX = 2**64 - 1
UINT256_MAX = 2**256 - 1


@dataclass(frozen=True, slots=True)
class Domain:
    """The EIP-712 domain: ("Farthing", "1", chain_id, the Vault's address)."""

    chain_id: int
    vault: Address


@dataclass(frozen=True, slots=True)
class Transfer:
    """``payer`` pays ``amount`` of ``token`` to ``payee`` at the payer's ``sequence``;
    ``reference`` binds it to a quote or request (zero when unused)."""

    payer: Address
    payee: Address
    token: Address
    amount: Amount
    sequence: Sequence
    reference: Hash32 = ZERO_HASH

    @property
    def owner(self) -> Address:
        """The account whose sequence and balance the order uses (and who signs it)."""
        return self.payer


@dataclass(frozen=True, slots=True)
class Withdrawal:
    """``account`` moves ``amount`` of ``token`` out of the ledger to ``recipient`` on
    chain, at the account's ``sequence``."""

    account: Address
    recipient: Address
    token: Address
    amount: Amount
    sequence: Sequence

    @property
    def owner(self) -> Address:
        return self.account


#: An order an account owner signs; both kinds share the owner's sequence.
Order = Transfer | Withdrawal


@dataclass(frozen=True, slots=True)
class SignedOrder:
    """An order with its owner's signature (what a node votes on)."""

    order: Order
    signature: Signature


@dataclass(frozen=True, slots=True)
class Vote:
    """Committee member ``signer`` vouches for the order with EIP-712 digest ``order``
    in ``epoch``; ``signature`` signs the Vote's own EIP-712 digest."""

    order: Hash32
    epoch: Epoch
    signer: Address
    signature: Signature


@dataclass(frozen=True, slots=True)
class Certificate:
    """Proof that an order is final: the signed order and the votes of at least a quorum
    of distinct members of ``epoch``, as (member, signature) pairs sorted by member."""

    signed: SignedOrder
    epoch: Epoch
    votes: tuple[tuple[Address, Signature], ...]

    @property
    def order(self) -> Order:
        return self.signed.order


@dataclass(frozen=True, slots=True)
class Equivocation:
    """Slashing evidence: committee member ``member`` voted for two different orders of
    one account at one sequence (``first`` in ``first_epoch``, ``second`` in
    ``second_epoch``), the two vote signatures with them. The arguments of
    ``Vault.slashEquivocation`` (docs/protocol.md 4.4); check it with
    :func:`wallet.signing.check_equivocation`."""

    member: Address
    first: Order
    first_epoch: Epoch
    first_signature: Signature
    second: Order
    second_epoch: Epoch
    second_signature: Signature


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A node's signed tree head: its log had ``tree_size`` entries with Merkle ``root``
    at ``timestamp`` (Unix milliseconds)."""

    node: Address
    tree_size: int
    root: Hash32
    timestamp: int


@dataclass(frozen=True, slots=True)
class Cosignature:
    """Witness ``witness`` vouches that node ``node``'s log had Merkle ``root`` at
    ``tree_size`` entries, and that this is consistent with every earlier checkpoint of
    ``node`` the witness accepted; ``timestamp`` is the witness's clock when it cosigned
    (Unix milliseconds). It names the tree (size and root), not the node's checkpoint
    timestamp: two checkpoints of one tree are the same statement."""

    witness: Address
    node: Address
    tree_size: int
    root: Hash32
    timestamp: int
