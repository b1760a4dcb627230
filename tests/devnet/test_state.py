from __future__ import annotations

from pathlib import Path

import pytest

from devnet.errors import AlreadyRunningError, ManifestError
from devnet.files import write_private_file
from devnet.processes import ProcessRecord
from devnet.state import ENV_STATE_DIR, StateDir, resolve_state_dir


def test_state_dir_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert resolve_state_dir(None, {}) == tmp_path / ".devnet"
    assert resolve_state_dir(None, {ENV_STATE_DIR: "/env/dir"}) == Path("/env/dir")
    assert resolve_state_dir("given", {ENV_STATE_DIR: "/env/dir"}) == tmp_path / "given"
    assert resolve_state_dir(None, {ENV_STATE_DIR: ""}) == tmp_path / ".devnet"


def test_write_private_file_is_atomic_and_owner_only(tmp_path: Path) -> None:
    target = tmp_path / "secret.json"
    target.write_text("old")
    write_private_file(target, "new")
    assert target.read_text() == "new"
    assert target.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["secret.json"]


def test_pid_file_round_trip(tmp_path: Path) -> None:
    state = StateDir(tmp_path / "s")
    state.create()
    assert state.path.stat().st_mode & 0o777 == 0o700
    assert state.read_processes() == ()
    anvil = ProcessRecord("anvil", 123, "/x/anvil")
    node = ProcessRecord("node-1", 456, "/x/python")
    state.write_processes([anvil])
    state.add_process(node)
    assert state.read_processes() == (anvil, node)
    assert state.pids_path.stat().st_mode & 0o777 == 0o600
    state.clear()
    assert state.read_processes() == ()
    state.clear()  # nothing left to remove: no error


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("not json", "not JSON"),
        ("[]", "version 1"),
        ('{"version": 2, "processes": []}', "version 1"),
        ('{"version": 1}', "processes: expected a list"),
        (
            '{"version": 1, "processes": [{"name": "anvil", "pid": 0, "executable": "a"}]}',
            r"processes\[0\]",
        ),
        (
            '{"version": 1, "processes": [{"name": "anvil", "pid": true, "executable": "a"}]}',
            r"processes\[0\]",
        ),
    ],
)
def test_bad_pid_file_names_the_file(tmp_path: Path, text: str, why: str) -> None:
    state = StateDir(tmp_path)
    state.pids_path.write_text(text)
    with pytest.raises(ManifestError, match=why) as info:
        state.read_processes()
    assert str(state.pids_path) in str(info.value)


def test_lock_refuses_a_second_holder(tmp_path: Path) -> None:
    state = StateDir(tmp_path / "s")
    with (
        state.lock(wait=False),
        pytest.raises(AlreadyRunningError, match="another devnet command"),
        state.lock(wait=False),
    ):
        pass
    with state.lock(wait=False):
        pass  # released
