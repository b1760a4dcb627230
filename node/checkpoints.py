"""Signed checkpoints (tree heads) of the node's log: every ``every_entries`` new entries
or every ``every_ms`` milliseconds when the log has grown, the node signs
``Checkpoint{node, treeSize, root, timestamp}`` (EIP-712, docs/protocol.md section 1) and
stores it. :func:`due` is the pure rule; :class:`Checkpointer` is the shell's part (the
clock comes in as an argument)."""

from __future__ import annotations

from dataclasses import dataclass

from node.store import LedgerStore
from wallet.signing import PrivateKey, sign_checkpoint
from wallet.types import Checkpoint, Domain, Signature


@dataclass(frozen=True, slots=True)
class CheckpointPolicy:
    every_entries: int = 100
    every_ms: int = 1_000

    def __post_init__(self) -> None:
        if self.every_entries < 1 or self.every_ms < 1:
            raise ValueError("checkpoint intervals must be positive")


def due(policy: CheckpointPolicy, last: Checkpoint | None, size: int, now_ms: int) -> bool:
    """Whether a log of ``size`` entries needs a new checkpoint at ``now_ms``: it grew
    since the last one, by ``every_entries`` or more, or ``every_ms`` have passed."""
    last_size = 0 if last is None else last.tree_size
    if size <= last_size:
        return False
    if last is None:
        return True
    return size - last_size >= policy.every_entries or now_ms - last.timestamp >= policy.every_ms


class Checkpointer:
    """Signs and stores this node's checkpoints; :attr:`latest` serves the API."""

    def __init__(
        self, store: LedgerStore, key: PrivateKey, domain: Domain, policy: CheckpointPolicy
    ) -> None:
        self.store, self.key, self.domain, self.policy = store, key, domain, policy
        self.latest: tuple[Checkpoint, Signature] | None = store.latest_checkpoint()

    def maybe_sign(self, now_ms: int) -> tuple[Checkpoint, Signature] | None:
        """Sign a checkpoint of the current log if one is due; returns it, or None."""
        last = None if self.latest is None else self.latest[0]
        size = self.store.log_size()
        if not due(self.policy, last, size, now_ms):
            return None
        # Timestamps strictly increase even if the clock steps back.
        timestamp = now_ms if last is None else max(now_ms, last.timestamp + 1)
        checkpoint = Checkpoint(self.key.address, size, self.store.root_at(size), timestamp)
        signature = sign_checkpoint(self.key, self.domain, checkpoint)
        self.store.put_checkpoint(checkpoint, signature)
        self.latest = (checkpoint, signature)
        return self.latest
