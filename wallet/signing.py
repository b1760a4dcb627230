"""secp256k1 keys, signatures of EIP-712 digests, and recovery of the signer.

Signatures are 65 bytes ``r ‖ s ‖ v`` with ``v`` in {27, 28} and low ``s`` (EIP-2);
libsecp256k1 (through coincurve) only ever produces low-s signatures, and :func:`recover`
refuses any other form (a malleable twin ``(r, n - s, v ^ 1)`` of a valid signature is
refused, although ``ecrecover`` and eth-account would accept it).

Encode, then sign: the digests come from :mod:`wallet.eip712`. The raw primitive that
signs any 32 bytes is named :meth:`PrivateKey.unsafe_sign_digest` (eth-account calls it
``unsafe_sign_hash``): whoever chooses those bytes chooses what the key vouches for. Use
:func:`sign_order`, :func:`sign_vote`, :func:`sign_checkpoint` and
:func:`sign_cosignature` instead.
"""

from __future__ import annotations

import secrets
from typing import NoReturn

import coincurve

from wallet.codec import SECP256K1_N, address_hex, check_signature
from wallet.eip712 import checkpoint_digest, cosignature_digest, order_digest, vote_digest
from wallet.errors import EncodingError, InvalidKey, InvalidSignature
from wallet.keccak import keccak256
from wallet.types import (
    Address,
    Checkpoint,
    Cosignature,
    Domain,
    Epoch,
    Equivocation,
    Hash32,
    Order,
    Signature,
    SignedOrder,
    Vote,
)

_RECOVER = coincurve.PublicKey.from_signature_and_message
_V_OFFSET = 27
_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")


def _check_digest(digest: bytes) -> None:
    if not isinstance(digest, bytes) or len(digest) != 32:
        got = f"{len(digest)} bytes" if isinstance(digest, bytes) else type(digest).__name__
        raise EncodingError("digest", f"expected 32 bytes, got {got}")


def _public_key_address(public_key: coincurve.PublicKey) -> Address:
    """The Ethereum address of a public key: the last 20 bytes of the keccak256 of its
    uncompressed encoding without the 0x04 prefix."""
    return Address(keccak256(public_key.format(compressed=False)[1:])[12:])


class PrivateKey:
    """A secp256k1 private key that never shows itself.

    ``repr`` and ``str`` give only the address, it refuses to be pickled (so it cannot
    end up in a cache, a queue or a crash dump by accident), and no error raised here
    contains it. One method returns the secret, :meth:`export_private_key_hex`, named so
    that it stands out in a review; the keystore (:mod:`wallet.keystore`) is the way to
    store a key. Mnemonics and the agent address are in :mod:`wallet.keys`.
    """

    __slots__ = ("_address", "_key")

    _key: coincurve.PrivateKey
    _address: Address

    def __init__(self, secret: bytes) -> None:
        """The key whose scalar is the 32 big-endian bytes ``secret`` (0 < secret < n).

        Raises :class:`InvalidKey` (without the secret in the message).
        """
        if not isinstance(secret, bytes) or len(secret) != 32:
            got = f"{len(secret)} bytes" if isinstance(secret, bytes) else type(secret).__name__
            raise InvalidKey(f"a private key is 32 bytes, got {got}")
        if not 0 < int.from_bytes(secret, "big") < SECP256K1_N:
            raise InvalidKey("a private key must be greater than 0 and less than n")
        key = coincurve.PrivateKey(bytes(secret))
        self._key = key
        self._address = _public_key_address(key.public_key)

    @classmethod
    def generate(cls) -> PrivateKey:
        """A new random key (from the operating system's CSPRNG)."""
        while True:
            secret = secrets.token_bytes(32)
            if 0 < int.from_bytes(secret, "big") < SECP256K1_N:
                return cls(secret)

    @classmethod
    def from_hex(cls, text: str) -> PrivateKey:
        """The key written as 64 hex digits, with or without ``0x`` (as in the devnet
        manifest). Raises :class:`InvalidKey`, never echoing the text."""
        body = text[2:] if isinstance(text, str) and text[:2] == "0x" else text
        if not isinstance(body, str) or len(body) != 64 or not _HEX_DIGITS.issuperset(body):
            raise InvalidKey("a private key in hex is 64 hex digits, optionally after 0x")
        return cls(bytes.fromhex(body))

    @property
    def address(self) -> Address:
        """The Ethereum address of this key (computed once)."""
        return self._address

    @property
    def public_key(self) -> bytes:
        """The 33-byte compressed SEC1 public key (``0x02``/``0x03`` ‖ x): what a uAgents
        ``agent1...`` address encodes."""
        return bytes(self._key.public_key.format(compressed=True))

    def export_private_key_hex(self) -> str:
        """The SECRET: ``0x`` + 64 lower-case hex digits, the form :meth:`from_hex` reads.

        Whoever sees this text owns the account. Call it only to hand the key to the user
        on purpose (a backup shown once, a CLI ``export`` command); never log it, never
        put it in an error or a file other than an encrypted keystore.
        """
        return "0x" + bytes(self._key.secret).hex()

    def unsafe_sign_digest(self, digest: Hash32) -> Signature:
        """Signs the 32 bytes ``digest`` as they are: ``r ‖ s ‖ v``, low s, v = recid + 27.

        UNSAFE as a general tool, like eth-account's ``unsafe_sign_hash``: the key vouches
        for whatever message hashes to ``digest``, and nothing here can check what that is.
        Pass only digests computed by :mod:`wallet.eip712` (or use :func:`sign_order`,
        :func:`sign_vote`, :func:`sign_checkpoint`). Signing is deterministic (RFC 6979).
        """
        _check_digest(digest)
        raw = self._key.sign_recoverable(digest, hasher=None)
        return Signature(raw[:64] + bytes((raw[64] + _V_OFFSET,)))

    def __repr__(self) -> str:
        return f"PrivateKey(address={address_hex(self._address)})"

    __str__ = __repr__

    def __reduce__(self) -> NoReturn:
        raise TypeError("a PrivateKey cannot be pickled")

    def __copy__(self) -> PrivateKey:
        return self  # immutable

    def __deepcopy__(self, memo: object) -> PrivateKey:
        return self

    def __eq__(self, other: object) -> bool:
        # One address, one key (a collision would break Ethereum itself), and comparing
        # addresses keeps the secrets out of any timing.
        if not isinstance(other, PrivateKey):
            return NotImplemented
        return self._address == other._address

    def __hash__(self) -> int:
        return hash(self._address)


def recover(digest: Hash32, signature: Signature) -> Address:
    """The address whose key produced ``signature`` over ``digest``.

    Raises :class:`InvalidSignature` if the signature is not in canonical form (65 bytes,
    v in {27, 28}, 0 < r < n, 0 < s <= n/2) or recovers to no public key, and
    :class:`EncodingError` if ``digest`` is not 32 bytes. A valid signature of another
    digest recovers to some other address: compare with the expected signer, or use
    :func:`verify`.
    """
    _check_digest(digest)
    check_signature(signature)
    try:
        public_key = _RECOVER(
            signature[:64] + bytes((signature[64] - _V_OFFSET,)), digest, hasher=None
        )
    except ValueError:
        raise InvalidSignature("the signature recovers to no public key") from None
    return _public_key_address(public_key)


def verify(digest: Hash32, signature: Signature, expected: Address) -> bool:
    """Whether ``signature`` is a canonical signature of ``digest`` by ``expected``.

    A malformed or malleable signature is simply not valid (False); only a malformed
    ``digest`` (the caller's own bug) raises :class:`EncodingError`.
    """
    try:
        return recover(digest, signature) == expected
    except InvalidSignature:
        return False


# ---------------------------------------------------------------- messages


def _require_signer(key: PrivateKey, who: Address, role: str) -> None:
    if key.address != who:
        raise InvalidKey(
            f"this key is {address_hex(key.address)}, but the {role} is {address_hex(who)}"
        )


def sign_order(key: PrivateKey, domain: Domain, order: Order) -> SignedOrder:
    """The owner's signature of an order. Raises :class:`InvalidKey` if ``key`` is not the
    order's owner (payer or account): nobody else's signature could ever be valid."""
    _require_signer(key, order.owner, "order's owner")
    return SignedOrder(order, key.unsafe_sign_digest(order_digest(domain, order)))


def sign_vote(key: PrivateKey, domain: Domain, order: Hash32, epoch: Epoch) -> Vote:
    """A committee member's vote for the order whose digest is ``order`` in ``epoch``."""
    signature = key.unsafe_sign_digest(vote_digest(domain, order, epoch))
    return Vote(order, epoch, key.address, signature)


def sign_checkpoint(key: PrivateKey, domain: Domain, checkpoint: Checkpoint) -> Signature:
    """A node's signature of its checkpoint. Raises :class:`InvalidKey` if ``key`` is not
    the checkpoint's ``node``."""
    _require_signer(key, checkpoint.node, "checkpoint's node")
    return key.unsafe_sign_digest(checkpoint_digest(domain, checkpoint))


def sign_cosignature(key: PrivateKey, domain: Domain, cosignature: Cosignature) -> Signature:
    """A witness's signature of its cosignature of another node's tree head. Raises
    :class:`InvalidKey` if ``key`` is not the cosignature's ``witness``."""
    _require_signer(key, cosignature.witness, "cosignature's witness")
    return key.unsafe_sign_digest(cosignature_digest(domain, cosignature))


def verify_order(domain: Domain, signed: SignedOrder) -> bool:
    """Whether ``signed`` carries its owner's canonical signature of the order."""
    return verify(order_digest(domain, signed.order), signed.signature, signed.order.owner)


def verify_vote(domain: Domain, vote: Vote) -> bool:
    """Whether ``vote`` carries its ``signer``'s canonical signature of ``Vote{order, epoch}``
    (membership of the epoch's committee is the caller's to check)."""
    return verify(vote_digest(domain, vote.order, vote.epoch), vote.signature, vote.signer)


def check_equivocation(domain: Domain, evidence: Equivocation) -> str | None:
    """Why ``evidence`` would not slash its member (the Vault's own checks: one account
    and sequence, two different orders, both votes the member's canonical signatures),
    or None when it is sound. Membership of the epochs is the Vault's to check."""
    first, second = evidence.first, evidence.second
    if (first.owner, first.sequence) != (second.owner, second.sequence):
        return "the two orders are not of one account and sequence"
    first_digest, second_digest = order_digest(domain, first), order_digest(domain, second)
    if first_digest == second_digest:
        return "the two orders are the same order"
    for digest, epoch, signature, which in (
        (first_digest, evidence.first_epoch, evidence.first_signature, "first"),
        (second_digest, evidence.second_epoch, evidence.second_signature, "second"),
    ):
        if not verify(vote_digest(domain, digest, epoch), signature, evidence.member):
            return f"the {which} vote is not the member's signature"
    return None


def verify_checkpoint(domain: Domain, checkpoint: Checkpoint, signature: Signature) -> bool:
    """Whether ``signature`` is ``checkpoint.node``'s canonical signature of it."""
    return verify(checkpoint_digest(domain, checkpoint), signature, checkpoint.node)


def verify_cosignature(domain: Domain, cosignature: Cosignature, signature: Signature) -> bool:
    """Whether ``signature`` is ``cosignature.witness``'s canonical signature of it (whether
    the witness is one whose word counts is the caller's to decide)."""
    return verify(cosignature_digest(domain, cosignature), signature, cosignature.witness)
