"""An in-process fake committee for the wallet client's tests: no sockets.

:class:`FakeNode` keeps a tiny ledger by the rules of docs/protocol.md 1a (votes with
locks, certificates applied in sequence, a Merkle log, signed checkpoints) and answers
the node API's JSON. :class:`FakeTransport` is the client's real
:class:`~wallet.client.transport.JsonTransport` with the bytes moved in process, so every
reply goes through the same checks as over HTTP. Each node can be made faulty: ``down``,
``slow`` (seconds of delay), ``bad_votes`` (votes signed by a stranger), ``garbage``
(replies that are not JSON), ``wrong_shape`` (JSON of the wrong shape).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

from tests.merkle import reference
from wallet import wire
from wallet.client.network import Committee, Network
from wallet.client.receipts import log_leaf, verify_certificate
from wallet.client.transport import JsonTransport
from wallet.codec import address_hex, hash_hex, parse_address, parse_hash32
from wallet.eip712 import order_digest
from wallet.errors import InvalidReceipt, NodeUnavailable
from wallet.signing import PrivateKey, sign_checkpoint, sign_vote, verify_order
from wallet.types import (
    Address,
    Certificate,
    Checkpoint,
    Domain,
    Epoch,
    Hash32,
    Order,
    Transfer,
    Withdrawal,
)

DOMAIN = Domain(31337, parse_address("0xCf7Ed3AccA5a467e9e704C703E8D87F634fB0Fc9"))
TOKEN = parse_address("0x5FbDB2315678afecb367f032d93F642f64180aa3")
EPOCH = Epoch(1)


def _reply(status: int, body: Any) -> tuple[int, bytes]:
    return status, json.dumps(body).encode()


def _error(status: int, code: str, **extra: Any) -> tuple[int, bytes]:
    return _reply(status, {"code": code, "message": code.replace("_", " "), **extra})


@dataclass
class FakeNode:
    key: PrivateKey
    url: str
    members: tuple[Address, ...]
    quorum: int
    balances: dict[tuple[Address, Address], int] = field(default_factory=dict)
    next_sequence: dict[Address, int] = field(default_factory=dict)
    locks: dict[tuple[Address, int], Hash32] = field(default_factory=dict)
    pending_orders: dict[tuple[Address, int], Any] = field(default_factory=dict)
    applied: dict[Hash32, int] = field(default_factory=dict)  # digest -> log index
    by_sequence: dict[tuple[Address, int], Certificate] = field(default_factory=dict)
    held: dict[tuple[Address, int], Certificate] = field(default_factory=dict)  # pending
    leaves: list[bytes] = field(default_factory=list)
    log: list[Certificate] = field(default_factory=list)
    seen_orders: dict[tuple[Address, int], set[Hash32]] = field(default_factory=dict)
    # faults
    down: bool = False
    slow: float = 0.0
    bad_votes: bool = False
    garbage: bool = False
    wrong_shape: bool = False
    checkpoint_lag: int = 0  # entries the signed checkpoint trails the log by
    grown: asyncio.Event = field(default_factory=asyncio.Event)
    requests: int = 0

    # ---------------------------------------------------------------- ledger

    def credit(self, account: Address, amount: int, token: Address = TOKEN) -> None:
        self.balances[account, token] = self.balances.get((account, token), 0) + amount

    def _vote(self, body: Any) -> tuple[int, bytes]:
        signed = wire.signed_order_from_json(body)
        order = signed.order
        digest = order_digest(DOMAIN, order)
        self.seen_orders.setdefault((order.owner, order.sequence), set()).add(digest)
        if not verify_order(DOMAIN, signed):
            return _error(422, "bad_signature")
        refused = self._refuse(order)
        if refused is not None:
            return refused
        expected = self.next_sequence.get(order.owner, 0)
        if order.sequence < expected:
            return _error(409, "sequence_used")
        if order.sequence > expected:
            return _error(409, "sequence_ahead")
        lock = self.locks.get((order.owner, order.sequence))
        if lock is not None and lock != digest:
            return _error(409, "conflicting_order", conflicting=hash_hex(lock))
        if lock is None and self.balances.get((order.owner, order.token), 0) < order.amount:
            return _error(422, "insufficient_balance")
        self.locks[order.owner, order.sequence] = digest
        self.pending_orders[order.owner, order.sequence] = wire.signed_order_to_json(signed)
        signer = PrivateKey.generate() if self.bad_votes else self.key
        vote = sign_vote(signer, DOMAIN, digest, EPOCH)
        if self.bad_votes:
            vote = type(vote)(vote.order, vote.epoch, self.key.address, vote.signature)
        return _reply(200, {"vote": wire.vote_to_json(vote)})

    def _refuse(self, order: Order) -> tuple[int, bytes] | None:
        if isinstance(order, Withdrawal) and order.recipient == bytes(20):
            return _error(422, "zero_recipient")
        return None

    def _certificate(self, body: Any) -> tuple[int, bytes]:
        certificate = wire.certificate_from_json(body)
        return self.apply(certificate)

    def apply(self, certificate: Certificate) -> tuple[int, bytes]:
        order = certificate.order
        digest = order_digest(DOMAIN, order)
        if digest in self.applied:
            return _reply(200, {"status": "duplicate"})
        committee = Committee(EPOCH, self.quorum, self.members)
        try:
            verify_certificate(certificate, committee, DOMAIN)
        except InvalidReceipt:
            return _error(422, "bad_vote")
        key = (order.owner, order.sequence)
        expected = self.next_sequence.get(order.owner, 0)
        if order.sequence < expected:
            return _error(409, "conflicting_certificate", conflicting=hash_hex(digest))
        if order.sequence > expected:
            self.held[key] = certificate
            return _reply(200, {"status": "pending"})
        index = self._append(certificate)
        while (nxt := (order.owner, self.next_sequence[order.owner])) in self.held:
            self._append(self.held.pop(nxt))
        return _reply(200, {"status": "applied", "log_index": index})

    def _append(self, certificate: Certificate) -> int:
        order = certificate.order
        self.balances[order.owner, order.token] = (
            self.balances.get((order.owner, order.token), 0) - order.amount
        )
        if isinstance(order, Transfer):  # a Withdrawal credits no one: it leaves the ledger
            self.credit(order.payee, order.amount, order.token)
        self.next_sequence[order.owner] = order.sequence + 1
        self.locks.pop((order.owner, order.sequence), None)
        self.pending_orders.pop((order.owner, order.sequence), None)
        index = len(self.leaves)
        self.leaves.append(log_leaf(DOMAIN, order))
        self.log.append(certificate)
        self.applied[order_digest(DOMAIN, order)] = index
        self.by_sequence[order.owner, order.sequence] = certificate
        self.grown.set()
        self.grown = asyncio.Event()
        return index

    def _account(self, address: Address) -> dict[str, Any]:
        sequence = self.next_sequence.get(address, 0)
        return {
            "address": address_hex(address),
            "next_sequence": sequence,
            "balances": {
                address_hex(token): str(amount)
                for (who, token), amount in sorted(self.balances.items())
                if who == address
            },
            "pending_order": self.pending_orders.get((address, sequence)),
        }

    def _checkpoint(self) -> tuple[int, bytes]:
        size = len(self.leaves) - self.checkpoint_lag
        if size <= 0:
            return _error(404, "not_found")
        checkpoint = Checkpoint(self.key.address, size, self._root(size), 1_767_225_600_000 + size)
        signature = sign_checkpoint(self.key, DOMAIN, checkpoint)
        return _reply(200, wire.signed_checkpoint_to_json(checkpoint, signature))

    def _root(self, size: int) -> Hash32:
        return Hash32(reference.mth(self.leaves[:size]))

    # ---------------------------------------------------------------- the API

    def handle(self, method: str, path: str, body: Any) -> tuple[int, bytes]:
        parts = urlsplit(path)
        query = {k: int(v[0]) for k, v in parse_qs(parts.query).items()}
        route = parts.path.split("/")[2:]
        if method == "POST" and route == ["orders"]:
            return self._vote(body)
        if method == "POST" and route == ["certificates"]:
            return self._certificate(body)
        if route[:1] == ["accounts"] and len(route) == 2:
            return _reply(200, self._account(parse_address(route[1])))
        if route[:1] == ["accounts"] and route[2:] == ["certificates"]:
            who = parse_address(route[1])
            found = []
            for sequence in range(query["first"], query["last"] + 1):
                if (who, sequence) not in self.by_sequence:
                    break
                found.append(wire.certificate_to_json(self.by_sequence[who, sequence]))
            return _reply(200, {"certificates": found})
        if route[:1] == ["certificates"] and len(route) == 2:
            index = self.applied.get(parse_hash32(route[1]))
            if index is None:
                return _error(404, "not_found")
            return _reply(
                200, {"log_index": index, "certificate": wire.certificate_to_json(self.log[index])}
            )
        if route == ["log", "head"]:
            size = len(self.leaves)
            return _reply(200, {"tree_size": size, "root": hash_hex(self._root(size))})
        if route == ["log", "checkpoint"]:
            return self._checkpoint()
        if route == ["log", "inclusion"]:
            index, size = query["index"], query["size"]
            proof = reference.path(index, self.leaves[:size])
            return _reply(
                200, {"index": index, "tree_size": size, "proof": ["0x" + h.hex() for h in proof]}
            )
        if route == ["log", "certificates"]:
            start, end = query["start"], min(query["end"], len(self.leaves))
            items = [
                {"log_index": i, "certificate": wire.certificate_to_json(self.log[i])}
                for i in range(start, end)
            ]
            return _reply(200, {"certificates": items, "tree_size": len(self.leaves)})
        return _error(404, "not_found")

    def touches(self, index: int, account: Address) -> bool:
        order = self.log[index].order
        return order.owner == account or (isinstance(order, Transfer) and order.payee == account)

    def frame(self, index: int) -> bytes:
        return json.dumps(
            {
                "type": "transfer" if isinstance(self.log[index].order, Transfer) else "withdrawal",
                "log_index": index,
                "certificate": wire.certificate_to_json(self.log[index]),
            }
        ).encode()


class FakeTransport(JsonTransport):
    def __init__(self, nodes: list[FakeNode]) -> None:
        self.nodes = {node.url: node for node in nodes}

    async def _request(
        self, method: Literal["GET", "POST"], endpoint: str, path: str, body: object | None
    ) -> tuple[int, bytes]:
        node = self.nodes[endpoint]
        node.requests += 1
        if node.slow:
            await asyncio.sleep(node.slow)
        if node.down:
            raise NodeUnavailable(endpoint, f"{path}: ConnectionRefusedError")
        if node.garbage:
            return 200, b"<html>502 Bad Gateway</html>"
        if node.wrong_shape:
            return 200, b'{"vote": {"order": 7}, "status": "applied", "tree_size": -1}'
        # A round trip through JSON, as over HTTP.
        return node.handle(method, path, json.loads(json.dumps(body)))

    async def _frames(self, endpoint: str, path: str) -> AsyncIterator[bytes]:
        node = self.nodes[endpoint]
        if node.slow:
            await asyncio.sleep(node.slow)
        if node.down:
            raise NodeUnavailable(endpoint, f"{path}: ConnectionRefusedError")
        if node.garbage:
            yield b"garbage"
            return
        parts = urlsplit(path)
        account = parse_address(parts.path.split("/")[3])
        start = int(parse_qs(parts.query).get("from_index", [len(node.leaves)])[0])
        sent = start
        for index in range(start, len(node.leaves)):
            if node.touches(index, account):
                yield node.frame(index)
        sent = len(node.leaves)
        yield json.dumps({"type": "caught_up", "tree_size": sent}).encode()
        while True:
            await node.grown.wait()
            for index in range(sent, len(node.leaves)):
                if node.touches(index, account):
                    yield node.frame(index)
            sent = len(node.leaves)


@dataclass
class FakeCommittee:
    nodes: list[FakeNode]
    network: Network
    transport: FakeTransport

    def credit(self, account: Address, amount: int) -> None:
        for node in self.nodes:
            node.credit(account, amount)


def make_committee(n: int = 4) -> FakeCommittee:
    keys = [PrivateKey(bytes([0] * 31 + [i + 1])) for i in range(n)]
    members = tuple(k.address for k in keys)
    quorum = (2 * n) // 3 + 1
    nodes = [FakeNode(k, f"http://node-{i}.test", members, quorum) for i, k in enumerate(keys)]
    network = Network(DOMAIN, Committee(EPOCH, quorum, members), tuple(node.url for node in nodes))
    return FakeCommittee(nodes, network, FakeTransport(nodes))
