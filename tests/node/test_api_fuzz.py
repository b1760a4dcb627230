"""Fuzzing every HTTP endpoint of the node (issue 7, "Bad input"), through a real aiohttp
server over a real LevelDB store, wired as node.app wires it (ledger, account streams,
directory and mailbox, metrics).

For every generated request: the status is below 500; a refusal is JSON ``{"code",
"message"}`` whose message says what was wrong (a 400 also names the ``field``); and a
refusal changes nothing: the digest of every key and value in the store is the same
before and after. The inputs: JSON of any shape (deep nesting, huge integers, floats,
NaN and Infinity as text, long and unicode strings), raw bytes (invalid UTF-8, truncated
JSON, bodies beyond ``client_max_size``), valid signed messages with one field mutated
(amounts, tokens, domains, high-s and truncated signatures, bad hex, wrong lengths,
extra and missing keys), random path parameters and query strings for the GET routes,
WebSocket handshakes and frames. Replays: an order twice gets the same vote, a
certificate twice is ``duplicate``.

The companion tests: tests/node/test_api_schema_fuzz.py (schemathesis against
docs/openapi.json), tests/node/test_slow_clients.py (idle and slow connections),
tests/wallet/test_agent_fuzz.py (the agent's ``POST /submit``). How many cases run:
tests/support/fuzzing.py (``FARTHING_LONG=1`` for long runs).
"""

from __future__ import annotations

import copy
import io
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import aiohttp
import pytest
import pytest_asyncio
from hypothesis import given, settings
from hypothesis import strategies as st
from yarl import URL

from node import api
from node.api import MAX_BODY
from tests.node.factories import (
    ALICE,
    BOB,
    CAROL,
    DOMAIN,
    EPOCH,
    FAR,
    MEMBERS,
    USDF,
    certify,
    key,
    transfer,
)
from tests.support.fuzzing import (
    CASES,
    FUZZ,
    FUZZ_MARKS,
    JSON,
    NOW,
    TEXT,
    FuzzNode,
    bodies,
    check_node_reply,
    examples,
    json_text,
    running_node,
)
from tests.wallet.test_directory import KEY, PROTO, fetch
from tests.wallet.test_directory import signed as signed_record
from wallet import directory as records
from wallet import wire
from wallet.codec import SECP256K1_N, address_hex, hash_hex
from wallet.eip712 import order_digest
from wallet.keys import agent_address
from wallet.signing import sign_cosignature, sign_order, sign_vote
from wallet.types import (
    Address,
    Amount,
    Certificate,
    Cosignature,
    Domain,
    Epoch,
    Sequence,
    SignedOrder,
    Transfer,
    Withdrawal,
)

pytestmark = FUZZ_MARKS

AGENT = agent_address(KEY)
OUTSIDER = key("outsider")
ME = MEMBERS[0]

POST_ROUTES = [
    "/v1/orders",
    "/v1/orders/batch",
    "/v1/certificates",
    "/v1/certificates/batch",
    "/v1/certificates/unknown",
    "/v1/log/cosignatures",
    "/v1/directory",
    f"/v1/mailbox/{AGENT}",
    f"/v1/mailbox/{AGENT}/fetch",
]
CONTENT_TYPES = [
    "application/json",
    "application/json; charset=latin-1",
    "application/json; charset=utf-8",
    "text/plain",
    "application/x-www-form-urlencoded",
    "",
]


@dataclass
class Fuzzed:
    node: FuzzNode
    http: aiohttp.ClientSession

    async def send(
        self,
        method: str,
        path: str | URL,
        body: bytes | None = None,
        content_type: str = "application/json",
        *,
        what: object = None,
    ) -> tuple[int, Any]:
        """Send one request and check the reply (:func:`check_node_reply`) and, for a
        refusal, that the store is unchanged. (status, parsed body)."""
        before = self.node.digest()
        headers = {"Content-Type": content_type} if content_type else {}
        if body is None:
            headers = {}
        url = path if isinstance(path, URL) else URL(self.node.url + path, encoded=True)
        data = None if body is None else io.BytesIO(body)  # large bytes warn in aiohttp
        async with self.http.request(method, url, data=data, headers=headers) as response:
            raw = await response.read()
            status, ctype = response.status, response.content_type
        parsed = check_node_reply(status, ctype, raw, what=(method, str(path), what))
        if status >= 400:
            assert self.node.digest() == before, (method, path, status, parsed, what)
        return status, parsed

    async def post(self, path: str, value: Any, *, what: object = None) -> tuple[int, Any]:
        return await self.send("POST", path, json_text(value), what=what if what else value)


@pytest_asyncio.fixture
async def fuzzed(tmp_path: Path) -> AsyncIterator[Fuzzed]:
    async with (
        running_node(tmp_path) as node,
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http,
    ):
        f = Fuzzed(node, http)
        # Something to read: a payment (voted, certified, applied) and an agent with a
        # mailbox holding one envelope.
        paid = transfer(ALICE, BOB, 5, 0)
        assert (await f.post("/v1/orders", wire.signed_order_to_json(paid)))[0] == 200
        cert = wire.certificate_to_json(certify(paid))
        assert (await f.post("/v1/certificates", cert))[1]["status"] == "applied"
        record = records.signed_record_to_json(signed_record())
        assert (await f.post("/v1/directory", record))[1] == {"status": "stored"}
        envelope = {"target": AGENT, "payload": "e30="}
        assert (await f.post(f"/v1/mailbox/{AGENT}", envelope))[0] == 200
        yield f


# ---------------------------------------------------------------- mutations


def high_s(signature: str) -> str:
    """The same signature with s -> n - s and v flipped: valid math, not canonical."""
    raw = bytes.fromhex(signature[2:])
    s = int.from_bytes(raw[32:64], "big")
    v = 55 - raw[64]
    return "0x" + (raw[:32] + (SECP256K1_N - s).to_bytes(32, "big") + bytes([v])).hex()


def paths_of(value: Any, prefix: tuple[str | int, ...] = ()) -> list[tuple[str | int, ...]]:
    """Every position in a JSON value (the root excluded)."""
    found: list[tuple[str | int, ...]] = []
    if isinstance(value, dict | list):
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for k, v in items:
            found.append((*prefix, k))
            found.extend(paths_of(v, (*prefix, k)))
    return found


def _parent(body: Any, path: tuple[str | int, ...]) -> Any:
    target = body
    for part in path[:-1]:
        target = target[part]
    return target


#: Values of the wrong form for any field: what each field's decoder must refuse.
BAD_VALUES = st.one_of(
    st.sampled_from(
        [
            "-1",
            "0x",
            "0xzz",
            "1e3",
            "01",
            " 1",
            "1.0",
            "0x" + "g" * 40,
            "0x" + "0" * 39,
            "0x" + "0" * 41,
            "0x" + "0" * 129,
            "0x" + "00" * 66,
            "0X" + "00" * 20,
            str(2**256),
            "9" * 79,
            -1,
            2**64,
            1.0,
            1e3,
            float("nan"),
            float("inf"),
            True,
            None,
            [],
            {},
        ]
    ),
    JSON,
)


@st.composite
def structural(draw: st.DrawFn, base: Any) -> tuple[str, Any]:
    """``base`` with one position replaced, removed, wrapped, or given an extra key."""
    body = copy.deepcopy(base)
    path = draw(st.sampled_from(paths_of(body)))
    parent = _parent(body, path)
    action = draw(st.sampled_from(["replace", "bad", "delete", "extra", "wrap", "truncate"]))
    if action == "replace":
        parent[path[-1]] = draw(JSON)
    elif action == "bad":
        parent[path[-1]] = draw(BAD_VALUES)
    elif action == "delete" and isinstance(parent, dict):
        del parent[path[-1]]
    elif action == "extra" and isinstance(parent, dict):
        parent[draw(TEXT.filter(lambda k: k not in parent))] = draw(JSON)
    elif action == "truncate" and isinstance(parent[path[-1]], str):
        text = parent[path[-1]]
        parent[path[-1]] = text[: draw(st.integers(0, max(0, len(text) - 1)))]
    else:
        parent[path[-1]] = [parent[path[-1]]]
    return f"{action} {'.'.join(map(str, path))}", body


DOMAINS = st.one_of(
    st.just(DOMAIN),
    st.builds(Domain, st.sampled_from([1, 10, 31338, 2**64 - 1]), st.just(DOMAIN.vault)),
    st.builds(Domain, st.just(DOMAIN.chain_id), st.binary(min_size=20, max_size=20).map(Address)),
)
TOKENS = st.one_of(st.sampled_from([USDF, FAR]), st.binary(min_size=20, max_size=20).map(Address))
AMOUNTS = st.one_of(
    st.sampled_from([0, 1, 5, 100, 101, 2**255, 2**256 - 1]), st.integers(0, 2**256 - 1)
)
SEQUENCES = st.one_of(st.sampled_from([0, 1, 2, 3, 2**64 - 1]), st.integers(0, 2**64 - 1))
PAYERS = st.sampled_from([ALICE, BOB, CAROL, OUTSIDER])


@st.composite
def signed_orders(draw: st.DrawFn) -> tuple[str, SignedOrder, Domain]:
    """A validly signed order, of any amount, token and sequence, in some domain."""
    payer, domain = draw(PAYERS), draw(DOMAINS)
    amount, token, sequence = Amount(draw(AMOUNTS)), draw(TOKENS), Sequence(draw(SEQUENCES))
    if draw(st.booleans()):
        payee = draw(st.sampled_from([BOB.address, payer.address, Address(bytes(20))]))
        order: Transfer | Withdrawal = Transfer(payer.address, payee, token, amount, sequence)
    else:
        recipient = draw(st.sampled_from([payer.address, Address(bytes(20))]))
        order = Withdrawal(payer.address, recipient, token, amount, sequence)
    signed = sign_order(payer, domain, order)
    return f"{type(order).__name__} {amount} seq {sequence} in {domain}", signed, domain


@st.composite
def order_bodies(draw: st.DrawFn) -> tuple[str, Any, bool]:
    """(what, body, whether the node must refuse it)."""
    what, signed, domain = draw(signed_orders())
    body: Any = wire.signed_order_to_json(signed)
    how = draw(st.sampled_from(["as signed", "high s", "v flipped", "structural"]))
    if how == "high s":
        body["signature"] = high_s(body["signature"])
    elif how == "v flipped":
        sig = body["signature"]
        body["signature"] = sig[:-2] + ("1c" if sig.endswith("1b") else "1b")
    elif how == "structural":
        change, body = draw(structural(body))
        how = change
    must_refuse = how != "as signed" or domain != DOMAIN
    return f"{how}: {what}", body, must_refuse


def _decodes_to(body: Any, decode: Callable[[Any], Any], expected: Any) -> bool:
    try:
        return bool(decode(body) == expected)
    except Exception:
        return False


@given(case=order_bodies(), batch=st.booleans())
@settings(FUZZ, max_examples=examples(400))
@pytest.mark.asyncio
async def test_mutated_orders(fuzzed: Fuzzed, case: tuple[str, Any, bool], batch: bool) -> None:
    CASES.add("node: mutated orders")
    what, body, must_refuse = case
    if batch:
        before = fuzzed.node.digest()
        status, reply = await fuzzed.post("/v1/orders/batch", {"orders": [body]}, what=what)
        if status == 200:
            (result,) = reply["results"]
            if "error" in result:
                error = result["error"]
                assert {"code", "message"} <= set(error) and len(error["message"]) >= 8, error
                assert fuzzed.node.digest() == before, what
            else:
                assert not must_refuse, (what, result)
        return
    status, reply = await fuzzed.post("/v1/orders", body, what=what)
    if must_refuse:
        assert status >= 400, (what, reply)
    if status == 200:
        vote = wire.vote_from_json(reply["vote"])
        signed = wire.signed_order_from_json(body)
        assert vote.order == order_digest(DOMAIN, signed.order)
        again = await fuzzed.post("/v1/orders", body, what=what)
        assert again == (200, reply), "a second submission of an order gets the same vote"


@st.composite
def certificate_bodies(draw: st.DrawFn) -> tuple[str, Any, bool]:
    """A certificate of a validly signed order: its votes by members and outsiders, in
    some epoch and domain, maybe one with a high s, maybe structurally mutated."""
    what, signed, domain = draw(signed_orders())
    voters = draw(st.lists(st.sampled_from([*MEMBERS, OUTSIDER]), max_size=5))
    epoch = Epoch(draw(st.sampled_from([EPOCH, 0, 2, 2**64 - 1])))
    vote_domain = draw(st.sampled_from([DOMAIN, domain]))
    digest = order_digest(vote_domain, signed.order)
    votes = [sign_vote(v, vote_domain, digest, epoch) for v in voters]
    by_signer = {v.signer: (v.signer, v.signature) for v in votes}
    certificate = Certificate(signed, epoch, tuple(sorted(by_signer.values())))
    body: Any = wire.certificate_to_json(certificate)
    how = draw(st.sampled_from(["as signed", "high s vote", "structural", "duplicate vote"]))
    if how == "high s vote" and body["votes"]:
        i = draw(st.integers(0, len(body["votes"]) - 1))
        body["votes"][i]["signature"] = high_s(body["votes"][i]["signature"])
    elif how == "duplicate vote" and body["votes"]:
        body["votes"].append(copy.deepcopy(body["votes"][0]))
    elif how == "structural":
        change, body = draw(structural(body))
        how = change
    quorum_of_members = len({v for v in voters if v in MEMBERS}) >= 3
    must_refuse = (
        how not in ("as signed",)
        or domain != DOMAIN
        or vote_domain != DOMAIN
        or epoch != EPOCH
        or not quorum_of_members
        or OUTSIDER in voters
    )
    return f"{how}: {what}, votes {len(by_signer)} in epoch {epoch}", body, must_refuse


@given(case=certificate_bodies(), batch=st.booleans())
@settings(FUZZ, max_examples=examples(400))
@pytest.mark.asyncio
async def test_mutated_certificates(
    fuzzed: Fuzzed, case: tuple[str, Any, bool], batch: bool
) -> None:
    CASES.add("node: mutated certificates")
    what, body, must_refuse = case
    if batch:
        before = fuzzed.node.digest()
        status, reply = await fuzzed.post("/v1/certificates/batch", {"certificates": [body]})
        if status == 200:
            (result,) = reply["results"]
            if "error" in result:
                assert {"code", "message"} <= set(result["error"]), result
                assert fuzzed.node.digest() == before, what
            else:
                assert not must_refuse or result["status"] == "duplicate", (what, result)
        return
    status, reply = await fuzzed.post("/v1/certificates", body, what=what)
    if must_refuse and status == 200:
        # A structural change that means the same certificate (case of hex, an order of
        # votes) may still be the applied one: it can only be a duplicate.
        assert reply["status"] == "duplicate", (what, reply)
    if status == 200 and reply["status"] == "applied":
        again = await fuzzed.post("/v1/certificates", body, what=what)
        assert again == (200, {"status": "duplicate"})


# ---------------------------------------------------------------- any body, any route


@given(
    route=st.sampled_from(POST_ROUTES),
    body=bodies([{"orders": []}, wire.signed_order_to_json(transfer())]),
    content_type=st.sampled_from(CONTENT_TYPES),
)
@settings(FUZZ, max_examples=examples(500))
@pytest.mark.asyncio
async def test_any_body_to_any_post_route(
    fuzzed: Fuzzed, route: str, body: bytes, content_type: str
) -> None:
    CASES.add("node: any body")
    status, reply = await fuzzed.send("POST", route, body, content_type, what=body[:200])
    if not content_type.startswith("application/json"):
        assert (status, reply["code"]) == (415, "unsupported_media_type")


@given(route=st.sampled_from(POST_ROUTES), value=JSON)
@settings(FUZZ, max_examples=examples(300))
@pytest.mark.asyncio
async def test_any_json_wrapped_as_the_route_expects(
    fuzzed: Fuzzed, route: str, value: Any
) -> None:
    """Random JSON inside the outer shape each route expects (past the first check)."""
    CASES.add("node: wrapped json")
    key = {"/v1/orders/batch": "orders", "/v1/certificates/batch": "certificates"}.get(
        route, "digests"
    )
    body: Any = {key: [value]} if "batch" in route or "unknown" in route else value
    if route.startswith("/v1/mailbox/") and not route.endswith("fetch"):
        body = {"target": AGENT, "payload": value}
    status, reply = await fuzzed.post(route, body)
    if route.startswith("/v1/mailbox/") and not route.endswith("fetch"):
        # Any JSON addressed to the agent is kept (up to 64 KiB), but not NaN or Infinity.
        assert status in (200, 400, 413), reply


def test_regression_deep_nesting_and_huge_integers_are_bad_json() -> None:
    """Found by the fuzzer: ``[[[...]]]`` nested 100,000 deep made the node answer 500
    (a RecursionError), or, in a process that imported web3 (py_ecc raises the recursion
    limit to 100,000, as in every node), crash with a segfault; an integer of 4,301+
    digits (ValueError from int()) and NaN were a 500 and non-JSON replies."""
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(100_000)  # what py_ecc sets in a node process
    try:
        for raw in (
            b"[" * 100_000 + b"]" * 100_000,
            b'{"a":' * 100_000 + b"1" + b"}" * 100_000,
            b"[" * 65 + b"]" * 65,
            b"1" * 5_000,
            b"[NaN]",
            b'{"a": Infinity}',
            b"[-1e999]",
        ):
            with pytest.raises(api.ApiError) as refused:
                api.parse_json(raw)
            assert refused.value.status == 400 and refused.value.code == "bad_json"
        assert api.parse_json(b"[" * 64 + b"]" * 64) is not None
    finally:
        sys.setrecursionlimit(limit)


@pytest.mark.asyncio
async def test_oversized_and_pathological_bodies(fuzzed: Fuzzed) -> None:
    """Bodies beyond ``client_max_size`` (413, JSON), nesting beyond the parser's stack,
    integers beyond int()'s digit limit, NaN (400 ``bad_json``): on every POST route."""
    huge = json_text({"orders": ["x" * MAX_BODY]})
    cases = [
        (huge, 413, "too_large"),
        (b"[" * 200_000 + b"]" * 200_000, 400, "bad_json"),
        (b'{"a":' * 50_000 + b"1" + b"}" * 50_000, 400, "bad_json"),
        (b"9" * 10_000, 400, "bad_json"),
        (b'{"amount": ' + b"1" * 4_301 + b"}", 400, "bad_json"),
        (b'{"target": "' + AGENT.encode() + b'", "payload": NaN}', 400, "bad_json"),
        (b"[1e999]", 400, "bad_json"),
    ]
    for route in POST_ROUTES:
        for body, status, code in cases:
            CASES.add("node: pathological")
            got, reply = await fuzzed.send("POST", route, body, what=body[:40])
            assert (got, reply["code"]) == (status, code), (route, body[:40], reply)


# ---------------------------------------------------------------- semantic refusals


@pytest.mark.asyncio
async def test_each_mutation_gets_its_own_clear_refusal(fuzzed: Fuzzed) -> None:
    """One valid order, one field changed at a time: the exact status, code and field."""
    valid = wire.signed_order_to_json(transfer(ALICE, BOB, 1, 1))
    other_chain = Domain(1, DOMAIN.vault)
    other_vault = Domain(DOMAIN.chain_id, Address(b"\x01" * 20))

    def signed(order: Transfer, domain: Domain = DOMAIN) -> Any:
        return wire.signed_order_to_json(sign_order(ALICE, domain, order))

    base = Transfer(ALICE.address, BOB.address, USDF, Amount(1), Sequence(1))

    def with_(path: tuple[str, ...], value: Any) -> Any:
        body = copy.deepcopy(valid)
        _parent(body, path)[path[-1]] = value
        return body

    def without(path: tuple[str, ...]) -> Any:
        body = copy.deepcopy(valid)
        del _parent(body, path)[path[-1]]
        return body

    expectations: list[tuple[str, Any, int, str, str | None]] = [
        ("zero amount", signed(replace(base, amount=Amount(0))), 422, "zero_amount", None),
        (
            "huge amount",
            signed(replace(base, amount=Amount(2**256 - 1))),
            422,
            "insufficient_balance",
            None,
        ),
        (
            "unknown token",
            signed(replace(base, token=Address(b"\2" * 20))),
            422,
            "unknown_token",
            None,
        ),
        ("other chain id", signed(base, other_chain), 422, "bad_signature", None),
        ("other vault", signed(base, other_vault), 422, "bad_signature", None),
        ("high s", with_(("signature",), high_s(valid["signature"])), 422, "bad_signature", None),
        (
            "truncated signature",
            with_(("signature",), valid["signature"][:-2]),
            400,
            "",
            "signature",
        ),
        ("bad hex", with_(("signature",), "0x" + "zz" * 65), 400, "", "signature"),
        ("negative amount", with_(("order", "amount"), "-1"), 400, "", "order.amount"),
        ("amount 2**256", with_(("order", "amount"), str(2**256)), 400, "", "order.amount"),
        ("amount as number", with_(("order", "amount"), 1), 400, "", "order.amount"),
        ("short payer", with_(("order", "payer"), "0x1234"), 400, "", "order.payer"),
        ("sequence 2**64", with_(("order", "sequence"), 2**64), 400, "", "order.sequence"),
        ("sequence float", with_(("order", "sequence"), 1.0), 400, "", "order.sequence"),
        ("extra key", {**valid, "extra": 1}, 400, "", "extra"),
        ("missing key", without(("order", "token")), 400, "", "order.token"),
        (
            "sequence ahead",
            signed(replace(base, sequence=Sequence(9))),
            409,
            "sequence_ahead",
            None,
        ),
        ("sequence used", signed(replace(base, sequence=Sequence(0))), 409, "sequence_used", None),
    ]
    for name, body, status, code, field in expectations:
        CASES.add("node: semantic")
        got, reply = await fuzzed.post("/v1/orders", body, what=name)
        assert got == status, (name, reply)
        if code:
            assert reply["code"] == code, (name, reply)
        if field is not None:
            assert (reply["code"], reply["field"]) == ("bad_request", field), (name, reply)
    # The valid order still gets its vote afterwards: nothing above touched ALICE.
    assert (await fuzzed.post("/v1/orders", valid))[0] == 200


@pytest.mark.asyncio
async def test_replays_are_idempotent(fuzzed: Fuzzed) -> None:
    """The same order twice: the same vote, one lock. The same certificate twice:
    ``duplicate``, the log unchanged. The same items twice in one batch: each answered."""
    signed = transfer(ALICE, CAROL, 3, 1)
    body = wire.signed_order_to_json(signed)
    first = await fuzzed.post("/v1/orders", body)
    before = fuzzed.node.digest()
    assert await fuzzed.post("/v1/orders", body) == first
    assert fuzzed.node.digest() == before
    batch = await fuzzed.post("/v1/orders/batch", {"orders": [body, body]})
    assert batch[1]["results"] == [first[1], first[1]]
    assert fuzzed.node.digest() == before

    certificate = wire.certificate_to_json(certify(signed))
    assert (await fuzzed.post("/v1/certificates", certificate))[1]["status"] == "applied"
    size, root = fuzzed.node.store.log_size(), fuzzed.node.store.root()
    applied = fuzzed.node.digest()
    for _ in range(2):
        assert await fuzzed.post("/v1/certificates", certificate) == (200, {"status": "duplicate"})
    both = await fuzzed.post("/v1/certificates/batch", {"certificates": [certificate] * 2})
    assert both[1]["results"] == [{"status": "duplicate"}] * 2
    assert (fuzzed.node.store.log_size(), fuzzed.node.store.root()) == (size, root)
    assert fuzzed.node.digest() == applied
    # A cosignature twice: stored, then stale.
    store = fuzzed.node.store
    theirs = Cosignature(MEMBERS[1].address, ME.address, size, store.root_at(size), 7_000)
    cosig = wire.signed_cosignature_to_json(theirs, sign_cosignature(MEMBERS[1], DOMAIN, theirs))
    assert (await fuzzed.post("/v1/log/cosignatures", cosig))[1] == {"status": "stored"}
    assert (await fuzzed.post("/v1/log/cosignatures", cosig))[1] == {"status": "stale"}
    # A directory record twice: stored (in the fixture), then unchanged.
    record = records.signed_record_to_json(signed_record())
    assert (await fuzzed.post("/v1/directory", record))[1] == {"status": "unchanged"}
    # A mailbox fetch twice: the second is a replay of its nonce (409), nothing changes.
    request = dict(records.sign_fetch(KEY, fetch(node=ME.address)))
    url = f"/v1/mailbox/{AGENT}/fetch"
    assert (await fuzzed.post(url, request))[0] == 200
    status, reply = await fuzzed.post(url, request)
    assert status == 409, reply


# ---------------------------------------------------------------- directory, mailbox, cosignatures


def _directory_bases() -> list[tuple[str, Any]]:
    size = 2  # the fixture's log: the deposit and the payment
    cosignature = Cosignature(MEMBERS[2].address, ME.address, size, b"\x00" * 32, 8_000)  # type: ignore[arg-type]
    return [
        ("/v1/directory", records.signed_record_to_json(signed_record(sequence=NOW + 1))),
        (f"/v1/mailbox/{AGENT}/fetch", dict(records.sign_fetch(KEY, fetch(node=ME.address)))),
        (
            "/v1/log/cosignatures",
            wire.signed_cosignature_to_json(
                cosignature, sign_cosignature(MEMBERS[2], DOMAIN, cosignature)
            ),
        ),
        ("/v1/certificates/unknown", {"digests": [hash_hex(b"\x01" * 32)] * 3}),  # type: ignore[arg-type]
    ]


@given(data=st.data(), which=st.integers(0, 3))
@settings(FUZZ, max_examples=examples(300))
@pytest.mark.asyncio
async def test_mutated_directory_mailbox_and_cosignatures(
    fuzzed: Fuzzed, data: st.DataObject, which: int
) -> None:
    CASES.add("node: mutated directory")
    route, base = _directory_bases()[which]
    what, body = data.draw(structural(base))
    status, reply = await fuzzed.post(route, body, what=what)
    if route != "/v1/certificates/unknown" and status == 200:
        # Only a change that keeps the signed meaning (e.g. the case of hex) may pass.
        decode = {
            "/v1/directory": records.signed_record_from_json,
            "/v1/log/cosignatures": wire.signed_cosignature_from_json,
        }.get(route, records.fetch_from_json)
        assert _decodes_to(body, decode, decode(base)), (what, reply)


# ---------------------------------------------------------------- GET routes


GET_TEMPLATES = [
    "/v1/accounts/{}",
    "/v1/accounts/{}/certificates",
    "/v1/certificates/{}",
    "/v1/directory/agents/{}",
    "/v1/accounts/{}/stream",
    "/v1/{}",
    "/{}",
]
FIXED_GETS = [
    "/v1/log/entries",
    "/v1/log/certificates",
    "/v1/log/inclusion",
    "/v1/log/consistency",
    "/v1/log/head",
    "/v1/log/checkpoint",
    "/v1/log/witnesses",
    "/v1/log/evidence",
    "/v1/log/cosignatures",
    "/v1/committee",
    "/v1/health",
    "/v1/metrics",
    "/v1/directory",
    "/v1/directory/records",
]
QUERY_NAMES = [
    "start",
    "end",
    "index",
    "size",
    "first",
    "second",
    "from_index",
    "protocol",
    "service",
    "after",
    "limit",
]
PARAM_VALUES = st.one_of(
    st.sampled_from(
        [
            address_hex(ALICE.address),
            address_hex(ALICE.address).lower(),
            address_hex(ALICE.address).upper().replace("0X", "0x"),
            AGENT,
            AGENT.upper(),
            hash_hex(order_digest(DOMAIN, transfer(ALICE, BOB, 5, 0).order)),
            "0x" + "00" * 32,
            "agent1",
            "",
            "..",
            "%00",
        ]
    ),
    TEXT,
)
QUERY_VALUES = st.one_of(
    st.sampled_from(
        ["0", "1", "2", "3", "-1", "1e3", "²", "٣", " 1", "1 ", str(2**64), "9" * 21, "", PROTO]
    ),
    st.integers(0, 2**70).map(str),
    TEXT,
)


#: aiohttp's limit on the request line: longer ones never reach the node's handlers.
MAX_LINE = 8190


def _quoted(text: str) -> str:
    """``text`` percent-encoded for a path (lone surrogates as their invalid UTF-8)."""
    return quote(text.encode("utf-8", errors="surrogatepass"), safe="")


async def too_long(fuzzed: Fuzzed, url: URL) -> None:
    """A request line beyond aiohttp's limit: its HTTP parser answers 400 in plain text
    (the request is not HTTP the server reads; nothing reaches the node's code)."""
    before = fuzzed.node.digest()
    async with fuzzed.http.get(url) as response:
        assert response.status == 400
        assert "Got more than 8190 bytes" in await response.text()
    assert fuzzed.node.digest() == before


@given(
    template=st.sampled_from(GET_TEMPLATES + FIXED_GETS),
    param=PARAM_VALUES,
    query=st.lists(st.tuples(st.sampled_from(QUERY_NAMES) | TEXT, QUERY_VALUES), max_size=4),
    method=st.sampled_from(["GET", "GET", "GET", "HEAD", "PUT", "DELETE", "PATCH", "OPTIONS"]),
)
@settings(FUZZ, max_examples=examples(600))
@pytest.mark.asyncio
async def test_get_routes_with_any_parameters(
    fuzzed: Fuzzed, template: str, param: str, query: list[tuple[str, str]], method: str
) -> None:
    CASES.add("node: GET routes")
    path = template.format(_quoted(param))
    text = path + (
        "?" + urlencode(query, encoding="utf-8", errors="surrogatepass") if query else ""
    )
    url = URL(fuzzed.node.url + text, encoded=True)
    if len(text) > MAX_LINE:
        await too_long(fuzzed, url)
        return
    if method == "HEAD":
        async with fuzzed.http.head(url) as response:
            assert response.status < 500, (text, response.status)
        return
    before = fuzzed.node.digest()
    status, _ = await fuzzed.send(method, url, what=text)
    assert fuzzed.node.digest() == before, text  # a read never writes
    if method != "GET" and template != "/{}" and template != "/v1/{}":
        assert status in (404, 405), (method, text, status)


# ---------------------------------------------------------------- the account stream

UPGRADE = {
    "Connection": "Upgrade",
    "Upgrade": "websocket",
    "Sec-WebSocket-Version": "13",
    "Sec-WebSocket-Key": "ZmFydGhpbmcgZnV6emVyIQ==",
}


@given(
    account=PARAM_VALUES,
    from_index=st.none() | QUERY_VALUES,
    frames=st.lists(
        st.one_of(st.text(max_size=100), st.binary(max_size=100), st.integers(4_097, 20_000)),
        max_size=3,
    ),
)
@settings(FUZZ, max_examples=examples(150))
@pytest.mark.asyncio
async def test_account_stream_with_any_parameters_and_frames(
    fuzzed: Fuzzed, account: str, from_index: str | None, frames: list[str | bytes | int]
) -> None:
    """The WebSocket handshake with any account and ``from_index`` is refused in JSON or
    upgraded; whatever the client then sends, the node closes cleanly and forgets it."""
    CASES.add("node: stream")
    path = f"/v1/accounts/{_quoted(account)}/stream"
    if from_index is not None:
        path += "?" + urlencode({"from_index": from_index}, errors="surrogatepass")
    url = URL(fuzzed.node.url + path, encoded=True)
    if len(path) > MAX_LINE:
        await too_long(fuzzed, url)
        return
    try:
        ws = await fuzzed.http.ws_connect(url, timeout=aiohttp.ClientWSTimeout(ws_close=5))
    except aiohttp.WSServerHandshakeError as refused:
        assert 400 <= refused.status < 500, (path, refused.status)
        # The same handshake with a plain GET gets the JSON reason.
        await fuzzed.send("GET", url, what=path)
        return
    async with ws:
        for frame in frames:
            if isinstance(frame, int):
                await ws.send_bytes(b"x" * frame)  # beyond max_client_frame: closed
            elif isinstance(frame, str):
                await ws.send_str(frame)
            else:
                await ws.send_bytes(frame)
    assert ws.closed
    for _ in range(100):
        if fuzzed.node.streams.count == 0:
            break
        await asyncio_sleep(0.01)
    assert fuzzed.node.streams.count == 0


async def asyncio_sleep(seconds: float) -> None:
    import asyncio

    await asyncio.sleep(seconds)


# ---------------------------------------------------------------- the count


def test_the_node_fuzzers_ran_enough_cases() -> None:
    """Runs last in this module: the cases counted by the tests above (all of them ran
    unless some were deselected, then this checks only what ran)."""
    node_cases = {k: v for k, v in CASES.by_test.items() if k.startswith("node: ")}
    print(f"node fuzz cases: {sum(node_cases.values())} {dict(node_cases)}")
    if len(node_cases) == 9:
        assert sum(node_cases.values()) >= examples(2_500)
