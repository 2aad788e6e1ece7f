"""Approval gates, release windows, webhooks, custom checks and who may pin, end to end:
`turnout serve` processes, a real Envoy streaming its stats (or scraped by a real
Prometheus), real backends, traffic generated here, a real webhook receiver.

The stacks are `test_e2e_incremental`'s (one turnout, one Envoy, v1/v2/v3 backends).
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from turnout.testing.net import wait_until
from turnout.testing.webhook import WebhookReceiver

from ._harness import count_versions, write_atomically
from .test_e2e_incremental import HOST, Release, backends, release_env

pytestmark = pytest.mark.e2e

__all__ = ["backends", "release_env"]  # the fixtures, shared with test_e2e_incremental

SECRET = "e2e-webhook-secret"


def _approve(release: Release, *args: str) -> str:
    done = subprocess.run(
        [
            *(sys.executable, "-m", "turnout", "approve", "shop"),
            *("--policies", str(release.policy_dir), *args),
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return done.stdout


def _counts(release: Release, n: int, headers: dict[str, str] | None = None) -> Counter[str]:
    with httpx.Client(
        base_url=f"http://127.0.0.1:{release.gateway_port}", timeout=5.0, trust_env=False
    ) as client:
        return count_versions(client, HOST, n, headers=headers)


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    """A webhook receiver that refuses every delivery twice before answering."""
    with WebhookReceiver(fail_first=2) as started:
        yield started


def test_release_waits_at_approve_and_notifies_signed_retried_events(
    release_env: Callable[..., Release],
    receiver: WebhookReceiver,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """At `approve` the release waits (traffic stays at the step's share) until `turnout
    approve`, then goes on to promotion; a webhook that fails twice before answering
    gets each event exactly once, signed, with the same delivery id on every attempt."""
    monkeypatch.setenv("TURNOUT_WEBHOOK_SECRET", SECRET)
    notify = tmp_path / "notify.yaml"
    notify.write_text(
        f"webhooks:\n  - url: {receiver.url}\n    secretEnv: TURNOUT_WEBHOOK_SECRET\n"
        "    events: [release]\n    concurrency: 1\n"
    )
    release = release_env(turnout_args=("--notify", str(notify)))
    load = release.start_load(rate=150, threads=8)
    # Errors only: latency on a busy shared machine must not decide this test.
    block = (
        "incremental:\n  to: v2\n  steps: [20, approve, 50, 100]\n  interval: 3s\n"
        "  analysis: {minRequests: 50, maxErrorRate: 0.05}\n  onFailure: rollback\n"
    )
    write_atomically(release.file, release._service(block))
    waiting = release.wait_phase("waiting", "rolled-back", "failed", timeout=30)
    assert waiting.phase == "waiting", waiting.reason
    assert (waiting.reason or "").startswith("waiting for approval to go on to step 2/3 (50%)")
    assert release.service().traffic == (("v1", 80), ("v2", 20))
    text = release.status()
    assert "waiting" in text
    # The step's interval is over (the wait is written only then): later ticks judge it
    # again and keep waiting for as long as nobody approves.
    held_from = time.time()
    wait_until(
        lambda: "why: await-approval: waiting for approval" in release.status(),
        10,
        what="the driver to keep the release waiting",
    )
    assert release.state().phase == "waiting"  # type: ignore[union-attr]
    assert release.service().traffic == (("v1", 80), ("v2", 20))
    assert Counter(a.version for a in load.snapshot() if a.start > held_from)["v2"] > 0
    approved_at = time.time()  # the command writes the file before it exits
    out = _approve(release, "--by", "alice")
    assert "by alice (the release goes on)" in out
    state = release.wait_phase("promoted", "rolled-back", "failed", timeout=30)
    assert state.phase == "promoted", state.reason
    assert [(a.step, a.by) for a in state.approvals] == [(1, "alice")]
    advance = release.decision("advance")
    assert advance["at"] >= approved_at
    wanted = [
        "release.started",
        "release.waiting-approval",
        "release.stepped",
        "release.promoted",
    ]
    # (a step that has to wait for enough data also says release.holding, once)
    events = receiver.wait_for(
        lambda got: any(e.event == "release.promoted" for e in got), timeout=20
    )
    assert [e.event for e in events if e.event != "release.holding"] == wanted
    assert all(e.signed_by(SECRET.encode()) for e in events)
    assert all(receiver.attempts[e.delivery] == 3 for e in events)
    by_name = {e.event: e for e in events}
    assert by_name["release.waiting-approval"].body["phase"] == "waiting"
    assert by_name["release.promoted"].body["verdict"]["canary"]["version"] == "v2"
    print(
        f"\n[approve] waited {approved_at - held_from:.1f}s for approval; promoted "
        f"{(state.since.timestamp() if state.since else 0) - approved_at:.1f}s after it; "
        f"{len(events)} events each delivered on the 3rd attempt"
    )


def _closed_day() -> str:
    """A weekday (as written in `days`) three days from today in UTC: closed now."""
    return (datetime.now(UTC) + timedelta(days=3)).strftime("%a")


def test_closed_window_holds_a_passing_step_and_a_failing_one_rolls_back(
    release_env: Callable[..., Release],
) -> None:
    """Outside its window a passing step holds (nothing written, status says when the
    window opens); the same release failing is rolled back at once."""
    release = release_env()
    release.start_load(rate=150, threads=8)
    since = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    block = (
        "incremental:\n  to: v2\n  steps: [20, 50, 100]\n  interval: 2s\n"
        "  analysis: {minRequests: 50, maxErrorRate: 0.05}\n"
        f'  window: {{days: {_closed_day()}, hours: "00:00-24:00", timezone: UTC}}\n'
        f'  state: {{phase: running, step: 0, since: "{since}", reason: started by CI}}\n'
    )
    text = release._service(block).replace("traffic: {v1: 100}", "traffic: {v1: 80, v2: 20}")
    write_atomically(release.file, text)

    def held() -> str | None:
        status = release.status()
        return status if "outside the release window" in status else None

    status = wait_until(held, 30, what="the release held by its window")
    assert "next opens at" in status
    before = release.file.read_text()
    assert release.state().phase == "running"  # type: ignore[union-attr]
    release.backends["v2"].fail = 0.3
    failing_from = time.time()
    state = release.wait_phase("rolled-back", "promoted", "failed", timeout=30)
    assert state.phase == "rolled-back", state.reason
    assert release.service().traffic == (("v1", 100),)
    assert before != release.file.read_text()
    took = time.time() - failing_from
    print(
        f"\n[window] a passing step held outside the window; failing v2 rolled back in {took:.1f}s"
    )


def test_custom_query_breach_fails_a_release_envoys_figures_pass(
    release_env: Callable[..., Release],
) -> None:
    """A v2 30 ms slower than v1 passes Envoy's checks (no errors) but breaches a custom
    Prometheus query (its p50 more than 20 ms above v1's): rolled back, the reason naming
    the query and its values."""
    release = release_env(prometheus=True)
    release.backends["v2"].latency = 0.03
    release.start_load(rate=150, threads=8)
    query = (
        "histogram_quantile(0.5, sum by (le) (rate("
        'envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name="shop_$version"}[10s])))'
    )
    block = (
        "incremental:\n  to: v2\n  steps: [20, 50, 100]\n  interval: 30s\n"
        "  analysis:\n    minRequests: 50\n    maxErrorRate: 0.05\n"
        f"    queries:\n      - name: p50-ms\n        query: '{query}'\n        maxIncrease: 20\n"
        "  onFailure: rollback\n"
    )
    started = time.time()
    write_atomically(release.file, release._service(block))
    state = release.wait_phase("rolled-back", "promoted", "failed", timeout=40)
    assert state.phase == "rolled-back", state.reason
    assert "p50-ms" in (state.reason or "")
    decision = release.decision("rollback")
    failed = [c["name"] for c in decision["checks"] if c["breached"] and c["significant"]]
    assert failed == ["query:p50-ms"]
    envoy_checks = [c for c in decision["checks"] if not c["name"].startswith("query:")]
    assert envoy_checks
    assert not any(c["breached"] and c["significant"] for c in envoy_checks)  # Envoy's pass
    print(f"\n[custom query] rolled back {decision['at'] - started:.1f}s after the release began")


def test_pinning_needs_the_when_match(release_env: Callable[..., Release]) -> None:
    """With `pinHeader: {when: ...}` a request naming v2 in the pin header reaches v2
    only when it also matches `when`; otherwise it takes the default split (v1)."""
    release = release_env()
    pin = 'pinHeader: {when: {headers: {x-employee: "true"}}}\n'
    write_atomically(release.file, release._service(pin))
    pinned = {"x-turnout-version": "v2"}

    def refused() -> Counter[str] | None:
        counts = _counts(release, 20, pinned)
        return counts if counts == Counter({"v1": 20}) else None

    wait_until(refused, 15, what="pinning refused without the when match")
    allowed = _counts(release, 20, {**pinned, "x-employee": "true"})
    assert allowed == Counter({"v2": 20})
    assert _counts(release, 20, {"x-employee": "true"}) == Counter({"v1": 20})
