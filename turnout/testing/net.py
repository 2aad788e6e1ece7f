"""Small networking helpers shared by the demo and the end-to-end harness.

``wait_until`` is :func:`turnout.testing.wait_until`, re-exported here for the harness.
"""

from __future__ import annotations

import socket
import urllib.error
import urllib.request

from turnout.testing._wait import wait_until

__all__ = ["free_port", "http_get", "port_open", "wait_until"]


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago (the kernel's pick for port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


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
