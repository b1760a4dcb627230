"""docs/openapi.json against the node: a valid OpenAPI 3.1 document, exactly the node's
routes, limits equal to the code's, schemas as strict as docs/wire-format.md (the wire's
golden vectors pass, its malformed inputs fail), and every documented response status
produced by a real node whose JSON matches the schema for that status.

Responses are checked against a stricter reading of the document than requests: the
node accepts hashes and signatures in any case and addresses in three forms, but emits
lower-case hex (``x-farthing-emitted-pattern``) and EIP-55 addresses
(``x-farthing-emitted-format``)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import copy
import functools
import io
import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest
import pytest_asyncio
from aiohttp.test_utils import TestClient, TestServer
from jsonschema import Draft202012Validator, FormatChecker
from openapi_spec_validator import validate as validate_openapi
from referencing import Registry
from referencing.jsonschema import DRAFT202012

from node import api
from node.api import NodeServices, make_app
from node.checkpoints import Checkpointer, CheckpointPolicy
from node.config import NodeConfig
from node.directory_api import DirectoryServices
from node.directory_api import install as install_directory
from node.metrics import CONTENT_TYPE, NodeMetrics
from node.state import ContractReceiveDeposit, Event, RefusalCode
from node.store import LedgerStore
from node.store import directory as directory_store
from node.stream import STREAM_PATH, StreamHub, StreamSettings, install
from node.witness import Evidence, EvidenceKind, ForkReport, Witnessed
from node.writer import Writer
from tests.node.factories import (
    ALICE,
    BOB,
    CAROL,
    COMMITTEE,
    DOMAIN,
    MEMBERS,
    USDF,
    Node,
    certify,
    transfer,
    withdrawal,
)
from tests.wallet.test_directory import KEY, NOW, PROTO, fetch
from tests.wallet.test_directory import signed as signed_record
from tests.wallet.test_wire import MUTATIONS, mutate
from wallet import directory as records
from wallet import wire
from wallet.codec import address_hex, hash_hex, parse_address
from wallet.eip712 import order_digest
from wallet.errors import EncodingError
from wallet.keys import agent_address
from wallet.serving import ConnectionLimits
from wallet.signing import sign_checkpoint, sign_cosignature
from wallet.types import Address, Amount, Checkpoint, Cosignature, Hash32

DOCUMENT = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"
BASE = "urn:farthing:openapi"
METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
ME, PEER, OTHER = MEMBERS[0], MEMBERS[1], MEMBERS[2]


@functools.cache
def document() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DOCUMENT.read_text(encoding="utf-8"))
    return loaded


def _emitted(node: Any) -> Any:
    """The document as the node writes: the emitted patterns and formats in force."""
    if isinstance(node, list):
        return [_emitted(v) for v in node]
    if not isinstance(node, dict):
        return node
    out = {k: _emitted(v) for k, v in node.items()}
    if "x-farthing-emitted-pattern" in out:
        out["pattern"] = out["x-farthing-emitted-pattern"]
    if "x-farthing-emitted-format" in out:
        out["format"] = out["x-farthing-emitted-format"]
    return out


def _is_eip55(value: object) -> bool:
    if not isinstance(value, str):
        return True
    try:
        return address_hex(parse_address(value)) == value
    except EncodingError:
        return False


FORMATS = FormatChecker(formats=())
FORMATS.checks("eip55-address")(_is_eip55)


@functools.cache
def _registry(emitted: bool) -> Registry[Any]:
    contents = _emitted(document()) if emitted else document()
    return Registry().with_resource(BASE, DRAFT202012.create_resource(contents))


def validator(pointer: str, *, emitted: bool) -> Draft202012Validator:
    """A validator of the schema at ``pointer`` (a JSON pointer into the document), for
    what the node emits or for what it accepts."""
    return Draft202012Validator(
        {"$ref": f"{BASE}#{pointer}"}, registry=_registry(emitted), format_checker=FORMATS
    )


def _escape(part: str) -> str:
    return part.replace("~", "~0").replace("/", "~1")


def schema_pointer(name: str) -> str:
    return f"/components/schemas/{_escape(name)}"


def _follow(pointer: str) -> tuple[str, dict[str, Any]]:
    """The object at ``pointer``, following a ``$ref`` on it: (its pointer, it)."""
    node: Any = document()
    for part in pointer.strip("/").split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    if "$ref" in node:
        target: str = node["$ref"]
        assert target.startswith("#/")
        return _follow(target[1:])
    return pointer, node


def response_pointer(template: str, method: str, status: int) -> tuple[str, dict[str, Any]]:
    """The documented response for ``status`` (or ``default``): (its pointer, it)."""
    operation = f"/paths/{_escape(template)}/{method.lower()}"
    responses = _follow(operation)[1]["responses"]
    key = str(status) if str(status) in responses else "default"
    assert key in responses, f"{method} {template} documents no {status} and no default"
    return _follow(f"{operation}/responses/{key}")


# ---------------------------------------------------------------- the document itself


def test_the_document_is_valid_openapi_3_1() -> None:
    assert document()["openapi"].startswith("3.1.")
    validate_openapi(document())


def test_limits_and_codes_are_the_codes() -> None:
    doc = document()
    limits = doc["x-farthing-limits"]
    assert limits == {
        "maxBodyBytes": api.MAX_BODY,
        "maxBatch": api.MAX_BATCH,
        "maxEntries": api.MAX_ENTRIES,
        "maxCertificates": api.MAX_CERTIFICATES,
        "maxVotes": wire.MAX_VOTES,
        "maxAmountDigits": wire.MAX_AMOUNT_DIGITS,
        "maxEndpoints": records.MAX_ENDPOINTS,
        "maxProtocols": records.MAX_PROTOCOLS,
        "maxServices": records.MAX_SERVICES,
        "maxRecordLifetime": records.MAX_LIFETIME,
        "maxDirectoryResults": directory_store.MAX_RESULTS,
        "maxEnvelopeBytes": directory_store.MAX_ENVELOPE,
        "maxEnvelopes": directory_store.MAX_ENVELOPES,
        "maxMailboxBytes": directory_store.MAX_MAILBOX_BYTES,
        "envelopeTtl": directory_store.ENVELOPE_TTL,
        "maxFetch": records.MAX_FETCH,
    }
    schemas = doc["components"]["schemas"]
    assert schemas["Certificate"]["properties"]["votes"]["maxItems"] == wire.MAX_VOTES
    assert schemas["Amount"]["maxLength"] == wire.MAX_AMOUNT_DIGITS
    assert schemas["Uint64"]["maximum"] == 2**64 - 1
    paths = doc["paths"]
    for path, key in [
        ("/v1/orders/batch", "orders"),
        ("/v1/certificates/batch", "certificates"),
        ("/v1/certificates/unknown", "digests"),
    ]:
        body = paths[path]["post"]["requestBody"]["content"]["application/json"]["schema"]
        assert (body["properties"][key]["minItems"], body["properties"][key]["maxItems"]) == (
            1,
            api.MAX_BATCH,
        )
    for path, key, most in [
        ("/v1/log/entries", "entries", api.MAX_ENTRIES),
        ("/v1/log/certificates", "certificates", api.MAX_CERTIFICATES),
        ("/v1/accounts/{address}/certificates", "certificates", api.MAX_CERTIFICATES),
    ]:
        reply = paths[path]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
        assert reply["properties"][key]["maxItems"] == most
    # Every refusal code, each with the status the API gives it.
    assert sorted(schemas["RefusalCode"]["enum"]) == sorted(c.value for c in RefusalCode)
    codes = doc["x-farthing-error-codes"]
    for code in RefusalCode:
        expected = 409 if code in api._CONFLICTS else 422
        assert codes[code.value]["status"] == expected, code
    # Connections over a cap (wallet.serving, wired by node.app with these defaults).
    caps = codes["too_many_connections"]
    assert caps["status"] == [429, 503]
    defaults = ConnectionLimits()
    node_defaults = {f.name: f.default for f in fields(NodeConfig)}
    assert (node_defaults["max_client_connections"], node_defaults["max_connections"]) == (
        defaults.per_client,
        defaults.total,
    )
    assert f"({defaults.per_client})" in caps["meaning"]
    assert f"({defaults.total:,})" in caps["meaning"]
    # The stream's limits.
    stream = paths[STREAM_PATH]["get"]["x-farthing-websocket"]
    s = StreamSettings()
    assert (
        stream["queueSize"],
        stream["maxReplay"],
        stream["maxClientFrame"],
        stream["heartbeatSeconds"],
        stream["maxStreamsPerAccount"],
        stream["maxStreams"],
    ) == (
        s.queue_size,
        s.max_replay,
        s.max_client_frame,
        s.heartbeat,
        s.max_per_account,
        s.max_subscribers,
    )


def _examples(node: Any, pointer: str = "") -> list[tuple[str, Any]]:
    """(pointer of the schema, example) for every example in the document: a media
    type's ``example`` and a schema's ``examples``."""
    found: list[tuple[str, Any]] = []
    if isinstance(node, dict):
        if "schema" in node and "example" in node:
            found.append((pointer + "/schema", node["example"]))
        if "examples" in node and isinstance(node["examples"], list):
            found.extend((pointer, example) for example in node["examples"])
        for key, value in node.items():
            found.extend(_examples(value, f"{pointer}/{_escape(key)}"))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found.extend(_examples(value, f"{pointer}/{i}"))
    return found


def test_every_example_is_what_the_node_would_send() -> None:
    examples = _examples(document())
    assert len(examples) >= 10
    for pointer, example in examples:
        validator(pointer, emitted=True).validate(example)


def _vectors() -> list[dict[str, Any]]:
    path = Path(__file__).resolve().parents[1] / "wallet" / "vectors" / "wire.json"
    found: list[dict[str, Any]] = json.loads(path.read_text(encoding="utf-8"))["vectors"]
    return found


SCHEMA_OF = {
    "order": "Order",
    "signed_order": "SignedOrder",
    "vote": "Vote",
    "certificate": "Certificate",
    "checkpoint": "Checkpoint",
    "signed_checkpoint": "SignedCheckpoint",
}


@pytest.mark.parametrize("v", _vectors(), ids=lambda v: v["name"])
def test_the_wire_vectors_match_their_schemas(v: dict[str, Any]) -> None:
    pointer = schema_pointer(SCHEMA_OF[v["type"]])
    validator(pointer, emitted=True).validate(v["json"])
    if "input" in v:
        validator(pointer, emitted=False).validate(v["input"])


#: Malformed inputs (tests/wallet/test_wire.py) that JSON Schema cannot tell from valid
#: ones: distinct signers, EIP-55 checksums, the 2**256 bound, and whole numbers written
#: with a fraction or exponent (JSON Schema's "integer" admits 1.0). The descriptions say so.
NOT_EXPRESSIBLE = {
    "cert-duplicate-signer",
    "cert-duplicate-signer-other-case",
    "address-bad-checksum",
    "vote-signer-checksum",
    "amount-2**256",
    "cert-epoch-float",
    "cert-epoch-exponent",
    "checkpoint-timestamp-float",
}


@pytest.mark.parametrize(
    ("name", "base", "path", "value"),
    [m[:4] for m in MUTATIONS],
    ids=[m[0] for m in MUTATIONS],
)
def test_the_schemas_refuse_malformed_messages(
    name: str, base: str, path: tuple[str | int, ...], value: object
) -> None:
    vector = next(v for v in _vectors() if v["name"] == base)
    check = validator(schema_pointer(SCHEMA_OF[vector["type"]]), emitted=False)
    valid = check.is_valid(mutate(vector["json"], path, value))
    assert valid is (name in NOT_EXPRESSIBLE), name


# ---------------------------------------------------------------- a node, wired as node.app


@dataclass
class Documented:
    """A node wired as node.app wires it, and the responses checked so far."""

    client: TestClient  # type: ignore[type-arg]
    writer: Writer
    store: LedgerStore
    checkpointer: Checkpointer
    seen: set[tuple[str, str, str]] = field(default_factory=set)

    def routes(self) -> set[tuple[str, str]]:
        app = self.client.server.app
        assert app is not None
        return {
            (route.method, route.resource.canonical)
            for route in app.router.routes()
            if route.resource is not None and route.method != "HEAD"
        }

    def check(self, method: str, template: str, status: int, body: Any) -> None:
        """``body`` (parsed JSON) is what the document says ``status`` carries."""
        pointer, response = response_pointer(template, method, status)
        assert "application/json" in response.get("content", {}), (method, template, status)
        validator(f"{pointer}/content/application~1json/schema", emitted=True).validate(body)
        responses = _follow(f"/paths/{_escape(template)}/{method.lower()}")[1]["responses"]
        self.seen.add((method, template, str(status) if str(status) in responses else "default"))

    def accepts(self, method: str, template: str, body: Any) -> bool:
        """Whether the document's request schema admits ``body``."""
        operation = _follow(f"/paths/{_escape(template)}/{method.lower()}")[0]
        pointer = f"{operation}/requestBody/content/application~1json/schema"
        return validator(pointer, emitted=False).is_valid(body)

    async def call(
        self, method: str, template: str, path: str, body: Any = None, expect: int | None = None
    ) -> tuple[int, Any]:
        if body is None:
            response = await self.client.request(method, path)
        else:
            response = await self.client.request(method, path, json=body)
        assert response.content_type == "application/json", (path, response.content_type)
        parsed = await response.json()
        if expect is not None:
            assert response.status == expect, (path, response.status, parsed)
        self.check(method, template, response.status, parsed)
        return response.status, parsed

    async def get(self, template: str, path: str, expect: int) -> Any:
        return (await self.call("GET", template, path, expect=expect))[1]

    async def post(self, template: str, body: Any, expect: int, *, admitted: bool = True) -> Any:
        """POST ``body``; unless told otherwise (a batch with a malformed item), a request
        the node takes (2xx, 409, 422) must be one the document admits, and one it refuses
        with 400 one the document refuses too."""
        status, reply = await self.call("POST", template, template, body, expect)
        if admitted:
            assert self.accepts("POST", template, body) is (status != 400), (template, body)
        return reply


STREAM_LIMITS = StreamSettings(max_subscribers=2, max_per_account=1, max_replay=2)


@pytest_asyncio.fixture
async def node(tmp_path: Path) -> AsyncIterator[Documented]:
    store = LedgerStore(tmp_path, DOMAIN, sync=False)
    store.put_committee(COMMITTEE)
    metrics, streams = NodeMetrics(), StreamHub(STREAM_LIMITS)
    writer = Writer(
        store, Node().context, observers=(metrics.observe_commit, streams.observe_commit)
    )
    checkpointer = Checkpointer(store, ME, DOMAIN, CheckpointPolicy())

    async def on_events(events: Sequence[Event]) -> None:
        return None

    services = NodeServices(
        writer, store, ME.address, lambda: COMMITTEE, on_events, lambda: checkpointer.latest
    )
    app = make_app(services)
    install(app, streams)
    install_directory(
        app,
        DirectoryServices(
            directory_store.DirectoryStore(store.keyspace(b"d"), max_agents=2),
            directory_store.MailboxStore(store.keyspace(b"x"), max_envelopes=1),
            ME.address,
            lambda: NOW,
        ),
    )
    metrics.install(app, untimed=[STREAM_PATH])
    runner = asyncio.create_task(writer.run())
    client = TestClient(TestServer(app, host="127.0.0.1"))
    await client.start_server()
    try:
        await writer.apply(ContractReceiveDeposit(1, ALICE.address, USDF, Amount(100)))
        yield Documented(client, writer, store, checkpointer)
    finally:
        await client.close()
        runner.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await runner
        store.close()


def _documented_operations() -> set[tuple[str, str]]:
    return {
        (method.upper(), path)
        for path, item in document()["paths"].items()
        for method in item
        if method in METHODS
    }


@pytest.mark.asyncio
async def test_every_route_is_documented_and_every_documented_path_is_a_route(
    node: Documented,
) -> None:
    assert node.routes() == _documented_operations()


# ---------------------------------------------------------------- real replies


async def _payments(node: Documented) -> list[str]:
    """Votes, certificates and their refusals; returns the applied orders' digests."""
    orders, certificates = "/v1/orders", "/v1/certificates"
    first = transfer(ALICE, BOB, 30, 0)
    body = wire.signed_order_to_json(first)
    assert "vote" in await node.post(orders, body, 200)
    # Any case in: upper-case hex and all-lower addresses are the same order.
    shouting = copy.deepcopy(body)
    shouting["signature"] = "0x" + body["signature"][2:].upper()
    shouting["order"]["payer"] = body["order"]["payer"].lower()
    shouting["order"]["reference"] = "0x" + body["order"]["reference"][2:].upper()
    assert "vote" in await node.post(orders, shouting, 200)
    conflict = await node.post(orders, wire.signed_order_to_json(transfer(ALICE, CAROL, 1, 0)), 409)
    assert conflict["code"] == "conflicting_order"
    assert conflict["conflicting"] == hash_hex(order_digest(DOMAIN, first.order))
    ahead = await node.post(orders, wire.signed_order_to_json(transfer(ALICE, BOB, 1, 5)), 409)
    assert ahead["code"] == "sequence_ahead" and "conflicting" not in ahead
    refusals = {
        "insufficient_balance": transfer(BOB, ALICE, 1, 0),
        "zero_amount": transfer(ALICE, BOB, 0, 0),
        "unknown_token": transfer(ALICE, BOB, 1, 0, token=Address(b"\x01" * 20)),
    }
    for code, signed in refusals.items():
        assert (await node.post(orders, wire.signed_order_to_json(signed), 422))["code"] == code
    forged = wire.signed_order_to_json(transfer(ALICE, BOB, 1, 0))
    forged["signature"] = wire.signed_order_to_json(transfer(BOB, ALICE, 1, 0))["signature"]
    assert (await node.post(orders, forged, 422))["code"] == "bad_signature"
    bad = await node.post(orders, {**body, "signature": "0x12"}, 400)
    assert bad["field"] == "signature"
    assert (await node.post(orders, [], 400))["field"] == "signed_order"
    # The account, with the order this node voted for.
    alice = address_hex(ALICE.address)
    account = await node.get("/v1/accounts/{address}", f"/v1/accounts/{alice.lower()}", 200)
    assert account["pending_order"] == body and account["address"] == alice

    certificate = wire.certificate_to_json(certify(first))
    applied = await node.post(certificates, certificate, 200)
    assert applied == {"status": "applied", "log_index": 1}
    assert await node.post(certificates, certificate, 200) == {"status": "duplicate"}
    later = wire.certificate_to_json(certify(transfer(ALICE, BOB, 1, 2)))
    assert await node.post(certificates, later, 200) == {"status": "pending"}
    rival = await node.post(
        certificates, wire.certificate_to_json(certify(transfer(ALICE, CAROL, 1, 0))), 409
    )
    assert rival["code"] == "conflicting_certificate" and "conflicting" in rival
    few = wire.certificate_to_json(certify(transfer(ALICE, BOB, 1, 1), MEMBERS[:2]))
    assert (await node.post(certificates, few, 422))["code"] == "insufficient_quorum"
    stranger = certify(transfer(ALICE, BOB, 1, 1), [*MEMBERS[:2], CAROL])
    refused = await node.post(certificates, wire.certificate_to_json(stranger), 422)
    assert refused["code"] == "not_a_member"
    malformed = await node.post(certificates, {**certificate, "epoch": "1"}, 400)
    assert malformed["field"] == "epoch"

    # Batches: a result per item, errors included.
    results = await node.post(
        "/v1/orders/batch",
        {"orders": [wire.signed_order_to_json(withdrawal(BOB, 1, 0)), {"nonsense": 1}]},
        200,
        admitted=False,
    )
    assert "vote" in results["results"][0] and results["results"][1]["error"]["field"]
    assert (await node.post("/v1/orders/batch", {"orders": []}, 400))["field"] == "orders"
    middle = wire.certificate_to_json(certify(transfer(ALICE, BOB, 1, 1)))
    results = await node.post(
        "/v1/certificates/batch",
        {"certificates": [middle, later, {**middle, "votes": 1}]},
        200,
        admitted=False,
    )
    assert [r.get("status") for r in results["results"]] == ["applied", "duplicate", None]
    await node.post("/v1/certificates/batch", {"certificates": [], "extra": 1}, 400)

    digests = [hash_hex(order_digest(DOMAIN, transfer(ALICE, BOB, 1, s).order)) for s in (1, 2)]
    unknown = "0x" + "AB" * 32
    reply = await node.post("/v1/certificates/unknown", {"digests": [*digests, unknown]}, 200)
    assert reply == {"unknown": [unknown.lower()]}
    bad = await node.post("/v1/certificates/unknown", {"digests": [digests[0], "0x12"]}, 400)
    assert bad["field"] == "digests[1]"
    return [hash_hex(order_digest(DOMAIN, first.order)), *digests]


async def _body_errors(node: Documented) -> None:
    """Every endpoint with a body: 400 bad_json, 413, 415."""
    posts = sorted(path for method, path in _documented_operations() if method == "POST")
    json_type = {"Content-Type": "application/json"}
    for path in posts:
        for data, headers, status in [
            ("{not json", json_type, 400),
            (b'{"\xff": 1}', json_type, 400),  # JSON is UTF-8
            (b"{}", {"Content-Type": "application/json; charset=nope"}, 400),
            (b"{}", {"Content-Type": "text/plain"}, 415),
            (io.BytesIO(b"{" + b" " * (api.MAX_BODY + 1) + b"}"), json_type, 413),
        ]:
            url = path.replace("{agent}", agent_address(KEY))  # a template is no path
            response = await node.client.post(url, data=data, headers=headers)
            assert response.status == status, (path, status)
            node.check("POST", path, status, await response.json())


async def _reads(node: Documented, digests: list[str]) -> None:
    alice = address_hex(ALICE.address)
    await node.get("/v1/health", "/v1/health", 200)
    await node.get("/v1/committee", "/v1/committee", 200)
    await node.get("/v1/log/head", "/v1/log/head", 200)
    account = "/v1/accounts/{address}"
    await node.get(account, f"/v1/accounts/{address_hex(BOB.address)}", 200)
    assert (await node.get(account, "/v1/accounts/0x1234", 400))["field"] == "address"

    one = "/v1/certificates/{digest}"
    found = await node.get(one, f"/v1/certificates/{digests[0].upper().replace('X', 'x')}", 200)
    assert found["log_index"] == 1
    await node.get(one, "/v1/certificates/0x" + "00" * 32, 404)
    assert (await node.get(one, "/v1/certificates/nope", 400))["field"] == "hash"

    by_account = "/v1/accounts/{address}/certificates"
    listed = await node.get(by_account, f"/v1/accounts/{alice}/certificates?first=0&last=9", 200)
    assert len(listed["certificates"]) == 3
    await node.get(by_account, f"/v1/accounts/{alice}/certificates?first=2&last=1", 416)
    await node.get(by_account, f"/v1/accounts/{alice}/certificates?first=0", 400)

    size = node.store.log_size()
    entries = await node.get("/v1/log/entries", f"/v1/log/entries?start=0&end={size}", 200)
    assert len(entries["entries"]) == size == 4  # a deposit, then three transfers
    await node.get("/v1/log/entries", f"/v1/log/entries?start=0&end={size + 1}", 416)
    for start in ("x", "²", "٣", "+1", " 1", "1" * 21):  # ASCII digits only, at most 20
        await node.get("/v1/log/entries", f"/v1/log/entries?start={quote(start)}&end=1", 400)
    logged = "/v1/log/certificates"
    await node.get(logged, f"{logged}?start=0&end={size}", 200)
    await node.get(logged, f"{logged}?start=3&end=2", 416)
    await node.get(logged, f"{logged}?start=-1&end=2", 400)
    await node.get("/v1/log/inclusion", f"/v1/log/inclusion?index=1&size={size}", 200)
    await node.get("/v1/log/inclusion", f"/v1/log/inclusion?index={size}&size={size}", 416)
    await node.get("/v1/log/inclusion", "/v1/log/inclusion?index=1&size=0", 400)
    await node.get("/v1/log/consistency", f"/v1/log/consistency?first=1&second={size}", 200)
    await node.get("/v1/log/consistency", f"/v1/log/consistency?first=2&second={size + 1}", 416)
    await node.get("/v1/log/consistency", "/v1/log/consistency?first=0&second=1", 400)

    # Errors outside any documented path or method: the same Error object.
    response = await node.client.post("/v1/health", json={})
    assert response.status == 405
    validator(schema_pointer("Error"), emitted=True).validate(await response.json())
    response = await node.client.get("/v1/nowhere")
    assert response.status == 404
    validator(schema_pointer("NotFound"), emitted=True).validate(await response.json())

    response = await node.client.get("/v1/metrics")
    assert response.status == 200
    documented = document()["paths"]["/v1/metrics"]["get"]["responses"]["200"]["content"]
    assert list(documented) == [CONTENT_TYPE] == [response.headers["Content-Type"]]
    assert "# TYPE " in await response.text()
    node.seen.add(("GET", "/v1/metrics", "200"))


def _signed_checkpoint(key: Any, size: int, root: bytes, timestamp: int) -> Any:
    checkpoint = Checkpoint(key.address, size, Hash32(root), timestamp)
    return checkpoint, sign_checkpoint(key, DOMAIN, checkpoint)


async def _witnessing(node: Documented) -> None:
    checkpoint = "/v1/log/checkpoint"
    await node.get(checkpoint, checkpoint, 404)
    node.checkpointer.maybe_sign(1_767_225_600_000)
    signed = await node.get(checkpoint, checkpoint, 200)
    assert signed["node"] == address_hex(ME.address)

    empty = {"witnessed": []}, {"evidence": [], "equivocations": []}, {"cosignatures": []}
    for path, expected in zip(
        ["/v1/log/witnesses", "/v1/log/evidence", "/v1/log/cosignatures"], empty, strict=True
    ):
        assert await node.get(path, path, 200) == expected

    # What a witness keeps: a peer's checkpoint, its cosignature, fork evidence.
    last = _signed_checkpoint(PEER, 9, b"\x0a" * 32, 1_000)
    mine = Cosignature(ME.address, PEER.address, 9, last[0].root, 1_500)
    node.store.put_witnessed(Witnessed(last, mine, sign_cosignature(ME, DOMAIN, mine)))
    twin = _signed_checkpoint(PEER, 9, b"\x0b" * 32, 1_100)
    same = Evidence(PEER.address, EvidenceKind.SAME_SIZE, last, twin, (), "two roots")
    node.store.put_evidence(ForkReport(same, "http://127.0.0.1:8702", 2_000))
    small, large = (
        _signed_checkpoint(OTHER, 3, b"\x0c" * 32, 5),
        _signed_checkpoint(OTHER, 8, b"\x0d" * 32, 6),
    )
    proof = (Hash32(b"\xee" * 32), Hash32(b"\xff" * 32))
    inconsistent = Evidence(OTHER.address, EvidenceKind.INCONSISTENT, small, large, proof, "no")
    node.store.put_evidence(ForkReport(inconsistent, "http://127.0.0.1:8703/ü", 2_001))
    witnessed = await node.get("/v1/log/witnesses", "/v1/log/witnesses", 200)
    assert len(witnessed["witnessed"]) == 1
    evidence = await node.get("/v1/log/evidence", "/v1/log/evidence", 200)
    assert {e["kind"] for e in evidence["evidence"]} == {"same_size_different_root", "inconsistent"}

    # A peer's cosignature of this node's log.
    cosignatures = "/v1/log/cosignatures"
    size = node.store.log_size()
    theirs = Cosignature(PEER.address, ME.address, size, node.store.root_at(size), 7_000)
    body = wire.signed_cosignature_to_json(theirs, sign_cosignature(PEER, DOMAIN, theirs))
    assert await node.post(cosignatures, body, 200) == {"status": "stored"}
    assert await node.post(cosignatures, body, 200) == {"status": "stale"}
    own = Cosignature(ME.address, ME.address, size, node.store.root_at(size), 7_000)
    by_me = wire.signed_cosignature_to_json(own, sign_cosignature(ME, DOMAIN, own))
    assert (await node.post(cosignatures, by_me, 422))["code"] == "bad_cosignature"
    assert (await node.post(cosignatures, {**body, "tree_size": -1}, 400))["field"] == "tree_size"
    assert len((await node.get(cosignatures, cosignatures, 200))["cosignatures"]) == 1


UPGRADE = {
    "Connection": "Upgrade",
    "Upgrade": "websocket",
    "Sec-WebSocket-Version": "13",
    "Sec-WebSocket-Key": base64.b64encode(b"farthing openapi").decode(),
}


async def _stream_error(node: Documented, path: str, status: int, upgrade: bool = True) -> Any:
    response = await node.client.get(path, headers=UPGRADE if upgrade else None)
    assert response.status == status, (path, response.status)
    body = await response.json()
    node.check("GET", STREAM_PATH, status, body)
    return body


async def _next(ws: aiohttp.ClientWebSocketResponse) -> Any:
    message = await asyncio.wait_for(ws.receive(), timeout=5)
    assert message.type is aiohttp.WSMsgType.TEXT, message
    return json.loads(message.data)


async def _stream(node: Documented) -> None:
    """The account stream: its messages, and its errors before the upgrade."""
    messages = validator(schema_pointer("StreamMessage"), emitted=True)
    base = f"/v1/accounts/{address_hex(ALICE.address)}/stream"
    await _stream_error(node, "/v1/accounts/0x1234/stream", 400)
    await _stream_error(node, base, 426, upgrade=False)
    for bad in ("1e3", "²"):
        await _stream_error(node, f"{base}?from_index={quote(bad)}", 400)
    size = node.store.log_size()
    assert size > STREAM_LIMITS.max_replay
    await _stream_error(node, f"{base}?from_index=0", 416)
    async with node.client.ws_connect(f"{base}?from_index={size - 2}") as ws:
        received = [await _next(ws) for _ in range(3)]
        for message in received:
            messages.validate(message)
        assert received[-1] == {"type": "caught_up", "tree_size": size}
        node.seen.add(("GET", STREAM_PATH, "101"))
        await _stream_error(node, base, 429)  # one stream per account here
        await node.writer.apply(ContractReceiveDeposit(2, ALICE.address, USDF, Amount(2**200)))
        deposit = await _next(ws)
        messages.validate(deposit)
        assert deposit["type"] == "deposit" and deposit["deposit"]["amount"] == str(2**200)
        bob = f"/v1/accounts/{address_hex(BOB.address)}/stream"
        async with node.client.ws_connect(bob) as second:
            messages.validate(await _next(second))
            await _stream_error(node, f"/v1/accounts/{address_hex(CAROL.address)}/stream", 503)


@pytest.mark.asyncio
async def test_real_replies_match_the_document(node: Documented) -> None:
    digests = await _payments(node)
    await _body_errors(node)
    await _reads(node, digests)
    await _witnessing(node)
    await _stream(node)
    await _directory(node)
    documented = {
        (method.upper(), path, status)
        for path, item in document()["paths"].items()
        for method, operation in item.items()
        if method in METHODS
        for status in operation["responses"]
        if status != "default"
    }
    assert node.seen == documented


async def _directory(node: Documented) -> None:
    """The agent directory and the mailbox (docs/protocol.md section 7)."""
    post, mine = "/v1/directory", signed_record()
    agent = mine.record.agent
    body = records.signed_record_to_json(mine)
    assert await node.post(post, body, 200) == {"status": "stored"}
    assert await node.post(post, body, 200) == {"status": "unchanged"}
    older = records.signed_record_to_json(signed_record(sequence=NOW - 1))
    assert (await node.post(post, older, 409))["code"] == "old_sequence"
    forged = {
        **body,
        "signature": records.signed_record_to_json(signed_record(sequence=1))["signature"],
    }
    assert (await node.post(post, forged, 422))["code"] == "forged_record"
    assert (await node.post(post, {**body, "signature": "0x12"}, 400))["field"] == "signature"
    assert (await node.post(post, [], 400))["field"] == "signed_record"
    quiet = records.make_record(CAROL, issued_at=NOW)  # no mailbox
    await node.post(post, records.signed_record_to_json(quiet), 200)
    full = records.signed_record_to_json(records.make_record(BOB, issued_at=NOW))
    assert (await node.post(post, full, 507))["code"] == "directory_full"

    one = "/v1/directory/agents/{agent}"
    assert await node.get(one, f"/v1/directory/agents/{agent.upper()}", 200) == body
    assert (await node.get(one, "/v1/directory/agents/agent1x", 400))["field"] == "agent"
    await node.get(one, f"/v1/directory/agents/{agent_address(BOB)}", 404)
    found = await node.get(post, f"{post}?protocol={PROTO}", 200)
    assert found == {"records": [body], "truncated": False}
    assert len((await node.get(post, f"{post}?service=weather", 200))["records"]) == 1
    assert (await node.get(post, f"{post}?service=Nope", 400))["field"] == "service"
    listing = "/v1/directory/records"  # every live record, paged (directory gossip's pull)
    page = await node.get(listing, f"{listing}?limit=1", 200)
    assert len(page["records"]) == 1 and page["next"] is not None
    rest = await node.get(listing, f"{listing}?after={page['next'].upper()}", 200)
    assert len(rest["records"]) == 1 and rest["next"] is None
    assert (await node.get(listing, f"{listing}?limit=101", 400))["field"] == "limit"

    box, envelope = "/v1/mailbox/{agent}", {"target": agent, "payload": "e30="}
    stored = await node.call("POST", box, f"/v1/mailbox/{agent}", envelope, 200)
    assert stored[1]["id"] == 1
    await node.call("POST", box, f"/v1/mailbox/{agent}", envelope, 507)
    for other, status in [(quiet.record.agent, 422), (agent_address(BOB), 404)]:
        to_other = {**envelope, "target": other}
        await node.call("POST", box, f"/v1/mailbox/{other}", to_other, status)
    await node.call("POST", box, f"/v1/mailbox/{agent}", [envelope], 400)
    huge = {"target": agent, "payload": "x" * directory_store.MAX_ENVELOPE}
    await node.call("POST", box, f"/v1/mailbox/{agent}", huge, 413)

    fetch_path, url = "/v1/mailbox/{agent}/fetch", f"/v1/mailbox/{agent}/fetch"
    request = dict(records.sign_fetch(KEY, fetch(node=ME.address)))
    assert node.accepts("POST", fetch_path, request)
    _, reply = await node.call("POST", fetch_path, url, request, 200)
    assert [e["envelope"] for e in reply["envelopes"]] == [envelope]
    await node.call("POST", fetch_path, url, request, 409)
    stale = dict(records.sign_fetch(KEY, fetch(node=ME.address, timestamp=1, nonce=b"\1" * 16)))
    await node.call("POST", fetch_path, url, stale, 422)
    await node.call("POST", fetch_path, url, {**request, "limit": 0}, 400)
