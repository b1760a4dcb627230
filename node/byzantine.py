"""TEST-ONLY Byzantine behaviours, for the adversity tests (tests/node/test_byzantine.py).

A node started with ``FARTHING_TEST_BYZANTINE`` set to a comma-separated list of modes
misbehaves on purpose, and says so at start (a WARNING in its log):

* ``votes``: it votes for every well-formed order, even one conflicting with the order it
  holds a lock for at that (account, sequence) (equivocation: slashable);
* ``checkpoints``: every other ``GET /v1/log/checkpoint`` serves a checkpoint of the
  current tree size with a forged root, signed with its key (a forked log);
* ``gossip``: every second it sends each peer forged certificates (a real owner signature,
  votes of random keys), certificates with malformed fields and bodies that are not
  JSON.

The honest state machine is untouched: the misbehaviour is an aiohttp middleware in front
of the API and a task beside the node's. Nothing here runs unless the variable is set.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import aiohttp
from aiohttp import web

from node.state import NodeContext
from wallet import wire
from wallet.eip712 import checkpoint_digest, order_digest, vote_digest
from wallet.errors import EncodingError
from wallet.keccak import keccak256
from wallet.signing import PrivateKey, sign_order
from wallet.types import Amount, Certificate, Checkpoint, Transfer, Vote
from wallet.types import Sequence as Seq

ENV = "FARTHING_TEST_BYZANTINE"
MODES = frozenset({"votes", "checkpoints", "gossip"})

log = logging.getLogger("farthing.node.byzantine")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def modes_from(value: str | None) -> frozenset[str]:
    """The modes named in the variable's ``value`` (ValueError for an unknown one)."""
    if not value:
        return frozenset()
    modes = frozenset(m.strip() for m in value.split(",") if m.strip())
    unknown = modes - MODES
    if unknown:
        raise ValueError(f"{ENV}: unknown modes {sorted(unknown)}; known: {sorted(MODES)}")
    return modes


def _vote(context: NodeContext, digest: Any) -> Vote:
    epoch = context.current_epoch
    return Vote(
        digest, epoch, context.node, context.sign(vote_digest(context.domain, digest, epoch))
    )


def _vote_anyway(context: NodeContext, item: Any) -> dict[str, Any] | None:
    """A vote for the order in ``item`` (JSON), or None when it does not decode."""
    try:
        signed = wire.signed_order_from_json(item)
    except EncodingError:
        return None
    return {"vote": wire.vote_to_json(_vote(context, order_digest(context.domain, signed.order)))}


def middleware(modes: frozenset[str], context: Callable[[], NodeContext]) -> Any:
    """The API middleware of ``modes`` (``votes``, ``checkpoints``)."""
    served = 0

    @web.middleware
    async def byzantine(request: web.Request, handler: Handler) -> web.StreamResponse:
        nonlocal served
        response = await handler(request)
        path = request.path
        # A lock on another order (409): vote all the same.
        if (
            "votes" in modes
            and request.method == "POST"
            and path == "/v1/orders"
            and response.status == 409
        ):
            vote = _vote_anyway(context(), await request.json())
            if vote is not None:
                return web.json_response(vote)
        if "votes" in modes and request.method == "POST" and path == "/v1/orders/batch":
            body = await request.json()
            results = _results(response)
            items = body.get("orders") if isinstance(body, dict) else None
            if results is not None and isinstance(items, list) and len(items) == len(results):
                for i, result in enumerate(results):
                    if result.get("error", {}).get("code") == "conflicting_order":
                        vote = _vote_anyway(context(), items[i])
                        if vote is not None:
                            results[i] = vote
                return web.json_response({"results": results})
        if "checkpoints" in modes and path == "/v1/log/checkpoint" and response.status == 200:
            served += 1
            if served % 2 == 0:
                return web.json_response(_forged_checkpoint(context(), response))
        return response

    return byzantine


def _results(response: web.StreamResponse) -> list[dict[str, Any]] | None:
    if not isinstance(response, web.Response) or response.status != 200 or response.text is None:
        return None
    results = json.loads(response.text).get("results")
    return results if isinstance(results, list) else None


def _forged_checkpoint(context: NodeContext, response: web.StreamResponse) -> dict[str, Any]:
    """The served checkpoint with another root, signed by this node."""
    assert isinstance(response, web.Response)
    assert response.text is not None
    real, _ = wire.signed_checkpoint_from_json(json.loads(response.text))
    forged = Checkpoint(
        real.node, real.tree_size, keccak256(b"forged" + real.root), real.timestamp + 1
    )
    signature = context.sign(checkpoint_digest(context.domain, forged))
    return dict(wire.signed_checkpoint_to_json(forged, signature))


async def forge_gossip(
    peers: Sequence[str], context: Callable[[], NodeContext], interval: float = 1.0
) -> None:
    """Sends every peer forged and malformed certificates every ``interval`` seconds."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
        while True:
            ctx = context()
            stranger = PrivateKey.generate()  # a real owner signature, a worthless order
            order = Transfer(
                stranger.address, ctx.node, next(iter(ctx.tokens)), Amount(10**6), Seq(0)
            )
            signed = sign_order(stranger, ctx.domain, order)
            digest = order_digest(ctx.domain, order)
            vote = vote_digest(ctx.domain, digest, ctx.current_epoch)
            voters = [PrivateKey.generate() for _ in range(3)]  # not members
            votes = tuple(sorted((v.address, v.unsafe_sign_digest(vote)) for v in voters))
            forged = dict(wire.certificate_to_json(Certificate(signed, ctx.current_epoch, votes)))
            malformed = {**forged, "epoch": -1, "votes": [{"signer": "0x12", "signature": "0x"}]}
            for peer in peers:
                for path, body in (
                    ("/v1/certificates", forged),
                    ("/v1/certificates/batch", {"certificates": [forged, malformed]}),
                    ("/v1/certificates/unknown", {"digests": ["0x" + secrets.token_hex(40)]}),
                ):
                    with contextlib.suppress(aiohttp.ClientError, TimeoutError, OSError):
                        async with session.post(peer + path, json=body) as reply:
                            await reply.read()
                with contextlib.suppress(aiohttp.ClientError, TimeoutError, OSError):
                    async with session.post(
                        peer + "/v1/certificates",
                        data=b"\xff{not json",
                        headers={"Content-Type": "application/json"},
                    ) as reply:
                        await reply.read()
            await asyncio.sleep(interval)
