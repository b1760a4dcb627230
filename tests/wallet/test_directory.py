"""wallet.directory: signed agent records and mailbox fetch requests."""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import replace
from typing import Any

import pytest

from wallet.codec import address_hex
from wallet.directory import (
    MAX_ENDPOINTS,
    MAX_LIFETIME,
    MAX_PROTOCOLS,
    MAX_SERVICES,
    RECORD_TAG,
    FetchRequest,
    Service,
    SignedRecord,
    fetch_from_json,
    make_record,
    record_digest,
    record_to_json,
    sign_fetch,
    sign_record,
    signed_record_from_json,
    signed_record_to_json,
    verify_fetch,
    verify_record,
)
from wallet.errors import EncodingError, InvalidKey, InvalidSignature, WrongSigner
from wallet.keys import agent_address
from wallet.signing import PrivateKey
from wallet.types import Address, Amount, Signature

KEY = PrivateKey(b"\x11" * 32)
OTHER = PrivateKey(b"\x22" * 32)
USDF = Address(bytes.fromhex("5FbDB2315678afecb367f032d93F642f64180aa3"))
PROTO = "proto:" + "ab" * 32
NOW = 1_767_225_600


def signed(key: PrivateKey = KEY, **fields: Any) -> SignedRecord:
    return make_record(
        key,
        issued_at=NOW,
        endpoints=("http://127.0.0.1:8000/submit",),
        protocols=(PROTO,),
        services=(Service("weather", Amount(2500), USDF),),
        mailbox=True,
        **fields,
    )


def test_round_trip_and_verify() -> None:
    s = signed()
    verify_record(s)
    text = json.dumps(signed_record_to_json(s))
    assert signed_record_from_json(json.loads(text)) == s
    assert s.record.agent == agent_address(KEY) and s.record.payment == KEY.address
    assert s.record.expires_at == NOW + 86_400 and s.record.sequence == NOW


def test_the_signed_bytes_are_the_documented_ones() -> None:
    s = signed()
    body = json.dumps(signed_record_to_json(s)["record"], sort_keys=True, separators=(",", ":"))
    assert " " not in body and body.startswith('{"agent":"agent1')
    expected = hashlib.sha256(RECORD_TAG + b"\x00" + body.encode()).digest()
    assert record_digest(s.record) == expected


def test_upper_case_agent_address_is_the_same_record() -> None:
    s = signed()
    obj = signed_record_to_json(s)
    shouting = copy.deepcopy(obj)
    shouting["record"]["agent"] = obj["record"]["agent"].upper()
    shouting["record"]["payment"] = obj["record"]["payment"].lower()
    assert signed_record_from_json(shouting) == s


TAMPER: list[tuple[str, Any]] = [
    ("endpoints", ["http://evil.example/submit"]),
    ("protocols", []),
    ("services", [{"name": "weather", "unit_price": "1", "token": address_hex(USDF)}]),
    ("mailbox", False),
    ("issued_at", NOW - 1),
    ("expires_at", NOW + 86_401),
    ("sequence", NOW + 1),
]


@pytest.mark.parametrize(("name", "value"), TAMPER, ids=[t[0] for t in TAMPER])
def test_tampering_with_any_field_breaks_the_signature(name: str, value: Any) -> None:
    obj: Any = signed_record_to_json(signed())
    obj["record"][name] = value
    with pytest.raises(WrongSigner):
        verify_record(signed_record_from_json(obj))


def test_forged_records_are_refused() -> None:
    mine = signed()
    # Another key's signature of my record.
    forged = SignedRecord(mine.record, OTHER.unsafe_sign_digest(record_digest(mine.record)))
    with pytest.raises(WrongSigner):
        verify_record(forged)
    # My agent address with another key's payment address (and its signature).
    theirs = replace(mine.record, payment=OTHER.address)
    with pytest.raises(WrongSigner):
        verify_record(SignedRecord(theirs, OTHER.unsafe_sign_digest(record_digest(theirs))))
    # Another agent's record signed by me.
    with pytest.raises(WrongSigner):
        verify_record(SignedRecord(signed(OTHER).record, mine.signature))
    # A malformed signature (v = 0) is an InvalidSignature, not a WrongSigner.
    bad = SignedRecord(mine.record, Signature(mine.signature[:64] + b"\x00"))
    with pytest.raises(InvalidSignature):
        verify_record(bad)
    # The wrong key cannot sign at all.
    with pytest.raises(InvalidKey):
        sign_record(OTHER, mine.record)


MALFORMED: list[tuple[str, Any, str]] = [
    ("agent", "agent1xyz", "record.agent"),
    ("agent", 5, "record.agent"),
    ("payment", "0x12", "record.payment"),
    ("endpoints", ["ftp://x"], "record.endpoints[0]"),
    ("endpoints", ['http://a"b'], "record.endpoints[0]"),
    ("endpoints", ["http://" + "a" * 250], "record.endpoints[0]"),
    ("endpoints", [f"http://h/{i}" for i in range(MAX_ENDPOINTS + 1)], "record.endpoints"),
    ("endpoints", ["http://h", "http://h"], "record.endpoints"),
    ("protocols", ["proto:" + "AB" * 32], "record.protocols[0]"),
    ("protocols", ["proto:" + f"{i:064x}" for i in range(MAX_PROTOCOLS + 1)], "record.protocols"),
    ("services", [{"name": "Weather", "unit_price": "1", "token": "0x" + "00" * 20}],
     "record.services[0].name"),
    ("services", [{"name": "w", "unit_price": "01", "token": "0x" + "00" * 20}],
     "record.services[0].unit_price"),
    ("services", [{"name": "w", "unit_price": "1"}], "record.services[0].token"),
    ("services", [{"name": f"s{i}", "unit_price": "1", "token": "0x" + "00" * 20}
                  for i in range(MAX_SERVICES + 1)], "record.services"),
    ("mailbox", 1, "record.mailbox"),
    ("issued_at", -1, "record.issued_at"),
    ("issued_at", 1.0, "record.issued_at"),
    ("expires_at", NOW, "record.expires_at"),
    ("expires_at", NOW + MAX_LIFETIME + 1, "record.expires_at"),
    ("sequence", 2**53, "record.sequence"),
    ("extra", 1, "record.extra"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "value", "field"), MALFORMED)
def test_malformed_records_name_their_field(name: str, value: Any, field: str) -> None:
    obj: Any = signed_record_to_json(signed())
    obj["record"][name] = value
    with pytest.raises(EncodingError) as caught:
        signed_record_from_json(obj)
    assert caught.value.field == field


@pytest.mark.parametrize(
    ("obj", "field"),
    [
        ([], "signed_record"),
        ({"record": {}}, "signed_record.signature"),
        ({"record": None, "signature": "0x" + "00" * 65}, "record"),
    ],
)
def test_malformed_envelopes(obj: Any, field: str) -> None:
    with pytest.raises(EncodingError) as caught:
        signed_record_from_json(obj)
    assert caught.value.field == field


def test_encoding_checks_the_limits() -> None:
    record = signed().record
    with pytest.raises(EncodingError):
        record_to_json(replace(record, endpoints=("nope",)))


def fetch(key: PrivateKey = KEY, **fields: Any) -> FetchRequest:
    base: dict[str, Any] = {
        "agent": agent_address(key),
        "node": OTHER.address,
        "ack": 0,
        "limit": 10,
        "timestamp": NOW,
        "nonce": b"\x07" * 16,
    }
    return FetchRequest(**{**base, **fields})


def test_fetch_requests() -> None:
    body = sign_fetch(KEY, fetch())
    request, signature = fetch_from_json(json.loads(json.dumps(body)))
    assert request == fetch()
    verify_fetch(request, signature)
    with pytest.raises(WrongSigner):
        verify_fetch(replace(request, ack=1), signature)
    with pytest.raises(WrongSigner):
        verify_fetch(replace(request, agent=agent_address(OTHER)), signature)
    with pytest.raises(InvalidKey):
        sign_fetch(OTHER, fetch())
    with pytest.raises(EncodingError):
        sign_fetch(KEY, fetch(limit=0))
    for name, value in [("nonce", "0x12"), ("limit", 101), ("node", "x"), ("ack", True)]:
        with pytest.raises(EncodingError) as caught:
            fetch_from_json({**body, name: value})
        assert caught.value.field == name
