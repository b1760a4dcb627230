"""uAgents wire conformance, against the pinned uagents-core 0.4.12 in both directions:
envelopes signed by uagents-core verify in Farthing and Farthing's verify in uagents-core
(many random keys), addresses agree with uagents' Identity, model and protocol digests of
the same models agree (AgentPaymentProtocol included), tampering is caught, the decoder is
strict, and the replay guard refuses stale and replayed envelopes."""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import replace
from typing import Any

import ecdsa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from uagents_core.contrib.protocols import payment as ua_payment
from uagents_core.envelope import Envelope as UaEnvelope
from uagents_core.identity import Identity
from uagents_core.models import Model as UaModel
from uagents_core.protocol import ProtocolSpecification

from tests.wallet.reference import key_secrets
from wallet.bech32 import bech32_decode, bech32_encode
from wallet.codec import SECP256K1_N
from wallet.errors import (
    EncodingError,
    EnvelopeRefused,
    InvalidKey,
    InvalidSignature,
    ReplayedEnvelope,
    ReplayGuardFull,
    StaleEnvelope,
    WalletError,
)
from wallet.keys import agent_address
from wallet.signing import PrivateKey
from wallet.uagents import payment
from wallet.uagents.envelope import (
    FIELDS,
    Envelope,
    check_envelope_signature,
    envelope_digest,
    envelope_from_json,
    envelope_to_bytes,
    envelope_to_json,
    make_envelope,
    sign_envelope,
    verify_envelope,
)
from wallet.uagents.models import (
    Model,
    decode_payload,
    encode_payload,
    model_digest,
    protocol_digest,
)
from wallet.uagents.replay import ReplayGuard

PAYMENT_MODELS = [
    "Funds",
    "RequestPayment",
    "CommitPayment",
    "RejectPayment",
    "CancelPayment",
    "CompletePayment",
]
keys = key_secrets.map(PrivateKey)
wire_settings = settings(max_examples=60, deadline=None)
uint64 = st.integers(min_value=0, max_value=2**64 - 1)
NOW = 1_800_000_000


def identity_of(key: PrivateKey) -> Identity:
    return Identity.from_string(key.export_private_key_hex()[2:])


def commit_message() -> payment.CommitPayment:
    return payment.CommitPayment(
        funds=payment.Funds(amount="0.0025", currency="USDF", payment_method="farthing"),
        recipient="0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf",
        transaction_id="0x" + "ab" * 32,
        reference="quote:1",
        metadata={"k": "v", "nested": {"a": "b"}},
    )


def farthing_envelope(
    key: PrivateKey, target: PrivateKey, *, expires: int | None = NOW + 60, nonce: int | None = 7
) -> Envelope:
    return sign_envelope(
        key,
        make_envelope(
            sender=agent_address(key),
            target=agent_address(target),
            session=uuid.uuid4(),
            schema_digest=model_digest(payment.CommitPayment),
            protocol_digest=payment.payment_protocol_digest(),
            payload=encode_payload(commit_message()),
            expires=expires,
            nonce=nonce,
        ),
    )


def uagents_envelope(
    identity: Identity, target: str, *, expires: int | None, nonce: int | None
) -> UaEnvelope:
    message = ua_payment.CommitPayment(
        funds=ua_payment.Funds(amount="1", currency="USDF"),
        recipient="someone",
        transaction_id="tx",
    )
    envelope = UaEnvelope(
        version=1,
        sender=identity.address,
        target=target,
        session=uuid.uuid4(),
        schema_digest=UaModel.build_schema_digest(message),
        protocol_digest=ua_payment.payment_protocol_spec.digest,
        expires=expires,
        nonce=nonce,
    )
    envelope.encode_payload(message.json())
    envelope.sign(identity)
    return envelope


def is_high_s(signature: str) -> bool:
    _, raw = bech32_decode(signature, hrp="sig")
    return int.from_bytes(raw[32:], "big") > SECP256K1_N // 2


def flip_s(signature: str) -> str:
    """The other form (r, n - s) of the same ECDSA signature."""
    _, raw = bech32_decode(signature, hrp="sig")
    s = int.from_bytes(raw[32:], "big")
    return bech32_encode("sig", raw[:32] + (SECP256K1_N - s).to_bytes(32, "big"))


# ---------------------------------------------------------------- both directions


@wire_settings
@given(
    key=keys,
    target=keys,
    expires=st.none() | uint64,
    nonce=st.none() | uint64,
)
def test_uagents_envelopes_verify_in_farthing(
    key: PrivateKey, target: PrivateKey, expires: int | None, nonce: int | None
) -> None:
    identity = identity_of(key)
    assert identity.address == agent_address(key)
    theirs = uagents_envelope(identity, agent_address(target), expires=expires, nonce=nonce)
    ours = envelope_from_json(theirs.model_dump_json())
    assert envelope_digest(ours) == theirs._digest()
    assert verify_envelope(ours)
    # The same JSON text, field for field and byte for byte.
    assert envelope_to_bytes(ours) == theirs.model_dump_json().encode()
    assert list(json.loads(theirs.model_dump_json())) == list(FIELDS)
    assert decode_payload(ours.payload, payment.CommitPayment).transaction_id == "tx"


@wire_settings
@given(
    key=keys,
    target=keys,
    expires=st.none() | uint64,
    nonce=st.none() | uint64,
)
def test_farthing_envelopes_verify_in_uagents(
    key: PrivateKey, target: PrivateKey, expires: int | None, nonce: int | None
) -> None:
    ours = farthing_envelope(key, target, expires=expires, nonce=nonce)
    assert ours.signature is not None and len(ours.signature) == 113
    assert not is_high_s(ours.signature)  # libsecp256k1 signs with low s
    theirs = UaEnvelope.model_validate_json(envelope_to_bytes(ours))
    assert theirs.verify()
    assert theirs._digest() == envelope_digest(ours)
    assert theirs.model_dump_json().encode() == envelope_to_bytes(ours)
    message = ua_payment.CommitPayment.parse_raw(theirs.decode_payload())
    assert message.dict() == commit_message().dict()


def test_high_s_signatures_from_uagents_are_accepted() -> None:
    key, target = PrivateKey(bytes(31) + b"\x07"), PrivateKey(bytes(31) + b"\x08")
    identity = identity_of(key)
    high = 0
    for _ in range(40):  # python-ecdsa: random k, no normalisation
        theirs = uagents_envelope(identity, agent_address(target), expires=NOW, nonce=None)
        assert theirs.signature is not None
        high += is_high_s(theirs.signature)
        ours = envelope_from_json(theirs.model_dump_json())
        assert verify_envelope(ours)
        # the other form verifies too, in both: ECDSA cannot tell them apart
        twin = replace(ours, signature=flip_s(theirs.signature))
        assert verify_envelope(twin)
        assert UaEnvelope.model_validate_json(envelope_to_bytes(twin)).verify()
    assert 0 < high < 40  # 2**-39 chance of a false failure


def test_addresses_agree_with_uagents_identity() -> None:
    for seed in ("alice", "bob", "carol"):
        assert Identity.from_seed(seed, 0).address == agent_address(
            identity_key(Identity.from_seed(seed, 0))
        )


def identity_key(identity: Identity) -> PrivateKey:
    return PrivateKey.from_hex(identity.private_key)


# ---------------------------------------------------------------- tampering


def test_every_signed_field_is_covered_and_only_those() -> None:
    key, target, other = (PrivateKey(bytes(31) + bytes([i])) for i in (1, 2, 3))
    signed = farthing_envelope(key, target)
    assert verify_envelope(signed)
    tampered: dict[str, Envelope] = {
        "sender": replace(signed, sender=agent_address(other)),
        "target": replace(signed, target=agent_address(other)),
        "session": replace(signed, session=uuid.uuid4()),
        "schema_digest": replace(signed, schema_digest=model_digest(payment.Funds)),
        "payload": replace(signed, payload=encode_payload(payment.RejectPayment())),
        "expires": replace(signed, expires=NOW + 61),
        "nonce": replace(signed, nonce=8),
        "expires_dropped": replace(signed, expires=None),
        "payload_dropped": replace(signed, payload=None),
    }
    for name, envelope in tampered.items():
        assert not verify_envelope(envelope), name
        with pytest.raises(InvalidSignature):
            check_envelope_signature(envelope)
        theirs = UaEnvelope.model_validate_json(envelope_to_bytes(envelope))
        with pytest.raises(ecdsa.BadSignatureError):
            theirs.verify()
    # uagents does not sign version and protocol_digest: neither side can notice these.
    for envelope in (replace(signed, version=2), replace(signed, protocol_digest=None)):
        assert verify_envelope(envelope)
        assert UaEnvelope.model_validate_json(envelope_to_bytes(envelope)).verify()


def test_unsigned_and_wrong_key_envelopes() -> None:
    key, target = PrivateKey(bytes(31) + b"\x01"), PrivateKey(bytes(31) + b"\x02")
    signed = farthing_envelope(key, target)
    with pytest.raises(InvalidSignature, match="not signed"):
        check_envelope_signature(replace(signed, signature=None))
    with pytest.raises(InvalidKey):
        sign_envelope(target, signed)


# ---------------------------------------------------------------- strict decoding


def good_json() -> dict[str, Any]:
    key, target = PrivateKey(bytes(31) + b"\x01"), PrivateKey(bytes(31) + b"\x02")
    return dict(envelope_to_json(farthing_envelope(key, target)))


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("version", "1"),
        ("version", True),
        ("version", 1.0),
        ("sender", "user1qqqqqq"),
        ("sender", None),
        ("sender", agent_address(PrivateKey(bytes(31) + b"\x01")).upper()),
        ("target", "agent1" + "q" * 59),
        ("session", str(uuid.uuid1())),
        ("session", uuid.uuid4().hex),
        ("session", 4),
        ("schema_digest", "model:" + "AB" * 32),
        ("schema_digest", "proto:" + "ab" * 32),
        ("protocol_digest", "proto:" + "ab" * 31),
        ("payload", "not base64!"),
        ("payload", "YQ"),  # missing padding
        ("payload", "YR=="),  # non-zero trailing bits
        ("expires", -1),
        ("expires", 2**64),
        ("expires", 1.5),
        ("nonce", "7"),
        ("signature", "sig1qqqq"),
        ("signature", 5),
    ],
)
def test_malformed_fields_are_refused_by_name(field: str, value: object) -> None:
    data = good_json()
    data[field] = value
    with pytest.raises(EncodingError) as caught:
        envelope_from_json(data)
    assert caught.value.field == field
    assert isinstance(caught.value, WalletError)


def test_missing_unknown_and_absent_optional_keys() -> None:
    data = good_json()
    del data["sender"]
    with pytest.raises(EncodingError, match="missing") as caught:
        envelope_from_json(data)
    assert caught.value.field == "sender"
    data = good_json() | {"extra": 1}
    with pytest.raises(EncodingError, match="unknown") as caught:
        envelope_from_json(data)
    assert caught.value.field == "extra"
    data = good_json()
    for optional in ("protocol_digest", "payload", "expires", "nonce", "signature"):
        del data[optional]
    envelope = envelope_from_json(json.dumps(data))
    assert envelope.payload is None and envelope.signature is None
    for bad in ("[]", b"\xff", "{"):
        with pytest.raises(EncodingError):
            envelope_from_json(bad)


def test_payloads_decode_strictly() -> None:
    with pytest.raises(EncodingError, match="CommitPayment: funds: field required"):
        decode_payload(encode_payload(payment.RejectPayment()), payment.CommitPayment)
    with pytest.raises(EncodingError, match="JSON"):
        decode_payload(base64.b64encode(b"{").decode(), payment.RejectPayment)
    with pytest.raises(EncodingError, match="base64"):
        decode_payload("!!", payment.RejectPayment)
    assert decode_payload(None, payment.RejectPayment) == payment.RejectPayment()


# ---------------------------------------------------------------- model and protocol digests


@pytest.mark.parametrize("name", PAYMENT_MODELS)
def test_payment_model_digests_agree(name: str) -> None:
    ours, theirs = getattr(payment, name), getattr(ua_payment, name)
    assert model_digest(ours) == UaModel.build_schema_digest(theirs)
    assert ours.schema_json() == theirs.schema_json()


def test_payment_protocol_digests_agree() -> None:
    spec = ua_payment.payment_protocol_spec
    assert payment.payment_protocol_digest() == spec.digest
    for role in ("seller", "buyer"):
        assert payment.payment_protocol_digest(role) == spec.manifest(role)["metadata"]["digest"]
    assert payment.payment_protocol_digest("seller") != payment.payment_protocol_digest()


def uagents_declarations() -> tuple[type[UaModel], type[UaModel]]:
    """The same two models declared on uagents-core's Model (same class names)."""

    class Quote(UaModel):
        """A priced offer."""

        price: ua_payment.Funds | None = None
        items: list[str]
        valid_for: int = 60

    class Plain(UaModel):
        x: int

    return Quote, Plain


class Quote(Model):
    """A priced offer."""

    price: payment.Funds | None = None
    items: list[str]
    valid_for: int = 60


class Plain(Model):
    x: int


def test_digests_of_own_models_agree_and_see_name_and_docstring() -> None:
    UaQuote, UaPlain = uagents_declarations()  # noqa: N806
    assert model_digest(Quote) == UaModel.build_schema_digest(UaQuote)
    assert model_digest(Plain) == UaModel.build_schema_digest(UaPlain)
    assert "description" not in Plain.schema()  # the base class gives no docstring

    class Other(Model):
        """Another docstring."""

        price: payment.Funds | None = None
        items: list[str]
        valid_for: int = 60

    Other.__name__ = "Quote"
    assert model_digest(Other) != model_digest(Quote)
    interactions = {Quote: {Plain}, Plain: set()}
    ua_interactions: dict[type[UaModel], set[type[UaModel]]] = {UaQuote: {UaPlain}, UaPlain: set()}
    spec = ProtocolSpecification(name="x", version="9", interactions=ua_interactions)
    assert protocol_digest(interactions) == spec.digest


# ---------------------------------------------------------------- replay and expiry


def test_replay_guard_refuses_stale_and_replayed_envelopes() -> None:
    key, target = PrivateKey(bytes(31) + b"\x01"), PrivateKey(bytes(31) + b"\x02")
    guard = ReplayGuard(max_lifetime=600)
    envelope = farthing_envelope(key, target, expires=NOW + 60)
    guard.check(envelope, NOW)
    with pytest.raises(ReplayedEnvelope) as caught:
        guard.check(envelope, NOW + 1)
    assert caught.value.reason == "replayed"
    assert caught.value.digest == envelope_digest(envelope).hex()
    # signed again (another signature, same digest) or high-s twin: still a replay
    assert envelope.signature is not None
    for again in (
        sign_envelope(key, envelope),
        replace(envelope, signature=flip_s(envelope.signature)),
    ):
        with pytest.raises(ReplayedEnvelope):
            guard.check(again, NOW + 2)
    with pytest.raises(StaleEnvelope) as stale:
        guard.check(envelope, NOW + 60)
    assert stale.value.reason == "stale"
    assert len(guard) == 0  # forgotten once expired
    with pytest.raises(EnvelopeRefused, match="more than 600 s") as ahead:
        guard.check(farthing_envelope(key, target, expires=NOW + 601), NOW)
    assert ahead.value.reason == "too_far_ahead"


def test_replay_guard_without_expires_and_when_full() -> None:
    key, target = PrivateKey(bytes(31) + b"\x01"), PrivateKey(bytes(31) + b"\x02")
    strict = ReplayGuard(require_expires=True)
    with pytest.raises(EnvelopeRefused) as caught:
        strict.check(farthing_envelope(key, target, expires=None), NOW)
    assert caught.value.reason == "no_expiry"
    lenient = ReplayGuard(default_lifetime=30)
    no_expiry = farthing_envelope(key, target, expires=None)
    lenient.check(no_expiry, NOW)
    with pytest.raises(ReplayedEnvelope):
        lenient.check(no_expiry, NOW + 29)
    lenient.check(no_expiry, NOW + 30)  # remembered only default_lifetime seconds
    small = ReplayGuard(capacity=2)
    small.check(farthing_envelope(key, target, expires=NOW + 10), NOW)
    small.check(farthing_envelope(key, target, expires=NOW + 20), NOW)
    with pytest.raises(ReplayGuardFull) as full:
        small.check(farthing_envelope(key, target, expires=NOW + 20), NOW)
    assert full.value.retryable
    small.check(farthing_envelope(key, target, expires=NOW + 20), NOW + 10)  # one expired
    assert len(small) == 2
