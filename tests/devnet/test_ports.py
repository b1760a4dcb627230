from __future__ import annotations

import socket

import pytest

from devnet.errors import DevnetError, PortInUseError
from devnet.ports import check_port_free, free_port, free_ports, http_url, is_port_free


def test_free_port_can_be_bound() -> None:
    port = free_port()
    assert is_port_free("127.0.0.1", port)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


def test_free_ports_are_distinct_and_skip_excluded() -> None:
    taken = free_port()
    ports = free_ports("127.0.0.1", 8, exclude={taken})
    assert len(set(ports)) == 8
    assert taken not in ports


def test_a_listening_port_is_reported_with_what_to_do() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        assert not is_port_free("127.0.0.1", port)
        with pytest.raises(PortInUseError) as info:
            check_port_free("127.0.0.1", port)
    assert str(info.value) == (
        f"port {port} on 127.0.0.1 is in use: pass --port or run `devnet down`"
    )
    assert (info.value.host, info.value.port) == ("127.0.0.1", port)
    assert isinstance(info.value, DevnetError)
    assert isinstance(info.value, OSError)


def test_http_url() -> None:
    assert http_url("127.0.0.1", 1) == "http://127.0.0.1:1"
    assert http_url("0.0.0.0", 2) == "http://127.0.0.1:2"  # noqa: S104
    assert http_url("::1", 3) == "http://[::1]:3"
