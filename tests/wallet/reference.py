"""The reference the wallet's hand-written encoder is checked against: eth-account's
generic EIP-712 encoder (``encode_typed_data``) fed with the wallet's values, and the
hypothesis strategies that generate those values."""

from __future__ import annotations

from typing import Any

from eth_account.messages import _hash_eip191_message, encode_typed_data
from eth_utils import to_checksum_address
from hypothesis import strategies as st

from scripts.gen_eip712_vectors import FIELDS
from wallet.codec import SECP256K1_N
from wallet.types import (
    UINT64_MAX,
    UINT256_MAX,
    Address,
    Amount,
    Checkpoint,
    Cosignature,
    Domain,
    Epoch,
    Hash32,
    Sequence,
    Transfer,
    Withdrawal,
)


def _signable(domain: Domain, primary: str, message: dict[str, Any]) -> Any:
    return encode_typed_data(
        full_message={
            "types": {
                name: [{"name": n, "type": t} for n, t in FIELDS[name]]
                for name in ("EIP712Domain", primary)
            },
            "primaryType": primary,
            "domain": {
                "name": "Farthing",
                "version": "1",
                "chainId": domain.chain_id,
                "verifyingContract": to_checksum_address(domain.vault),
            },
            "message": message,
        }
    )


Signed = Transfer | Withdrawal | Checkpoint | Cosignature


def _message(value: Signed) -> tuple[str, dict[str, Any]]:
    if isinstance(value, Transfer):
        return "Transfer", {
            "payer": to_checksum_address(value.payer),
            "payee": to_checksum_address(value.payee),
            "token": to_checksum_address(value.token),
            "amount": value.amount,
            "sequence": value.sequence,
            "reference": value.reference,
        }
    if isinstance(value, Withdrawal):
        return "Withdrawal", {
            "account": to_checksum_address(value.account),
            "recipient": to_checksum_address(value.recipient),
            "token": to_checksum_address(value.token),
            "amount": value.amount,
            "sequence": value.sequence,
        }
    if isinstance(value, Cosignature):
        return "Cosignature", {
            "witness": to_checksum_address(value.witness),
            "node": to_checksum_address(value.node),
            "treeSize": value.tree_size,
            "root": value.root,
            "timestamp": value.timestamp,
        }
    return "Checkpoint", {
        "node": to_checksum_address(value.node),
        "treeSize": value.tree_size,
        "root": value.root,
        "timestamp": value.timestamp,
    }


def ref_digest(domain: Domain, value: Signed) -> bytes:
    """eth-account's EIP-712 digest of an order, checkpoint or cosignature."""
    primary, message = _message(value)
    return bytes(_hash_eip191_message(_signable(domain, primary, message)))


def ref_parts(domain: Domain, value: Signed) -> tuple[bytes, bytes]:
    """eth-account's (domain separator, struct hash) of an order, checkpoint or cosignature."""
    primary, message = _message(value)
    signable = _signable(domain, primary, message)
    return bytes(signable.header), bytes(signable.body)


def ref_vote_digest(domain: Domain, order: bytes, epoch: int) -> bytes:
    """eth-account's EIP-712 digest of ``Vote{order, epoch}``."""
    signable = _signable(domain, "Vote", {"order": order, "epoch": epoch})
    return bytes(_hash_eip191_message(signable))


# ---------------------------------------------------------------- strategies


def _boundary_biased(low: int, high: int) -> st.SearchStrategy[int]:
    edges = sorted({low, low + 1, high - 1, high})
    return st.one_of(st.sampled_from(edges), st.integers(low, high))


addresses = st.one_of(
    st.sampled_from([bytes(20), b"\xff" * 20]), st.binary(min_size=20, max_size=20)
).map(Address)
hashes = st.one_of(
    st.sampled_from([bytes(32), b"\xff" * 32]), st.binary(min_size=32, max_size=32)
).map(Hash32)
amounts = _boundary_biased(0, UINT256_MAX).map(Amount)
sequences = _boundary_biased(0, UINT64_MAX).map(Sequence)
epochs = _boundary_biased(0, UINT64_MAX).map(Epoch)
uint64s = _boundary_biased(0, UINT64_MAX)
chain_ids = st.one_of(st.sampled_from([1, 31337, 2**64]), _boundary_biased(0, UINT256_MAX))

domains = st.builds(Domain, chain_id=chain_ids, vault=addresses)
transfers = st.builds(
    Transfer,
    payer=addresses,
    payee=addresses,
    token=addresses,
    amount=amounts,
    sequence=sequences,
    reference=hashes,
)
withdrawals = st.builds(
    Withdrawal,
    account=addresses,
    recipient=addresses,
    token=addresses,
    amount=amounts,
    sequence=sequences,
)
orders = st.one_of(transfers, withdrawals)
checkpoints = st.builds(
    Checkpoint, node=addresses, tree_size=uint64s, root=hashes, timestamp=uint64s
)
cosignatures = st.builds(
    Cosignature,
    witness=addresses,
    node=addresses,
    tree_size=uint64s,
    root=hashes,
    timestamp=uint64s,
)
#: Private key scalars as 32 bytes, including the smallest and largest.
key_secrets = _boundary_biased(1, SECP256K1_N - 1).map(lambda k: k.to_bytes(32, "big"))
