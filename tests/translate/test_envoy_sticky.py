"""Stickiness as a real Envoy does it with what we generate (static bootstrap, two backends)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from turnout.policy import Gateway, PolicySet, Service, Sticky
from turnout.testing import wait_until
from turnout.testing.envoy import find_envoy
from turnout.translate import translate

from ._policies import split, version
from ._static import static_bootstrap

pytestmark = pytest.mark.e2e


class _Server(ThreadingHTTPServer):
    request_queue_size = 512  # the default backlog of 5 times Envoy's connects out
    daemon_threads = True
    name = ""


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        body = self.server.name.encode()
        self.send_response(200)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def _backend(name: str) -> _Server:
    server = _Server(("127.0.0.1", 0), _Handler)
    server.name = name
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def envoy_for(tmp_path: Path) -> Iterator[Callable[[Sticky], str]]:
    """Start Envoy on a static bootstrap of a 50/50 service; yields a function(sticky) -> url."""
    backends = [_backend("v1"), _backend("v2")]
    processes: list[subprocess.Popen[bytes]] = []

    def start(sticky: Sticky) -> str:
        port = _free_port()
        service = Service(
            name="svc",
            gateways=("public",),
            hosts=("*",),
            versions=tuple(version(b.name, f"127.0.0.1:{b.server_address[1]}") for b in backends),
            stable="v1",
            traffic=split(("v1", "50"), ("v2", "50")),
            sticky=sticky,
        )
        policies = PolicySet((Gateway("public", port, "127.0.0.1"),), (service,))
        config = tmp_path / f"envoy-{port}.json"
        config.write_text(json.dumps(static_bootstrap(translate(policies).all)))
        processes.append(
            subprocess.Popen(
                [
                    find_envoy(),
                    "-c",
                    str(config),
                    "--concurrency",
                    "1",
                    "--log-level",
                    "error",
                    "--base-id",
                    str(60_000 + (os.getpid() + port) % 5_000),
                ]
            )
        )
        url = f"http://127.0.0.1:{port}/"
        wait_until(lambda: httpx.get(url, timeout=0.5), 20, what=f"Envoy to answer on {url}")
        return url

    yield start
    for process in processes:
        process.terminate()
        process.wait(timeout=10)
    for backend in backends:
        backend.shutdown()
        backend.server_close()


def test_sticky_header_keeps_each_user_on_one_version(envoy_for: Callable[[Sticky], str]) -> None:
    """With a sticky header each user always gets one version, and both versions get users."""
    url = envoy_for(Sticky(header="x-user-id"))
    per_user = {
        user: {httpx.get(url, headers={"x-user-id": f"user-{user}"}).text for _ in range(3)}
        for user in range(40)
    }
    assert all(len(seen) == 1 for seen in per_user.values()), per_user
    assert set().union(*per_user.values()) == {"v1", "v2"}


def test_sticky_cookie_is_set_by_envoy_and_sticks(envoy_for: Callable[[Sticky], str]) -> None:
    """With a sticky cookie, Envoy sets it on a cookie-less request; the cookie keeps a version."""
    url = envoy_for(Sticky(cookie="turnout-cohort", ttl_seconds=3600.0))
    seen_versions: set[str] = set()
    for _ in range(16):
        first = httpx.get(url)
        set_cookie = first.headers.get("set-cookie", "")
        assert set_cookie.startswith("turnout-cohort="), first.headers
        assert "Max-Age=3600" in set_cookie
        cookie = set_cookie.split(";", 1)[0]
        later = {httpx.get(url, headers={"cookie": cookie}).text for _ in range(4)}
        assert len(later) == 1
        seen_versions |= later
    assert seen_versions == {"v1", "v2"}  # the cookies spread users over both versions
