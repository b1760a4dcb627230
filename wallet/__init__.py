"""The Farthing agent wallet library (issue 4): keys, the protocol's message types and
their EIP-712 encoding, the client of the node network, chain helpers, the agent runtime.

It is the lower layer: it never imports ``node`` (``tests/test_layering.py``).

Encode, then sign (the digests come from :mod:`wallet.eip712`, the signer signs only
those)::

    from wallet import Amount, Domain, PrivateKey, Sequence, Transfer, parse_address
    from wallet import sign_order, verify_order

    key = PrivateKey.from_hex(manifest["agents"][0]["private_key"])
    domain = Domain(manifest["chain_id"], parse_address(manifest["contracts"]["vault"]))
    payee, usdf = parse_address(payee_text), parse_address(manifest["contracts"]["stable"])
    order = Transfer(key.address, payee, usdf, Amount(1_500), Sequence(0))
    signed = sign_order(key, domain, order)
    assert verify_order(domain, signed)

Modules: :mod:`wallet.types` (the messages), :mod:`wallet.eip712` (their canonical
encoding and digests), :mod:`wallet.signing` (keys, signatures, recovery),
:mod:`wallet.codec` (text forms at the edges), :mod:`wallet.wire` (the messages as the
node API's JSON, docs/wire-format.md), :mod:`wallet.errors`.
"""

from wallet.codec import (
    address_hex,
    check_signature,
    hash_hex,
    parse_address,
    parse_hash32,
    parse_signature,
    signature_hex,
)
from wallet.eip712 import (
    checkpoint_digest,
    cosignature_digest,
    domain_separator,
    order_digest,
    struct_hash,
    vote_digest,
)
from wallet.errors import EncodingError, InvalidKey, InvalidSignature, WalletError
from wallet.keccak import keccak256
from wallet.signing import (
    PrivateKey,
    recover,
    sign_checkpoint,
    sign_cosignature,
    sign_order,
    sign_vote,
    verify,
    verify_checkpoint,
    verify_cosignature,
    verify_order,
    verify_vote,
)
from wallet.types import (
    UINT64_MAX,
    UINT256_MAX,
    ZERO_HASH,
    Address,
    Amount,
    Certificate,
    Checkpoint,
    Cosignature,
    Domain,
    Epoch,
    Hash32,
    Order,
    Sequence,
    Signature,
    SignedOrder,
    Transfer,
    Vote,
    Withdrawal,
)
from wallet.wire import (
    MAX_VOTES,
    CertificateJSON,
    CertificateVoteJSON,
    CheckpointJSON,
    OrderJSON,
    SignedCheckpointJSON,
    SignedCosignatureJSON,
    SignedOrderJSON,
    TransferJSON,
    VoteJSON,
    WithdrawalJSON,
    certificate_from_json,
    certificate_to_json,
    checkpoint_from_json,
    checkpoint_to_json,
    order_from_json,
    order_to_json,
    signed_checkpoint_from_json,
    signed_checkpoint_to_json,
    signed_cosignature_from_json,
    signed_cosignature_to_json,
    signed_order_from_json,
    signed_order_to_json,
    vote_from_json,
    vote_to_json,
)

__all__ = [
    "MAX_VOTES",
    "UINT64_MAX",
    "UINT256_MAX",
    "ZERO_HASH",
    "Address",
    "Amount",
    "Certificate",
    "CertificateJSON",
    "CertificateVoteJSON",
    "Checkpoint",
    "CheckpointJSON",
    "Cosignature",
    "Domain",
    "EncodingError",
    "Epoch",
    "Hash32",
    "InvalidKey",
    "InvalidSignature",
    "Order",
    "OrderJSON",
    "PrivateKey",
    "Sequence",
    "Signature",
    "SignedCheckpointJSON",
    "SignedCosignatureJSON",
    "SignedOrder",
    "SignedOrderJSON",
    "Transfer",
    "TransferJSON",
    "Vote",
    "VoteJSON",
    "WalletError",
    "Withdrawal",
    "WithdrawalJSON",
    "address_hex",
    "certificate_from_json",
    "certificate_to_json",
    "check_signature",
    "checkpoint_digest",
    "checkpoint_from_json",
    "checkpoint_to_json",
    "cosignature_digest",
    "domain_separator",
    "hash_hex",
    "keccak256",
    "order_digest",
    "order_from_json",
    "order_to_json",
    "parse_address",
    "parse_hash32",
    "parse_signature",
    "recover",
    "sign_checkpoint",
    "sign_cosignature",
    "sign_order",
    "sign_vote",
    "signature_hex",
    "signed_checkpoint_from_json",
    "signed_checkpoint_to_json",
    "signed_cosignature_from_json",
    "signed_cosignature_to_json",
    "signed_order_from_json",
    "signed_order_to_json",
    "struct_hash",
    "verify",
    "verify_checkpoint",
    "verify_cosignature",
    "verify_order",
    "verify_vote",
    "vote_digest",
    "vote_from_json",
    "vote_to_json",
]
