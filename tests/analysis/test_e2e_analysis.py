"""Release analysis end to end: real Envoy streams its stats to turnout's sink while a
real Prometheus scrapes the same Envoy; real backends answer traffic sent through the
gateway. One stack for the module; each test changes how the backends behave and
judges its own window, from both sources.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest

from turnout.analysis import (
    Figures,
    PrometheusError,
    PrometheusSource,
    Thresholds,
    Verdict,
    judge,
    judge_dark,
)
from turnout.testing.backend import Backend
from turnout.testing.envoy import EnvoyProcess
from turnout.testing.net import free_port

from ._stack import (
    InProcessTurnout,
    PrometheusServer,
    flushed,
    send,
    tmpdir,
    version_clusters,
    window_end,
    window_start,
)

pytestmark = pytest.mark.e2e

HOST = "checkout.example.com"
THRESHOLDS = Thresholds(
    min_requests=100,
    max_error_rate=0.05,
    max_error_rate_increase=0.02,
    max_latency_p99=0.5,
    max_latency_p99_increase=1.5,
)


@dataclass
class Stack:
    turnout: InProcessTurnout
    envoy: EnvoyProcess
    prometheus: PrometheusServer
    backends: dict[str, Backend]
    gateway_port: int
    second_port: int
    workdir: Path

    @property
    def clusters(self) -> dict[str, tuple[str, str]]:
        current = self.turnout.controller.current
        assert current is not None
        return version_clusters(current.policies)


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    with ExitStack() as exits:
        workdir = tmpdir(exits, "turnout-analysis-")
        backends = {}
        for version in ("v1", "v2", "v3"):
            backend = Backend(version, instance=f"{version}-1")
            exits.callback(backend.stop)
            backends[version] = backend.start()
        policies = workdir / "policies"
        policies.mkdir()
        gateway_port = free_port()
        second_port = free_port()  # for a second Envoy (node cluster "second")
        (policies / "checkout.yaml").write_text(
            f"kind: Gateway\nname: public\nport: {gateway_port}\naddress: 127.0.0.1\n"
            'proxies: ["edge"]\n---\n'
            f"kind: Gateway\nname: second\nport: {second_port}\naddress: 127.0.0.1\n"
            'proxies: ["second"]\n---\n'
            "kind: Service\nname: checkout\n"
            f"hosts: [{HOST}]\n"
            "versions:\n"
            + "".join(f'  {v}: {{endpoints: ["{b.address}"]}}\n' for v, b in backends.items())
            + "stable: v1\ntraffic: {v1: 50, v2: 50}\nmirror: {to: v3, percent: 100}\n"
        )
        turnout = InProcessTurnout(policies)
        exits.callback(turnout.stop)
        turnout.start()
        envoy = EnvoyProcess(
            turnout.xds_port,
            node_id="analysis-envoy-1",
            workdir=workdir / "envoy",
            stats_flush_interval="1s",
        )
        exits.callback(envoy.stop)
        envoy.start()
        envoy.wait_for_listener(gateway_port)
        prometheus = PrometheusServer([f"127.0.0.1:{envoy.admin_port}"], workdir / "prometheus")
        exits.callback(prometheus.stop)
        prometheus.start()
        prometheus.wait_scraping()
        yield Stack(turnout, envoy, prometheus, backends, gateway_port, second_port, workdir)


@dataclass
class Window:
    """One test's traffic: what the backends counted and both sources' figures."""

    since: float
    until: float
    served: dict[str, int]  # requests each backend received (v3: mirrored copies)
    failed: dict[str, int]
    sink: dict[str, Figures]
    prometheus: dict[str, Figures]

    def verdicts(self, source: dict[str, Figures]) -> tuple[Verdict, Verdict]:
        return (
            judge(source["v2"], source["v1"], THRESHOLDS),
            judge_dark(source["v3"], source["v1"], THRESHOLDS),
        )


def run_window(stack: Stack, n: int, **behaviour: dict[str, float]) -> Window:
    """Set each backend's `fail`/`latency` (others healthy), send n requests, wait for a
    flush and a scrape, and read the window from the sink and from Prometheus."""
    for version, backend in stack.backends.items():
        settings = behaviour.get(version, {})
        backend.fail = settings.get("fail", 0.0)
        backend.latency = settings.get("latency", 0.0)
    before = {v: b.counts() for v, b in stack.backends.items()}
    nodes = [stack.envoy.node_id]
    since = window_start(stack.turnout, nodes, stack.prometheus)
    statuses = send(stack.gateway_port, HOST, n)
    assert sum(statuses.values()) == n
    until = window_end(stack.turnout, nodes, time.time(), stack.prometheus)
    after = {v: b.counts() for v, b in stack.backends.items()}
    clusters = stack.clusters
    return Window(
        since,
        until,
        {v: after[v].requests - before[v].requests for v in after},
        {v: after[v].failed - before[v].failed for v in after},
        {v: stack.turnout.store.figures_now("checkout", v, since, until) for v in after},
        {v: stack.prometheus.figures(clusters, "checkout", v, since, until) for v in after},
    )


def slack(count: int) -> int:
    """Allowed miscount: 1% + 1, for a flush or a scrape that lands after the window on
    a loaded machine (counts are exact when nothing lags)."""
    return count // 100 + 1


def assert_close(figures: Figures, requests: int, errors: int) -> None:
    """The figures count the requests and errors the backends saw, within slack."""
    assert abs(figures.requests - requests) <= slack(requests), (figures.to_json(), requests)
    assert abs(figures.errors - errors) <= slack(errors), (figures.to_json(), errors)


def test_errors_counted_and_judged_from_both_sources(stack: Stack) -> None:
    """With v2 failing 20% and the dark v3 failing 30% of its mirrored copies, the
    sink counts exactly what the backends served and failed, Prometheus the same, and
    both fail v2 against v1 and the dark v3 against v1."""
    window = run_window(stack, 600, v2={"fail": 0.2}, v3={"fail": 0.3})
    for version in ("v1", "v2", "v3"):
        assert_close(window.sink[version], window.served[version], window.failed[version])
        assert_close(window.prometheus[version], window.served[version], window.failed[version])
        assert window.sink[version].proxies == 1
        assert window.prometheus[version].proxies == 1
        # every request was timed: the per-interval histograms add up to the counters
        timed = window.sink[version].latency.total
        assert abs(timed - window.served[version]) <= slack(window.served[version])
    assert window.served["v3"] == 600  # every request mirrored
    assert window.failed["v3"] > 100
    for source in (window.sink, window.prometheus):
        canary, dark = window.verdicts(source)
        assert canary.outcome == "fail", canary.reasons
        assert "maxErrorRate" in {c.name for c in canary.checks if c.failed}
        assert dark.outcome == "fail", dark.reasons
        assert dark.kind == "dark"
        assert "checkout/v3 error rate" in dark.reason


def test_latency_200ms_worse_fails_from_both_sources(stack: Stack) -> None:
    """v2 answering 200 ms later fails maxLatencyP99Increase from both sources, which
    count the same latency histogram, while the healthy dark v3 passes."""
    window = run_window(stack, 320, v2={"latency": 0.2})
    for source in (window.sink, window.prometheus):
        p99 = source["v2"].p99
        assert p99 is not None
        assert 0.2 < p99 < 0.5
        canary, dark = window.verdicts(source)
        assert canary.outcome == "fail", canary.reasons
        assert [c.name for c in canary.checks if c.failed] == ["maxLatencyP99Increase"]
        assert dark.outcome == "pass", dark.reasons
    sink_p99, prometheus_p99 = window.sink["v2"].p99, window.prometheus["v2"].p99
    assert sink_p99 is not None
    assert prometheus_p99 == pytest.approx(sink_p99, rel=0.1)


def test_healthy_noisy_canary_passes_from_both_sources(stack: Stack) -> None:
    """v1 and v2 both failing 2% at random: no threshold is significantly breached, so
    both sources pass v2 (and the dark v3)."""
    window = run_window(stack, 600, v1={"fail": 0.02}, v2={"fail": 0.02})
    for version in ("v1", "v2"):
        assert_close(window.sink[version], window.served[version], window.failed[version])
    for source in (window.sink, window.prometheus):
        canary, dark = window.verdicts(source)
        assert canary.outcome == "pass", canary.reasons
        assert dark.outcome == "pass", dark.reasons


def test_too_little_traffic_holds(stack: Stack) -> None:
    """With fewer than minRequests for v2 in the window, both sources hold and say why."""
    window = run_window(stack, 60)
    for source in (window.sink, window.prometheus):
        canary, _ = window.verdicts(source)
        assert canary.outcome == "hold"
        assert "fewer than minRequests 100" in canary.reason


def test_proxy_restart_and_reconnect_lose_nothing(stack: Stack) -> None:
    """A second Envoy restarted between two bursts (same node id, counters from zero,
    a new stream) is counted exactly: both bursts, neither twice."""
    with ExitStack() as exits:

        def second_envoy() -> EnvoyProcess:
            envoy = EnvoyProcess(
                stack.turnout.xds_port,
                node_id="analysis-envoy-2",
                node_cluster="second",
                workdir=stack.workdir / "envoy-2",
                stats_flush_interval="1s",
            )
            exits.callback(envoy.stop)
            envoy.start()
            envoy.wait_for_listener(stack.second_port)
            return envoy

        first = second_envoy()
        before = {v: b.counts().requests for v, b in stack.backends.items()}
        turnout, nodes = stack.turnout, [first.node_id]
        since = window_start(turnout, nodes)  # its first reports: the baseline
        assert send(stack.second_port, HOST, 150) == {200: 150}
        flushed(turnout, nodes, time.time())  # the first burst reported before the restart
        first.stop()
        second_envoy()
        assert send(stack.second_port, HOST, 150) == {200: 150}
        until = window_end(turnout, nodes, time.time())
        served = {v: b.counts().requests - before[v] for v, b in stack.backends.items()}
    assert served["v1"] + served["v2"] == 300
    for version in ("v1", "v2", "v3"):
        figures = stack.turnout.store.figures_now("checkout", version, since, until)
        assert abs(figures.requests - served[version]) <= slack(served[version]), (
            version,
            figures.requests,
            served,
        )


def test_prometheus_errors_are_reported(stack: Stack) -> None:
    """A query Prometheus refuses, or no Prometheus at the address, raises PrometheusError."""

    async def read(url: str, selector: str) -> Figures:
        async with PrometheusSource(url, stack.clusters, selector=selector, timeout=2.0) as source:
            return await source.figures("checkout", "v1", 0.0, 60.0)

    with pytest.raises(PrometheusError, match="refused"):
        asyncio.run(read(stack.prometheus.url, "job=~"))
    with pytest.raises(PrometheusError, match="Prometheus at"):
        asyncio.run(read(f"http://127.0.0.1:{free_port()}", ""))
