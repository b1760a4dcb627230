"""Asking the committee, concurrently: votes for an order, delivery of a certificate.

Rule 1: every node is asked at once, and the answer is taken as soon as it is enough (a
quorum of valid votes, a quorum of deliveries); the slow ones are cancelled, not waited
for. Rule 2: what a node answers is checked before it counts (a vote's signer, epoch,
order and signature; a certificate it shows); anything else is that node's fault,
recorded in ``faults``, never raised.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from wallet.client.network import Network
from wallet.client.receipts import verify_certificate
from wallet.client.transport import Delivery, Refusal, Transport
from wallet.eip712 import order_digest
from wallet.errors import InvalidReceipt, NodeError, NodeMisbehaved, QuorumUnavailable
from wallet.signing import verify_vote
from wallet.types import Address, Certificate, Hash32, SignedOrder, Vote

T = TypeVar("T")


async def gather_until(
    calls: Mapping[str, Awaitable[T]],
    timeout: float,
    done: Callable[[str, T | Exception], bool],
    *,
    leave: set[asyncio.Future[Any]] | None = None,
) -> list[str]:
    """Runs ``calls`` (one per node URL) concurrently and hands each outcome (a result,
    or the exception it raised) to ``done`` as it arrives; stops when ``done`` returns
    True, when all are in, or after ``timeout`` seconds. The calls still running are
    cancelled (and awaited); their URLs are returned. With ``leave``, calls still running
    when ``done`` stopped the round are instead left to finish in the background (each
    must end by itself, e.g. one bounded request): they are added to ``leave`` until
    they finish, and their outcomes are dropped."""
    tasks: dict[asyncio.Future[T], str] = {
        asyncio.ensure_future(call): url for url, call in calls.items()
    }
    pending: set[asyncio.Future[T]] = set(tasks)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    try:
        while pending:
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            finished, pending = await asyncio.wait(
                pending, timeout=remaining, return_when=asyncio.FIRST_COMPLETED
            )
            stop = False
            for task in finished:
                try:
                    outcome: T | Exception = task.result()
                except Exception as exc:  # a node's fault (or a Transport's bug): that node's
                    outcome = exc
                stop = done(tasks[task], outcome) or stop
            if stop:
                if leave is not None:
                    for task in pending:
                        leave.add(task)
                        task.add_done_callback(_forget(leave))
                    slow = [tasks[task] for task in pending]
                    pending = set()
                    return slow
                break
    finally:
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
    return [tasks[task] for task in pending]


def _forget(tasks: set[asyncio.Future[Any]]) -> Callable[[asyncio.Future[Any]], None]:
    def forget(task: asyncio.Future[Any]) -> None:
        tasks.discard(task)
        if not task.cancelled():
            task.exception()  # retrieved: a node's failure here is nobody's business

    return forget


def describe(outcome: object) -> str:
    if isinstance(outcome, NodeError):
        return outcome.problem
    if isinstance(outcome, Exception):
        return f"{type(outcome).__name__}: {outcome}"
    return str(outcome)


@dataclass(frozen=True, slots=True)
class Found:
    """A node showed the (valid) certificate applied at the order's sequence: ours, or
    another order's."""

    certificate: Certificate
    ours: bool


@dataclass(slots=True)
class VoteRound:
    """What the nodes answered to one signed order."""

    digest: Hash32
    votes: dict[Address, Vote] = field(default_factory=dict)
    refusals: dict[str, Refusal] = field(default_factory=dict)
    faults: dict[str, str] = field(default_factory=dict)
    applied: Certificate | None = None
    superseded: Certificate | None = None

    def certificate(self, signed: SignedOrder, quorum: int) -> Certificate:
        """The certificate of the first ``quorum`` votes (by signer)."""
        chosen = sorted(self.votes.values(), key=lambda v: v.signer)[:quorum]
        return Certificate(signed, chosen[0].epoch, tuple((v.signer, v.signature) for v in chosen))


def check_vote(network: Network, digest: Hash32, vote: Vote, endpoint: str) -> None:
    """Raises NodeMisbehaved unless ``vote`` is a valid vote of a current member for
    ``digest`` in the current epoch."""
    committee = network.committee
    if vote.order != digest:
        raise NodeMisbehaved(endpoint, "a vote for another order")
    if vote.epoch != committee.epoch:
        raise NodeMisbehaved(
            endpoint,
            f"a vote of epoch {vote.epoch}, the wallet's committee is of {committee.epoch}",
        )
    if vote.signer not in committee.members:
        raise NodeMisbehaved(endpoint, "a vote by a non-member")
    if not verify_vote(network.domain, vote):
        raise NodeMisbehaved(endpoint, "a vote with an invalid signature")


async def applied_at(
    transport: Transport, network: Network, endpoint: str, signed: SignedOrder, digest: Hash32
) -> Found:
    """The certificate ``endpoint`` applied at ``signed``'s sequence (it said
    ``sequence_used``), checked; NodeMisbehaved if it cannot show a valid one."""
    order = signed.order
    shown = await transport.get_account_certificates(
        endpoint, order.owner, order.sequence, order.sequence
    )
    if (
        not shown
        or shown[0].order.owner != order.owner
        or shown[0].order.sequence != order.sequence
    ):
        raise NodeMisbehaved(endpoint, "said sequence_used but shows no certificate there")
    try:
        verify_certificate(shown[0], network.committees, network.domain)
    except InvalidReceipt as exc:
        raise NodeMisbehaved(endpoint, f"shows an invalid certificate ({exc})") from None
    return Found(shown[0], order_digest(network.domain, shown[0].order) == digest)


async def collect_votes(
    transport: Transport,
    network: Network,
    signed: SignedOrder,
    *,
    timeout: float,
    previous: Certificate | None = None,
    background: set[asyncio.Future[Any]] | None = None,
) -> VoteRound:
    """Asks every node for its vote on ``signed`` and returns as soon as a quorum of
    distinct members voted validly, a node showed the certificate applied at this
    sequence (ours: done; another: superseded), every node answered, or ``timeout``.
    With ``background``, the requests still under way then go on (each for ``timeout``
    seconds at most; their answers are dropped) instead of being cancelled, which would
    close their connections.

    A node answering ``sequence_ahead`` has not applied the previous sequence yet: it is
    sent ``previous`` (this account's certificate there, when the wallet has it) and asked
    again, with a short backoff, until the round ends."""
    digest = order_digest(network.domain, signed.order)
    result = VoteRound(digest)
    quorum = network.committee.quorum

    async def ask(endpoint: str) -> Vote | Refusal | Found:
        pause, offered = 0.02, False
        while True:
            reply = await transport.post_order(endpoint, signed)
            if isinstance(reply, Vote):
                check_vote(network, digest, reply, endpoint)
                return reply
            if reply.code == "sequence_ahead":
                if previous is not None and not offered:
                    offered = True
                    with contextlib.suppress(NodeError):  # else it learns it from peers
                        await transport.post_certificate(endpoint, previous)
                else:
                    await asyncio.sleep(pause)
                    pause = min(2 * pause, 0.5)
                continue
            if reply.code == "sequence_used":
                return await applied_at(transport, network, endpoint, signed, digest)
            return reply

    def done(endpoint: str, outcome: Vote | Refusal | Found | Exception) -> bool:
        if isinstance(outcome, Vote):
            result.votes.setdefault(outcome.signer, outcome)
        elif isinstance(outcome, Refusal):
            result.refusals[endpoint] = outcome
        elif isinstance(outcome, Found):
            if outcome.ours:
                result.applied = outcome.certificate
            else:
                result.superseded = outcome.certificate
            return True
        else:
            result.faults[endpoint] = describe(outcome)
        return len(result.votes) >= quorum

    calls = {url: asyncio.wait_for(ask(url), timeout) for url in network.endpoints}
    slow = await gather_until(calls, timeout, done, leave=background)
    for url in slow:
        result.faults[url] = f"no useful answer in {timeout:g} s"
    return result


async def deliver(
    transport: Transport,
    network: Network,
    certificate: Certificate,
    *,
    timeout: float,
    background: set[asyncio.Future[Any]] | None = None,
) -> dict[str, int | None]:
    """Sends ``certificate`` to every node; returns once a quorum took it (applied,
    duplicate or pending), mapping each of those URLs to the log index it reported
    (``applied`` only). Raises QuorumUnavailable otherwise (the certificate is final all
    the same: deliver it again later). With ``background``, the deliveries still under
    way at the quorum go on (one request each, bounded by the transport's timeout), so
    every node gets the certificate from the wallet, not later from a peer."""
    delivered: dict[str, int | None] = {}
    faults: dict[str, str] = {}
    quorum = network.committee.quorum

    def done(endpoint: str, outcome: Delivery | Refusal | Exception) -> bool:
        if isinstance(outcome, Delivery):
            delivered[endpoint] = outcome.log_index
        elif isinstance(outcome, Refusal):
            faults[endpoint] = f"refused a valid certificate ({outcome.code})"
        else:
            faults[endpoint] = describe(outcome)
        return len(delivered) >= quorum

    calls = {url: transport.post_certificate(url, certificate) for url in network.endpoints}
    slow = await gather_until(calls, timeout, done, leave=background)
    if len(delivered) < quorum:
        faults.update({url: f"no answer in {timeout:g} s" for url in slow})
        raise QuorumUnavailable("delivering the certificate", faults)
    return delivered
