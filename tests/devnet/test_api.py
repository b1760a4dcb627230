"""The Python API's failure paths, with fake anvil binaries (no chain needed)."""

from __future__ import annotations

import os
import socket
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest

from devnet.api import Devnet, DevnetConfig
from devnet.errors import AnvilError, ConfigError, PortInUseError


@pytest.mark.parametrize(
    "kwargs",
    [{"nodes": 0}, {"agents": -1}, {"port": 0}, {"port": 70000}, {"startup_timeout": 0}],
)
def test_config_refuses_bad_values(kwargs: dict[str, int]) -> None:
    with pytest.raises(ConfigError):
        DevnetConfig(**kwargs)  # type: ignore[arg-type]


def test_anvil_that_exits_leaves_nothing_behind(
    tmp_path: Path, fake_anvil: Callable[[str], Path]
) -> None:
    anvil = fake_anvil('echo "error: Address already in use (os error 98)" >&2\nexit 1')
    state = tmp_path / "state"
    with pytest.raises(AnvilError) as info:
        Devnet.up(DevnetConfig(state_dir=state, anvil_path=anvil))
    assert "exited with code 1" in str(info.value)
    assert "Address already in use" in str(info.value)
    assert sorted(p.name for p in state.iterdir()) == [".lock", "anvil.log"]


def test_anvil_that_hangs_is_stopped(tmp_path: Path, fake_anvil: Callable[[str], Path]) -> None:
    pid_file = tmp_path / "fake.pid"
    anvil = fake_anvil(f"echo $$ > {pid_file}\nexec sleep 30")
    state = tmp_path / "state"
    with pytest.raises(AnvilError, match="did not answer"):
        Devnet.up(DevnetConfig(state_dir=state, anvil_path=anvil, startup_timeout=0.3))
    pid = int(pid_file.read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert not (state / "pids.json").exists()


def test_temporary_state_dir_is_removed_after_a_failure(
    fake_anvil: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    with pytest.raises(AnvilError):
        Devnet.up(DevnetConfig(anvil_path=fake_anvil("exit 2")))
    assert [p.name for p in tmp_path.iterdir()] == ["fake-anvil"]


def test_busy_port_is_refused_before_starting(
    tmp_path: Path, fake_anvil: Callable[[str], Path]
) -> None:
    marker = tmp_path / "started"
    anvil = fake_anvil(f"touch {marker}\nexit 1")
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        with pytest.raises(PortInUseError, match=f"port {port} on 127.0.0.1 is in use"):
            Devnet.up(DevnetConfig(state_dir=tmp_path / "s", anvil_path=anvil, port=port))
    assert not marker.exists()
