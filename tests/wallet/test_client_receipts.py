"""verify_receipt offline: a real receipt from the fake committee is accepted (also after
a JSON round trip), and every tampered field is refused."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from typing import Any

import pytest

from tests.wallet.client_fakes import DOMAIN, EPOCH, TOKEN, make_committee
from wallet.client import (
    Committee,
    Receipt,
    Wallet,
    receipt_from_json,
    receipt_to_json,
    verify_receipt,
)
from wallet.errors import InvalidReceipt
from wallet.signing import PrivateKey, sign_checkpoint
from wallet.types import (
    Amount,
    Certificate,
    Domain,
    Epoch,
    Hash32,
    Signature,
    SignedOrder,
)

PAYER = PrivateKey(bytes([0x11] * 32))
PAYEE = PrivateKey(bytes([0x22] * 32)).address


@pytest.fixture(scope="module")
def made() -> tuple[Receipt, Committee]:
    import asyncio
    import tempfile

    async def run() -> tuple[Receipt, Committee]:
        net = make_committee()
        net.credit(PAYER.address, 100)
        with tempfile.TemporaryDirectory() as data:
            async with Wallet(PAYER, net.network, data_dir=data, transport=net.transport) as wallet:
                for _ in range(4):  # a log of a few entries: a proof of several hashes
                    receipt = await wallet.pay(PAYEE, Amount(3), TOKEN)
        return receipt, net.network.committee

    return asyncio.run(run())


def flip(data: bytes, at: int = 5) -> bytes:
    return data[:at] + bytes([data[at] ^ 1]) + data[at + 1 :]


def with_certificate(receipt: Receipt, **changes: Any) -> Receipt:
    return dataclasses.replace(
        receipt, certificate=dataclasses.replace(receipt.certificate, **changes)
    )


STRANGER = PrivateKey(bytes([0x33] * 32))

TAMPERS: dict[str, Callable[[Receipt], Receipt]] = {
    "amount": lambda r: with_certificate(
        r,
        signed=SignedOrder(
            dataclasses.replace(r.certificate.order, amount=Amount(4)),
            r.certificate.signed.signature,
        ),
    ),
    "owner-signature": lambda r: with_certificate(
        r, signed=SignedOrder(r.certificate.order, Signature(flip(r.certificate.signed.signature)))
    ),
    "vote-signature": lambda r: with_certificate(
        r,
        votes=(
            (r.certificate.votes[0][0], Signature(flip(r.certificate.votes[0][1]))),
            *r.certificate.votes[1:],
        ),
    ),
    "below-quorum": lambda r: with_certificate(r, votes=r.certificate.votes[:2]),
    "duplicate-voter": lambda r: with_certificate(
        r, votes=(r.certificate.votes[0], *r.certificate.votes[:2])
    ),
    "non-member-vote": lambda r: with_certificate(
        r, votes=((STRANGER.address, r.certificate.votes[0][1]), *r.certificate.votes[1:])
    ),
    "unknown-epoch": lambda r: with_certificate(r, epoch=Epoch(2)),
    "log-index": lambda r: dataclasses.replace(r, log_index=r.log_index - 1),
    "index-beyond-tree": lambda r: dataclasses.replace(r, log_index=r.checkpoint.tree_size),
    "proof-hash": lambda r: dataclasses.replace(r, proof=(Hash32(flip(r.proof[0])), *r.proof[1:])),
    "proof-short": lambda r: dataclasses.replace(r, proof=r.proof[:-1]),
    "proof-long": lambda r: dataclasses.replace(r, proof=(*r.proof, r.proof[0])),
    "root": lambda r: dataclasses.replace(
        r, checkpoint=dataclasses.replace(r.checkpoint, root=Hash32(flip(r.checkpoint.root)))
    ),
    "tree-size": lambda r: dataclasses.replace(
        r, checkpoint=dataclasses.replace(r.checkpoint, tree_size=r.checkpoint.tree_size + 1)
    ),
    "checkpoint-signature": lambda r: dataclasses.replace(
        r, checkpoint_signature=Signature(flip(r.checkpoint_signature))
    ),
    "another-members-node": lambda r: dataclasses.replace(
        r, node=next(a for a, _ in r.certificate.votes if a != r.node)
    ),
    "stranger-checkpoint": lambda r: dataclasses.replace(
        r,
        node=STRANGER.address,
        checkpoint=dataclasses.replace(r.checkpoint, node=STRANGER.address),
        checkpoint_signature=sign_checkpoint(
            STRANGER, DOMAIN, dataclasses.replace(r.checkpoint, node=STRANGER.address)
        ),
    ),
}


def test_a_receipt_verifies_offline(made: tuple[Receipt, Committee]) -> None:
    receipt, committee = made
    assert len(receipt.proof) >= 2
    verify_receipt(receipt, committee, DOMAIN)
    verify_receipt(receipt, [committee], DOMAIN)
    verify_receipt(receipt, {EPOCH: committee}, DOMAIN)


def test_a_receipt_survives_json(made: tuple[Receipt, Committee]) -> None:
    receipt, committee = made
    text = json.dumps(receipt_to_json(receipt))
    again = receipt_from_json(json.loads(text))
    assert again == receipt
    verify_receipt(again, committee, DOMAIN)


@pytest.mark.parametrize("tamper", sorted(TAMPERS))
def test_every_tampered_receipt_is_refused(made: tuple[Receipt, Committee], tamper: str) -> None:
    receipt, committee = made
    with pytest.raises(InvalidReceipt):
        verify_receipt(TAMPERS[tamper](receipt), committee, DOMAIN)


def test_another_domain_or_committee_refuses_it(made: tuple[Receipt, Committee]) -> None:
    receipt, committee = made
    with pytest.raises(InvalidReceipt):
        verify_receipt(receipt, committee, Domain(1, DOMAIN.vault))
    others = Committee(
        committee.epoch, 3, tuple(PrivateKey(bytes([9] * 31 + [i])).address for i in range(1, 5))
    )
    with pytest.raises(InvalidReceipt):
        verify_receipt(receipt, others, DOMAIN)


def test_certificate_type_is_the_wire_one(made: tuple[Receipt, Committee]) -> None:
    assert isinstance(made[0].certificate, Certificate)
