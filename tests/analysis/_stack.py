"""An in-process turnout (xDS + the metrics sink) for real Envoys, a real Prometheus
scraping them, and concurrent traffic through the gateway.

turnout runs on its own event loop in a thread, so tests can read the sink's windows
while Envoy streams to it; everything started is stopped by the ExitStack given.
"""

from __future__ import annotations

import asyncio
import json
import math
import shutil
import subprocess
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from typing import IO, Any

import httpx
from system_tools import require_tool  # tests/ (rootdir)

from turnout.analysis import Figures, MetricsSink, PrometheusSource, VersionKey, WindowStore
from turnout.cache import SnapshotCache
from turnout.server import Controller, VersionClusters, version_clusters
from turnout.testing.net import free_port, http_get, wait_until
from turnout.xds import XdsServer


class RecordingSink(MetricsSink):
    """The metrics sink, noting when each proxy's reports arrive (Envoy sends one every
    flush, with or without traffic): what the tests wait for instead of sleeping."""

    def __init__(self, store: WindowStore) -> None:
        super().__init__(store)
        self.arrivals: dict[str, list[float]] = {}

    def ingest(self, node: str, message: Any, at: float | None = None) -> None:
        super().ingest(node, message, at)
        self.arrivals.setdefault(node, []).append(self.store.clock())

    def reported_after(self, node: str, moment: float) -> list[float]:
        """When `node`'s reports after `moment` arrived."""
        return [at for at in list(self.arrivals.get(node, ())) if at > moment]


class InProcessTurnout:
    """turnout's reload path, xDS server and metrics sink on one gRPC port, on an event
    loop in a background thread."""

    def __init__(self, policy_dir: Path) -> None:
        self.policy_dir = policy_dir
        self.cache = SnapshotCache()
        self.controller = Controller(policy_dir, self.cache)
        self.store = WindowStore(VersionClusters(self.controller), resolution=1.0, retention=600.0)
        self.sink = RecordingSink(self.store)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._xds: XdsServer | None = None
        self.xds_port = 0

    def start(self) -> InProcessTurnout:
        if not self.controller.reload():
            raise RuntimeError(f"policies rejected: {self.controller.rejected}")
        self._thread.start()
        self._xds = XdsServer(self.cache, handlers=[self.sink.handler()])
        future = asyncio.run_coroutine_threadsafe(self._xds.start("127.0.0.1:0"), self._loop)
        self.xds_port = future.result(10)
        return self

    def stop(self) -> None:
        if self._xds is not None:
            asyncio.run_coroutine_threadsafe(self._xds.stop(0), self._loop).result(10)
            self._xds = None
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
        if not self._loop.is_closed() and not self._loop.is_running():
            self._loop.close()


def prometheus_binary() -> str:
    """Debian's prometheus; the test fails naming the package when it is missing."""
    return require_tool("prometheus")


class PrometheusServer:
    """A real Prometheus scraping Envoy admins' /stats/prometheus every second."""

    def __init__(self, targets: list[str], workdir: Path) -> None:
        self.binary = prometheus_binary()
        self.workdir = workdir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        workdir.mkdir(parents=True, exist_ok=True)
        self.config = workdir / "prometheus.yml"
        quoted = ", ".join(f'"{t}"' for t in targets)
        self.config.write_text(
            "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
            "scrape_configs:\n"
            "- job_name: envoy\n"
            "  metrics_path: /stats/prometheus\n"
            f"  static_configs: [{{targets: [{quoted}]}}]\n"
        )
        self.log_path = workdir / "prometheus.log"
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def start(self, timeout: float = 30.0) -> PrometheusServer:
        self._log = self.log_path.open("ab")
        self._process = subprocess.Popen(
            [
                self.binary,
                f"--config.file={self.config}",
                f"--storage.tsdb.path={self.workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--log.level=warn",
            ],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

        def ready() -> bool:
            if self._process is not None and self._process.poll() is not None:
                raise RuntimeError(f"prometheus exited: {self.log_path.read_text()[-2000:]}")
            status, _ = http_get(f"{self.url}/-/ready", timeout=1.0)
            return status == 200

        wait_until(ready, timeout, what="Prometheus /-/ready")
        return self

    def wait_scraping(self, timeout: float = 30.0) -> None:
        """Wait until every target has been scraped and is up."""

        def up() -> bool:
            status, body = http_get(f"{self.url}/api/v1/query?query=min(up)", timeout=1.0)
            return status == 200 and '"1"]' in body

        wait_until(up, timeout, what="Prometheus to scrape Envoy")

    def wait_scraped_after(self, moment: float, timeout: float = 15.0) -> None:
        """Wait until every target's latest scrape began after `moment` (Unix seconds):
        Prometheus then holds the counters as they were after it."""

        def scraped() -> bool:
            query = "min(timestamp(up))"
            status, body = http_get(f"{self.url}/api/v1/query?query={query}", timeout=1.0)
            result = json.loads(body)["data"]["result"] if status == 200 else []
            return bool(result) and float(result[0]["value"][1]) > moment

        wait_until(scraped, timeout, interval=0.1, what="a Prometheus scrape after the traffic")

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
        if self._log is not None:
            self._log.close()
            self._log = None

    def figures(
        self,
        clusters: Mapping[str, VersionKey],
        service: str,
        version: str,
        since: float,
        until: float,
    ) -> Figures:
        """`PrometheusSource.figures`, run to completion from a synchronous test."""

        async def read() -> Figures:
            async with PrometheusSource(self.url, clusters) as source:
                return await source.figures(service, version, since, until)

        return asyncio.run(read())


def send(
    port: int, host: str, n: int, *, concurrency: int = 16, timeout: float = 10.0
) -> Counter[int]:
    """n GET requests through the gateway from `concurrency` keep-alive clients;
    answers counted by status."""

    def worker(count: int) -> Counter[int]:
        statuses: Counter[int] = Counter()
        with httpx.Client(
            base_url=f"http://127.0.0.1:{port}", timeout=timeout, trust_env=False
        ) as client:
            for _ in range(count):
                statuses[client.get("/", headers={"Host": host}).status_code] += 1
        return statuses

    shares = [n // concurrency + (1 if i < n % concurrency else 0) for i in range(concurrency)]
    total: Counter[int] = Counter()
    with ThreadPoolExecutor(concurrency) as pool:
        for statuses in pool.map(worker, [s for s in shares if s]):
            total.update(statuses)
    return total


def tmpdir(exits: ExitStack, prefix: str) -> Path:
    path = Path(tempfile.mkdtemp(prefix=prefix))
    exits.callback(shutil.rmtree, path, True)
    return path


def flushed(turnout: InProcessTurnout, nodes: Sequence[str], moment: float) -> float:
    """Wait until each of `nodes` (Envoy node ids) has reported to the sink twice since
    `moment` (Unix seconds): the second report's stats were taken after the first
    arrived, so they hold everything done before `moment`. Returns when the last of
    those second reports arrived: no report carrying earlier traffic lands after it."""

    def twice() -> float | None:
        seconds = [turnout.sink.reported_after(node, moment)[1:2] for node in nodes]
        return max(at for (at,) in seconds) if all(seconds) else None

    return wait_until(twice, 15, interval=0.05, what=f"two reports from {list(nodes)}")


def window_start(
    turnout: InProcessTurnout, nodes: Sequence[str], prometheus: PrometheusServer | None = None
) -> float:
    """The start of a window holding nothing done before it: once every earlier report
    has landed (`flushed`), in a one-second slot of the sink before this moment, and
    Prometheus (if given) has scraped the quiet counters (the window's baseline)."""
    now = time.time()
    last = flushed(turnout, nodes, now)
    if prometheus is not None:
        prometheus.wait_scraped_after(now)
    resolution = turnout.store.resolution
    slot = math.floor(last / resolution + 1) * resolution
    wait_until(lambda: time.time() >= slot, 2 * resolution, what="the sink's next slot")
    return time.time()


def window_end(
    turnout: InProcessTurnout,
    nodes: Sequence[str],
    done: float,
    prometheus: PrometheusServer | None = None,
) -> float:
    """The end of a window whose traffic was done at `done`: once the sink (and
    Prometheus, if given) hold all of it."""
    flushed(turnout, nodes, done)
    if prometheus is not None:
        prometheus.wait_scraped_after(done)
    return time.time()


__all__ = [
    "InProcessTurnout",
    "PrometheusServer",
    "flushed",
    "send",
    "tmpdir",
    "version_clusters",
    "window_end",
    "window_start",
]
