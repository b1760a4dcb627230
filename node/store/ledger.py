"""The node's LevelDB store: the :class:`~node.state.view.LedgerView` the state machine
reads, and :meth:`LedgerStore.commit`, which writes one transition as one atomic batch.

Keys (every record is small; nothing is held in memory but the log's frontier):

    a ‖ account (20)                   account record (node.store.codec)
    s ‖ account (20) ‖ sequence (8)    digest of the certificate applied there (32)
    p ‖ account (20) ‖ sequence (8)    a verified certificate waiting for its turn
    c ‖ digest (32)                    log index (8) ‖ certificate, for every applied order
    l ‖ index (8)                      the leaf bytes of log entry ``index``
    n ‖ level (1) ‖ index (8)          the hash of perfect Merkle node (level, index)
    e ‖ epoch (8)                      committee: quorum (1) ‖ members (20 each)
    m ‖ "deposit"                      the next deposit id to credit (8)
    m ‖ "deposit-block"                the block of the last credited deposit (8): a
                                       restarted deposit watcher scans from there
    m ‖ "frontier"                     the log's compact range (node.merkle)
    m ‖ "checkpoint", k ‖ size (8)     this node's signed checkpoints: node (20) ‖ size (8)
                                       ‖ root (32) ‖ timestamp ms (8) ‖ signature (65)
    w ‖ node (20)                      witnessing: that peer's last checkpoint this node
                                       accepted ‖ this node's cosignature of it
    f ‖ node (20)                      fork evidence against that peer (one, the first)
    q ‖ member (20) ‖ account (20) ‖ sequence (8)
                                       a member's two votes at one (account, sequence):
                                       slashing evidence (wallet.wire's equivocation JSON)
    o ‖ witness (20)                   the latest cosignature that witness gave this
                                       node's log (the three: node.store.witnessing)
    r ‖ peer URL (UTF-8)               catch-up's position in that peer's log: the next
                                       index (8) ‖ the leaf before it (not synced)
    d ‖ ...                            the agent directory: records and their indexes
                                       (node.store.directory; not ledger state, written
                                       outside the writer, one batch per record)
    x ‖ ...                            the mailbox: envelopes, counters, fetch nonces
                                       (node.store.directory)

Durability: with ``sync=True`` (the default) a batch is on disk when ``commit`` returns,
so the lock behind a vote survives a power cut, not only a killed process. LevelDB's own
LOCK file keeps a second process out of the directory.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from pathlib import Path
from typing import Any

import plyvel

from node.errors import CorruptRecordError, DataDirLockedError, NodeStoreError
from node.merkle import CompactRange, consistency_proof, inclusion_proof, root_at
from node.state.records import AccountRecord, Committee
from node.state.transition import Transition
from node.store.codec import decode_account, decode_certificate, encode_account, encode_certificate
from node.store.witnessing import (
    decode_report,
    decode_signed_cosignature,
    decode_witnessed,
    encode_report,
    encode_signed_cosignature,
    encode_witnessed,
)
from node.witness import ForkReport, Witnessed
from wallet.errors import EncodingError
from wallet.merkle import hash_leaf
from wallet.types import (
    Address,
    Certificate,
    Checkpoint,
    Cosignature,
    Domain,
    Epoch,
    Equivocation,
    Hash32,
    Sequence,
    Signature,
)
from wallet.wire import equivocation_from_json, equivocation_to_json

#: Decoded account records kept in memory (about 1 KB each with a lock).
ACCOUNT_CACHE_SIZE = 65_536

_DEPOSIT_KEY = b"m" + b"deposit"
_DEPOSIT_BLOCK_KEY = b"m" + b"deposit-block"
_FRONTIER_KEY = b"m" + b"frontier"
_CHECKPOINT_KEY = b"m" + b"checkpoint"
_CATCH_UP_PREFIX = b"r"


def _seq_key(prefix: bytes, owner: Address, sequence: int) -> bytes:
    return prefix + owner + sequence.to_bytes(8, "big")


def _committee_record(committee: Committee) -> tuple[bytes, bytes]:
    """Key and value of an epoch's committee record."""
    value = bytes([committee.quorum]) + b"".join(committee.members)
    return b"e" + committee.epoch.to_bytes(8, "big"), value


def _node_key(level: int, index: int) -> bytes:
    return b"n" + level.to_bytes(1, "big") + index.to_bytes(8, "big")


class LedgerStore:
    """One node's ledger on LevelDB. Single writer: only the node's writer task calls
    :meth:`commit`; reads are safe from anywhere in the same process."""

    def __init__(self, path: Path, domain: Domain, *, sync: bool = True) -> None:
        path.mkdir(parents=True, exist_ok=True)
        try:
            self._db = plyvel.DB(str(path), create_if_missing=True)
        except plyvel.IOError as exc:
            if "lock" in str(exc).lower():
                raise DataDirLockedError(
                    f"the data directory {path} is in use by another node process: "
                    "stop that node or give this one another --data-dir"
                ) from exc
            raise NodeStoreError(f"cannot open the store at {path}: {exc}") from exc
        self._domain = domain
        self._sync = sync
        frontier = self._db.get(_FRONTIER_KEY)
        self._frontier = CompactRange() if frontier is None else CompactRange.from_bytes(frontier)
        # Decoded records, kept after reads and commits (they are immutable): the busy
        # accounts of a burst are read several times per payment. Bounded, least
        # recently used out first, so memory does not grow with the ledger.
        self._accounts: OrderedDict[Address, AccountRecord] = OrderedDict()
        self._committees: dict[Epoch, Committee] = {}

    def close(self) -> None:
        self._db.close()

    def keyspace(self, prefix: bytes) -> Any:
        """The database seen through one key prefix (``d``, ``x``: node.store.directory),
        for stores that are not ledger state."""
        if prefix not in (b"d", b"x"):
            raise ValueError("the directory's key spaces are d and x")
        return self._db.prefixed_db(prefix)

    # ------------------------------------------------------------ LedgerView

    def account(self, address: Address) -> AccountRecord:
        cached = self._accounts.get(address)
        if cached is not None:
            self._accounts.move_to_end(address)
            return cached
        raw = self._db.get(b"a" + address)
        account = AccountRecord() if raw is None else decode_account(raw)
        self._remember(address, account)
        return account

    def _remember(self, address: Address, account: AccountRecord) -> None:
        self._accounts[address] = account
        self._accounts.move_to_end(address)
        if len(self._accounts) > ACCOUNT_CACHE_SIZE:
            self._accounts.popitem(last=False)

    def applied(self, owner: Address, sequence: Sequence) -> Hash32 | None:
        raw = self._db.get(_seq_key(b"s", owner, sequence))
        return None if raw is None else Hash32(raw)

    def pending(self, owner: Address, sequence: Sequence) -> Certificate | None:
        raw = self._db.get(_seq_key(b"p", owner, sequence))
        return None if raw is None else decode_certificate(raw)

    def committee(self, epoch: Epoch) -> Committee | None:
        cached = self._committees.get(epoch)
        if cached is not None:
            return cached
        raw = self._db.get(b"e" + epoch.to_bytes(8, "big"))
        if raw is None:
            return None
        quorum, members = raw[0], raw[1:]
        if len(members) % 20:
            raise CorruptRecordError(f"committee record of epoch {epoch} has a partial member")
        committee = Committee(
            epoch, tuple(Address(members[i : i + 20]) for i in range(0, len(members), 20)), quorum
        )
        self._committees[epoch] = committee  # one per epoch: a handful
        return committee

    def next_deposit_id(self) -> int:
        raw = self._db.get(_DEPOSIT_KEY)
        return 1 if raw is None else int.from_bytes(raw, "big")

    def deposit_block(self) -> int | None:
        """The block of the last credited deposit (None before the first, or when the
        store predates this record): every deposit before it is credited."""
        raw = self._db.get(_DEPOSIT_BLOCK_KEY)
        return None if raw is None else int.from_bytes(raw[:8], "big")

    def deposit_anchor(self) -> tuple[int, int, Hash32] | None:
        """The last credited deposit's id, block number and block hash (None before the
        first, or when its hash was not recorded: stores written before it was, or a
        deposit credited without it): the deposit watcher checks that block is still on
        the chain after a restart."""
        raw = self._db.get(_DEPOSIT_BLOCK_KEY)
        if raw is None or len(raw) != 40:
            return None
        return self.next_deposit_id() - 1, int.from_bytes(raw[:8], "big"), Hash32(raw[8:])

    def log_size(self) -> int:
        return self._frontier.size

    # ------------------------------------------------------------ writes

    def put_committee(self, committee: Committee) -> None:
        """Record an epoch's committee (as read from the Vault)."""
        self._db.put(*_committee_record(committee), sync=self._sync)
        self._committees.pop(committee.epoch, None)

    def commit(self, t: Transition) -> None:
        """Write everything ``t`` changes in one atomic batch (nothing for a refusal)."""
        self.commit_all([t])

    def commit_all(self, transitions: list[Transition]) -> None:
        """Write the records of ``transitions``, applied in this order, in one atomic
        batch, with the Merkle nodes and the new frontier of the entries they append."""
        transitions = [t for t in transitions if not t.writes_nothing]
        if not transitions:
            return
        frontier = self._frontier.copy()
        with self._db.write_batch(sync=self._sync) as batch:
            for t in transitions:
                self._write(batch, t, frontier)
            if frontier.size != self._frontier.size:  # a vote's lock appends nothing
                batch.put(_FRONTIER_KEY, frontier.to_bytes())
        self._frontier = frontier
        for t in transitions:  # on disk now: what later reads will decode
            for address, account in t.accounts.items():
                self._remember(address, account)
            for committee in t.committees:
                self._committees.pop(committee.epoch, None)

    def _write(self, batch: Any, t: Transition, frontier: CompactRange) -> None:
        for address, account in t.accounts.items():
            batch.put(b"a" + address, encode_account(account))
        for (owner, sequence), digest in t.applied.items():
            batch.put(_seq_key(b"s", owner, sequence), digest)
        for owner, sequence in t.pending_removed:
            batch.delete(_seq_key(b"p", owner, sequence))
        for (owner, sequence), certificate in t.pending_added.items():
            batch.put(_seq_key(b"p", owner, sequence), encode_certificate(certificate))
        if t.next_deposit_id is not None:
            batch.put(_DEPOSIT_KEY, t.next_deposit_id.to_bytes(8, "big"))
        if t.deposit_block is not None:
            where = t.deposit_block.to_bytes(8, "big")
            batch.put(_DEPOSIT_BLOCK_KEY, where + (t.deposit_block_hash or b""))
        for committee in t.committees:
            batch.put(*_committee_record(committee))
        for entry in t.log:
            index = frontier.size
            batch.put(b"l" + index.to_bytes(8, "big"), entry.leaf)
            if entry.certificate is not None:
                digest = Hash32(entry.leaf[1:33])  # an order's entry: its kind and digest
                batch.put(
                    b"c" + digest, index.to_bytes(8, "big") + encode_certificate(entry.certificate)
                )
            frontier.append(
                hash_leaf(entry.leaf), lambda level, i, h: batch.put(_node_key(level, i), h)
            )

    # ------------------------------------------------------------ the log

    def root(self) -> Hash32:
        return self._frontier.root()

    def root_at(self, size: int) -> Hash32:
        """The root of the log's first ``size`` entries (the current root when ``size``
        is the log's size)."""
        if size == self._frontier.size:
            return self._frontier.root()
        return root_at(size, self._get_node)

    def put_checkpoint(self, checkpoint: Checkpoint, signature: Signature) -> None:
        """Keep this node's signed checkpoint: the latest, and every one by tree size
        (``k ‖ size``) for consistency proofs and evidence."""
        record = (
            checkpoint.node
            + checkpoint.tree_size.to_bytes(8, "big")
            + checkpoint.root
            + checkpoint.timestamp.to_bytes(8, "big")
            + signature
        )
        with self._db.write_batch(sync=self._sync) as batch:
            batch.put(_CHECKPOINT_KEY, record)
            batch.put(b"k" + checkpoint.tree_size.to_bytes(8, "big"), record)

    def catch_up_position(self, url: str) -> tuple[int, bytes] | None:
        """Where catch-up stopped in the log of the peer at ``url``: the next index and
        the leaf before it (node.peers.client.CatchUpPositions)."""
        raw = self._db.get(_CATCH_UP_PREFIX + url.encode())
        return None if raw is None else (int.from_bytes(raw[:8], "big"), raw[8:])

    def put_catch_up_position(self, url: str, index: int, last_leaf: bytes) -> None:
        # Not synced: a position lost in a crash only means reading some entries again.
        self._db.put(_CATCH_UP_PREFIX + url.encode(), index.to_bytes(8, "big") + last_leaf)

    def latest_checkpoint(self) -> tuple[Checkpoint, Signature] | None:
        raw = self._db.get(_CHECKPOINT_KEY)
        if raw is None:
            return None
        if len(raw) != 20 + 8 + 32 + 8 + 65:
            raise CorruptRecordError("the checkpoint record has the wrong length")
        checkpoint = Checkpoint(
            Address(raw[:20]),
            int.from_bytes(raw[20:28], "big"),
            Hash32(raw[28:60]),
            int.from_bytes(raw[60:68], "big"),
        )
        return checkpoint, Signature(raw[68:])

    def leaf(self, index: int) -> bytes:
        raw = self._db.get(b"l" + index.to_bytes(8, "big"))
        if raw is None:
            raise IndexError(f"no log entry {index}; the log has {self.log_size()}")
        return bytes(raw)

    def has_certificate(self, digest: Hash32) -> bool:
        """Whether the order with ``digest`` is applied (no decoding)."""
        return self._db.get(b"c" + digest) is not None

    def certificate(self, digest: Hash32) -> tuple[int, Certificate] | None:
        """The log index and the certificate of an applied order, by its digest."""
        raw = self._db.get(b"c" + digest)
        if raw is None:
            return None
        return int.from_bytes(raw[:8], "big"), decode_certificate(raw[8:])

    def certificate_at(self, index: int) -> Certificate | None:
        """The certificate of log entry ``index`` when it is an order (a transfer or a
        withdrawal: leaf ``0x01``/``0x02`` ‖ digest); None for a deposit."""
        leaf = self.leaf(index)
        if len(leaf) != 33 or leaf[0] not in (1, 2):
            return None
        found = self.certificate(Hash32(leaf[1:]))
        if found is None:
            raise CorruptRecordError(f"log entry {index} names an order with no certificate")
        return found[1]

    def _get_node(self, level: int, index: int) -> Hash32:
        raw = self._db.get(_node_key(level, index))
        if raw is None:
            raise CorruptRecordError(f"Merkle node ({level}, {index}) is missing")
        return Hash32(raw)

    def inclusion_proof(self, index: int, size: int) -> list[Hash32]:
        return inclusion_proof(index, size, self._get_node)

    def consistency_proof(self, size1: int, size2: int) -> list[Hash32]:
        return consistency_proof(size1, size2, self._get_node)

    # ------------------------------------------------------------ witnessing (node.witness)

    def put_witnessed(self, record: Witnessed) -> None:
        """Keep a peer's last accepted checkpoint with this node's cosignature of it."""
        key = b"w" + record.checkpoint[0].node
        self._db.put(key, encode_witnessed(record), sync=self._sync)

    def witnessed(self, node: Address) -> Witnessed | None:
        raw = self._db.get(b"w" + node)
        return None if raw is None else decode_witnessed(raw)

    def all_witnessed(self) -> list[Witnessed]:
        """Every peer's record, by address (one per committee member at most)."""
        return [decode_witnessed(v) for _, v in self._db.iterator(prefix=b"w")]

    def put_evidence(self, report: ForkReport) -> bool:
        """Keep fork evidence against a peer unless some is kept already; whether it was
        new. The first is kept: the witness stops witnessing a node it caught."""
        key = b"f" + report.evidence.node
        if self._db.get(key) is not None:
            return False
        self._db.put(key, encode_report(report), sync=self._sync)
        return True

    def evidence(self, node: Address) -> ForkReport | None:
        raw = self._db.get(b"f" + node)
        return None if raw is None else decode_report(raw)

    def all_evidence(self) -> list[ForkReport]:
        return [decode_report(v) for _, v in self._db.iterator(prefix=b"f")]

    def put_equivocation(self, evidence: Equivocation) -> bool:
        """Keep a member's equivocating votes (one record per member and account
        sequence); whether it was new."""
        order = evidence.first
        key = _seq_key(b"q" + evidence.member, order.owner, order.sequence)
        if self._db.get(key) is not None:
            return False
        self._db.put(key, json.dumps(equivocation_to_json(evidence)).encode(), sync=self._sync)
        return True

    def all_equivocations(self) -> list[Equivocation]:
        """Every equivocation kept, by member, account and sequence."""
        try:
            return [
                equivocation_from_json(json.loads(v)) for _, v in self._db.iterator(prefix=b"q")
            ]
        except (ValueError, EncodingError) as exc:
            raise CorruptRecordError(f"an equivocation record does not decode: {exc}") from exc

    def put_cosignature(self, cosignature: Cosignature, signature: Signature) -> None:
        """Keep a witness's cosignature of this node's log (the caller keeps the latest)."""
        key = b"o" + cosignature.witness
        self._db.put(key, encode_signed_cosignature(cosignature, signature), sync=self._sync)

    def cosignature(self, witness: Address) -> tuple[Cosignature, Signature] | None:
        raw = self._db.get(b"o" + witness)
        return None if raw is None else decode_signed_cosignature(raw)

    def all_cosignatures(self) -> list[tuple[Cosignature, Signature]]:
        return [decode_signed_cosignature(v) for _, v in self._db.iterator(prefix=b"o")]
