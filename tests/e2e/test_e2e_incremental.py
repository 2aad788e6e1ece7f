"""Incremental releases driven by `turnout serve` end to end: real Envoy streaming its
stats to turnout (or scraped by a real Prometheus), real backends that fail or slow
down on demand, traffic generated here, and the policy files as the only truth.

Each test prints what it measured: the time from the first bad response a client saw
to the last request that still reached the bad version (traffic back on stable), and
the driver's own decision times from its log.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from analysis._stack import PrometheusServer, prometheus_binary  # tests/analysis (rootdir)

from turnout.compile import compile_policies
from turnout.policy import IncrementalState, Service, load_policies
from turnout.testing.backend import Backend
from turnout.testing.control import TurnoutProcess, proxies_settled
from turnout.testing.envoy import EnvoyProcess
from turnout.testing.net import free_port, wait_until

from ._harness import count_versions, served_by, write_atomically

pytestmark = pytest.mark.e2e

HOST = "shop.example.com"

# Every test's policy: the same analysis, so verdicts differ only by what the canary does.
ANALYSIS = "{minRequests: 50, maxErrorRate: 0.05, maxLatencyP99: 100ms}"


@dataclass(frozen=True)
class Answer:
    start: float  # time.time() when the request was sent
    seconds: float  # how long it took
    version: str  # who answered (served_by): "v1", "v2", "HTTP 503", ...


class Load:
    """`threads` clients sending about `rate` requests/s in all, each answer recorded."""

    def __init__(self, port: int, rate: float, threads: int = 4) -> None:
        self.port = port
        self.period = threads / rate
        self.answers: list[Answer] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def start(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def _run(self) -> None:
        with httpx.Client(
            base_url=f"http://127.0.0.1:{self.port}", timeout=5.0, trust_env=False
        ) as client:
            next_at = time.monotonic()
            while not self._stop.is_set():
                start = time.time()
                began = time.perf_counter()
                try:
                    answer = served_by(client.get("/", headers={"Host": HOST}))
                except httpx.HTTPError as exc:
                    answer = type(exc).__name__
                answer_at = Answer(start, time.perf_counter() - began, answer)
                with self._lock:
                    self.answers.append(answer_at)
                next_at += self.period
                self._stop.wait(max(0.0, next_at - time.monotonic()))

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(10)

    def snapshot(self) -> list[Answer]:
        with self._lock:
            return list(self.answers)

    def counts(self, since: float = 0.0) -> Counter[str]:
        return Counter(a.version for a in self.snapshot() if a.start >= since)


class Release:
    """Backends v1 and v2, a policy directory, `turnout serve` and one Envoy."""

    def __init__(
        self,
        exits: ExitStack,
        workdir: Path,
        backends: dict[str, Backend],
        *,
        turnout_args: tuple[str, ...] = (),
        prometheus: bool = False,
        mirror: str = "",
    ) -> None:
        self.workdir = workdir
        self.backends = backends
        self.gateway_port = free_port()
        self.policy_dir = workdir / "policies"
        self.policy_dir.mkdir(parents=True)
        self.file = self.policy_dir / "shop.yaml"
        self.mirror = mirror
        self.file.write_text(self._service(""))
        args = ["--log-format", "json", *turnout_args]
        self.prometheus: PrometheusServer | None = None
        if prometheus:
            prometheus_binary()  # a missing one fails the test before anything starts
            self.prometheus = PrometheusServer([], workdir / "prometheus")
            args += ["--metrics-source", "prometheus", "--prometheus-url", self.prometheus.url]
        self.turnout = TurnoutProcess(
            self.policy_dir, log_path=workdir / "turnout.log", extra_args=args
        )
        exits.callback(self.turnout.kill)
        self.turnout.start()
        self.envoy = EnvoyProcess(
            self.turnout.xds_port,
            node_id="release-envoy",
            workdir=workdir / "envoy",
            stats_flush_interval="1s",
        )
        exits.callback(self.envoy.stop)
        self.envoy.start()
        self.envoy.wait_for_listener(self.gateway_port)
        if self.prometheus is not None:
            self.prometheus.config.write_text(
                "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
                "scrape_configs:\n- job_name: envoy\n  metrics_path: /stats/prometheus\n"
                f"  static_configs: [{{targets: ['127.0.0.1:{self.envoy.admin_port}']}}]\n"
            )
            exits.callback(self.prometheus.stop)
            self.prometheus.start()
            self.prometheus.wait_scraping()
        self.load: Load | None = None
        exits.callback(self.stop_load)

    def _service(self, incremental: str) -> str:
        v1, v2 = self.backends["v1"], self.backends["v2"]
        return (
            "kind: Gateway\nname: public\n"
            f"port: {self.gateway_port}\naddress: 127.0.0.1\n---\n"
            "kind: Service\nname: shop\n"
            f"hosts: [{HOST}]\n"
            "versions:\n"
            f'  v1: {{endpoints: ["{v1.address}"]}}\n'
            f'  v2: {{endpoints: ["{v2.address}"]}}\n'
            + "".join(
                f'  {name}: {{endpoints: ["{backend.address}"]}}\n'
                for name, backend in self.backends.items()
                if name not in ("v1", "v2")
            )
            + "stable: v1\n"
            "traffic: {v1: 100}\n" + self.mirror + incremental
        )

    def begin(self, steps: str, interval: str, extra: str = "") -> float:
        """Declare the incremental release (the driver starts it); returns when."""
        block = (
            f"incremental:\n  to: v2\n  steps: {steps}\n  interval: {interval}\n"
            f"  analysis: {ANALYSIS}\n  onFailure: rollback\n{extra}"
        )
        started = time.time()
        write_atomically(self.file, self._service(block))
        return started

    def start_load(self, rate: float, threads: int = 4) -> Load:
        self.load = Load(self.gateway_port, rate, threads).start()
        return self.load

    def stop_load(self) -> None:
        if self.load is not None:
            self.load.stop()

    def service(self) -> Service:
        return load_policies(self.policy_dir).service("shop")

    def wait_served(self, timeout: float = 10.0) -> None:
        """Wait until turnout serves the policy files as they are now and Envoy has
        ACKed that version."""

        def served() -> bool:
            version = compile_policies(load_policies(self.policy_dir)).policy_version
            status = self.turnout.status()
            return status["served_version"] == version and proxies_settled(
                status, [self.envoy.node_id]
            )

        wait_until(served, timeout, interval=0.05, what="Envoy to ACK the policy files")

    def wait_answers(self, count: int, since: float, timeout: float = 10.0) -> None:
        """Wait until the load has recorded ``count`` answers to requests sent since
        ``since`` (a time.time())."""
        load = self.load
        assert load is not None, "no load is running"
        wait_until(
            lambda: sum(load.counts(since).values()) >= count,
            timeout,
            what=f"{count} answers through Envoy",
        )

    def state(self) -> IncrementalState | None:
        release = self.service().incremental
        return release.state if release is not None else None

    def wait_phase(self, *phases: str, timeout: float = 30.0) -> IncrementalState:
        def reached() -> IncrementalState | None:
            state = self.state()
            return state if state is not None and state.phase in phases else None

        try:
            return wait_until(reached, timeout, what=f"phase {' or '.join(phases)}")
        except TimeoutError:
            print(self.turnout.log_tail(30))
            raise

    def decisions(self) -> list[dict[str, Any]]:
        """The driver's `release decision` log events, in order."""
        events = []
        for line in self.turnout.log_path.read_text(errors="replace").splitlines():
            if not line.startswith("{"):
                continue
            event = json.loads(line)
            if event.get("event") == "release decision":
                events.append(event)
        return events

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.turnout.xds_port}"

    def decision(self, action: str, timeout: float = 5.0) -> dict[str, Any]:
        """The last `release decision` event with this action, once it is logged (the
        file is written before the event is)."""

        def logged() -> dict[str, Any] | None:
            found = [d for d in self.decisions() if d["action"] == action]
            return found[-1] if found else None

        return wait_until(logged, timeout, what=f"a {action} decision in the log")

    def status(self, *args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "turnout", "status", "--address", self.address, *args],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        return done.stdout


@pytest.fixture(scope="module")
def backends() -> Iterator[dict[str, Backend]]:
    with ExitStack() as exits:
        started = {}
        for version in ("v1", "v2", "v3"):
            backend = Backend(version, instance=f"{version}-1")
            exits.callback(backend.stop)
            started[version] = backend.start()
        yield started


@pytest.fixture
def release_env(backends: dict[str, Backend], tmp_path: Path) -> Iterator[Callable[..., Release]]:
    for backend in backends.values():
        backend.fail, backend.latency = 0.0, 0.0
    with ExitStack() as exits:

        def make(**kwargs: Any) -> Release:
            return Release(exits, tmp_path, backends, **kwargs)

        yield make


def back_on_stable(answers: list[Answer], bad: Callable[[Answer], bool]) -> tuple[float, float]:
    """(when the first bad answer's request was sent, when the last request that
    reached v2 was sent)."""
    first_bad = min(a.start for a in answers if bad(a))
    last_v2 = max(a.start for a in answers if a.version != "v1")
    return first_bad, last_v2


def report(name: str, first_bad: float, back: float, decision: dict[str, Any]) -> None:
    print(
        f"\n[{name}] first bad response -> traffic back on stable: {back - first_bad:.2f}s "
        f"(verdict {decision['at'] - first_bad:.2f}s after the first bad response, "
        f"written {decision.get('written_ms')}ms after it; last request to v2 "
        f"{back - decision['at']:.2f}s after the verdict)"
    )


SOURCES = [
    pytest.param((), id="sink"),
    pytest.param(("prometheus",), id="prometheus"),
]


@pytest.mark.parametrize("source", SOURCES)
def test_healthy_canary_is_promoted(
    release_env: Callable[..., Release], source: tuple[str, ...]
) -> None:
    """A healthy v2 goes through every step to 100% and becomes stable (the same with
    the sink's figures and a real Prometheus')."""
    release = release_env(prometheus=bool(source))
    load = release.start_load(rate=150, threads=8)
    started = release.begin("[20, 50, 100]", "3s")
    state = release.wait_phase("promoted", "rolled-back", "failed", timeout=40)
    assert state.phase == "promoted", state.reason
    release.decision("promote")
    service = release.service()
    assert service.stable == "v2"
    assert service.traffic == (("v2", 100),)
    written = [d for d in release.decisions() if d["action"] != "await-data"]
    actions = [d["action"] for d in written]
    assert actions == ["start", "advance", "promote"]
    assert [d["share"] for d in written] == [20.0, 50.0, 100.0]
    took = time.time() - started
    release.wait_served()
    with httpx.Client(
        base_url=f"http://127.0.0.1:{release.gateway_port}", trust_env=False
    ) as client:
        assert count_versions(client, HOST, 50) == Counter({"v2": 50})
    assert not {v for v in load.counts() if v not in ("v1", "v2")}
    print(f"\n[healthy, {source[0] if source else 'sink'}] promoted in {took:.1f}s: {actions}")


@pytest.mark.parametrize("source", SOURCES)
def test_failing_canary_is_rolled_back(
    release_env: Callable[..., Release], source: tuple[str, ...]
) -> None:
    """A v2 answering 20% 5xx is rolled back at the first step with enough data, all
    traffic is back on v1 (counted), and the reason carries the figures."""
    release = release_env(prometheus=bool(source))
    release.backends["v2"].fail = 0.2
    load = release.start_load(rate=150, threads=8)
    release.begin("[20, 50, 100]", "30s")
    state = release.wait_phase("rolled-back", "promoted", "failed", timeout=30)
    assert state.phase == "rolled-back", state.reason
    assert state.step == 0
    assert "maxErrorRate" in (state.reason or "")
    release.wait_served()
    release.wait_answers(60, since=time.time())  # traffic goes on, on v1
    release.stop_load()
    decision = release.decision("rollback")
    assert decision["canary"]["requests"] >= 50
    assert [c["name"] for c in decision["checks"] if c["significant"] and c["breached"]] == [
        "maxErrorRate"
    ]
    answers = load.snapshot()
    first_bad, back = back_on_stable(answers, lambda a: a.version == "HTTP 503")
    assert back - decision["at"] < 1.0, "traffic was not back on v1 within 1s of the verdict"
    after = Counter(a.version for a in answers if a.start > back)
    assert set(after) == {"v1"}, after
    assert after["v1"] >= 50
    report(f"20% 5xx, {source[0] if source else 'sink'}", first_bad, back, decision)


def test_slow_canary_is_rolled_back(release_env: Callable[..., Release]) -> None:
    """A v2 whose p99 is 200 ms worse than v1's is rolled back."""
    release = release_env()
    release.backends["v2"].latency = 0.2
    load = release.start_load(rate=150, threads=8)
    release.begin("[20, 50, 100]", "30s")
    state = release.wait_phase("rolled-back", "promoted", "failed", timeout=30)
    assert state.phase == "rolled-back", state.reason
    assert "maxLatencyP99" in (state.reason or "")
    release.wait_served()
    release.wait_answers(60, since=time.time())  # traffic goes on, on v1
    release.stop_load()
    decision = release.decision("rollback")
    assert decision["canary"]["p99_ms"] >= 150
    answers = load.snapshot()
    first_bad, back = back_on_stable(answers, lambda a: a.version == "v2" and a.seconds >= 0.15)
    assert back - decision["at"] < 1.0
    assert set(Counter(a.version for a in answers if a.start > back)) == {"v1"}
    report("p99 +200ms", first_bad, back, decision)


def test_too_little_traffic_holds_then_fails_at_the_deadline(
    release_env: Callable[..., Release],
) -> None:
    """With too little traffic the release holds and `turnout status` says why; at the
    progress deadline it fails, traffic back on v1."""
    release = release_env()
    release.start_load(rate=4, threads=2)
    started = release.begin("[20, 50, 100]", "2s", "  progressDeadline: 8s\n")
    wait_until(
        lambda: any(d["action"] == "await-data" for d in release.decisions()),
        10,
        what="the release to hold for data",
    )
    text = release.status()
    assert "shop: v1 -> v2: running, step 1/3 (v2 at 20%)" in text
    assert "why: await-data: holding for data" in text
    assert "fewer than minRequests 50" in text
    state = release.wait_phase("failed", "rolled-back", "promoted", timeout=15)
    assert state.phase == "failed"
    assert "no verdict within the progress deadline (8s)" in (state.reason or "")
    assert release.service().traffic == (("v1", 100),)
    took = time.time() - started
    assert 7.0 <= took <= 12.0
    print(f"\n[too little traffic] held, then failed {took:.1f}s after the release began")


def test_restarted_turnout_resumes_at_the_same_step(release_env: Callable[..., Release]) -> None:
    """A turnout killed mid-step and started again resumes the same step and finishes
    it when its interval (counted from the step's since) ends."""
    release = release_env()
    release.start_load(rate=150, threads=8)
    release.begin("[20, 50, 100]", "8s")
    state = wait_until(
        lambda: s if (s := release.state()) is not None and s.step == 1 else None,
        30,
        what="step 2",
    )
    assert state.since is not None
    time.sleep(2.0)  # the behaviour under test: turnout dies 2 s into the step's 8 s
    release.turnout.kill()
    killed = time.time()
    assert release.state() == state
    release.turnout.start()
    print(f"\n[restart] turnout restarted in {time.time() - killed:.1f}s")
    promoted = release.wait_phase("promoted", "rolled-back", "failed", timeout=30)
    assert promoted.phase == "promoted", promoted.reason
    assert promoted.since is not None
    step_took = (promoted.since - state.since).total_seconds()
    print(f"[restart] step 2 (8s interval) ended {step_took:.0f}s after it began")
    assert 8 <= step_took <= 11, "the step's interval was not resumed where it was"
    assert release.service().stable == "v2"


def test_failing_dark_run_blocks_the_release(release_env: Callable[..., Release]) -> None:
    """A dark v2 failing 30% of mirrored requests is reported and blocks a release that
    requires a clean dark run: no live request ever reaches v2."""
    release = release_env(mirror="mirror: {to: v2, percent: 100}\n")
    release.backends["v2"].fail = 0.3
    load = release.start_load(rate=150, threads=8)
    started = release.begin("[20, 50, 100]", "3s", "  requireDark: {for: 5s, minRequests: 60}\n")
    state = release.wait_phase("failed", "running", "promoted", timeout=20)
    assert state.phase == "failed", state.reason
    assert "dark run of v2 failed" in (state.reason or "")
    failed_at = time.time()
    assert release.service().traffic == (("v1", 100),)
    status = json.loads(release.status("--json"))
    [service] = status["services"]
    analysis = service["incremental"]["analysis"]
    assert (analysis["kind"], analysis["outcome"], analysis["action"]) == ("dark", "fail", "fail")
    assert analysis["canary"]["version"] == "v2"
    assert analysis["canary"]["error_rate"] > 0.2
    text = release.status()
    assert "ROLE" in text
    assert "dark" in text
    release.wait_answers(100, since=failed_at)  # live traffic after the failure
    assert set(load.counts()) == {"v1"}, "a live request reached the dark version"
    assert release.state() == state  # blocked: nothing moves after the failure
    decision = release.decision("fail")
    print(
        f"\n[dark 30% 5xx] release blocked {decision['at'] - started:.2f}s after it began "
        f"({decision['canary']['requests']} mirrored requests judged, "
        f"{decision['canary']['errors']} failed); {failed_at - started:.1f}s to see it in the file"
    )


def test_failing_dark_version_is_reported_in_status(release_env: Callable[..., Release]) -> None:
    """With no release at all, a dark v3 failing 30% of the mirrored requests is judged
    continuously against v1 and reported failing in `turnout status --json` and the
    tables; no live request reaches v3."""
    release = release_env(
        mirror="mirror: {to: v3, percent: 100}\n", turnout_args=("--dark-window", "30s")
    )
    release.backends["v3"].fail = 0.3
    load = release.start_load(rate=100, threads=4)
    started = time.time()

    def failing() -> dict[str, Any] | None:
        [service] = json.loads(release.status("--json"))["services"]
        dark = service.get("dark") or []
        return dark[0] if dark and dark[0]["outcome"] == "fail" else None

    dark = wait_until(failing, 30, what="a failing dark verdict in turnout status --json")
    took = time.time() - started
    assert (dark["to"], dark["light"], dark["segments"]) == ("v3", ["v1"], ["default"])
    assert dark["dark"]["version"] == "v3"
    assert int(dark["dark"]["requests"]) >= 100  # uint64: a string in proto3 JSON
    assert 0.15 < dark["dark"]["error_rate"] < 0.45  # 30% of ~100: a wide binomial
    assert dark["light_figures"]["error_rate"] == 0
    assert dark["window_seconds"] == 30
    assert any(r.startswith("shop/v3 error rate") for r in dark["reasons"]), dark["reasons"]
    text = release.status()
    assert "shop: v3 (dark) against v1 (light), mirrored from default: fail" in text
    assert set(load.counts()) == {"v1"}, "a live request reached the dark version"
    print(
        f"\n[dark v3 30% 5xx, no release] reported failing {took:.1f}s after the load began "
        f"({dark['dark']['requests']} mirrored requests, {dark['dark']['errors']} failed)"
    )
    print("\n".join(line for line in text.splitlines() if "DARK" in line or "  " in line[:4]))
