"""The canonical EIP-712 encoding of Farthing's messages, written by hand.

This is the protocol's hot path (every vote, every certificate check), so it does not go
through a generic typed-data encoder: each struct is a fixed list of 32-byte words,
written directly. eth-account's ``encode_typed_data`` is the reference it is tested
against (``tests/wallet``), and the Vault's digest views check it on chain
(``tests/contracts/test_wallet_digests.py``).

Encoding (docs/protocol.md section 1)::

    domainSeparator = keccak256(DOMAIN_TYPEHASH ‖ keccak256("Farthing") ‖ keccak256("1")
                                ‖ uint256(chainId) ‖ address(vault))
    structHash(m)   = keccak256(typeHash(m) ‖ word(field_1) ‖ … ‖ word(field_k))
    digest(m)       = keccak256(0x19 ‖ 0x01 ‖ domainSeparator ‖ structHash(m))

A word is an address left-padded with 12 zero bytes, an unsigned integer in 32 bytes
big-endian, or a ``bytes32`` as is. Every field is range-checked first (uint64:
sequence, epoch, treeSize, timestamp; uint256: amount, chainId; 20-byte addresses;
32-byte hashes): a value that does not fit raises :class:`EncodingError` instead of
being silently truncated or widened. A Vote's ``order`` is the full **digest** of the
order, not its struct hash.
"""

from __future__ import annotations

import functools
from typing import assert_never

from wallet.errors import EncodingError
from wallet.keccak import keccak256
from wallet.types import (
    UINT64_MAX,
    UINT256_MAX,
    Address,
    Checkpoint,
    Cosignature,
    Domain,
    Epoch,
    Hash32,
    Order,
    Transfer,
    Vote,
    Withdrawal,
)

DOMAIN_NAME = "Farthing"
DOMAIN_VERSION = "1"

DOMAIN_TYPE = "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
TRANSFER_TYPE = (
    "Transfer(address payer,address payee,address token,uint256 amount,uint64 sequence,"
    "bytes32 reference)"
)
WITHDRAWAL_TYPE = (
    "Withdrawal(address account,address recipient,address token,uint256 amount,uint64 sequence)"
)
VOTE_TYPE = "Vote(bytes32 order,uint64 epoch)"
CHECKPOINT_TYPE = "Checkpoint(address node,uint64 treeSize,bytes32 root,uint64 timestamp)"
COSIGNATURE_TYPE = (
    "Cosignature(address witness,address node,uint64 treeSize,bytes32 root,uint64 timestamp)"
)

DOMAIN_TYPEHASH = keccak256(DOMAIN_TYPE.encode())
TRANSFER_TYPEHASH = keccak256(TRANSFER_TYPE.encode())
WITHDRAWAL_TYPEHASH = keccak256(WITHDRAWAL_TYPE.encode())
VOTE_TYPEHASH = keccak256(VOTE_TYPE.encode())
CHECKPOINT_TYPEHASH = keccak256(CHECKPOINT_TYPE.encode())
COSIGNATURE_TYPEHASH = keccak256(COSIGNATURE_TYPE.encode())

_NAME_HASH = keccak256(DOMAIN_NAME.encode())
_VERSION_HASH = keccak256(DOMAIN_VERSION.encode())
_DIGEST_PREFIX = b"\x19\x01"
_ADDRESS_PAD = bytes(12)

#: Every message type that has an EIP-712 struct hash.
Message = Transfer | Withdrawal | Vote | Checkpoint | Cosignature


# ---------------------------------------------------------------- words


def _address(value: Address, field: str) -> bytes:
    if isinstance(value, bytes) and len(value) == 20:
        return _ADDRESS_PAD + value
    raise EncodingError(field, f"expected a 20-byte address, got {_describe(value)}")


def _bytes32(value: Hash32, field: str) -> bytes:
    if isinstance(value, bytes) and len(value) == 32:
        return value
    raise EncodingError(field, f"expected 32 bytes, got {_describe(value)}")


def _uint64(value: int, field: str) -> bytes:
    if type(value) is int and 0 <= value <= UINT64_MAX:
        return value.to_bytes(32, "big")
    raise EncodingError(field, f"expected an integer 0 <= {field} < 2**64, got {_describe(value)}")


def _uint256(value: int, field: str) -> bytes:
    if type(value) is int and 0 <= value <= UINT256_MAX:
        return value.to_bytes(32, "big")
    raise EncodingError(field, f"expected an integer 0 <= {field} < 2**256, got {_describe(value)}")


def _describe(value: object) -> str:
    if type(value) is int:
        return (
            str(value) if value.bit_length() <= 512 else f"an integer of {value.bit_length()} bits"
        )
    if isinstance(value, bytes):
        return f"{len(value)} bytes"
    return type(value).__name__


# ---------------------------------------------------------------- domain


def _compute_separator(domain: Domain) -> Hash32:
    return keccak256(
        b"".join(
            (
                DOMAIN_TYPEHASH,
                _NAME_HASH,
                _VERSION_HASH,
                _uint256(domain.chain_id, "chainId"),
                _address(domain.vault, "verifyingContract"),
            )
        )
    )


_cached_separator = functools.lru_cache(maxsize=32)(_compute_separator)


def domain_separator(domain: Domain) -> Hash32:
    """The EIP-712 domain separator of ``("Farthing", "1", chain_id, vault)``.

    Cached per domain (a frozen, hashable dataclass); a node or wallet uses one or two.
    """
    if type(domain.chain_id) is not int or type(domain.vault) is not bytes:
        # Not cached: a bool or a float can equal a cached chain id, a bytearray is not
        # hashable. The encoder refuses them with the precise error (or, for a bytes
        # subclass such as HexBytes, accepts it).
        return _compute_separator(domain)
    return _cached_separator(domain)


# ---------------------------------------------------------------- struct hashes


def _transfer_hash(t: Transfer) -> Hash32:
    return keccak256(
        b"".join(
            (
                TRANSFER_TYPEHASH,
                _address(t.payer, "payer"),
                _address(t.payee, "payee"),
                _address(t.token, "token"),
                _uint256(t.amount, "amount"),
                _uint64(t.sequence, "sequence"),
                _bytes32(t.reference, "reference"),
            )
        )
    )


def _withdrawal_hash(w: Withdrawal) -> Hash32:
    return keccak256(
        b"".join(
            (
                WITHDRAWAL_TYPEHASH,
                _address(w.account, "account"),
                _address(w.recipient, "recipient"),
                _address(w.token, "token"),
                _uint256(w.amount, "amount"),
                _uint64(w.sequence, "sequence"),
            )
        )
    )


def _vote_hash(order: Hash32, epoch: Epoch) -> Hash32:
    return keccak256(VOTE_TYPEHASH + _bytes32(order, "order") + _uint64(epoch, "epoch"))


def _checkpoint_hash(c: Checkpoint) -> Hash32:
    return keccak256(
        b"".join(
            (
                CHECKPOINT_TYPEHASH,
                _address(c.node, "node"),
                _uint64(c.tree_size, "treeSize"),
                _bytes32(c.root, "root"),
                _uint64(c.timestamp, "timestamp"),
            )
        )
    )


def _cosignature_hash(c: Cosignature) -> Hash32:
    return keccak256(
        b"".join(
            (
                COSIGNATURE_TYPEHASH,
                _address(c.witness, "witness"),
                _address(c.node, "node"),
                _uint64(c.tree_size, "treeSize"),
                _bytes32(c.root, "root"),
                _uint64(c.timestamp, "timestamp"),
            )
        )
    )


def struct_hash(message: Message) -> Hash32:
    """EIP-712 ``hashStruct`` of a Transfer, Withdrawal, Vote, Checkpoint or Cosignature.

    A :class:`~wallet.types.Vote`'s struct covers ``order`` and ``epoch`` only (its
    ``signer`` and ``signature`` are not signed data).
    """
    if isinstance(message, Transfer):
        return _transfer_hash(message)
    if isinstance(message, Withdrawal):
        return _withdrawal_hash(message)
    if isinstance(message, Vote):
        return _vote_hash(message.order, message.epoch)
    if isinstance(message, Checkpoint):
        return _checkpoint_hash(message)
    if isinstance(message, Cosignature):
        return _cosignature_hash(message)
    assert_never(message)


def _digest(domain: Domain, struct: Hash32) -> Hash32:
    return keccak256(_DIGEST_PREFIX + domain_separator(domain) + struct)


# ---------------------------------------------------------------- digests


def order_digest(domain: Domain, order: Order) -> Hash32:
    """The EIP-712 digest of a Transfer or Withdrawal: what its owner signs, and what a
    Vote's ``order`` field holds."""
    if isinstance(order, Transfer):
        return _digest(domain, _transfer_hash(order))
    if isinstance(order, Withdrawal):
        return _digest(domain, _withdrawal_hash(order))
    assert_never(order)


def vote_digest(domain: Domain, order: Hash32, epoch: Epoch) -> Hash32:
    """The EIP-712 digest of ``Vote{order, epoch}``: what a committee member signs.

    ``order`` is the order's :func:`order_digest`.
    """
    return _digest(domain, _vote_hash(order, epoch))


def checkpoint_digest(domain: Domain, checkpoint: Checkpoint) -> Hash32:
    """The EIP-712 digest of a node's ``Checkpoint`` (signed tree head)."""
    return _digest(domain, _checkpoint_hash(checkpoint))


def cosignature_digest(domain: Domain, cosignature: Cosignature) -> Hash32:
    """The EIP-712 digest of a witness's ``Cosignature`` of another node's tree head."""
    return _digest(domain, _cosignature_hash(cosignature))
