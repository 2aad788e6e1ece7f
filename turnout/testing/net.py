"""Small networking helpers shared by the demo and the end-to-end harness.

``wait_until`` is :func:`turnout.testing.wait_until`, re-exported here for the harness.
"""

from __future__ import annotations

import random
import socket
import urllib.error
import urllib.request
from pathlib import Path

from turnout.testing._wait import wait_until

__all__ = ["free_port", "http_get", "port_open", "wait_until"]


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago, for a server about to bind it.

    Picked at random below the kernel's ephemeral range, so that no outgoing connection
    (Envoy's to its backends, a load generator's) is given it between this pick and
    the server's bind, and never one this process has given before. (The kernel's pick
    for port 0 is in the ephemeral range: a demo run once lost its xDS port that way.)"""
    low = _ephemeral_low()
    for _ in range(100):
        port = _random.randrange(_LOWEST, low) if low > _LOWEST else 0
        if port in _given:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((host, port))
            except OSError:
                continue
            found: int = sock.getsockname()[1]
        if found not in _given:
            _given.add(found)
            return found
    raise OSError(f"no free TCP port on {host} below {low}")


_LOWEST = 10_000
_given: set[int] = set()
_random = random.Random()  # noqa: S311 - spreading test ports, no secret; its own, so a test seeding `random` does not make picks repeat


def _ephemeral_low() -> int:
    """The lowest port the kernel gives outgoing connections (Linux's default: 32768)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32_768


def port_open(port: int, host: str = "127.0.0.1", timeout: float = 0.2) -> bool:
    """Whether something accepts TCP connections on host:port right now."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def http_get(url: str, timeout: float = 2.0) -> tuple[int, str]:
    """GET `url`; returns (status, body). Connection errors raise OSError."""
    request = urllib.request.Request(url, method="GET")  # noqa: S310 (http URLs we build)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return int(response.status), response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read().decode("utf-8", "replace")
