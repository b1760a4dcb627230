"""Message models and their digests, as uagents-core 0.4.12 computes them.

A message model is a subclass of :class:`Model`, which is pydantic's **v1** ``BaseModel``
(``pydantic.v1``, shipped inside pydantic 2), exactly as uagents-core's own ``Model``:
the digest is a hash of the pydantic v1 JSON schema, and pydantic v2 writes a different
schema for optional and nested fields. The schema holds the class name (``title``), the
docstring (``description``), every field's name, type and default, and the schemas of
nested models (``definitions``), so renaming a class or editing its docstring changes its
digest. Declare models without a docstring unless the peer's declaration has the same one
(:class:`Model` itself has none on purpose: pydantic would give it to every subclass).

- Model digest: ``"model:" + sha256(schema_json)`` in hex, schema_json being pydantic v1's
  ``Model.schema_json(indent=None, sort_keys=True)`` (separators ``", "`` and ``": "``).
- Protocol digest: ``"proto:" + sha256(json.dumps(manifest, sort_keys=True))`` where the
  manifest is ``{"version": "1.0", "metadata": {}, "models": [{"digest", "schema"}...],
  "interactions": [{"type": "normal", "request", "responses"}...]}``, models sorted by
  digest, interactions sorted by request digest, each ``responses`` list sorted; the
  protocol's name and version are not part of it. With ``roles`` and a ``role``, only the
  interactions whose request that role receives are hashed (the models list still has
  their replies), as uagents does for a protocol built for one role.

Payloads are the model's pydantic v1 ``.json()`` text in standard base64. Reading one back
refuses (with :class:`~wallet.errors.EncodingError` naming ``payload``) anything that is
not valid base64, UTF-8, JSON, or a valid instance of the expected model.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any, Final, TypeVar

from pydantic import v1 as pydantic_v1

from wallet.errors import EncodingError
from wallet.jsontext import TooDeep, loads_bounded

#: The version of uagents' protocol manifest format.
MANIFEST_VERSION: Final = "1.0"

M = TypeVar("M", bound="Model")


# No docstring: pydantic v1 would make it the description of every model below.
class Model(pydantic_v1.BaseModel):
    pass


def model_digest(model: type[Model] | Model) -> str:
    """``"model:" + sha256(schema_json(indent=None, sort_keys=True))`` in hex."""
    schema = model.schema_json(indent=None, sort_keys=True)
    return "model:" + hashlib.sha256(schema.encode("utf-8")).hexdigest()


def encode_payload(message: Model) -> str:
    """The envelope payload of ``message``: standard base64 of its JSON text."""
    return base64.b64encode(message.json().encode("utf-8")).decode("ascii")


def decode_payload(payload: str | None, model: type[M]) -> M:
    """The message of type ``model`` in an envelope's payload (null reads as ``{}``).

    Raises :class:`EncodingError` naming ``payload``: not base64, not UTF-8 JSON, or not
    a valid ``model`` (the first error pydantic finds is named in the message).
    """
    if payload is None:
        text = "{}"
    else:
        try:
            text = base64.b64decode(payload, validate=True).decode("utf-8")
        except (binascii.Error, ValueError):
            raise EncodingError("payload", "not base64 of UTF-8 text") from None
    try:
        data = loads_bounded(text)
    except TooDeep as exc:
        raise EncodingError("payload", f"not JSON: {exc}") from None
    except ValueError:
        raise EncodingError("payload", "not JSON") from None
    if not isinstance(data, dict):  # parse_obj would try dict(data): [[1, 2]] is {1: 2}
        problem = f"not a valid {model.__name__}: expected a JSON object"
        raise EncodingError("payload", problem)
    try:
        return model.parse_obj(data)
    except pydantic_v1.ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        # pydantic v1's messages name the field and the expected type, not the value.
        problem = f"not a valid {model.__name__}: {where}: {first['msg']}"
        raise EncodingError("payload", problem) from None


def protocol_manifest(
    interactions: Mapping[type[Model], Iterable[type[Model]]],
    *,
    roles: Mapping[str, Iterable[type[Model]]] | None = None,
    role: str | None = None,
) -> dict[str, Any]:
    """The hashed part of a uagents protocol manifest (``metadata`` empty), in the order
    uagents hashes it. ``interactions`` maps each request model to its reply models."""
    if roles is not None and role is not None:
        incoming = set(roles[role])
        interactions = {m: r for m, r in interactions.items() if m in incoming}
    models: dict[str, type[Model]] = {}
    replies: dict[str, set[str]] = {}
    for request, responses in interactions.items():
        request_digest = model_digest(request)
        models[request_digest] = request
        replies.setdefault(request_digest, set())
        for response in responses:
            response_digest = model_digest(response)
            models[response_digest] = response
            replies[request_digest].add(response_digest)
    return {
        "version": MANIFEST_VERSION,
        "metadata": {},
        "models": [{"digest": d, "schema": models[d].schema()} for d in sorted(models)],
        "interactions": [
            {"type": "normal", "request": request, "responses": sorted(replies[request])}
            for request in sorted(replies)
        ],
    }


def protocol_digest(
    interactions: Mapping[type[Model], Iterable[type[Model]]],
    *,
    roles: Mapping[str, Iterable[type[Model]]] | None = None,
    role: str | None = None,
) -> str:
    """``"proto:" + sha256(json.dumps(manifest, sort_keys=True))`` in hex (see
    :func:`protocol_manifest`)."""
    manifest = protocol_manifest(interactions, roles=roles, role=role)
    encoded = json.dumps(manifest, indent=None, sort_keys=True).encode("utf-8")
    return "proto:" + hashlib.sha256(encoded).hexdigest()
