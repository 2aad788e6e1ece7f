"""Dark response diffing end to end: a real Envoy mirroring to a real `turnout compare`
process, which replays each copy to two light backends and a dark one; `turnout serve`
judging what it reports. One stack for the module, one load over every service at once:

- drift: a dark v3 whose JSON `total` is one higher in ~5% of answers (and a release
  to v3 that requires a clean dark run);
- stamped: a dark v3 identical to light but for a microsecond timestamp and a random
  request id, which also differ between two light instances (the same release);
- empty: a dark v3 answering 200 with an empty list on one path;
- slow: a dark v3 taking 300 ms, the light path measured with compare on (default
  route) and off (a rule without a mirror), side by side.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from turnout.policy import load_policies
from turnout.testing.backend import Backend
from turnout.testing.comparator import ComparatorProcess
from turnout.testing.control import TurnoutProcess
from turnout.testing.envoy import EnvoyProcess
from turnout.testing.net import free_port, http_get, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SERVICES = ("drift", "stamped", "empty", "slow")
PATHS = ("/items/a", "/items/b", "/items/empty")
RELEASE = (
    "incremental:\n  to: v3\n  steps: [50, 100]\n  interval: 1h\n"
    "  requireDark: {for: 6s, minRequests: 600}\n"
)


def service_yaml(name: str, light: list[Backend], dark: Backend, extra: str = "") -> str:
    endpoints = ", ".join(f'"{b.address}"' for b in light)
    return (
        f"kind: Service\nname: {name}\nhosts: [{name}.example.com]\n"
        f'versions:\n  v1: {{endpoints: [{endpoints}]}}\n  v3: {{endpoints: ["{dark.address}"]}}\n'
        "stable: v1\ntraffic: {v1: 100}\n"
        'rules:\n  - name: off\n    match: {headers: {x-compare: "off"}}\n'
        "    traffic: {v1: 100}\n"
        "mirror:\n  to: v3\n  percent: 100\n  compare: {}\n" + extra
    )


@dataclass
class Stack:
    workdir: Path
    turnout: TurnoutProcess
    comparator: ComparatorProcess
    envoy: EnvoyProcess
    gateway_port: int
    backends: dict[str, Backend]
    policy: Path
    light: list[Backend]

    def status(self, *args: str) -> str:
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "turnout",
                "status",
                "--address",
                f"127.0.0.1:{self.turnout.xds_port}",
                *args,
            ],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        return done.stdout

    def dark(self, service: str) -> dict[str, Any]:
        status = json.loads(self.status("--json"))
        (found,) = [s for s in status["services"] if s["name"] == service]
        (dark,) = found["dark"]
        return dark  # type: ignore[no-any-return]

    def phase(self, service: str) -> tuple[str, str]:
        release = load_policies(self.policy.parent).service(service).incremental
        assert release is not None
        state = release.state
        return (state.phase, state.reason or "") if state is not None else ("", "")


class Load:
    """Requests over every service and path, about `rate` a second in all; the light
    path's latency of the `slow` service recorded with compare on and off."""

    def __init__(self, port: int, rate: float, threads: int = 6) -> None:
        self.port = port
        self.period = threads / rate
        self.latency: dict[str, list[float]] = defaultdict(list)
        self.answers: dict[int, int] = defaultdict(int)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(threads)
        ]

    def start(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def _run(self, seed: int) -> None:
        pick = random.Random(seed)
        with httpx.Client(
            base_url=f"http://127.0.0.1:{self.port}", timeout=5.0, trust_env=False
        ) as client:
            next_at = time.monotonic()
            while not self._stop.is_set():
                service = pick.choice(SERVICES)
                headers = {"Host": f"{service}.example.com"}
                kind = ""
                if service == "slow":
                    kind = pick.choice(("on", "off"))
                    if kind == "off":
                        headers["x-compare"] = "off"
                began = time.perf_counter()
                try:
                    status = client.get(pick.choice(PATHS), headers=headers).status_code
                except httpx.HTTPError:
                    status = 0
                took = time.perf_counter() - began
                with self._lock:
                    self.answers[status] += 1
                    if kind:
                        self.latency[kind].append(took)
                next_at += self.period
                self._stop.wait(max(0.0, next_at - time.monotonic()))

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(10)


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    workdir = tmp_path_factory.mktemp("compare")
    with ExitStack() as exits:
        light = [Backend("v1", instance=f"v1-{i}", catalog=True) for i in (1, 2)]
        darks = {
            "drift": Backend("v3", instance="drift", catalog=True, drift=0.05),
            "stamped": Backend("v3", instance="stamped", catalog=True),
            "empty": Backend("v3", instance="empty", catalog=True, empty_paths=("/items/empty",)),
            "slow": Backend("v3", instance="slow", catalog=True, latency=0.3),
        }
        for backend in [*light, *darks.values()]:
            exits.callback(backend.stop)
            backend.start()
        policies = workdir / "policies"
        policies.mkdir()
        gateway_port = free_port()
        policy = policies / "services.yaml"
        policy.write_text(
            f"kind: Gateway\nname: public\nport: {gateway_port}\naddress: 127.0.0.1\n---\n"
            + "---\n".join(
                service_yaml(
                    name, light, darks[name], RELEASE if name in ("drift", "stamped") else ""
                )
                for name in SERVICES
            )
        )
        comparator_port = free_port()
        turnout = TurnoutProcess(
            policies,
            log_path=workdir / "turnout.log",
            extra_args=(
                "--comparator",
                f"127.0.0.1:{comparator_port}",
                "--dark-window",
                "60s",
                "--log-format",
                "json",
            ),
        )
        exits.callback(turnout.kill)
        turnout.start()
        comparator = ComparatorProcess(
            turnout.xds_port, port=comparator_port, log_path=workdir / "compare.log"
        )
        exits.callback(comparator.stop)
        comparator.start()
        comparator.wait_ready()
        envoy = EnvoyProcess(
            turnout.xds_port, node_id="compare-envoy", workdir=workdir / "envoy", concurrency=2
        )
        exits.callback(envoy.stop)
        envoy.start()
        envoy.wait_for_listener(gateway_port)
        stack = Stack(workdir, turnout, comparator, envoy, gateway_port, darks, policy, light)
        load = Load(gateway_port, rate=240).start()
        exits.callback(load.stop)
        stack.load = load  # type: ignore[attr-defined]
        yield stack


def compared(stack: Stack, service: str, at_least: int, *, judged: bool = False) -> dict[str, Any]:
    """The dark judgement of ``service`` once it has ``at_least`` comparisons (and,
    with ``judged``, once it no longer holds for want of requests: its minRequests met
    on the judgement's own tick, which may lag the comparisons by one)."""

    def enough() -> dict[str, Any] | None:
        dark = stack.dark(service)
        comparison = dark.get("comparison", {})
        if int(comparison.get("compared", 0)) < at_least:
            return None
        return None if judged and dark.get("outcome") == "hold" else dark

    return wait_until(enough, 60, interval=0.5, what=f"{at_least} comparisons of {service}")


def test_a_total_differing_in_5_percent_is_found(stack: Stack) -> None:
    """A dark v3 whose `total` is off in ~5% of answers fails the dark judgement, the
    field named, its rate within tolerance, with an example."""
    dark = compared(stack, "drift", 600)
    comparison = dark["comparison"]
    fields = {f["field"]: f for f in comparison["fields"]}
    assert fields["body:$.total"]["beyond_noise"]
    rate = int(fields["body:$.total"]["differing"]) / int(comparison["compared"])
    assert 0.025 < rate < 0.085, rate
    assert 0.025 < comparison["differing_rate"] < 0.085
    example = fields["body:$.total"]["examples"][0]
    assert example["kind"] == "dark"
    assert example["path"] in PATHS
    assert int(example["other"]) == int(example["light"]) + 1
    for noisy in ("body:$.meta.generatedAt", "body:$.meta.requestId"):
        assert not fields[noisy]["beyond_noise"], fields[noisy]
    assert dark["outcome"] == "fail"
    assert any("in body:$.total" in r for r in dark["reasons"]), dark["reasons"]
    print(
        f"\n[drift 5%] {comparison['compared']} compared, {comparison['differing']} differing "
        f"beyond noise ({comparison['differing_rate']:.3f}), noise {comparison['noise']}"
    )


def test_timestamps_and_request_ids_are_learned_as_noise(stack: Stack) -> None:
    """A dark v3 differing only where two light instances differ (a timestamp and a
    request id) has nothing flagged and passes, with no `ignore` written."""
    # Its release's requireDark asks minRequests 600 before a pass (RELEASE above).
    dark = compared(stack, "stamped", 600, judged=True)
    comparison = dark["comparison"]
    assert int(comparison.get("differing", 0)) == 0
    assert int(comparison["noise"]) == int(comparison["compared"])
    flagged = [f["field"] for f in comparison["fields"] if f.get("beyond_noise")]
    assert flagged == []
    noisy = {f["field"] for f in comparison["fields"]}
    assert noisy == {"body:$.meta.generatedAt", "body:$.meta.requestId"}
    assert dark["outcome"] == "pass", dark["reasons"]
    assert "ignore" not in stack.policy.read_text()


def test_an_empty_list_on_one_path_is_found(stack: Stack) -> None:
    """A dark v3 answering 200 with an empty list on /items/empty is found: the list
    field beyond noise, its examples on that path only."""
    dark = compared(stack, "empty", 300)
    fields = {f["field"]: f for f in dark["comparison"]["fields"]}
    items = fields["body:$.items"]
    assert items["beyond_noise"]
    assert {e["path"] for e in items["examples"]} == {"/items/empty"}
    assert items["examples"][0]["other"] == "[]"
    assert dark["outcome"] == "fail"


def test_require_dark_blocks_a_differing_release_and_starts_an_identical_one(
    stack: Stack,
) -> None:
    """requireDark with a differing v3 fails the dark run saying which field differs
    (no live request reaches v3); with an identical v3 the release starts."""

    def phase(service: str, *phases: str) -> tuple[str, str] | None:
        found = stack.phase(service)
        return found if found[0] in phases else None

    failed, reason = wait_until(
        lambda: phase("drift", "failed"), 60, interval=0.5, what="drift failed"
    )
    assert "dark run of v3 failed" in reason
    assert "answers differ from v1's" in reason
    assert "body:$.total" in reason
    running, why = wait_until(
        lambda: phase("stamped", "running"), 60, interval=0.5, what="stamped running"
    )
    assert "dark run clean" in why
    assert failed == "failed"
    assert running == "running"


def test_a_post_is_compared_only_when_listed(stack: Stack) -> None:
    """A POST mirrored to the comparator is skipped (the dark version never sees it)
    until `methods` lists it."""
    dark_backend = stack.backends["empty"]
    with httpx.Client(trust_env=False, timeout=5.0) as client:
        url = f"http://127.0.0.1:{stack.gateway_port}/orders"
        for _ in range(20):
            client.post(url, headers={"Host": "empty.example.com"}, content=b'{"n": 1}')

        def skipped() -> int | None:
            comparison = stack.dark("empty")["comparison"]
            count = int(comparison.get("skipped", {}).get("method POST not listed", 0))
            return count if count >= 20 else None

        wait_until(skipped, 30, interval=0.5, what="20 POSTs skipped")
        assert dark_backend.counts().by_path.get("/orders", 0) == 0
        text = stack.policy.read_text()
        marker = "  compare: {}\n"
        first = text.index("name: empty")
        at = text.index(marker, first)
        stack.policy.write_text(
            text[:at] + "  compare: {methods: [GET, POST]}\n" + text[at + len(marker) :]
        )

        def replayed() -> int | None:
            client.post(url, headers={"Host": "empty.example.com"}, content=b'{"n": 1}')
            count = dark_backend.counts().by_path.get("/orders", 0)
            return count or None

        wait_until(replayed, 30, interval=0.3, what="a POST replayed to the dark version")


def test_status_shows_the_comparison(stack: Stack) -> None:
    """`turnout status` shows per target the counts and top field with an example;
    `--dark SERVICE` lists every field with its examples."""
    compared(stack, "drift", 300)
    text = stack.status()
    assert "drift: v3 (dark) against v1 (light)" in text
    assert "compared" in text
    assert "body:$.total" in text
    detail = stack.status("--dark", "drift")
    assert "body:$.total" in detail
    assert "body:$.meta.generatedAt" in detail
    assert "GET /items/" in detail
    status, metrics = http_get(stack.turnout.admin_url("/metrics"))
    assert status == 200
    assert (
        'turnout_compare_field_differing{field="body:$.total",service="drift",to="v3"}' in metrics
    )
    assert "turnout_comparators_connected 1.0" in metrics


def test_light_path_latency_with_compare_on_and_off(stack: Stack) -> None:
    """The light path is not slowed by comparing, even with a dark version 300 ms slow:
    requests mirrored to the comparator and requests of a rule without a mirror, sent
    side by side in one run, have the same latency: the p50 is not 300 ms more, and no
    more of them take 300 ms than of the others."""
    load: Load = stack.load  # type: ignore[attr-defined]
    compared(stack, "slow", 300)
    on, off = list(load.latency["on"]), list(load.latency["off"])
    assert len(on) > 200
    assert len(off) > 200
    p50_on, p99_on = quantile(on, 0.5), quantile(on, 0.99)
    p50_off, p99_off = quantile(off, 0.5), quantile(off, 0.99)
    print(
        f"\n[light path, dark 300 ms slow] compare on: p50 {p50_on * 1000:.1f} ms, "
        f"p99 {p99_on * 1000:.1f} ms ({len(on)} requests); off: p50 {p50_off * 1000:.1f} ms, "
        f"p99 {p99_off * 1000:.1f} ms ({len(off)} requests)"
    )
    # Waiting for the dark version would add its 300 ms to every mirrored request: then
    # nearly all of them would take longer than 300 ms. (The tails themselves move with
    # the machine's load, on both sides alike: printed above, not asserted.)
    assert p50_on < p50_off + 0.1, "light requests waited for the dark version"
    slow_on = sum(1 for t in on if t >= 0.3) / len(on)
    slow_off = sum(1 for t in off if t >= 0.3) / len(off)
    assert slow_on < slow_off + 0.03, (slow_on, slow_off)
    assert load.answers.get(0, 0) == 0
