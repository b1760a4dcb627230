"""TCP ports: pick free ones, and check that a chosen one is free before using it."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterable

from devnet.errors import PortInUseError

_WILDCARDS = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}  # noqa: S104


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def connect_host(host: str) -> str:
    """The address a local client dials to reach a server bound to ``host``."""
    return _WILDCARDS.get(host, host)


def http_url(host: str, port: int) -> str:
    """``http://host:port``, with IPv6 hosts in brackets and wildcards made loopback."""
    host = connect_host(host)
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def is_port_free(host: str, port: int) -> bool:
    """Whether a server could bind ``host:port`` now (the check anvil's own bind makes)."""
    with socket.socket(_family(host), socket.SOCK_STREAM) as sock:
        # SO_REUSEADDR as servers set it: a port in TIME_WAIT is free, a listener is not.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def check_port_free(host: str, port: int) -> None:
    """Raise :class:`PortInUseError` (saying what to do) unless ``host:port`` is free."""
    if not is_port_free(host, port):
        raise PortInUseError(host, port)


def free_ports(host: str, count: int, exclude: Iterable[int] = ()) -> list[int]:
    """``count`` distinct ports that are free on ``host`` now, none of them in ``exclude``."""
    excluded = set(exclude)
    ports: list[int] = []
    with contextlib.ExitStack() as stack:
        # Hold every socket open until all are chosen, so the kernel never repeats one.
        while len(ports) < count:
            sock = stack.enter_context(socket.socket(_family(host), socket.SOCK_STREAM))
            sock.bind((host, 0))
            port = int(sock.getsockname()[1])
            if port not in excluded:
                ports.append(port)
    return ports


def free_port(host: str = "127.0.0.1") -> int:
    """A port that is free on ``host`` now (another process may take it later)."""
    return free_ports(host, 1)[0]
