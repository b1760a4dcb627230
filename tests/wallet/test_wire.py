"""The JSON wire format (wallet.wire, docs/wire-format.md): golden examples checked against
independent digests and signatures, round trips, and a table of named malformed inputs,
each refused with the path of the offending field."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scripts import gen_wire_vectors
from tests.wallet.reference import addresses, checkpoints, epochs, hashes, orders
from wallet import wire
from wallet.codec import SECP256K1_N, address_hex, parse_address, parse_hash32
from wallet.eip712 import checkpoint_digest, order_digest, vote_digest
from wallet.errors import EncodingError, InvalidSignature
from wallet.signing import recover
from wallet.types import (
    UINT64_MAX,
    UINT256_MAX,
    Address,
    Amount,
    Certificate,
    Checkpoint,
    Domain,
    Epoch,
    Hash32,
    Sequence,
    Signature,
    SignedOrder,
    Transfer,
    Vote,
    Withdrawal,
)

ROOT = Path(__file__).resolve().parents[2]
VECTORS = ROOT / "tests" / "wallet" / "vectors" / "wire.json"
WIRE_DOC = ROOT / "docs" / "wire-format.md"

Decoder = Callable[[object], object]
DECODERS: dict[str, Decoder] = {
    "order": wire.order_from_json,
    "signed_order": wire.signed_order_from_json,
    "vote": wire.vote_from_json,
    "certificate": wire.certificate_from_json,
    "checkpoint": wire.checkpoint_from_json,
    "signed_checkpoint": wire.signed_checkpoint_from_json,
}


def encode(kind: str, value: Any) -> object:
    match kind:
        case "order":
            return wire.order_to_json(value)
        case "signed_order":
            return wire.signed_order_to_json(value)
        case "vote":
            return wire.vote_to_json(value)
        case "certificate":
            return wire.certificate_to_json(value)
        case "checkpoint":
            return wire.checkpoint_to_json(value)
        case "signed_checkpoint":
            return wire.signed_checkpoint_to_json(*value)
    raise AssertionError(kind)


# ---------------------------------------------------------------- golden examples


def generator() -> ModuleType:
    return gen_wire_vectors


@cache
def vector_file() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(VECTORS.read_text())
    return data


def vectors() -> list[dict[str, Any]]:
    return list(vector_file()["vectors"])


def vector(name: str) -> dict[str, Any]:
    """A deep copy of the canonical JSON of the vector ``name`` (free to mutate)."""
    found = next(v for v in vectors() if v["name"] == name)
    return copy.deepcopy(found["json"])


def domain() -> Domain:
    d = vector_file()["domain"]
    return Domain(int(d["chainId"]), parse_address(d["verifyingContract"]))


def key_address(index: int) -> Address:
    return parse_address(vector_file()["keys"][index]["address"])


def test_vector_file_is_what_the_generator_produces() -> None:
    gen = generator()
    assert VECTORS.read_text() == gen.render(gen.generate()), (
        "tests/wallet/vectors/wire.json is stale: run scripts/gen_wire_vectors.py"
    )


def test_vectors_cover_every_message_type_and_the_boundaries() -> None:
    assert {v["type"] for v in vectors()} == set(DECODERS)
    names = {v["name"] for v in vectors()}
    assert {"order-transfer-max", "order-transfer-zero", "vote-epoch-max"} <= names
    assert {"certificate-no-votes", "checkpoint-empty-log", "checkpoint-max"} <= names
    assert sum("input" in v for v in vectors()) >= 3


@pytest.mark.parametrize("v", vectors(), ids=lambda v: v["name"])
def test_vector_round_trips_canonically(v: dict[str, Any]) -> None:
    decode = DECODERS[v["type"]]
    value = decode(v["json"])
    # Canonical: the same text, key order included.
    assert json.dumps(encode(v["type"], value)) == json.dumps(v["json"])
    if "input" in v:
        assert v["input"] != v["json"]
        assert decode(v["input"]) == value


@pytest.mark.parametrize("v", vectors(), ids=lambda v: v["name"])
def test_vector_decodes_to_the_signed_values(v: dict[str, Any]) -> None:
    """The decoded values have the digests eth-account computed from the generator's
    own fields, and the signatures recover to the expected keys: every field landed in
    the right place."""
    roles, d = vector_file()["roles"], domain()
    expected_digest = parse_hash32(v["digest"])
    value: Any = DECODERS[v["type"]](v.get("input", v["json"]))
    match v["type"]:
        case "order":
            assert order_digest(d, value) == expected_digest
        case "signed_order":
            assert order_digest(d, value.order) == expected_digest
            assert recover(expected_digest, value.signature) == key_address(roles["owner"])
        case "vote":
            assert vote_digest(d, value.order, value.epoch) == expected_digest
            assert recover(expected_digest, value.signature) == value.signer
        case "certificate":
            assert order_digest(d, value.order) == expected_digest
            assert recover(expected_digest, value.signed.signature) == value.order.owner
            vote = vote_digest(d, expected_digest, value.epoch)
            assert [recover(vote, s) for _, s in value.votes] == [m for m, _ in value.votes]
            assert [m for m, _ in value.votes] == sorted(m for m, _ in value.votes)
        case "checkpoint":
            assert checkpoint_digest(d, value) == expected_digest
        case "signed_checkpoint":
            checkpoint, signature = value
            assert checkpoint_digest(d, checkpoint) == expected_digest
            assert recover(expected_digest, signature) == key_address(roles["node"])


def doc_examples() -> list[Any]:
    blocks = re.findall(r"```json\n(.*?)```", WIRE_DOC.read_text(), flags=re.DOTALL)
    return [json.loads(block) for block in blocks]


def test_every_example_in_the_doc_is_a_golden_vector() -> None:
    examples = doc_examples()
    assert len(examples) >= len(DECODERS)
    canonical = [v["json"] for v in vectors()]
    for example in examples:
        assert example in canonical, "an example in docs/wire-format.md is not in wire.json"


# ---------------------------------------------------------------- round trips


signatures = st.binary(min_size=65, max_size=65).map(Signature)
signed_orders = st.builds(SignedOrder, order=orders, signature=signatures)
votes = st.builds(Vote, order=hashes, epoch=epochs, signer=addresses, signature=signatures)
vote_lists = st.lists(
    st.tuples(addresses, signatures), max_size=wire.MAX_VOTES, unique_by=lambda v: v[0]
).map(lambda vs: tuple(sorted(vs)))
certificates = st.builds(Certificate, signed=signed_orders, epoch=epochs, votes=vote_lists)
signed_checkpoints = st.tuples(checkpoints, signatures)

MESSAGES: dict[str, st.SearchStrategy[Any]] = {
    "order": orders,
    "signed_order": signed_orders,
    "vote": votes,
    "certificate": certificates,
    "checkpoint": checkpoints,
    "signed_checkpoint": signed_checkpoints,
}


@pytest.mark.parametrize("kind", sorted(MESSAGES))
@given(data=st.data())
def test_round_trip_through_json_text(kind: str, data: st.DataObject) -> None:
    value = data.draw(MESSAGES[kind])
    obj = encode(kind, value)
    text = json.dumps(obj)
    assert DECODERS[kind](json.loads(text)) == value
    assert DECODERS[kind](obj) == value


@given(order=orders)
def test_amount_is_a_decimal_string_and_addresses_are_eip55(order: Transfer | Withdrawal) -> None:
    obj: dict[str, Any] = dict(wire.order_to_json(order))
    assert obj["amount"] == str(order.amount)
    assert type(obj["sequence"]) is int
    for key in ("payer", "payee", "account", "recipient", "token"):
        if key in obj:
            assert obj[key] == address_hex(parse_address(obj[key]))


@given(certificate=certificates, data=st.data())
def test_votes_in_any_order_and_case_decode_sorted(
    certificate: Certificate, data: st.DataObject
) -> None:
    obj: dict[str, Any] = dict(wire.certificate_to_json(certificate))
    shuffled = data.draw(st.permutations(obj["votes"]))
    obj["votes"] = [
        {"signer": v["signer"].lower(), "signature": v["signature"].upper().replace("0X", "0x")}
        for v in shuffled
    ]
    assert wire.certificate_from_json(obj) == certificate


def test_certificate_from_unsorted_votes_is_sorted() -> None:
    a, b = Address(b"\x02" * 20), Address(b"\x01" * 20)
    sig = Signature(b"\x05" * 65)
    order = Transfer(a, b, a, Amount(1), Sequence(0))
    unsorted = Certificate(SignedOrder(order, sig), Epoch(1), ((a, sig), (b, sig)))
    assert wire.certificate_from_json(wire.certificate_to_json(unsorted)).votes == (
        (b, sig),
        (a, sig),
    )


def test_max_votes_round_trip() -> None:
    votes = tuple((Address(i.to_bytes(20, "big")), Signature(bytes(65))) for i in range(255))
    order = Withdrawal(votes[0][0], votes[1][0], votes[2][0], Amount(UINT256_MAX), Sequence(0))
    cert = Certificate(SignedOrder(order, Signature(bytes(65))), Epoch(UINT64_MAX), votes)
    assert (
        wire.certificate_from_json(json.loads(json.dumps(wire.certificate_to_json(cert)))) == cert
    )


def test_a_non_canonical_signature_is_left_to_verification() -> None:
    """The wire checks syntax only: a high-s signature decodes, and recover refuses it
    (the node's bad_signature / bad_vote, docs/protocol.md 1a)."""
    obj = vector("signed-order-transfer")
    raw = bytes.fromhex(obj["signature"][2:])
    high_s = (SECP256K1_N - int.from_bytes(raw[32:64], "big")).to_bytes(32, "big")
    twin = raw[:32] + high_s + bytes((raw[64] ^ 1,))
    obj["signature"] = "0x" + twin.hex()
    signed = wire.signed_order_from_json(obj)
    with pytest.raises(InvalidSignature):
        recover(order_digest(domain(), signed.order), signed.signature)


# ---------------------------------------------------------------- malformed inputs

DELETE = object()


def mutate(obj: Any, path: tuple[str | int, ...], value: object) -> Any:
    """A copy of ``obj`` with the value at ``path`` replaced (or deleted)."""
    out = copy.deepcopy(obj)
    parent = out
    for step in path[:-1]:
        parent = parent[step]
    if value is DELETE:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return out


def flip_checksum(text: str) -> str:
    """``text`` (EIP-55, mixed case) with the case of one letter flipped."""
    i = next(i for i, c in enumerate(text) if i >= 2 and c.isalpha())
    flipped = text[:i] + text[i].swapcase() + text[i + 1 :]
    assert flipped.lower() == text.lower()
    assert flipped != flipped.lower()
    assert flipped != "0x" + flipped[2:].upper()
    return flipped


CERT = "certificate-transfer"
SIG = "0x" + "11" * 64 + "1b"


def signer_of(index: int) -> str:
    signer: str = vector(CERT)["votes"][index]["signer"]
    return signer


def many_votes(n: int) -> list[dict[str, str]]:
    return [{"signer": "0x" + i.to_bytes(20, "big").hex(), "signature": SIG} for i in range(n)]


#: (name, vector, path, new value, expected field). One mutation of a valid message each.
MUTATIONS: list[tuple[str, str, tuple[str | int, ...], object, str]] = [
    # structure
    ("cert-extra-key", CERT, ("memo",), "hi", "memo"),
    ("cert-missing-epoch", CERT, ("epoch",), DELETE, "epoch"),
    ("cert-missing-votes", CERT, ("votes",), DELETE, "votes"),
    ("cert-order-not-object", CERT, ("order",), ["kind"], "order"),
    ("cert-order-extra-key", CERT, ("order", "memo"), "x", "order.memo"),
    ("cert-order-missing-reference", CERT, ("order", "reference"), DELETE, "order.reference"),
    ("cert-order-missing-kind", CERT, ("order", "kind"), DELETE, "order.kind"),
    ("cert-order-unknown-kind", CERT, ("order", "kind"), "refund", "order.kind"),
    ("cert-order-kind-not-string", CERT, ("order", "kind"), 1, "order.kind"),
    ("cert-order-kind-mismatch", CERT, ("order", "kind"), "withdrawal", "order.account"),
    ("cert-votes-not-array", CERT, ("votes",), {"0": "x"}, "votes"),
    ("cert-vote-not-object", CERT, ("votes", 1), SIG, "votes[1]"),
    ("cert-vote-extra-key", CERT, ("votes", 1, "weight"), 1, "votes[1].weight"),
    ("cert-vote-missing-signature", CERT, ("votes", 0, "signature"), DELETE, "votes[0].signature"),
    ("cert-256-votes", CERT, ("votes",), many_votes(256), "votes"),
    ("cert-duplicate-signer", CERT, ("votes", 2, "signer"), signer_of(0), "votes[2].signer"),
    (
        "cert-duplicate-signer-other-case",
        CERT,
        ("votes", 1, "signer"),
        signer_of(0).lower(),
        "votes[1].signer",
    ),
    # wrong types
    ("cert-signature-null", CERT, ("signature",), None, "signature"),
    ("cert-signature-number", CERT, ("signature",), 12, "signature"),
    ("cert-payer-bytes-list", CERT, ("order", "payer"), [0] * 20, "order.payer"),
    ("cert-epoch-string", CERT, ("epoch",), "1", "epoch"),
    ("cert-epoch-bool", CERT, ("epoch",), True, "epoch"),
    ("cert-epoch-float", CERT, ("epoch",), 1.0, "epoch"),
    ("cert-epoch-exponent", CERT, ("epoch",), 1e3, "epoch"),
    ("cert-epoch-negative", CERT, ("epoch",), -1, "epoch"),
    ("cert-epoch-2**64", CERT, ("epoch",), 2**64, "epoch"),
    ("cert-sequence-bool", CERT, ("order", "sequence"), False, "order.sequence"),
    ("cert-sequence-negative", CERT, ("order", "sequence"), -7, "order.sequence"),
    ("cert-sequence-2**64", CERT, ("order", "sequence"), 2**64, "order.sequence"),
    ("cert-sequence-string", CERT, ("order", "sequence"), "7", "order.sequence"),
    # amounts
    ("amount-number", CERT, ("order", "amount"), 1500000, "order.amount"),
    ("amount-plus", CERT, ("order", "amount"), "+1500000", "order.amount"),
    ("amount-minus", CERT, ("order", "amount"), "-1", "order.amount"),
    ("amount-leading-zeros", CERT, ("order", "amount"), "007", "order.amount"),
    ("amount-double-zero", CERT, ("order", "amount"), "00", "order.amount"),
    ("amount-empty", CERT, ("order", "amount"), "", "order.amount"),
    ("amount-space", CERT, ("order", "amount"), " 15", "order.amount"),
    ("amount-underscore", CERT, ("order", "amount"), "1_500", "order.amount"),
    ("amount-decimal-point", CERT, ("order", "amount"), "1.5", "order.amount"),
    ("amount-exponent", CERT, ("order", "amount"), "1e6", "order.amount"),
    ("amount-hex", CERT, ("order", "amount"), "0x10", "order.amount"),
    ("amount-unicode-digits", CERT, ("order", "amount"), "١٢٣", "order.amount"),
    ("amount-superscript", CERT, ("order", "amount"), "2²", "order.amount"),
    ("amount-2**256", CERT, ("order", "amount"), str(2**256), "order.amount"),
    ("amount-79-digits", CERT, ("order", "amount"), "1" + "0" * 78, "order.amount"),
    # hex fields
    ("signature-bad-hex", CERT, ("signature",), "0x" + "g" * 130, "signature"),
    ("signature-short", CERT, ("votes", 2, "signature"), SIG[:-2], "votes[2].signature"),
    ("signature-long", CERT, ("votes", 2, "signature"), SIG + "00", "votes[2].signature"),
    ("signature-no-prefix", CERT, ("signature",), SIG[2:] + "00", "signature"),
    ("signature-0X-prefix", CERT, ("signature",), "0X" + SIG[2:], "signature"),
    ("signature-space", CERT, ("signature",), SIG[:66] + " " + SIG[67:], "signature"),
    ("reference-bad-hex", CERT, ("order", "reference"), "0x" + "zz" * 32, "order.reference"),
    ("reference-short", CERT, ("order", "reference"), "0x" + "00" * 31, "order.reference"),
    ("reference-non-ascii", CERT, ("order", "reference"), "0x" + "é" * 64, "order.reference"),
    ("address-bad-hex", CERT, ("order", "payee"), "0x" + "q" * 40, "order.payee"),
    ("address-short", CERT, ("order", "token"), "0x" + "ab" * 19, "order.token"),
    ("address-long", CERT, ("order", "token"), "0x" + "ab" * 21, "order.token"),
    ("address-huge", CERT, ("order", "payer"), "0x" + "a" * 1_000_000, "order.payer"),
    (
        "address-bad-checksum",
        CERT,
        ("votes", 1, "signer"),
        flip_checksum(signer_of(1)),
        "votes[1].signer",
    ),
    # the other messages
    ("order-extra-key", "order-withdrawal", ("memo",), 1, "memo"),
    ("order-missing-amount", "order-withdrawal", ("amount",), DELETE, "amount"),
    (
        "order-withdrawal-reference",
        "order-withdrawal",
        ("reference",),
        "0x" + "00" * 32,
        "reference",
    ),
    ("order-payer-non-hex", "order-transfer", ("payer",), "0x" + "G" * 40, "payer"),
    ("signed-order-bad-amount", "signed-order-transfer", ("order", "amount"), "01", "order.amount"),
    ("signed-order-extra", "signed-order-transfer", ("epoch",), 1, "epoch"),
    ("vote-order-short", "vote", ("order",), "0x1234", "order"),
    ("vote-epoch-float", "vote", ("epoch",), 2.5, "epoch"),
    ("vote-signer-checksum", "vote", ("signer",), flip_checksum(signer_of(0)), "signer"),
    ("checkpoint-tree-size-negative", "checkpoint", ("tree_size",), -1, "tree_size"),
    ("checkpoint-missing-tree-size", "checkpoint", ("tree_size",), DELETE, "tree_size"),
    ("checkpoint-timestamp-float", "checkpoint", ("timestamp",), 1.7e12, "timestamp"),
    ("checkpoint-root-bad", "checkpoint", ("root",), "0x" + "x" * 64, "root"),
    ("checkpoint-with-signature", "checkpoint", ("signature",), SIG, "signature"),
    ("signed-checkpoint-no-signature", "signed-checkpoint", ("signature",), DELETE, "signature"),
    ("signed-checkpoint-bad-node", "signed-checkpoint", ("node",), None, "node"),
]


def _type_of(name: str) -> str:
    return next(v["type"] for v in vectors() if v["name"] == name)


def _strings(obj: object) -> list[str]:
    if isinstance(obj, dict):
        return [*obj, *(s for v in obj.values() for s in _strings(v))]
    if isinstance(obj, list):
        return [s for v in obj for s in _strings(v)]
    return [obj] if isinstance(obj, str) else []


def check_refusal(decode: Decoder, bad: object, field: str) -> EncodingError:
    with pytest.raises(EncodingError) as info:
        decode(bad)
    error = info.value
    assert error.field == field, str(error)
    assert isinstance(error, ValueError)
    message = str(error)
    assert len(message) < 300
    # No more than a short quotation of the input (24 characters) in the message.
    for text in _strings(bad):
        if len(text) > 24:
            assert text[:25] not in message
    return error


@pytest.mark.parametrize(
    ("name", "base", "path", "value", "field"), MUTATIONS, ids=[m[0] for m in MUTATIONS]
)
def test_malformed_input_is_refused_with_its_field(
    name: str, base: str, path: tuple[str | int, ...], value: object, field: str
) -> None:
    original = vector(base)
    DECODERS[_type_of(base)](original)  # the unmutated message is valid
    check_refusal(DECODERS[_type_of(base)], mutate(original, path, value), field)


@pytest.mark.parametrize(
    ("decode", "top"),
    [(DECODERS[k], k) for k in DECODERS],
    ids=list(DECODERS),
)
@pytest.mark.parametrize("bad", [None, [], "{}", 1, True])
def test_a_top_level_non_object_is_named_after_the_message(
    decode: Decoder, top: str, bad: object
) -> None:
    check_refusal(decode, bad, top)


def test_the_first_missing_key_in_documentation_order_is_reported() -> None:
    error = check_refusal(wire.vote_from_json, {"signature": SIG}, "order")
    assert "missing" in error.problem


def test_an_unknown_key_is_named_but_cut_short() -> None:
    obj = vector("checkpoint") | {"k" * 1000: 1}
    error = check_refusal(wire.checkpoint_from_json, obj, "k" * 24)
    assert "unknown key" in error.problem
    assert "tree_size" in error.problem


def test_leading_zero_decision() -> None:
    """Amounts have one text each: "0" is the only one starting with 0."""
    base = vector("order-transfer")
    assert wire.order_from_json(base | {"amount": "0"}).amount == 0
    assert wire.order_from_json(base | {"amount": str(UINT256_MAX)}).amount == UINT256_MAX
    for bad in ("00", "01", "007", "0" + str(UINT256_MAX)[:-1]):
        check_refusal(wire.order_from_json, base | {"amount": bad}, "amount")


def test_uint64_bounds_are_inclusive() -> None:
    base = vector("vote")
    for ok in (0, UINT64_MAX):
        assert wire.vote_from_json(base | {"epoch": ok}).epoch == ok
    check_refusal(wire.vote_from_json, base | {"epoch": UINT64_MAX + 1}, "epoch")


def test_each_address_form_parse_address_accepts_is_accepted() -> None:
    base = vector("order-transfer")
    text = base["payee"]
    for form in (text, text.lower(), "0x" + text[2:].upper()):
        assert wire.order_from_json(base | {"payee": form}).payee == parse_address(text)
    digits = "0x" + "1234567890" * 4  # no letters: no case to check
    assert wire.order_from_json(base | {"payee": digits}).payee == parse_address(digits)


def test_camel_case_checkpoint_keys_are_refused() -> None:
    obj = vector("checkpoint")
    obj["treeSize"] = obj.pop("tree_size")
    check_refusal(wire.checkpoint_from_json, obj, "tree_size")


@given(address=addresses, data=st.data())
def test_addresses_follow_parse_address_exactly(address: Address, data: st.DataObject) -> None:
    """The decoder's own address check accepts exactly what codec.parse_address does."""
    text = address_hex(address)
    flips = data.draw(st.sets(st.integers(2, 41), max_size=3))
    mangled = "".join(c.swapcase() if i in flips else c for i, c in enumerate(text))
    base = vector("order-transfer")
    try:
        expected: Address | None = parse_address(mangled)
    except EncodingError:
        expected = None
    if expected is None:
        check_refusal(wire.order_from_json, base | {"payee": mangled}, "payee")
    else:
        assert wire.order_from_json(base | {"payee": mangled}).payee == expected


def test_a_bad_checksum_is_refused_even_after_the_address_was_seen() -> None:
    """The decoder remembers addresses it parsed; that never lets a typo through."""
    base = vector("order-transfer")
    wire.order_from_json(base)
    check_refusal(wire.order_from_json, base | {"payee": flip_checksum(base["payee"])}, "payee")


# ---------------------------------------------------------------- encoding refuses too

SOME = Address(bytes(range(20)))
SIGNATURE = Signature(b"\x01" * 65)


@pytest.mark.parametrize(
    ("encode_it", "field"),
    [
        (
            lambda: wire.order_to_json(Transfer(SOME, SOME, SOME, Amount(2**256), Sequence(0))),
            "amount",
        ),
        (
            lambda: wire.order_to_json(Withdrawal(SOME, SOME, SOME, Amount(-1), Sequence(0))),
            "amount",
        ),
        (
            lambda: wire.order_to_json(Withdrawal(SOME, SOME, SOME, Amount(1), Sequence(2**64))),
            "sequence",
        ),
        (
            lambda: wire.order_to_json(Transfer(SOME, Address(b"x"), SOME, Amount(1), Sequence(0))),
            "payee",
        ),
        (
            lambda: wire.signed_order_to_json(
                SignedOrder(Transfer(SOME, SOME, SOME, Amount(1), Sequence(True)), SIGNATURE)
            ),
            "order.sequence",
        ),
        (
            lambda: wire.signed_order_to_json(
                SignedOrder(Transfer(SOME, SOME, SOME, Amount(1), Sequence(0)), Signature(b"1"))
            ),
            "signature",
        ),
        (lambda: wire.vote_to_json(Vote(Hash32(bytes(20)), Epoch(1), SOME, SIGNATURE)), "order"),
        (
            lambda: wire.checkpoint_to_json(Checkpoint(SOME, -1, parse_hash32(b"\0" * 32), 0)),
            "tree_size",
        ),
        (
            lambda: wire.signed_checkpoint_to_json(
                Checkpoint(SOME, 1, parse_hash32(b"\0" * 32), 0), Signature(b"")
            ),
            "signature",
        ),
        (
            lambda: wire.certificate_to_json(
                Certificate(
                    SignedOrder(Transfer(SOME, SOME, SOME, Amount(1), Sequence(0)), SIGNATURE),
                    Epoch(1),
                    ((SOME, SIGNATURE), (SOME, SIGNATURE)),
                )
            ),
            "votes[1].signer",
        ),
        (
            lambda: wire.certificate_to_json(
                Certificate(
                    SignedOrder(Transfer(SOME, SOME, SOME, Amount(1), Sequence(0)), SIGNATURE),
                    Epoch(1),
                    tuple((Address(i.to_bytes(20, "big")), SIGNATURE) for i in range(256)),
                )
            ),
            "votes",
        ),
    ],
)
def test_encoding_refuses_what_decoding_would(encode_it: Callable[[], object], field: str) -> None:
    with pytest.raises(EncodingError) as info:
        encode_it()
    assert info.value.field == field, str(info.value)
