"""The agent directory and the mailbox on the node's LevelDB (in their own key spaces of
the ledger's database, node.store.ledger's key table; not ledger state, so they bypass
the writer). Each operation is one atomic batch. The rules are node.directory's.

Directory keys, under ``d``::

    d r ‖ agent key (33)                         the signed record (canonical JSON)
    d p ‖ protocol digest (32) ‖ agent key (33)  index by protocol (empty value)
    d s ‖ service name ‖ 0x00 ‖ agent key (33)   index by service name (empty value)
    d e ‖ expires_at (8) ‖ agent key (33)        purge index (empty value)
    d #                                          number of records (8)

Mailbox keys, under ``x``::

    x m ‖ agent key (33) ‖ id (8)                expires (8) ‖ the envelope (JSON)
    x n ‖ agent key (33)                         next id (8) ‖ count (8) ‖ bytes (8)
    x e ‖ expires (8) ‖ agent key (33) ‖ id (8)  purge index (empty value)
    x r ‖ agent key (33) ‖ nonce (16)            a fetch nonce seen: its timestamp (8)
    x q ‖ timestamp (8) ‖ agent key (33) ‖ nonce purge index of nonces (empty value)

The agent key is the 33-byte compressed public key an ``agent1...`` address encodes.
Writes are not synced by default: a power cut may lose the last records or envelopes
(an agent registers again; a sender's envelope was never a payment).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Final

from node.directory import FETCH_WINDOW, is_live
from wallet.directory import SignedRecord, canonical_json, signed_record_from_json
from wallet.directory import signed_record_to_json as _to_json
from wallet.keys import parse_agent_address

#: The most records a node keeps (expired ones count until purged).
MAX_AGENTS: Final = 100_000
#: The most records one lookup returns.
MAX_RESULTS: Final = 100
#: Mailbox bounds, per agent.
MAX_ENVELOPES: Final = 1_000
MAX_MAILBOX_BYTES: Final = 8 << 20
#: The largest envelope (its compact JSON), bytes.
MAX_ENVELOPE: Final = 64 << 10
#: How long an envelope is kept, seconds.
ENVELOPE_TTL: Final = 86_400
#: The most keys one purge deletes (the rest wait for the next one).
PURGE_BATCH: Final = 1_000

_COUNT = b"#"


def _u64(value: int) -> bytes:
    return value.to_bytes(8, "big")


def agent_key(agent: str) -> bytes:
    """The 33-byte key of an (already checked) agent address."""
    return parse_agent_address(agent)


def _indexes(signed: SignedRecord, key: bytes) -> list[bytes]:
    record = signed.record
    found = [b"p" + bytes.fromhex(p[len("proto:") :]) + key for p in record.protocols]
    found += [b"s" + s.name.encode() + b"\x00" + key for s in record.services]
    found.append(b"e" + _u64(record.expires_at) + key)
    return found


class DirectoryFull(Exception):  # noqa: N818 (a state, like asyncio.QueueFull)
    """The directory holds MAX_AGENTS records: refuse a new agent (507)."""


class DirectoryStore:
    """Agent records by agent, protocol and service. ``db`` is a plyvel (prefixed) DB."""

    def __init__(self, db: Any, *, sync: bool = False, max_agents: int = MAX_AGENTS) -> None:
        self._db, self._sync, self.max_agents = db, sync, max_agents

    def count(self) -> int:
        raw = self._db.get(_COUNT)
        return 0 if raw is None else int.from_bytes(raw, "big")

    def get(self, key: bytes) -> SignedRecord | None:
        raw = self._db.get(b"r" + key)
        return None if raw is None else signed_record_from_json(json.loads(raw))

    def put(self, signed: SignedRecord) -> None:
        """Store ``signed`` (checked by node.directory.check_record) in place of the
        agent's record. Raises :class:`DirectoryFull` for a new agent when full."""
        key = agent_key(signed.record.agent)
        old = self.get(key)
        count = self.count()
        if old is None and count >= self.max_agents:
            raise DirectoryFull(f"this node keeps {self.max_agents} agent records already")
        with self._db.write_batch(sync=self._sync) as batch:
            if old is not None:
                for index in _indexes(old, key):
                    batch.delete(index)
            else:
                batch.put(_COUNT, _u64(count + 1))
            for index in _indexes(signed, key):
                batch.put(index, b"")
            batch.put(b"r" + key, canonical_json(_to_json(signed)))

    def _scan(self, prefix: bytes, now: int, limit: int) -> tuple[list[SignedRecord], bool]:
        found: list[SignedRecord] = []
        for index in self._db.iterator(prefix=prefix, include_value=False):
            signed = self.get(index[-33:])
            if signed is None or not is_live(signed.record, now):
                continue
            if len(found) == limit:
                return found, True
            found.append(signed)
        return found, False

    def by_protocol(
        self, digest: str, now: int, limit: int = MAX_RESULTS
    ) -> tuple[list[SignedRecord], bool]:
        """Live records listing protocol ``digest`` (``proto:`` + 64 hex), ordered by
        agent key, at most ``limit``; and whether there were more."""
        return self._scan(b"p" + bytes.fromhex(digest[len("proto:") :]), now, limit)

    def by_service(
        self, name: str, now: int, limit: int = MAX_RESULTS
    ) -> tuple[list[SignedRecord], bool]:
        """Live records offering a service called ``name``, as :meth:`by_protocol`."""
        return self._scan(b"s" + name.encode() + b"\x00", now, limit)

    def page(
        self, after: bytes | None, now: int, limit: int = MAX_RESULTS
    ) -> tuple[list[SignedRecord], bool]:
        """Live records of agents whose key is greater than ``after`` (all when None),
        ordered by agent key, at most ``limit``; and whether there were more."""
        start = b"r" if after is None else b"r" + after + b"\x00"
        found: list[SignedRecord] = []
        for _, raw in self._db.iterator(start=start, stop=b"s"):
            signed = signed_record_from_json(json.loads(raw))
            if not is_live(signed.record, now):
                continue
            if len(found) == limit:
                return found, True
            found.append(signed)
        return found, False

    def purge(self, now: int) -> int:
        """Delete up to PURGE_BATCH records expired at ``now``; how many went."""
        gone = 0
        stop = b"e" + _u64(now + 1)
        with self._db.write_batch(sync=self._sync) as batch:
            for index in self._db.iterator(start=b"e", stop=stop, include_value=False):
                if gone == PURGE_BATCH:
                    break
                key = index[-33:]
                signed = self.get(key)
                if signed is not None:
                    for other in _indexes(signed, key):
                        batch.delete(other)
                    batch.delete(b"r" + key)
                    gone += 1
                batch.delete(index)
            if gone:
                batch.put(_COUNT, _u64(self.count() - gone))
        return gone


# ---------------------------------------------------------------- the mailbox


class MailboxFull(Exception):  # noqa: N818 (a state, like asyncio.QueueFull)
    """The agent's mailbox holds MAX_ENVELOPES envelopes or MAX_MAILBOX_BYTES (507)."""


@dataclass(frozen=True, slots=True)
class Stored:
    id: int
    expires: int
    envelope: bytes  # compact JSON


class MailboxStore:
    """Envelopes for agents that are offline, in arrival order (ids 1, 2, ...)."""

    def __init__(
        self,
        db: Any,
        *,
        sync: bool = False,
        max_envelopes: int = MAX_ENVELOPES,
        max_bytes: int = MAX_MAILBOX_BYTES,
        ttl: int = ENVELOPE_TTL,
    ) -> None:
        self._db, self._sync = db, sync
        self.max_envelopes, self.max_bytes, self.ttl = max_envelopes, max_bytes, ttl

    def _counter(self, key: bytes) -> tuple[int, int, int]:
        raw = self._db.get(b"n" + key)
        if raw is None:
            return 1, 0, 0
        return tuple(int.from_bytes(raw[i : i + 8], "big") for i in (0, 8, 16))  # type: ignore[return-value]

    def put(self, key: bytes, envelope: bytes, now: int) -> Stored:
        """Keep ``envelope`` for the agent ``key`` until ``now + ttl``; raises
        :class:`MailboxFull` (the oldest are kept: the sender learns it was not stored)."""
        next_id, count, size = self._counter(key)
        if count >= self.max_envelopes or size + len(envelope) > self.max_bytes:
            raise MailboxFull(
                f"the mailbox holds {count} envelopes ({size} bytes): at most "
                f"{self.max_envelopes} and {self.max_bytes} bytes"
            )
        expires = now + self.ttl
        with self._db.write_batch(sync=self._sync) as batch:
            batch.put(b"m" + key + _u64(next_id), _u64(expires) + envelope)
            batch.put(b"e" + _u64(expires) + key + _u64(next_id), b"")
            batch.put(b"n" + key, _u64(next_id + 1) + _u64(count + 1) + _u64(size + len(envelope)))
        return Stored(next_id, expires, envelope)

    def seen(self, key: bytes, nonce: bytes) -> bool:
        return self._db.get(b"r" + key + nonce) is not None

    def fetch(
        self, key: bytes, ack: int, limit: int, nonce: bytes, timestamp: int, now: int
    ) -> tuple[list[Stored], int]:
        """Delete the agent's envelopes with id <= ``ack``, remember the nonce, and return
        up to ``limit`` live envelopes after ``ack`` and how many remain in all."""
        next_id, count, size = self._counter(key)
        start = b"m" + key
        with self._db.write_batch(sync=self._sync) as batch:
            stop = start + _u64(min(ack, next_id) + 1)
            for k, v in self._db.iterator(start=start, stop=stop):
                batch.delete(k)
                batch.delete(b"e" + v[:8] + k[1:])
                count, size = count - 1, size - (len(v) - 8)
            batch.put(b"n" + key, _u64(next_id) + _u64(count) + _u64(size))
            batch.put(b"r" + key + nonce, _u64(timestamp))
            batch.put(b"q" + _u64(timestamp) + key + nonce, b"")
        found: list[Stored] = []
        for k, v in self._db.iterator(start=start + _u64(ack + 1), stop=start + b"\xff" * 9):
            expires = int.from_bytes(v[:8], "big")
            if expires > now:
                found.append(Stored(int.from_bytes(k[-8:], "big"), expires, v[8:]))
                if len(found) == limit:
                    break
        return found, count

    def purge(self, now: int) -> int:
        """Delete up to PURGE_BATCH expired envelopes and nonces older than the fetch
        window; how many keys went."""
        gone = 0
        counters: dict[bytes, tuple[int, int, int]] = {}
        with self._db.write_batch(sync=self._sync) as batch:
            stop = b"e" + _u64(now + 1)
            for index in self._db.iterator(start=b"e", stop=stop, include_value=False):
                if gone == PURGE_BATCH:
                    break
                key, ident = index[9:42], index[42:]
                raw = self._db.get(b"m" + key + ident)
                if raw is not None:
                    batch.delete(b"m" + key + ident)
                    next_id, count, size = counters.get(key) or self._counter(key)
                    counters[key] = (next_id, count - 1, size - (len(raw) - 8))
                batch.delete(index)
                gone += 1
            for key, (next_id, count, size) in counters.items():
                batch.put(b"n" + key, _u64(next_id) + _u64(count) + _u64(size))
            stop = b"q" + _u64(max(0, now - 2 * FETCH_WINDOW))
            for index in self._db.iterator(start=b"q", stop=stop, include_value=False):
                if gone >= 2 * PURGE_BATCH:
                    break
                batch.delete(index)
                batch.delete(b"r" + index[9:])
                gone += 1
        return gone
