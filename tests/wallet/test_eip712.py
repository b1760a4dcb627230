"""The hand-written EIP-712 encoder against eth-account's generic one, on random messages
biased towards the boundaries; out-of-range fields are refused, never truncated."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from eth_utils import keccak
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.wallet.reference import (
    checkpoints,
    domains,
    epochs,
    hashes,
    orders,
    ref_digest,
    ref_parts,
    ref_vote_digest,
)
from wallet import eip712
from wallet.eip712 import (
    checkpoint_digest,
    domain_separator,
    order_digest,
    struct_hash,
    vote_digest,
)
from wallet.errors import EncodingError, WalletError
from wallet.types import (
    Address,
    Amount,
    Checkpoint,
    Domain,
    Epoch,
    Hash32,
    Order,
    Sequence,
    Signature,
    Transfer,
    Vote,
    Withdrawal,
)

A1, A2, A3 = (Address(bytes([i]) * 20) for i in (1, 2, 3))
H = Hash32(b"\x42" * 32)
DOMAIN = Domain(31337, Address(b"\x0d" * 20))
TRANSFER = Transfer(A1, A2, A3, Amount(5), Sequence(1), H)
WITHDRAWAL = Withdrawal(A1, A2, A3, Amount(5), Sequence(1))
CHECKPOINT = Checkpoint(A1, 10, H, 1_767_225_600_000)

reference_settings = settings(max_examples=60, deadline=None)


def test_typehashes_are_keccak_of_the_type_strings() -> None:
    for name in ("DOMAIN", "TRANSFER", "WITHDRAWAL", "VOTE", "CHECKPOINT"):
        type_string = getattr(eip712, f"{name}_TYPE")
        assert getattr(eip712, f"{name}_TYPEHASH") == keccak(text=type_string)


@reference_settings
@given(domain=domains, order=orders)
def test_order_digest_equals_eth_account(domain: Domain, order: Order) -> None:
    separator, struct = ref_parts(domain, order)
    assert domain_separator(domain) == separator
    assert struct_hash(order) == struct
    assert order_digest(domain, order) == ref_digest(domain, order)


@reference_settings
@given(domain=domains, order=hashes, epoch=epochs)
def test_vote_digest_equals_eth_account(domain: Domain, order: Hash32, epoch: Epoch) -> None:
    assert vote_digest(domain, order, epoch) == ref_vote_digest(domain, order, epoch)


@reference_settings
@given(domain=domains, checkpoint=checkpoints)
def test_checkpoint_digest_equals_eth_account(domain: Domain, checkpoint: Checkpoint) -> None:
    assert checkpoint_digest(domain, checkpoint) == ref_digest(domain, checkpoint)


@reference_settings
@given(domain=domains, order=orders, epoch=epochs)
def test_a_vote_signs_the_order_digest_not_the_struct_hash(
    domain: Domain, order: Order, epoch: Epoch
) -> None:
    vote = Vote(order_digest(domain, order), epoch, A1, Signature(bytes(65)))
    assert struct_hash(vote) == keccak(
        eip712.VOTE_TYPEHASH + order_digest(domain, order) + epoch.to_bytes(32, "big")
    )
    assert vote_digest(domain, vote.order, epoch) != vote_digest(domain, struct_hash(order), epoch)


@given(order=orders)
def test_the_two_order_kinds_never_share_a_struct_hash(order: Order) -> None:
    if isinstance(order, Transfer):
        twin: Order = Withdrawal(
            order.payer, order.payee, order.token, order.amount, order.sequence
        )
    else:
        twin = Transfer(order.account, order.recipient, order.token, order.amount, order.sequence)
    assert struct_hash(order) != struct_hash(twin)


def test_domain_separator_is_cached_per_domain() -> None:
    first = domain_separator(DOMAIN)
    assert domain_separator(Domain(31337, Address(b"\x0d" * 20))) is first
    assert domain_separator(Domain(1, DOMAIN.vault)) != first


# ---------------------------------------------------------------- refused values

TOO_BIG_U64, TOO_BIG_U256 = 2**64, 2**256

BAD_ORDER_FIELDS: list[tuple[Order, str, Any]] = [
    (TRANSFER, "payer", b"\x01" * 19),
    (TRANSFER, "payee", b"\x01" * 21),
    (TRANSFER, "token", bytearray(20)),
    (TRANSFER, "payer", "0x" + "01" * 20),
    (TRANSFER, "amount", -1),
    (TRANSFER, "amount", TOO_BIG_U256),
    (TRANSFER, "amount", True),
    (TRANSFER, "amount", 1.0),
    (TRANSFER, "amount", "1"),
    (TRANSFER, "sequence", -1),
    (TRANSFER, "sequence", TOO_BIG_U64),
    (TRANSFER, "reference", b"\x00" * 31),
    (TRANSFER, "reference", b"\x00" * 33),
    (TRANSFER, "reference", None),
    (WITHDRAWAL, "account", b""),
    (WITHDRAWAL, "recipient", b"\x01" * 32),
    (WITHDRAWAL, "token", None),
    (WITHDRAWAL, "amount", -(2**255)),
    (WITHDRAWAL, "amount", TOO_BIG_U256),
    (WITHDRAWAL, "sequence", -1),
    (WITHDRAWAL, "sequence", TOO_BIG_U64),
]


@pytest.mark.parametrize(("order", "field", "value"), BAD_ORDER_FIELDS)
def test_out_of_range_order_field_is_refused(order: Order, field: str, value: Any) -> None:
    bad = dataclasses.replace(order, **{field: value})
    with pytest.raises(EncodingError) as info:
        order_digest(DOMAIN, bad)
    assert info.value.field == field
    with pytest.raises(EncodingError):
        struct_hash(bad)


@pytest.mark.parametrize(
    ("field", "value", "name"),
    [
        ("node", b"\x01" * 19, "node"),
        ("tree_size", -1, "treeSize"),
        ("tree_size", TOO_BIG_U64, "treeSize"),
        ("root", b"\x00" * 31, "root"),
        ("timestamp", -1, "timestamp"),
        ("timestamp", TOO_BIG_U64, "timestamp"),
        ("timestamp", 1.5, "timestamp"),
    ],
)
def test_out_of_range_checkpoint_field_is_refused(field: str, value: Any, name: str) -> None:
    with pytest.raises(EncodingError) as info:
        checkpoint_digest(DOMAIN, dataclasses.replace(CHECKPOINT, **{field: value}))
    assert info.value.field == name


@pytest.mark.parametrize(
    ("order", "epoch", "name"),
    [
        (b"\x00" * 31, 1, "order"),
        (b"\x00" * 33, 1, "order"),
        ("0x" + "00" * 32, 1, "order"),
        (H, -1, "epoch"),
        (H, TOO_BIG_U64, "epoch"),
    ],
)
def test_out_of_range_vote_field_is_refused(order: Any, epoch: Any, name: str) -> None:
    with pytest.raises(EncodingError) as info:
        vote_digest(DOMAIN, order, epoch)
    assert info.value.field == name


@pytest.mark.parametrize(
    ("domain", "name"),
    [
        (Domain(-1, DOMAIN.vault), "chainId"),
        (Domain(TOO_BIG_U256, DOMAIN.vault), "chainId"),
        (Domain(31337, Address(b"\x0d" * 19)), "verifyingContract"),
        (Domain(31337, bytearray(20)), "verifyingContract"),  # type: ignore[arg-type]
    ],
)
def test_out_of_range_domain_is_refused(domain: Domain, name: str) -> None:
    with pytest.raises(EncodingError) as info:
        order_digest(domain, TRANSFER)
    assert info.value.field == name


@given(
    amount=st.one_of(st.integers(max_value=-1), st.integers(min_value=TOO_BIG_U256)),
    sequence=st.one_of(st.integers(max_value=-1), st.integers(min_value=TOO_BIG_U64)),
)
def test_any_out_of_range_integer_is_refused(amount: int, sequence: int) -> None:
    bad_orders: tuple[Order, ...] = (
        dataclasses.replace(TRANSFER, amount=Amount(amount)),
        dataclasses.replace(WITHDRAWAL, sequence=Sequence(sequence)),
    )
    for bad in bad_orders:
        with pytest.raises(EncodingError):
            order_digest(DOMAIN, bad)
    with pytest.raises(EncodingError):
        vote_digest(DOMAIN, H, Epoch(sequence))


def test_encoding_error_is_a_value_error_of_the_wallet() -> None:
    with pytest.raises(EncodingError) as info:
        order_digest(DOMAIN, dataclasses.replace(TRANSFER, amount=Amount(-1)))
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, WalletError)
    assert str(info.value) == "amount: expected an integer 0 <= amount < 2**256, got -1"
