"""The JSON wire format of the node API: what clients and peers send and receive.

Written once, here; the node imports it (the wallet never imports the node). Every
message has a ``*_to_json`` that returns a JSON-ready ``dict`` (a :class:`TypedDict`) and a
``*_from_json`` that takes whatever ``json.loads`` produced and either returns the
protocol value or raises :class:`~wallet.errors.EncodingError`. docs/wire-format.md is
the specification; this docstring is a summary.

Field encodings:

- address: ``"0x"`` + 40 hex digits. Input: all lower case, all upper case, or mixed
  case with a valid EIP-55 checksum (exactly what :func:`wallet.codec.parse_address`
  accepts). Output: always EIP-55.
- hash (``reference``, a vote's ``order``, a checkpoint's ``root``): ``"0x"`` + 64 hex
  digits, any case in, lower case out.
- signature: ``"0x"`` + 130 hex digits (``r ‖ s ‖ v``), any case in, lower case out. The
  wire checks only the syntax; whether a signature is canonical (v in {27, 28}, low s)
  and whose it is are verification questions (:func:`wallet.signing.recover` raises
  :class:`~wallet.errors.InvalidSignature`, the node refuses with ``bad_signature`` or
  ``bad_vote``).
- amount (uint256): a **decimal string** (JSON numbers above 2**53 are not exact in many
  languages): ASCII digits only, no sign, no spaces, no leading zeros (``"0"`` itself is
  the only text starting with 0), at most 78 digits, at most 2**256 - 1. One amount has
  exactly one text.
- sequence, epoch, tree_size, timestamp (uint64): JSON integers 0 to 2**64 - 1; a
  boolean, a float (``1.0``, ``1e3``) or a string is refused.

Decoding is strict: an object must have exactly its keys (a missing or unknown key is an
error), each field its type and range, every string is length-checked before it is
parsed, and a certificate has at most :data:`MAX_VOTES` votes from distinct signers (its
votes come out sorted by signer; quorum and membership are the node's business). The
error's ``field`` is the dotted path of the offending value (``"order.amount"``,
``"votes[2].signature"``; a top-level value that is not an object is named after the
message: ``"certificate"``); its message says what was expected and never quotes more
than a short piece of the input (only key names and ``kind`` values, cut to 24
characters; hex, amounts and numbers are described, never echoed).

Encoding checks the same ranges, so ``x_from_json(x_to_json(v)) == v`` for every value
``x_to_json`` accepts (with a certificate's votes sorted by signer).

Speed: the node decodes thousands of certificates per second, so the hot path slices
and calls ``bytes.fromhex`` (which rejects non-hex and, with the length checked first,
any whitespace) rather than running a regular expression per field, and remembers the
address texts it has parsed (an EIP-55 check costs a keccak256; the committee's members
and the tokens recur in every certificate). ``scripts/bench_wire.py`` measures it.
"""

from __future__ import annotations

import functools
from typing import Final, Literal, NoReturn, TypedDict, assert_never

from wallet.codec import address_hex
from wallet.errors import EncodingError
from wallet.types import (
    UINT64_MAX,
    UINT256_MAX,
    Address,
    Amount,
    Certificate,
    Checkpoint,
    Cosignature,
    Epoch,
    Equivocation,
    Hash32,
    Order,
    Sequence,
    Signature,
    SignedOrder,
    Transfer,
    Vote,
    Withdrawal,
)

#: The most votes a certificate may carry: a committee has at most 255 members.
MAX_VOTES: Final = 255
#: The digits of 2**256 - 1, the longest amount.
MAX_AMOUNT_DIGITS: Final = len(str(UINT256_MAX))
#: How many address texts the decoder remembers (see :func:`_address_text`).
ADDRESS_CACHE_SIZE: Final = 4096
#: How much of a key name or ``kind`` value an error message may quote.
_QUOTE_LIMIT = 24


# ---------------------------------------------------------------- JSON shapes


class TransferJSON(TypedDict):
    kind: Literal["transfer"]
    payer: str
    payee: str
    token: str
    amount: str
    sequence: int
    reference: str


class WithdrawalJSON(TypedDict):
    kind: Literal["withdrawal"]
    account: str
    recipient: str
    token: str
    amount: str
    sequence: int


OrderJSON = TransferJSON | WithdrawalJSON


class SignedOrderJSON(TypedDict):
    order: OrderJSON
    signature: str


class VoteJSON(TypedDict):
    order: str
    epoch: int
    signer: str
    signature: str


class CertificateVoteJSON(TypedDict):
    signer: str
    signature: str


class CertificateJSON(TypedDict):
    order: OrderJSON
    signature: str
    epoch: int
    votes: list[CertificateVoteJSON]


class EquivocationVoteJSON(TypedDict):
    order: OrderJSON
    epoch: int
    signature: str


class EquivocationJSON(TypedDict):
    member: str
    first: EquivocationVoteJSON
    second: EquivocationVoteJSON


class CheckpointJSON(TypedDict):
    node: str
    tree_size: int
    root: str
    timestamp: int


class SignedCheckpointJSON(CheckpointJSON):
    signature: str


class SignedCosignatureJSON(TypedDict):
    witness: str
    node: str
    tree_size: int
    root: str
    timestamp: int
    signature: str


#: The keys of each object, in documentation order (the first missing one is reported).
_FIELD_ORDER: Final[dict[frozenset[str], tuple[str, ...]]] = {
    frozenset(shape.__required_keys__): tuple(shape.__annotations__)
    for shape in (
        TransferJSON,
        WithdrawalJSON,
        SignedOrderJSON,
        VoteJSON,
        CertificateVoteJSON,
        CertificateJSON,
        EquivocationVoteJSON,
        EquivocationJSON,
        CheckpointJSON,
        SignedCheckpointJSON,
        SignedCosignatureJSON,
    )
}
_TRANSFER_KEYS: Final = frozenset(TransferJSON.__required_keys__)
_WITHDRAWAL_KEYS: Final = frozenset(WithdrawalJSON.__required_keys__)
_SIGNED_ORDER_KEYS: Final = frozenset(SignedOrderJSON.__required_keys__)
_VOTE_KEYS: Final = frozenset(VoteJSON.__required_keys__)
_CERTIFICATE_VOTE_KEYS: Final = frozenset(CertificateVoteJSON.__required_keys__)
_CERTIFICATE_KEYS: Final = frozenset(CertificateJSON.__required_keys__)
_EQUIVOCATION_VOTE_KEYS: Final = frozenset(EquivocationVoteJSON.__required_keys__)
_EQUIVOCATION_KEYS: Final = frozenset(EquivocationJSON.__required_keys__)
_CHECKPOINT_KEYS: Final = frozenset(CheckpointJSON.__required_keys__)
_SIGNED_CHECKPOINT_KEYS: Final = frozenset(SignedCheckpointJSON.__required_keys__)
_SIGNED_COSIGNATURE_KEYS: Final = frozenset(SignedCosignatureJSON.__required_keys__)


# ---------------------------------------------------------------- errors


def json_type_name(value: object) -> str:
    """What ``value`` is, in JSON's words, without its contents."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number with a fraction or exponent"
    if isinstance(value, str):
        return f"a string of {len(value)} character{'' if len(value) == 1 else 's'}"
    if isinstance(value, list | tuple):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return f"a {type(value).__name__}"


def _quote(text: object) -> str:
    """A short, safe quotation of a key name or ``kind`` value."""
    if not isinstance(text, str):
        return json_type_name(text)
    if len(text) > _QUOTE_LIMIT:
        return repr(text[:_QUOTE_LIMIT]) + "…"
    return repr(text)


def _fail(field: str, problem: str) -> NoReturn:
    raise EncodingError(field, problem)


# ---------------------------------------------------------------- field decoders
#
# A scalar's decoder takes its path as (prefix, name), prefix ending in "." or empty, so
# that the dotted path is only built when there is an error to report. An object's
# decoder takes its own path ("" at the top level, where errors about the object as a
# whole name the message instead: ``top``).


def _object(value: object, keys: frozenset[str], path: str, top: str) -> dict[str, object]:
    """``value`` as an object with exactly ``keys``."""
    if not isinstance(value, dict):
        _fail(path or top, f"expected an object, got {json_type_name(value)}")
    if value.keys() != keys:
        prefix = path + "." if path else ""
        for key in _FIELD_ORDER[keys]:
            if key not in value:
                _fail(prefix + key, "missing")
        extra = next(k for k in value if k not in keys)
        where = extra[:_QUOTE_LIMIT] if isinstance(extra, str) else "?"
        _fail(
            prefix + where if where else path or top,  # an empty key: name the object
            f"unknown key {_quote(extra)}: expected only {', '.join(_FIELD_ORDER[keys])}",
        )
    return value


def _fixed_hex(value: object, size: int, prefix: str, name: str) -> bytes:
    """``"0x"`` + ``2 * size`` hex digits as bytes. ``bytes.fromhex`` rejects non-hex
    and non-ASCII; it skips whitespace, which the exact length check then catches."""
    expected = f"0x and {2 * size} hex digits"
    if not isinstance(value, str) or len(value) != 2 + 2 * size or value[:2] != "0x":
        _fail(prefix + name, f"expected {expected}, got {json_type_name(value)}")
    try:
        raw = bytes.fromhex(value[2:])
    except ValueError:
        raw = b""
    if len(raw) != size:
        _fail(prefix + name, f"expected {expected}, got a non-hex character")
    return raw


def decode_address(value: object, prefix: str, name: str) -> Address:
    """The address rule of :func:`wallet.codec.parse_address`: all lower case, all upper
    case, or a valid EIP-55 checksum."""
    if isinstance(value, str) and len(value) == 42:
        try:
            return _address_text(value)
        except EncodingError as exc:
            raise EncodingError(prefix + name, exc.problem) from None
    _fixed_hex(value, 20, prefix, name)  # raises: the right error for what came
    raise AssertionError("unreachable")  # pragma: no cover


@functools.lru_cache(maxsize=ADDRESS_CACHE_SIZE)
def _address_text(text: str) -> Address:
    """The address written ``text`` (42 characters), remembered: checking an EIP-55
    checksum costs a keccak256, and the same few addresses (the committee's members, the
    tokens, busy accounts) come back in every certificate. A pure function of its input,
    so the cache only changes the speed; failures are not remembered (``lru_cache`` keeps
    no exceptions), and the bound caps its memory (about 250 bytes an entry) whatever
    peers send. Raises :class:`EncodingError` with an empty field, for the caller to
    name."""
    raw = _fixed_hex(text, 20, "", "")
    body = text[2:]
    # (All digits is neither islower nor isupper: it takes the checksum path, and passes.)
    if not (body.islower() or body.isupper()) and address_hex(Address(raw))[2:] != body:
        _fail("", "mixed-case address with an invalid EIP-55 checksum")
    return Address(raw)


def _hash(value: object, prefix: str, name: str) -> Hash32:
    return Hash32(_fixed_hex(value, 32, prefix, name))


def decode_signature(value: object, prefix: str, name: str) -> Signature:
    """65 bytes of 0x hex (the form is checked when the signature is verified)."""
    return Signature(_fixed_hex(value, 65, prefix, name))


def _uint64(value: object, prefix: str, name: str) -> int:
    if type(value) is int and 0 <= value <= UINT64_MAX:
        return value
    if type(value) is int:
        got = "a negative integer" if value < 0 else "an integer above 2**64 - 1"
    else:
        got = json_type_name(value)
    _fail(prefix + name, f"expected an integer from 0 to 2**64 - 1, got {got}")


def decode_amount(value: object, prefix: str, name: str) -> Amount:
    """A uint256 written as a decimal string (no sign, no leading zeros)."""
    if (
        isinstance(value, str)
        and 0 < len(value) <= MAX_AMOUNT_DIGITS
        and value.isascii()
        and value.isdigit()
        and (value[0] != "0" or len(value) == 1)
    ):
        amount = int(value)
        if amount <= UINT256_MAX:
            return Amount(amount)
        got = "a number above 2**256 - 1"
    elif not isinstance(value, str):
        got = json_type_name(value)
        if isinstance(value, int) and not isinstance(value, bool):
            got += " (amounts are strings: uint256 does not fit a JSON number)"
    elif not value:
        got = "an empty string"
    elif len(value) > MAX_AMOUNT_DIGITS:
        got = f"a string of {len(value)} characters"
    elif not (value.isascii() and value.isdigit()):
        got = "a character other than 0-9 (no sign, spaces or separators)"
    else:
        got = "a leading zero"
    _fail(
        prefix + name,
        f"expected a decimal string of base units from 0 to 2**256 - 1 "
        f"(digits only, no leading zeros), got {got}",
    )


# ---------------------------------------------------------------- field encoders


def _address_out(value: Address, field: str) -> str:
    if not isinstance(value, bytes) or len(value) != 20:
        _fail(field, f"expected a 20-byte address, got {json_type_name(value)}")
    return address_hex(value)


def _hex_out(value: bytes, size: int, field: str) -> str:
    if not isinstance(value, bytes) or len(value) != size:
        got = f"{len(value)} bytes" if isinstance(value, bytes) else json_type_name(value)
        _fail(field, f"expected {size} bytes, got {got}")
    return "0x" + value.hex()


def _uint_out(value: int, high: int, field: str) -> int:
    if type(value) is not int or not 0 <= value <= high:
        bound = "2**64 - 1" if high == UINT64_MAX else "2**256 - 1"
        _fail(field, f"expected an integer from 0 to {bound}")
    return value


# ---------------------------------------------------------------- orders


def order_to_json(order: Order) -> OrderJSON:
    """``{"kind": "transfer", "payer", "payee", "token", "amount", "sequence",
    "reference"}`` or ``{"kind": "withdrawal", "account", "recipient", "token",
    "amount", "sequence"}``."""
    return _order_out(order, "")


def _order_out(order: Order, prefix: str) -> OrderJSON:
    amount = str(_uint_out(order.amount, UINT256_MAX, prefix + "amount"))
    sequence = _uint_out(order.sequence, UINT64_MAX, prefix + "sequence")
    if isinstance(order, Transfer):
        return {
            "kind": "transfer",
            "payer": _address_out(order.payer, prefix + "payer"),
            "payee": _address_out(order.payee, prefix + "payee"),
            "token": _address_out(order.token, prefix + "token"),
            "amount": amount,
            "sequence": sequence,
            "reference": _hex_out(order.reference, 32, prefix + "reference"),
        }
    if isinstance(order, Withdrawal):
        return {
            "kind": "withdrawal",
            "account": _address_out(order.account, prefix + "account"),
            "recipient": _address_out(order.recipient, prefix + "recipient"),
            "token": _address_out(order.token, prefix + "token"),
            "amount": amount,
            "sequence": sequence,
        }
    assert_never(order)


def order_from_json(obj: object) -> Order:
    """The :data:`~wallet.types.Order` of :func:`order_to_json`'s JSON; raises
    :class:`EncodingError`."""
    return _order(obj, "")


def _order(value: object, path: str) -> Order:
    if not isinstance(value, dict):
        _fail(path or "order", f"expected an object, got {json_type_name(value)}")
    prefix = path + "." if path else ""
    kind = value.get("kind")
    if kind == "transfer":
        obj = _object(value, _TRANSFER_KEYS, path, "order")
        return Transfer(
            decode_address(obj["payer"], prefix, "payer"),
            decode_address(obj["payee"], prefix, "payee"),
            decode_address(obj["token"], prefix, "token"),
            decode_amount(obj["amount"], prefix, "amount"),
            Sequence(_uint64(obj["sequence"], prefix, "sequence")),
            _hash(obj["reference"], prefix, "reference"),
        )
    if kind == "withdrawal":
        obj = _object(value, _WITHDRAWAL_KEYS, path, "order")
        return Withdrawal(
            decode_address(obj["account"], prefix, "account"),
            decode_address(obj["recipient"], prefix, "recipient"),
            decode_address(obj["token"], prefix, "token"),
            decode_amount(obj["amount"], prefix, "amount"),
            Sequence(_uint64(obj["sequence"], prefix, "sequence")),
        )
    if "kind" not in value:
        _fail(prefix + "kind", 'missing: expected "transfer" or "withdrawal"')
    _fail(prefix + "kind", f'expected "transfer" or "withdrawal", got {_quote(kind)}')


def signed_order_to_json(signed: SignedOrder) -> SignedOrderJSON:
    """``{"order": {...}, "signature": "0x<130 hex>"}`` (the owner's signature)."""
    return {
        "order": _order_out(signed.order, "order."),
        "signature": _hex_out(signed.signature, 65, "signature"),
    }


def signed_order_from_json(obj: object) -> SignedOrder:
    """The signed order of :func:`signed_order_to_json`'s JSON (the signature's syntax is
    checked, not the signature: that is :func:`wallet.signing.verify_order`'s job)."""
    value = _object(obj, _SIGNED_ORDER_KEYS, "", "signed_order")
    return SignedOrder(
        _order(value["order"], "order"), decode_signature(value["signature"], "", "signature")
    )


# ---------------------------------------------------------------- votes and certificates


def vote_to_json(vote: Vote) -> VoteJSON:
    """``{"order": "0x<digest>", "epoch": int, "signer": "0x…", "signature": "0x…"}``."""
    return {
        "order": _hex_out(vote.order, 32, "order"),
        "epoch": _uint_out(vote.epoch, UINT64_MAX, "epoch"),
        "signer": _address_out(vote.signer, "signer"),
        "signature": _hex_out(vote.signature, 65, "signature"),
    }


def vote_from_json(obj: object) -> Vote:
    """The vote of :func:`vote_to_json`'s JSON; raises :class:`EncodingError`."""
    value = _object(obj, _VOTE_KEYS, "", "vote")
    return Vote(
        _hash(value["order"], "", "order"),
        Epoch(_uint64(value["epoch"], "", "epoch")),
        decode_address(value["signer"], "", "signer"),
        decode_signature(value["signature"], "", "signature"),
    )


def certificate_to_json(certificate: Certificate) -> CertificateJSON:
    """``{"order": {...}, "signature": owner's, "epoch": int, "votes": [{"signer",
    "signature"}, ...]}`` with the votes sorted by signer bytes. Raises
    :class:`EncodingError` for more than :data:`MAX_VOTES` votes or a repeated signer
    (what :func:`certificate_from_json` would refuse)."""
    votes = certificate.votes
    if len(votes) > MAX_VOTES:
        _fail("votes", f"expected at most {MAX_VOTES} votes, got {len(votes)}")
    ordered = sorted(votes, key=_signer_of)
    out: list[CertificateVoteJSON] = []
    for i, (signer, signature) in enumerate(ordered):
        if i and signer == ordered[i - 1][0]:
            _fail(f"votes[{i}].signer", "duplicate signer: each member votes once")
        out.append(
            {
                "signer": _address_out(signer, f"votes[{i}].signer"),
                "signature": _hex_out(signature, 65, f"votes[{i}].signature"),
            }
        )
    signed = certificate.signed
    return {
        "order": _order_out(signed.order, "order."),
        "signature": _hex_out(signed.signature, 65, "signature"),
        "epoch": _uint_out(certificate.epoch, UINT64_MAX, "epoch"),
        "votes": out,
    }


def _signer_of(vote: tuple[Address, Signature]) -> bytes:
    signer = vote[0]
    return signer if isinstance(signer, bytes) else b""  # a non-bytes signer fails below


def certificate_from_json(obj: object) -> Certificate:
    """The certificate of :func:`certificate_to_json`'s JSON, its votes sorted by signer.

    Votes may come in any order; a repeated signer is an error (at the second one's
    path). Whether there are enough votes, from members, is for the node to judge.
    """
    value = _object(obj, _CERTIFICATE_KEYS, "", "certificate")
    order = _order(value["order"], "order")
    signature = decode_signature(value["signature"], "", "signature")
    epoch = _uint64(value["epoch"], "", "epoch")
    items = value["votes"]
    if not isinstance(items, list):
        _fail("votes", f"expected an array, got {json_type_name(items)}")
    if len(items) > MAX_VOTES:
        _fail("votes", f"expected at most {MAX_VOTES} votes, got {len(items)}")
    votes: list[tuple[Address, Signature]] = []
    seen: dict[Address, int] = {}
    for i, item in enumerate(items):
        name = f"votes[{i}]"
        entry = _object(item, _CERTIFICATE_VOTE_KEYS, name, name)
        prefix = name + "."
        signer = decode_address(entry["signer"], prefix, "signer")
        if signer in seen:
            _fail(prefix + "signer", f"duplicate signer: the same member as votes[{seen[signer]}]")
        seen[signer] = i
        votes.append((signer, decode_signature(entry["signature"], prefix, "signature")))
    votes.sort()
    return Certificate(SignedOrder(order, signature), Epoch(epoch), tuple(votes))


# ---------------------------------------------------------------- slashing evidence


def equivocation_to_json(evidence: Equivocation) -> EquivocationJSON:
    """``{"member": "0x…", "first": {"order": {...}, "epoch": int, "signature": "0x…"},
    "second": {...}}``: the member's two votes with the orders they are for."""
    return {
        "member": _address_out(evidence.member, "member"),
        "first": {
            "order": _order_out(evidence.first, "first.order."),
            "epoch": _uint_out(evidence.first_epoch, UINT64_MAX, "first.epoch"),
            "signature": _hex_out(evidence.first_signature, 65, "first.signature"),
        },
        "second": {
            "order": _order_out(evidence.second, "second.order."),
            "epoch": _uint_out(evidence.second_epoch, UINT64_MAX, "second.epoch"),
            "signature": _hex_out(evidence.second_signature, 65, "second.signature"),
        },
    }


def equivocation_from_json(obj: object) -> Equivocation:
    """The evidence of :func:`equivocation_to_json`'s JSON (syntax only: whether it would
    slash is :func:`wallet.signing.check_equivocation`'s to say)."""
    value = _object(obj, _EQUIVOCATION_KEYS, "", "equivocation")
    halves = []
    for name in ("first", "second"):
        half = _object(value[name], _EQUIVOCATION_VOTE_KEYS, name, name)
        prefix = name + "."
        halves.append(
            (
                _order(half["order"], prefix + "order"),
                Epoch(_uint64(half["epoch"], prefix, "epoch")),
                decode_signature(half["signature"], prefix, "signature"),
            )
        )
    (first, first_epoch, first_signature), (second, second_epoch, second_signature) = halves
    return Equivocation(
        decode_address(value["member"], "", "member"),
        first,
        first_epoch,
        first_signature,
        second,
        second_epoch,
        second_signature,
    )


# ---------------------------------------------------------------- checkpoints


def checkpoint_to_json(checkpoint: Checkpoint) -> CheckpointJSON:
    """``{"node", "tree_size", "root", "timestamp"}`` (timestamp in Unix milliseconds)."""
    return {
        "node": _address_out(checkpoint.node, "node"),
        "tree_size": _uint_out(checkpoint.tree_size, UINT64_MAX, "tree_size"),
        "root": _hex_out(checkpoint.root, 32, "root"),
        "timestamp": _uint_out(checkpoint.timestamp, UINT64_MAX, "timestamp"),
    }


def checkpoint_from_json(obj: object) -> Checkpoint:
    """The checkpoint of :func:`checkpoint_to_json`'s JSON (a ``"signature"`` key is an
    unknown key here: use :func:`signed_checkpoint_from_json`)."""
    return _checkpoint(_object(obj, _CHECKPOINT_KEYS, "", "checkpoint"))


def _checkpoint(value: dict[str, object]) -> Checkpoint:
    return Checkpoint(
        decode_address(value["node"], "", "node"),
        _uint64(value["tree_size"], "", "tree_size"),
        _hash(value["root"], "", "root"),
        _uint64(value["timestamp"], "", "timestamp"),
    )


def signed_checkpoint_to_json(checkpoint: Checkpoint, signature: Signature) -> SignedCheckpointJSON:
    """The checkpoint's fields plus ``"signature"``: the node's signature of it."""
    plain = checkpoint_to_json(checkpoint)
    return {
        "node": plain["node"],
        "tree_size": plain["tree_size"],
        "root": plain["root"],
        "timestamp": plain["timestamp"],
        "signature": _hex_out(signature, 65, "signature"),
    }


def signed_checkpoint_from_json(obj: object) -> tuple[Checkpoint, Signature]:
    """The checkpoint and the node's signature of :func:`signed_checkpoint_to_json`'s JSON."""
    value = _object(obj, _SIGNED_CHECKPOINT_KEYS, "", "signed_checkpoint")
    return _checkpoint(value), decode_signature(value["signature"], "", "signature")


# ---------------------------------------------------------------- cosignatures


def signed_cosignature_to_json(
    cosignature: Cosignature, signature: Signature
) -> SignedCosignatureJSON:
    """``{"witness", "node", "tree_size", "root", "timestamp", "signature"}``: the
    witness's signed cosignature of ``node``'s tree head (timestamp: the witness's clock,
    Unix milliseconds)."""
    return {
        "witness": _address_out(cosignature.witness, "witness"),
        "node": _address_out(cosignature.node, "node"),
        "tree_size": _uint_out(cosignature.tree_size, UINT64_MAX, "tree_size"),
        "root": _hex_out(cosignature.root, 32, "root"),
        "timestamp": _uint_out(cosignature.timestamp, UINT64_MAX, "timestamp"),
        "signature": _hex_out(signature, 65, "signature"),
    }


def signed_cosignature_from_json(obj: object) -> tuple[Cosignature, Signature]:
    """The cosignature and the witness's signature of :func:`signed_cosignature_to_json`'s
    JSON (the signature's syntax only: :func:`wallet.signing.verify_cosignature` checks it)."""
    value = _object(obj, _SIGNED_COSIGNATURE_KEYS, "", "signed_cosignature")
    cosignature = Cosignature(
        decode_address(value["witness"], "", "witness"),
        decode_address(value["node"], "", "node"),
        _uint64(value["tree_size"], "", "tree_size"),
        _hash(value["root"], "", "root"),
        _uint64(value["timestamp"], "", "timestamp"),
    )
    return cosignature, decode_signature(value["signature"], "", "signature")
