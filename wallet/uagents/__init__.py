"""Agent messages, wire-compatible with Fetch.ai uAgents (uagents-core 0.4.12).

Written by hand, without a runtime dependency on uagents-core (it is a test dependency:
the conformance tests run both against each other): the wallet is a library that agents
embed, and uagents-core would bring python-ecdsa, bech32, httpx and a pydantic-v1 ``Model``
with it. Model schemas use ``pydantic.v1``, which pydantic 2 ships.

- :mod:`.envelope`: the envelope, its JSON, its signed digest, ``sig1...`` signatures;
- :mod:`.models`: message models and model and protocol digests;
- :mod:`.payment`: uagents-core's AgentPaymentProtocol models;
- :mod:`.negotiation`: farthing-negotiation models, the quote hash, delivery receipts;
- :mod:`.sessions`: the pure negotiation-and-payment session state machine;
- :mod:`.replay`: the replay and expiry guard uAgents lacks.

docs/protocol.md section 6 is the specification.
"""

from __future__ import annotations

from wallet.uagents.envelope import (
    ENVELOPE_VERSION,
    Envelope,
    EnvelopeJSON,
    check_envelope_signature,
    envelope_digest,
    envelope_from_json,
    envelope_to_bytes,
    envelope_to_json,
    make_envelope,
    parse_envelope_signature,
    parse_session,
    sign_envelope,
    verify_envelope,
)
from wallet.uagents.models import (
    Model,
    decode_payload,
    encode_payload,
    model_digest,
    protocol_digest,
    protocol_manifest,
)
from wallet.uagents.replay import ReplayGuard

__all__ = [
    "ENVELOPE_VERSION",
    "Envelope",
    "EnvelopeJSON",
    "Model",
    "ReplayGuard",
    "check_envelope_signature",
    "decode_payload",
    "encode_payload",
    "envelope_digest",
    "envelope_from_json",
    "envelope_to_bytes",
    "envelope_to_json",
    "make_envelope",
    "model_digest",
    "parse_envelope_signature",
    "parse_session",
    "protocol_digest",
    "protocol_manifest",
    "sign_envelope",
    "verify_envelope",
]
