"""Keys, signatures and recovery: round trips, agreement with eth-account, refusal of
malleable and malformed signatures, and a private key that never shows itself."""

from __future__ import annotations

import copy
import dataclasses
import pickle
import re
import traceback
from collections.abc import Callable

import pytest
from eth_account import Account
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.wallet.reference import checkpoints, domains, epochs, hashes, key_secrets, orders
from wallet.codec import SECP256K1_HALF_N, SECP256K1_N, address_hex, check_signature
from wallet.eip712 import order_digest
from wallet.errors import EncodingError, InvalidKey, InvalidSignature, WalletError
from wallet.signing import (
    PrivateKey,
    recover,
    sign_checkpoint,
    sign_order,
    sign_vote,
    verify,
    verify_checkpoint,
    verify_order,
    verify_vote,
)
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
    SignedOrder,
    Transfer,
    Withdrawal,
)

SECRET = bytes.fromhex("4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318")
KEY = PrivateKey(SECRET)
DIGEST = Hash32(bytes(range(32)))
DOMAIN = Domain(31337, Address(b"\x0d" * 20))
SECP256K1_P = 2**256 - 2**32 - 977

signing_settings = settings(max_examples=40, deadline=None)


def with_parts(
    signature: bytes, r: int | None = None, s: int | None = None, v: int | None = None
) -> Signature:
    """``signature`` with r, s or v replaced."""
    r_bytes = signature[:32] if r is None else r.to_bytes(32, "big")
    s_bytes = signature[32:64] if s is None else s.to_bytes(32, "big")
    v_bytes = signature[64:] if v is None else bytes((v,))
    return Signature(r_bytes + s_bytes + v_bytes)


def malleable_twin(signature: Signature) -> Signature:
    """(r, n - s, v ^ 1): signs the same digest by the same key, with high s."""
    s = int.from_bytes(signature[32:64], "big")
    return with_parts(signature, s=SECP256K1_N - s, v=55 - signature[64])


def owned_by(order: Order, owner: Address) -> Order:
    if isinstance(order, Transfer):
        return dataclasses.replace(order, payer=owner)
    return dataclasses.replace(order, account=owner)


# ---------------------------------------------------------------- round trips


@signing_settings
@given(secret=key_secrets, digest=hashes)
def test_sign_then_recover_agrees_with_eth_account(secret: bytes, digest: Hash32) -> None:
    key = PrivateKey(secret)
    signature = key.unsafe_sign_digest(digest)
    assert check_signature(signature) == signature  # canonical: low s, v in {27, 28}
    assert recover(digest, signature) == key.address
    assert verify(digest, signature, key.address)
    reference = Account.from_key(secret)
    assert address_hex(key.address) == reference.address
    assert Account._recover_hash(digest, signature=signature) == reference.address
    assert bytes(Account.unsafe_sign_hash(digest, secret).signature) == signature


def test_signing_is_deterministic() -> None:
    assert KEY.unsafe_sign_digest(DIGEST) == KEY.unsafe_sign_digest(DIGEST)


@signing_settings
@given(secret=key_secrets, digest=hashes, bit=st.integers(0, 255))
def test_a_tampered_digest_recovers_to_someone_else(
    secret: bytes, digest: Hash32, bit: int
) -> None:
    key = PrivateKey(secret)
    signature = key.unsafe_sign_digest(digest)
    tampered = Hash32((int.from_bytes(digest, "big") ^ (1 << bit)).to_bytes(32, "big"))
    assert recover(tampered, signature) != key.address
    assert not verify(tampered, signature, key.address)


@signing_settings
@given(secret=key_secrets, digest=hashes)
def test_the_high_s_twin_is_refused(secret: bytes, digest: Hash32) -> None:
    key = PrivateKey(secret)
    twin = malleable_twin(key.unsafe_sign_digest(digest))
    # ecrecover (and eth-account) accept the twin: that is exactly the malleability.
    assert Account._recover_hash(digest, signature=twin) == address_hex(key.address)
    with pytest.raises(InvalidSignature, match="high s"):
        recover(digest, twin)
    assert not verify(digest, twin, key.address)


# ---------------------------------------------------------------- malformed signatures

GOOD = KEY.unsafe_sign_digest(DIGEST)


def _x_not_on_the_curve() -> int:
    x = 1
    while pow(x**3 + 7, (SECP256K1_P - 1) // 2, SECP256K1_P) == 1:
        x += 1
    return x


@pytest.mark.parametrize(
    ("signature", "reason"),
    [
        (GOOD[:64], "65 bytes"),
        (GOOD + b"\x00", "65 bytes"),
        (b"", "65 bytes"),
        (GOOD.hex(), "65 bytes"),
        (None, "65 bytes"),
        (with_parts(GOOD, v=0), "v must be"),
        (with_parts(GOOD, v=1), "v must be"),
        (with_parts(GOOD, v=26), "v must be"),
        (with_parts(GOOD, v=29), "v must be"),
        (with_parts(GOOD, r=0), "r out of range"),
        (with_parts(GOOD, r=SECP256K1_N), "r out of range"),
        (with_parts(GOOD, r=2**256 - 1), "r out of range"),
        (with_parts(GOOD, s=0), "s out of range"),
        (with_parts(GOOD, s=SECP256K1_HALF_N + 1), "high s"),
        (with_parts(GOOD, s=SECP256K1_N - 1), "high s"),
        (with_parts(GOOD, s=SECP256K1_N), "s out of range"),
        (with_parts(GOOD, r=_x_not_on_the_curve()), "recovers to no public key"),
    ],
)
def test_malformed_signature_is_refused(signature: Signature, reason: str) -> None:
    with pytest.raises(InvalidSignature, match=reason):
        recover(DIGEST, signature)
    assert not verify(DIGEST, signature, KEY.address)


def test_s_of_exactly_half_n_is_low() -> None:
    boundary = with_parts(GOOD, s=SECP256K1_HALF_N)
    assert check_signature(boundary) == boundary


@pytest.mark.parametrize("digest", [DIGEST[:31], DIGEST + b"\x00", "0x" + DIGEST.hex(), None])
def test_a_malformed_digest_is_the_callers_bug(digest: Hash32) -> None:
    for call in (
        lambda: recover(digest, GOOD),
        lambda: verify(digest, GOOD, KEY.address),
        lambda: KEY.unsafe_sign_digest(digest),
    ):
        with pytest.raises(EncodingError, match="digest"):
            call()


def test_invalid_signature_is_a_value_error_of_the_wallet() -> None:
    assert issubclass(InvalidSignature, ValueError)
    assert issubclass(InvalidSignature, WalletError)
    assert issubclass(InvalidKey, ValueError)
    assert issubclass(InvalidKey, WalletError)


# ---------------------------------------------------------------- messages


@signing_settings
@given(secret=key_secrets, domain=domains, order=orders, epoch=epochs)
def test_signed_orders_and_votes_verify(
    secret: bytes, domain: Domain, order: Order, epoch: Epoch
) -> None:
    key = PrivateKey(secret)
    order = owned_by(order, key.address)
    signed = sign_order(key, domain, order)
    assert signed.order == order
    assert verify_order(domain, signed)
    assert recover(order_digest(domain, order), signed.signature) == key.address

    vote = sign_vote(key, domain, order_digest(domain, order), epoch)
    assert vote.signer == key.address
    assert verify_vote(domain, vote)
    other_epoch = Epoch((epoch + 1) % 2**64)
    assert not verify_vote(domain, dataclasses.replace(vote, epoch=other_epoch))


def test_an_order_changed_after_signing_does_not_verify() -> None:
    order = Transfer(
        KEY.address, Address(b"\x02" * 20), Address(b"\x03" * 20), Amount(5), Sequence(0)
    )
    signed = sign_order(KEY, DOMAIN, order)
    for changed in (
        dataclasses.replace(order, amount=Amount(6)),
        dataclasses.replace(order, sequence=Sequence(1)),
        dataclasses.replace(order, payee=Address(b"\x04" * 20)),
    ):
        assert not verify_order(DOMAIN, SignedOrder(changed, signed.signature))
    assert not verify_order(Domain(1, DOMAIN.vault), signed)
    assert not verify_order(DOMAIN, SignedOrder(order, malleable_twin(signed.signature)))
    withdrawal = Withdrawal(order.payer, order.payee, order.token, order.amount, order.sequence)
    assert not verify_order(DOMAIN, SignedOrder(withdrawal, signed.signature))


def test_only_the_owner_can_sign_an_order() -> None:
    order = Transfer(
        Address(b"\x01" * 20), Address(b"\x02" * 20), Address(b"\x03" * 20), Amount(5), Sequence(0)
    )
    with pytest.raises(InvalidKey, match="owner"):
        sign_order(KEY, DOMAIN, order)


@signing_settings
@given(secret=key_secrets, domain=domains, checkpoint=checkpoints)
def test_signed_checkpoints_verify(secret: bytes, domain: Domain, checkpoint: Checkpoint) -> None:
    key = PrivateKey(secret)
    checkpoint = dataclasses.replace(checkpoint, node=key.address)
    signature = sign_checkpoint(key, domain, checkpoint)
    assert verify_checkpoint(domain, checkpoint, signature)
    later = dataclasses.replace(checkpoint, tree_size=(checkpoint.tree_size + 1) % 2**64)
    assert not verify_checkpoint(domain, later, signature)


def test_only_the_node_can_sign_its_checkpoint() -> None:
    checkpoint = Checkpoint(Address(b"\x01" * 20), 1, DIGEST, 0)
    with pytest.raises(InvalidKey, match="node"):
        sign_checkpoint(KEY, DOMAIN, checkpoint)


# ---------------------------------------------------------------- keys


@pytest.mark.parametrize(
    "secret",
    [b"", SECRET[:31], SECRET + b"\x00", bytes(32), SECP256K1_N.to_bytes(32, "big"), b"\xff" * 32],
)
def test_an_out_of_range_key_is_refused(secret: bytes) -> None:
    with pytest.raises(InvalidKey):
        PrivateKey(secret)


def test_the_extreme_scalars_are_keys() -> None:
    assert address_hex(PrivateKey((1).to_bytes(32, "big")).address) == (
        "0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf"
    )
    PrivateKey((SECP256K1_N - 1).to_bytes(32, "big"))


def test_key_from_hex() -> None:
    for text in (SECRET.hex(), "0x" + SECRET.hex(), "0x" + SECRET.hex().upper()):
        assert PrivateKey.from_hex(text) == KEY
    for bad in ("", "0x", SECRET.hex()[:-1], SECRET.hex() + "0", "0x" + SECRET.hex()[:-1] + "g"):
        with pytest.raises(InvalidKey):
            PrivateKey.from_hex(bad)


def test_generated_keys_are_distinct_and_usable() -> None:
    a, b = PrivateKey.generate(), PrivateKey.generate()
    assert a != b
    assert a.address != b.address
    assert recover(DIGEST, a.unsafe_sign_digest(DIGEST)) == a.address


def test_keys_compare_and_copy_as_values() -> None:
    twin = PrivateKey(SECRET)
    assert twin == KEY
    assert hash(twin) == hash(KEY)
    assert copy.copy(KEY) is KEY
    assert copy.deepcopy([KEY])[0] is KEY


def test_repr_shows_the_address() -> None:
    assert repr(KEY) == f"PrivateKey(address={address_hex(KEY.address)})"
    assert str(KEY) == repr(KEY)
    assert re.fullmatch(r"PrivateKey\(address=0x[0-9a-fA-F]{40}\)", repr(KEY))


def _secret_forms(secret: bytes) -> list[str]:
    h = secret.hex()
    return [h, h.upper(), h[:16], h[-16:], repr(secret), str(int.from_bytes(secret, "big"))]


def _raised(call: Callable[[], object]) -> BaseException:
    with pytest.raises(Exception) as info:  # noqa: PT011 (any exception; its text is what counts)
        call()
    return info.value


def test_the_private_key_never_shows() -> None:
    secret = SECRET
    key = PrivateKey(secret)
    bad_hex = "0x" + secret.hex()[:-1] + "z"
    texts = [
        repr(key),
        str(key),
        f"{key}",
        f"{key!r}",
        repr([key]),
        repr({"k": key}),
        dir(key).__repr__(),
    ]
    errors = [
        _raised(lambda: pickle.dumps(key)),
        _raised(lambda: key.unsafe_sign_digest(Hash32(secret[:31]))),
        _raised(lambda: PrivateKey(secret[:31])),
        _raised(lambda: PrivateKey(secret + b"\x00")),
        _raised(lambda: PrivateKey.from_hex(bad_hex)),
        _raised(lambda: PrivateKey.from_hex(secret.hex()[:-1])),
        _raised(
            lambda: sign_order(
                key,
                DOMAIN,
                Transfer(
                    Address(bytes(20)),
                    Address(bytes(20)),
                    Address(bytes(20)),
                    Amount(1),
                    Sequence(0),
                ),
            )
        ),
        _raised(lambda: vars(key)),
    ]
    texts += ["".join(traceback.format_exception(e)) for e in errors]
    for text in texts:
        for form in [*_secret_forms(secret), bad_hex[2:]]:
            assert form not in text, text
