"""Fuzzing the agent server's ``POST /submit`` (wallet.uagents.agent; issue 7, "Bad
input"), through a real aiohttp server on a loopback port.

Every reply is below 500 and JSON: ``{}``, a signed envelope (the handler's reply or a
signed ``ErrorMessage`` to the proven sender), or ``{"error": "..."}`` saying what is
wrong with an envelope whose sender is not proven. A refusal changes nothing: the
handler did not run and the replay guard remembers nothing new (an envelope that was
delivered but could not be handled, an unknown model or a bad payload, is remembered:
its replay must be refused too). Inputs: JSON of any shape, raw bytes, bodies beyond the
size limit, signed envelopes with one field mutated, validly signed envelopes with any
expiry, model, payload and target, and replays (the same envelope again, also with the
other form of its signature, ``s`` -> ``n - s``).
"""

from __future__ import annotations

import base64
import io
import json
import sys
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.node.test_api_fuzz import structural
from tests.support.fuzzing import CASES, FUZZ, FUZZ_MARKS, JSON, bodies, examples, json_text
from wallet.bech32 import bech32_decode, bech32_encode
from wallet.codec import SECP256K1_N
from wallet.jsontext import nests_deeper_than
from wallet.keys import agent_address
from wallet.signing import PrivateKey
from wallet.uagents.agent import MAX_SUBMIT, Agent
from wallet.uagents.context import Context
from wallet.uagents.envelope import (
    Envelope,
    envelope_digest,
    envelope_from_json,
    envelope_to_json,
    make_envelope,
    sign_envelope,
    verify_envelope,
)
from wallet.uagents.models import Model, decode_payload, encode_payload, model_digest
from wallet.uagents.protocol import ErrorMessage, Protocol

pytestmark = FUZZ_MARKS

SELLER_KEY = PrivateKey(bytes(31) + b"\x21")
BUYER_KEY = PrivateKey(bytes(31) + b"\x22")
SELLER, BUYER = agent_address(SELLER_KEY), agent_address(BUYER_KEY)
ERROR_DIGEST = model_digest(ErrorMessage)


class Ping(Model):
    text: str


class Pong(Model):
    text: str


@dataclass
class Served:
    agent: Agent
    http: aiohttp.ClientSession
    seen: list[str]

    def state(self) -> tuple[int, int]:
        """What a refusal must not change: handled messages, remembered envelopes."""
        return len(self.seen), len(self.agent._guard)

    def unchanged(self, before: tuple[int, int]) -> bool:
        """Nothing handled and nothing remembered since ``before`` (the guard may have
        forgotten envelopes that expired meanwhile)."""
        seen, remembered = self.state()
        return seen == before[0] and remembered <= before[1]

    async def submit(self, body: bytes, *, sync: bool = False) -> tuple[int, Any]:
        """POST ``body``; check the reply is one of the three JSON forms. (status, the
        parsed reply: None for ``{}``, an Envelope, or the ``error`` text)."""
        headers = {"content-type": "application/json"}
        if sync:
            headers["x-uagents-connection"] = "sync"
        async with self.http.post(
            self.agent.endpoint, data=io.BytesIO(body), headers=headers
        ) as response:
            status, raw = response.status, await response.read()
            assert response.content_type == "application/json", (status, raw[:200])
        assert status < 500, (status, raw[:300], body[:200])
        parsed = json.loads(raw)
        if parsed == {}:
            assert status == 200
            return status, None
        if set(parsed) == {"error"}:
            assert status in (400, 413), (status, parsed)
            assert isinstance(parsed["error"], str) and len(parsed["error"]) >= 8, parsed
            assert len(parsed["error"]) < 500, "an error never echoes a large input"
            return status, parsed["error"]
        reply = envelope_from_json(parsed)
        assert verify_envelope(reply) and reply.sender == SELLER, reply
        return status, reply


@pytest_asyncio.fixture
async def served() -> AsyncIterator[Served]:
    seen: list[str] = []
    proto = Protocol("ping", "0.1.0")

    @proto.on_message(Ping, replies={Pong})
    async def on_ping(ctx: Context, sender: str, msg: Ping) -> None:
        seen.append(msg.text)
        await ctx.reply(Pong(text=msg.text.upper()))

    agent = Agent(SELLER_KEY, name="fuzzed-seller", protocols=[proto], timeout=2.0)
    async with agent, aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
        yield Served(agent, http, seen)


def envelope(
    *,
    target: str = SELLER,
    text: str = "hi",
    payload: str | None = None,
    schema_digest: str | None = None,
    expires: int | None = None,
    ttl: int = 60,
) -> Envelope:
    """A ping from the buyer, signed, with a fresh session and nonce."""
    unsigned = make_envelope(
        sender=BUYER,
        target=target,
        session=uuid.uuid4(),
        schema_digest=schema_digest or model_digest(Ping),
        payload=payload if payload is not None else encode_payload(Ping(text=text)),
        expires=expires if expires is not None else int(time.time()) + ttl,
        nonce=uuid.uuid4().int >> 64,
    )
    return sign_envelope(BUYER_KEY, unsigned)


def as_bytes(e: Envelope) -> bytes:
    return json.dumps(envelope_to_json(e)).encode()


def error_of(reply: Any) -> str:
    """The text of a signed ErrorMessage reply to the buyer."""
    assert isinstance(reply, Envelope) and reply.schema_digest == ERROR_DIGEST, reply
    assert reply.target == BUYER
    text = decode_payload(reply.payload, ErrorMessage).error
    assert len(text) >= 8
    return text


# ---------------------------------------------------------------- any body


@given(body=bodies([envelope_to_json(envelope())]), sync=st.booleans())
@settings(FUZZ, max_examples=examples(300))
@pytest.mark.asyncio
async def test_any_body(served: Served, body: bytes, sync: bool) -> None:
    """No random body is an envelope signed by its sender: 400 ``{"error"}``."""
    CASES.add("agent: any body")
    before = served.state()
    status, reply = await served.submit(body, sync=sync)
    assert status in (400, 413) and isinstance(reply, str), (status, reply)
    assert served.unchanged(before)


@pytest.mark.asyncio
async def test_oversized_and_pathological_bodies(served: Served) -> None:
    """Found by the fuzzer: a body nested 100,000 deep made the agent answer 500 (a
    RecursionError out of json.loads; a segfault in a process that imported web3, whose
    py_ecc raises the recursion limit to 100,000), one beyond 1 MiB got aiohttp's
    plain-text 413."""
    cases = [
        (b"[" * 100_000 + b"]" * 100_000, 400, "nested more than 64 deep"),
        (b'{"a":' * 50_000 + b"1" + b"}" * 50_000, 400, "nested more than 64 deep"),
        (b"1" * 5_000, 400, "not JSON"),
        (json_text({"payload": "x" * MAX_SUBMIT}), 413, "larger than"),
        (b"\xff\xfe", 400, "not JSON"),
        (json_text({"x" * 100_000: 1}), 400, "unknown envelope field"),
    ]
    for body, status, words in cases:
        CASES.add("agent: pathological")
        before = served.state()
        got, reply = await served.submit(body)
        assert (got, words in str(reply)) == (status, True), (got, reply, body[:40])
        assert served.unchanged(before)


@pytest.mark.asyncio
async def test_a_deeply_nested_payload_is_refused_not_a_crash(served: Served) -> None:
    """A signed envelope whose payload is JSON nested 100,000 deep, in a process with
    py_ecc's recursion limit: json.loads overflowed the C stack (a segfault) before
    wallet.jsontext bounded the nesting. Now: delivered, refused with an ErrorMessage."""
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(100_000)
    try:
        deep = base64.b64encode(b"[" * 100_000 + b"]" * 100_000).decode()
        status, reply = await served.submit(as_bytes(envelope(payload=deep)), sync=True)
        assert status == 200 and "nested more than 64 deep" in error_of(reply)
    finally:
        sys.setrecursionlimit(limit)
    assert served.seen == []


@pytest.mark.asyncio
async def test_a_payload_of_pairs_is_refused_not_a_crash(served: Served) -> None:
    """Found by the fuzzer: a payload of ``[[1, 2]]`` made the agent answer 500
    (pydantic's parse_obj turns a list of pairs into ``{1: 2}``, then fails on the key)."""
    for text in (b"[[1, 2]]", b'[["text", "x"]]', b"[]", b"1", b'"x"', b"null"):
        CASES.add("agent: pathological")
        payload = base64.b64encode(text).decode()
        status, reply = await served.submit(as_bytes(envelope(payload=payload)), sync=True)
        assert status == 200 and "expected a JSON object" in error_of(reply), text
    assert served.seen == []


def _reference_depth(text: bytes) -> int:
    depth = deepest = 0
    in_string = escaped = False
    for c in text:
        if in_string:
            escaped, in_string = (False, True) if escaped else (c == 0x5C, c != 0x22)
        elif c == 0x22:
            in_string = True
        elif c in b"[{":
            depth += 1
            deepest = max(deepest, depth)
        elif c in b"]}":
            depth -= 1
    return deepest


@given(value=JSON, wrap=st.integers(0, 80), limit=st.integers(0, 90))
@settings(FUZZ, max_examples=examples(300))
def test_the_nesting_bound_is_exact(value: Any, wrap: int, limit: int) -> None:
    """wallet.jsontext.nests_deeper_than against a reference walk of the text."""
    CASES.add("agent: nesting bound")
    for _ in range(wrap):
        value = [value] if wrap % 2 else {"[{": value}
    text = json_text(value)
    assert nests_deeper_than(text, limit) is (_reference_depth(text) > limit)


# ---------------------------------------------------------------- mutated envelopes


@given(data=st.data(), sync=st.booleans())
@settings(FUZZ, max_examples=examples(300))
@pytest.mark.asyncio
async def test_mutated_envelopes(served: Served, data: st.DataObject, sync: bool) -> None:
    """A signed envelope with one field changed: refused, unless it is still the same
    signed envelope (the same digest: a field the signature does not cover changed)."""
    CASES.add("agent: mutated envelope")
    e = envelope(text=data.draw(st.text(max_size=20)))
    what, body = data.draw(structural(envelope_to_json(e)))
    before = served.state()
    status, reply = await served.submit(json_text(body), sync=sync)
    try:  # version, protocol_digest and the signature's form are not signed (6.3)
        same = envelope_digest(envelope_from_json(body)) == envelope_digest(e)
    except Exception:
        same = False
    if not same or status == 400:
        # Not the signed envelope (or its signature in another form): nothing handled.
        assert served.state()[0] == before[0], (what, status, reply)
    if status == 400 and not isinstance(reply, str):
        # Refused by the replay guard, answered to the proven sender: remembers nothing.
        assert served.unchanged(before) and error_of(reply)
    if isinstance(reply, str):
        assert served.unchanged(before), what


# ---------------------------------------------------------------- signed, any content


@given(
    expires=st.one_of(
        st.just(None),
        st.integers(-3_700, 3_700).map(lambda d: int(time.time()) + d),
        st.sampled_from([0, 1, 2**63, 2**64 - 1]),
    ),
    schema=st.one_of(
        st.just(model_digest(Ping)),
        st.just(ERROR_DIGEST),
        st.binary(min_size=32, max_size=32).map(lambda b: "model:" + b.hex()),
    ),
    payload=st.one_of(
        st.none(),
        JSON.map(lambda v: encode_payload_json(v)),
        st.text(max_size=30).map(lambda t: encode_payload(Ping(text=t))),
    ),
    target=st.sampled_from([SELLER, BUYER]),
    sync=st.booleans(),
)
@settings(FUZZ, max_examples=examples(300))
@pytest.mark.asyncio
async def test_signed_envelopes_with_any_content(
    served: Served,
    expires: int | None,
    schema: str,
    payload: str | None,
    target: str,
    sync: bool,
) -> None:
    """Validly signed by the buyer: refused for another target (400 ``{"error"}``), for
    an expiry outside the guard's window (400, a signed ErrorMessage); otherwise
    delivered (200): handled, or answered with an ErrorMessage saying why not."""
    CASES.add("agent: signed envelope")
    unsigned = make_envelope(
        sender=BUYER,
        target=target,
        session=uuid.uuid4(),
        schema_digest=schema,
        payload=payload,
        expires=expires,
        nonce=uuid.uuid4().int >> 64,
    )
    before = served.state()
    status, reply = await served.submit(as_bytes(sign_envelope(BUYER_KEY, unsigned)), sync=sync)
    if target != SELLER:
        assert status == 400 and "not" in str(reply)
        assert served.unchanged(before)
        return
    if status == 400:
        text = error_of(reply)
        assert text.split(":")[0] in {"stale", "too_far_ahead", "no_expiry"}, text
        assert served.unchanged(before)
        return
    assert status == 200, (status, reply)
    if served.state()[0] == before[0] and schema != ERROR_DIGEST:
        assert error_of(reply)  # not handled: the sender is told why


# ---------------------------------------------------------------- replays


def other_form(signature: str) -> str:
    """The same signature with ``s`` -> ``n - s`` (what uagents-core may send)."""
    hrp, data = bech32_decode(signature)
    r, s = data[:32], int.from_bytes(data[32:], "big")
    return bech32_encode(hrp, r + (SECP256K1_N - s).to_bytes(32, "big"))


@pytest.mark.asyncio
async def test_replays_are_refused(served: Served) -> None:
    """The same envelope twice: handled once, then refused as a replay (400 and a
    signed ErrorMessage), in either signature form, in sync or async mode; a replay
    of an envelope that could not be handled is refused too."""
    first = envelope(text="once")
    status, reply = await served.submit(as_bytes(first), sync=True)
    assert status == 200 and isinstance(reply, Envelope)
    assert decode_payload(reply.payload, Pong) == Pong(text="ONCE")
    state = served.state()
    again = replace(first, signature=other_form(first.signature or ""))
    for replay, sync in [(first, True), (first, False), (again, True)]:
        CASES.add("agent: replay")
        status, reply = await served.submit(as_bytes(replay), sync=sync)
        assert status == 400 and error_of(reply).startswith("replayed"), reply
        assert served.unchanged(state)
    assert served.seen == ["once"]

    unknown = envelope(schema_digest="model:" + "ab" * 32)
    status, reply = await served.submit(as_bytes(unknown))
    assert status == 200 and "unknown model" in error_of(reply)
    status, reply = await served.submit(as_bytes(unknown))
    assert status == 400 and error_of(reply).startswith("replayed")


def encode_payload_json(value: Any) -> str:
    """Any JSON as an envelope's base64 payload (not necessarily a valid message)."""
    return base64.b64encode(json_text(value)).decode()


def test_the_agent_fuzzers_ran_enough_cases() -> None:
    """Runs last in this module: the cases counted by the tests above."""
    ran = {k: v for k, v in CASES.by_test.items() if k.startswith("agent: ")}
    print(f"agent fuzz cases: {sum(ran.values())} {ran}")
    if len(ran) == 6:
        assert sum(ran.values()) >= examples(1_100)
