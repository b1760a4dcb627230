"""wallet.vault: orders and slashing evidence in the Vault's ABI shapes (the Byzantine
devnet test submits them to the real Vault)."""

from __future__ import annotations

from dataclasses import replace

from tests.node.factories import ALICE, BOB, DOMAIN, MEMBERS, USDF, certify, transfer, withdrawal
from wallet.codec import address_hex
from wallet.eip712 import order_digest
from wallet.signing import check_equivocation, sign_vote
from wallet.types import Equivocation, Hash32
from wallet.vault import compact_signature, slash_arguments, vault_order


def test_orders_in_the_vault_shape() -> None:
    payment = transfer(payer=ALICE, payee=BOB, amount=7, sequence=3).order
    assert vault_order(payment) == (
        0, address_hex(ALICE.address), address_hex(BOB.address), address_hex(USDF), 7, 3, bytes(32)
    )  # fmt: skip
    out = withdrawal(ALICE, amount=5, sequence=4).order
    assert vault_order(out)[0] == 1 and vault_order(out)[-1] == bytes(32)
    referenced = replace(payment, reference=Hash32(b"\x07" * 32))
    assert vault_order(referenced)[-1] == b"\x07" * 32


def test_slash_arguments_follow_the_vault_signature() -> None:
    a = certify(transfer(payee=BOB), MEMBERS[:3])
    b = transfer(payee=ALICE).order
    member = MEMBERS[0]
    vote_b = sign_vote(member, DOMAIN, order_digest(DOMAIN, b), a.epoch)
    evidence = Equivocation(
        member.address,
        a.order,
        a.epoch,
        dict(a.votes)[member.address],
        b,
        a.epoch,
        vote_b.signature,
    )
    assert check_equivocation(DOMAIN, evidence) is None
    args = slash_arguments(evidence)
    assert args[0] == address_hex(member.address)
    assert args[1] == vault_order(a.order) and args[4] == vault_order(b)
    assert args[2] == args[5] == a.epoch
    assert args[3] == compact_signature(evidence.first_signature)
    assert args[6] == compact_signature(vote_b.signature)
