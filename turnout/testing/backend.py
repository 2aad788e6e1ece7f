"""A small HTTP backend standing in for one instance of one version of a service.

Every answer names the version that served it (header `x-served-by`, JSON body
{"version", "instance", ...}), so a client behind Envoy can count which version it
reached. `/healthz` answers 200, or 503 while the backend is told to be unhealthy.
A share of requests can be failed with 503 and latency added. The backend counts what
it received (by path and by Host header) so a test can check, e.g., that a dark
version received mirrored copies.

    python -m turnout.testing.backend --version v2 --port 9201
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType, TracebackType
from typing import Any

__all__ = ["Backend", "BackendCounts", "main"]

HEALTH_PATH = "/healthz"


@dataclass(frozen=True)
class BackendCounts:
    """A copy of what a backend has received so far (health checks counted apart)."""

    requests: int
    health_checks: int
    failed: int
    by_path: dict[str, int]
    by_host: dict[str, int]
    by_header: dict[str, dict[str, int]]
    replays: int = 0  # requests a comparator replayed to this dark version

    def shadow(self) -> int:
        """Requests whose Host ends in `-shadow` (Envoy's mark on mirrored copies), and
        copies a comparator replayed here as the dark version (`x-turnout-replay: dark`)."""
        copies = sum(
            n for host, n in self.by_host.items() if host.split(":")[0].endswith("-shadow")
        )
        return copies + self.replays


class _Server(ThreadingHTTPServer):
    # Python's default listen backlog of 5 makes Envoy's connects time out under a
    # dozen concurrent clients (FACTS.md).
    request_queue_size = 512
    daemon_threads = True
    allow_reuse_address = True
    backend: Backend


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"  # keep-alive, as Envoy's upstream pools expect
    # Send each answer in one write, without Nagle: headers and body written apart
    # meet the peer's delayed ACK and cost ~40 ms per request.
    wbufsize = 64 * 1024
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        return  # quiet: the demo redraws a table on this terminal

    def _drain_body(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length > 0:
            self.rfile.read(length)

    def _answer(self, status: int, body: bytes, content_type: str) -> None:
        backend = self.server.backend
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("x-served-by", backend.version)
        self.send_header("x-instance", backend.instance)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _handle(self) -> None:
        self._drain_body()
        backend = self.server.backend
        path = self.path.split("?", 1)[0]
        if path == HEALTH_PATH:
            healthy = backend.record_health_check()
            self._answer(
                200 if healthy else 503, b"ok\n" if healthy else b"unhealthy\n", "text/plain"
            )
            return
        fail = backend.record_request(path, self.headers.get("Host", ""), self.headers)
        if backend.latency > 0:
            time.sleep(backend.latency)
        if fail:
            self._answer(503, b'{"error": "injected failure"}\n', "application/json")
            return
        body = (
            backend.catalog_body(path)
            if backend.catalog
            else {
                "version": backend.version,
                "instance": backend.instance,
                "path": self.path,
                "host": self.headers.get("Host", ""),
            }
        )
        self._answer(200, (json.dumps(body) + "\n").encode(), "application/json")

    do_GET = _handle  # noqa: N815 (BaseHTTPRequestHandler's naming)
    do_POST = _handle  # noqa: N815
    do_PUT = _handle  # noqa: N815
    do_DELETE = _handle  # noqa: N815
    do_HEAD = _handle  # noqa: N815


class Backend:
    """One backend instance on 127.0.0.1; start() binds (port 0 picks a free port).

    `healthy`, `fail` (0..1 share answered 503) and `latency` (seconds) may be changed
    while it runs. `watch_headers` names request headers whose values are counted.

    `catalog=True` answers a JSON catalog that depends only on the path (the same from
    every instance and version, as for dark response diffing): `{"items": [{"id",
    "price"}...], "total", "meta": {"generatedAt", "requestId"}}`; `generatedAt` (a
    microsecond timestamp) and `requestId` (random) differ on every answer. A share
    `drift` of answers has a `total` one higher, and paths in `empty_paths` answer an
    empty list (what a broken dark version might do).
    """

    def __init__(
        self,
        version: str,
        *,
        port: int = 0,
        host: str = "127.0.0.1",
        instance: str | None = None,
        fail: float = 0.0,
        latency: float = 0.0,
        healthy: bool = True,
        watch_headers: tuple[str, ...] = (),
        catalog: bool = False,
        drift: float = 0.0,
        empty_paths: tuple[str, ...] = (),
    ) -> None:
        self.version = version
        self.catalog = catalog
        self.drift = drift
        self.empty_paths = tuple(empty_paths)
        self.host = host
        self._requested_port = port
        self.instance = instance or f"{version}-{port or 'auto'}"
        self.fail = fail
        self.latency = latency
        self.healthy = healthy
        self.watch_headers = tuple(h.lower() for h in watch_headers)
        self._lock = threading.Lock()
        # Seeded by the instance: which requests fail (and drift) is the same on every
        # run, so a test's statistics do not turn on a lucky or unlucky draw (two
        # versions failing 2% each once drew 3.4% against 2%, significant at p=0.005).
        self._random = random.Random(self.instance)  # noqa: S311 (failure injection)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._reset_counts()

    def _reset_counts(self) -> None:
        self._requests = 0
        self._health_checks = 0
        self._failed = 0
        self._replays = 0
        self._by_path: Counter[str] = Counter()
        self._by_host: Counter[str] = Counter()
        self._by_header: dict[str, Counter[str]] = {h: Counter() for h in self.watch_headers}

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("backend not started")
        port: int = self._server.server_address[1]
        return port

    @property
    def address(self) -> str:
        """The `host:port` to write in a policy's `endpoints:`."""
        return f"{self.host}:{self.port}"

    def start(self) -> Backend:
        server = _Server((self.host, self._requested_port), _Handler)
        server.backend = self
        self._server = server
        if self.instance == f"{self.version}-auto":
            self.instance = f"{self.version}-{self.port}"
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name=f"backend-{self.instance}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    def __enter__(self) -> Backend:
        return self.start() if self._server is None else self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- counting (called from handler threads) ----------------------------------

    def record_health_check(self) -> bool:
        with self._lock:
            self._health_checks += 1
            return self.healthy

    def record_request(self, path: str, host: str, headers: Any) -> bool:
        """Count one request; returns whether to fail it."""
        with self._lock:
            self._requests += 1
            self._by_path[path] += 1
            self._by_host[host] += 1
            for name in self.watch_headers:
                self._by_header[name][str(headers.get(name, ""))] += 1
            if headers.get("x-turnout-replay") == "dark":
                self._replays += 1
            fail = self.fail > 0 and self._random.random() < self.fail
            if fail:
                self._failed += 1
            return fail

    def catalog_body(self, path: str) -> dict[str, Any]:
        """The catalog answer for `path` (see the class docstring)."""
        seed = sum(path.encode())
        items = [
            {"id": seed % 97 + i, "price": round(1 + (seed * (i + 3)) % 50 / 2, 2)}
            for i in range(3)
        ]
        if path in self.empty_paths:
            items = []
        with self._lock:
            drifted = self.drift > 0 and self._random.random() < self.drift
        return {
            "items": items,
            "total": len(items) + seed % 7 + (1 if drifted else 0),
            "meta": {
                "generatedAt": datetime.now(UTC).isoformat(timespec="microseconds"),
                "requestId": uuid.uuid4().hex,
            },
        }

    def counts(self) -> BackendCounts:
        with self._lock:
            return BackendCounts(
                requests=self._requests,
                health_checks=self._health_checks,
                failed=self._failed,
                by_path=dict(self._by_path),
                by_host=dict(self._by_host),
                by_header={h: dict(c) for h, c in self._by_header.items()},
                replays=self._replays,
            )

    def reset(self) -> None:
        """Forget what was counted so far."""
        with self._lock:
            self._reset_counts()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m turnout.testing.backend",
        description="An HTTP backend that names its version in every answer.",
    )
    parser.add_argument("--version", required=True, help="version name, e.g. v2")
    parser.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--instance", default=None, help="instance name (default VERSION-PORT)")
    parser.add_argument("--fail", type=float, default=0.0, help="share of requests failed (0..1)")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added per request")
    parser.add_argument("--unhealthy", action="store_true", help="/healthz answers 503")
    parser.add_argument("--catalog", action="store_true", help="answer the JSON catalog")
    parser.add_argument("--drift", type=float, default=0.0, help="share of catalog totals off by 1")
    parser.add_argument(
        "--empty-path", action="append", default=[], help="a path answering an empty catalog"
    )
    args = parser.parse_args(argv)
    backend = Backend(
        args.version,
        port=args.port,
        host=args.host,
        instance=args.instance,
        fail=args.fail,
        latency=args.latency,
        healthy=not args.unhealthy,
        catalog=args.catalog,
        drift=args.drift,
        empty_paths=tuple(args.empty_path),
    ).start()
    print(
        f"backend {backend.instance} serving version {backend.version} on {backend.address}",
        flush=True,
    )
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    stop.wait()
    backend.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
