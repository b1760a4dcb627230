"""The replay guard on disk (wallet.uagents.replay_journal): digests survive a restart,
expired ones are dropped, a torn record is ignored, the file is compacted, locked and
private; an Agent with a journal refuses after a restart what it handled before it."""

from __future__ import annotations

import os
import stat
import time
import uuid
from pathlib import Path

import pytest

from tests.wallet.test_uagents_agent import BUYER_KEY, SELLER_KEY, Ping, seller_protocol
from wallet.errors import JournalError, ReplayedEnvelope
from wallet.keys import agent_address
from wallet.uagents import replay_journal
from wallet.uagents.agent import Agent
from wallet.uagents.envelope import Envelope, envelope_to_bytes, make_envelope, sign_envelope
from wallet.uagents.models import encode_payload, model_digest
from wallet.uagents.replay import Accepted, ReplayGuard
from wallet.uagents.replay_journal import MAGIC, RECORD, ReplayJournal

NOW = 1_800_000_000.0


def envelope(expires: int, text: str = "hi") -> Envelope:
    return sign_envelope(
        BUYER_KEY,
        make_envelope(
            sender=agent_address(BUYER_KEY),
            target=agent_address(SELLER_KEY),
            session=uuid.uuid4(),
            schema_digest=model_digest(Ping),
            payload=encode_payload(Ping(text=text)),
            expires=expires,
            nonce=7,
        ),
    )


def test_digests_survive_a_restart_until_they_expire(tmp_path: Path) -> None:
    path = tmp_path / "replay"
    guard, journal = ReplayGuard(), ReplayJournal(path)
    assert journal.open(guard, NOW) == 0
    short, long = envelope(int(NOW) + 10), envelope(int(NOW) + 100)
    for sent in (short, long):
        journal.append(guard.check(sent, NOW), guard, NOW)
    journal.close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.stat().st_size == len(MAGIC) + 2 * RECORD.size

    holder = ReplayJournal(path)
    holder.open(ReplayGuard(), NOW)
    with pytest.raises(JournalError, match="another process"):  # one process at a time
        ReplayJournal(path).open(ReplayGuard(), NOW)
    holder.close()

    later = ReplayGuard()
    restarted = ReplayJournal(path)
    assert restarted.open(later, NOW + 50) == 1  # the short one has expired
    with pytest.raises(ReplayedEnvelope):
        later.check(long, NOW + 50)
    assert path.stat().st_size == len(MAGIC) + RECORD.size  # rewritten with the live one
    restarted.close()


def test_a_torn_record_is_ignored_and_a_foreign_file_refused(tmp_path: Path) -> None:
    path = tmp_path / "replay"
    whole = RECORD.pack(b"\x01" * 32, int(NOW) + 100)
    path.write_bytes(MAGIC + whole + whole[:17])  # a crash in the middle of a write
    guard = ReplayGuard()
    journal = ReplayJournal(path)
    assert journal.open(guard, NOW) == 1
    assert list(guard.remembered(NOW)) == [Accepted(b"\x01" * 32, NOW + 100)]
    journal.close()
    other = tmp_path / "other"
    other.write_bytes(b"not a journal")
    with pytest.raises(JournalError, match="not a replay journal"):
        ReplayJournal(other).open(ReplayGuard(), NOW)
    again = ReplayJournal(tmp_path / "again")
    again.open(ReplayGuard(), NOW)
    with pytest.raises(JournalError, match="open already"):
        again.open(ReplayGuard(), NOW)
    again.close()
    with pytest.raises(JournalError, match="open the replay journal first"):
        ReplayJournal(tmp_path / "x").append(Accepted(b"\x02" * 32, NOW + 1), guard, NOW)


def test_the_file_is_compacted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(replay_journal, "SLACK", 3)
    path = tmp_path / "replay"
    guard, journal = ReplayGuard(), ReplayJournal(path)
    journal.open(guard, NOW)
    for i in range(20):  # each expires a second after the next is checked
        at = NOW + i
        journal.append(guard.check(envelope(int(at) + 1, f"m{i}"), at), guard, at)
    # Never more than 2 x live (1 or 2) + 3 records on disk.
    assert path.stat().st_size <= len(MAGIC) + (2 * 2 + 3 + 1) * RECORD.size
    journal.close()


@pytest.mark.asyncio
async def test_an_agent_with_a_journal_refuses_a_replay_after_a_restart(tmp_path: Path) -> None:
    sent = envelope(int(time.time()) + 60)
    body = envelope_to_bytes(sent)
    seen: list[str] = []

    def agent(journal: Path | None) -> Agent:
        return Agent(SELLER_KEY, protocols=[seller_protocol(seen)], replay_journal=journal)

    async with agent(tmp_path / "replay") as first:
        assert (await first.receive(body))[0] == 200
    async with agent(tmp_path / "replay") as second:  # restarted with its journal
        status, _ = await second.receive(body)
        assert status == 400
    async with agent(None) as forgetful:  # without one, the replay is handled again
        assert (await forgetful.receive(body))[0] == 200
    assert seen == ["hi", "hi"]


@pytest.mark.asyncio
async def test_an_envelope_is_not_handled_when_its_digest_cannot_be_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[str] = []
    body = envelope_to_bytes(envelope(int(time.time()) + 60))
    async with Agent(
        SELLER_KEY, protocols=[seller_protocol(seen)], replay_journal=tmp_path / "replay"
    ) as agent:
        assert agent._journal is not None

        def full_disk(*args: object) -> None:
            raise JournalError("disk full")

        monkeypatch.setattr(agent._journal, "append", full_disk)
        status, answer = await agent.receive(body)
        assert status == 503 and b"cannot take messages" in answer
        assert seen == []
        monkeypatch.undo()
        assert (await agent.receive(body))[0] == 200  # sent again once the disk is fixed
        assert seen == ["hi"]
    assert os.path.exists(tmp_path / "replay")
