"""The Vault's ABI shape of a withdrawal certificate (docs/protocol.md 4.3): votes named
by a bitmap of committee indexes, EIP-2098 compact signatures in index order."""

from __future__ import annotations

from collections.abc import Sequence

from wallet.codec import address_hex
from wallet.errors import EncodingError
from wallet.types import Address, Certificate, Equivocation, Order, Signature, Withdrawal

#: ``((account, recipient, token, amount, sequence), epoch, signers, [(r, vs), ...])``
VaultCertificate = tuple[tuple[str, str, str, int, int], int, int, list[tuple[bytes, bytes]]]


def compact_signature(signature: Signature) -> tuple[bytes, bytes]:
    """(r, vs) with vs = (v - 27) << 255 | s, from a 65-byte r ‖ s ‖ v signature."""
    if len(signature) != 65 or signature[64] not in (27, 28):
        raise EncodingError("signature", "expected 65 bytes r ‖ s ‖ v with v in {27, 28}")
    vs = int.from_bytes(signature[32:64], "big") | ((signature[64] - 27) << 255)
    return bytes(signature[:32]), vs.to_bytes(32, "big")


def vault_certificate(certificate: Certificate, members: Sequence[Address]) -> VaultCertificate:
    """The arguments of ``Vault.redeem`` for ``certificate``, a Withdrawal certified by
    ``members`` (the epoch's committee, in the Vault's order)."""
    order = certificate.order
    if not isinstance(order, Withdrawal):
        raise EncodingError("order", "only a Withdrawal certificate is redeemable on chain")
    position = {member: i for i, member in enumerate(members)}
    indexed = []
    for signer, signature in certificate.votes:
        if signer not in position:
            raise EncodingError("votes", f"{address_hex(signer)} is not in the committee")
        indexed.append((position[signer], signature))
    indexed.sort()
    signers = sum(1 << i for i, _ in indexed)
    _, account, recipient, token, amount, sequence, _ = vault_order(order)
    return (
        (account, recipient, token, amount, sequence),
        certificate.epoch,
        signers,
        [compact_signature(signature) for _, signature in indexed],
    )


#: ``(kind, account, counterparty, token, amount, sequence, ref)``: the Vault's ``Order``.
VaultOrder = tuple[int, str, str, str, int, int, bytes]


def vault_order(order: Order) -> VaultOrder:
    """An order in the shape of the Vault's ``Order`` struct (kind 0 a Transfer with its
    payee and reference, kind 1 a Withdrawal with its recipient and a zero ``ref``)."""
    if isinstance(order, Withdrawal):
        return (
            1,
            address_hex(order.account),
            address_hex(order.recipient),
            address_hex(order.token),
            order.amount,
            order.sequence,
            bytes(32),
        )
    return (
        0,
        address_hex(order.payer),
        address_hex(order.payee),
        address_hex(order.token),
        order.amount,
        order.sequence,
        bytes(order.reference),
    )


def slash_arguments(
    evidence: Equivocation,
) -> tuple[str, VaultOrder, int, tuple[bytes, bytes], VaultOrder, int, tuple[bytes, bytes]]:
    """The arguments of ``Vault.slashEquivocation`` for ``evidence`` (check it first with
    :func:`wallet.signing.check_equivocation`: the Vault reverts on unsound evidence)."""
    return (
        address_hex(evidence.member),
        vault_order(evidence.first),
        evidence.first_epoch,
        compact_signature(evidence.first_signature),
        vault_order(evidence.second),
        evidence.second_epoch,
        compact_signature(evidence.second_signature),
    )
