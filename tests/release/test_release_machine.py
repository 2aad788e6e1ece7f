"""The release state machine as pure functions: `window`, `decide` and `reconcile` on
parsed policies, fabricated figures and a given time (no files, no clock)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from turnout.analysis import Figures, Histogram
from turnout.policy import Service, parse_policies
from turnout.release import (
    DEFAULT_ANALYSIS,
    EARLY_CONFIDENCE,
    FINAL_CONFIDENCE,
    Mark,
    decide,
    judge_window,
    reconcile,
    step_traffic,
    window,
)

from ._fakes import GATEWAY, SERVICE, T0

SINCE = "2027-01-15T08:00:00Z"  # T0


def service(
    state: str = "",
    *,
    traffic: str = "{v1: 100}",
    on_failure: str = "rollback",
    extra: str = "",
    mirror: str = "",
) -> Service:
    text = SERVICE.format(on_failure=on_failure, mirror=mirror, extra=extra + state)
    text = text.replace("traffic: {v1: 100}", f"traffic: {traffic}")
    return parse_policies({"p/gw.yaml": GATEWAY, "p/svc.yaml": text}).service("checkout")


def running(step: int = 0, traffic: str = "{v1: 90, v2: 10}", **kw: str) -> Service:
    return service(
        f'  state: {{phase: running, step: {step}, since: "{SINCE}"}}\n', traffic=traffic, **kw
    )


def figures(version: str, requests: int, errors: int = 0, latency: float = 0.004) -> Figures:
    counts = [0] * 20
    counts[next(i for i, b in enumerate(Histogram().bounds) if latency <= b)] = requests
    return Figures(
        T0, T0 + 10, requests, errors, 0, Histogram(counts=tuple(counts)), 1, "checkout", version
    )


def judged(svc: Service, now: float, canary: Figures, baseline: Figures) -> str:
    win = window(svc, now)
    assert win is not None
    decision = decide(svc, judge_window(win, canary, baseline), now)
    return decision.action


def test_since_is_read_as_t0() -> None:
    """The fixtures' since is T0 (so the times below read as seconds into the step)."""
    win = window(running(), T0)
    assert win is not None
    assert win.since == T0


@pytest.mark.parametrize(
    ("step", "expected"),
    [(0, {"v1": 90, "v2": 10}), (1, {"v1": 50, "v2": 50}), (2, {"v2": 100})],
)
def test_step_traffic(step: int, expected: dict[str, int]) -> None:
    """A step's traffic is `to` at its share and stable the rest."""
    assert step_traffic(running(), step) == {k: Decimal(v) for k, v in expected.items()}


def test_window_of_a_running_step() -> None:
    """A running step is judged from since, ends after the interval, and fails without
    a verdict at three intervals; before the end the judge must be surer."""
    win = window(running(), T0 + 4)
    assert win is not None
    assert (win.kind, win.canary, win.baseline) == ("canary", "v2", "v1")
    assert (win.since, win.until, win.ends, win.deadline) == (T0, T0 + 4, T0 + 10, T0 + 30)
    assert win.thresholds.confidence == EARLY_CONFIDENCE
    assert win.thresholds.min_requests == 100
    later = window(running(), T0 + 10)
    assert later is not None
    assert later.thresholds.confidence == FINAL_CONFIDENCE


def test_no_window_when_nothing_is_judged() -> None:
    """Not started, paused or finished releases are not judged."""
    assert window(service(), T0) is None
    paused = service(f'  state: {{phase: paused, step: 0, since: "{SINCE}"}}\n')
    assert window(paused, T0) is None


def test_analysis_without_thresholds_judges_the_defaults() -> None:
    """An analysis that sets no threshold judges errors and p99 against stable's."""
    text = SERVICE.format(on_failure="rollback", mirror="", extra="")
    text = text.replace("    maxErrorRate: 0.05\n    maxLatencyP99Increase: 1.5\n", "").replace(
        "traffic: {v1: 100}", "traffic: {v1: 90, v2: 10}"
    )
    text += f'  state: {{phase: running, step: 0, since: "{SINCE}"}}\n'
    svc = parse_policies({"p/gw.yaml": GATEWAY, "p/svc.yaml": text}).service("checkout")
    win = window(svc, T0)
    assert win is not None
    assert win.thresholds.max_error_rate is None
    assert win.thresholds.max_error_rate_increase == DEFAULT_ANALYSIS.max_error_rate_increase
    assert win.thresholds.max_latency_p99_increase is None


def test_pending_release_starts_at_step_zero() -> None:
    """A release without state starts: step 0's traffic, phase running."""
    decision = decide(service(), None, T0)
    assert (decision.action, decision.phase, decision.step) == ("start", "running", 0)
    assert decision.traffic == {"v1": Decimal(90), "v2": Decimal(10)}


def test_pending_release_with_require_dark_starts_its_dark_run() -> None:
    """requireDark makes the first move a dark run, traffic untouched."""
    svc = service(mirror="mirror: {to: v2, percent: 100}\n", extra="  requireDark: {for: 1m}\n")
    decision = decide(svc, None, T0)
    assert (decision.action, decision.phase, decision.traffic) == ("dark", "dark", None)
    assert "dark run of v2: 1m on mirrored requests (at least 100)" in decision.reason


def test_healthy_step_is_observed_then_advanced() -> None:
    """Passing figures are only observed before the interval ends, then advance."""
    good = (figures("v2", 200), figures("v1", 1800))
    assert judged(running(), T0 + 5, *good) == "observe"
    assert judged(running(), T0 + 10, *good) == "advance"


def test_last_passing_step_before_100_promotes() -> None:
    """Passing the step before the 100% step promotes: stable becomes `to`."""
    svc = running(1, "{v1: 50, v2: 50}")
    win = window(svc, T0 + 10)
    assert win is not None
    decision = decide(svc, judge_window(win, figures("v2", 500), figures("v1", 500)), T0 + 10)
    assert (decision.action, decision.phase, decision.step) == ("promote", "promoted", 2)
    assert (decision.traffic, decision.stable) == ({"v2": Decimal(100)}, "v2")


def test_significant_breach_fails_at_once() -> None:
    """20% errors on 200 requests fail the step one second in."""
    assert judged(running(), T0 + 1, figures("v2", 200, 40), figures("v1", 1800)) == "rollback"


def test_on_failure_hold_holds() -> None:
    """With onFailure hold, a failed step holds: traffic stays."""
    svc = running(on_failure="hold")
    win = window(svc, T0 + 1)
    assert win is not None
    decision = decide(svc, judge_window(win, figures("v2", 200, 40), figures("v1", 900)), T0 + 1)
    assert (decision.action, decision.phase, decision.traffic) == ("hold", "holding", None)


@pytest.mark.parametrize(
    ("now", "expected"),
    [(T0 + 5, "observe"), (T0 + 10, "await-data"), (T0 + 29, "await-data"), (T0 + 30, "fail")],
)
def test_too_little_data_waits_until_the_deadline(now: float, expected: str) -> None:
    """Fewer than minRequests: observe, then hold for data, then fail at 3 intervals."""
    assert judged(running(), now, figures("v2", 20), figures("v1", 180)) == expected


def test_deadline_failure_sends_traffic_back_to_stable() -> None:
    """A release failed at the deadline with onFailure rollback has all traffic on stable."""
    svc = running()
    win = window(svc, T0 + 30)
    assert win is not None
    decision = decide(svc, judge_window(win, figures("v2", 3), figures("v1", 30)), T0 + 30)
    assert decision.traffic == {"v1": Decimal(100)}
    assert "no verdict within the progress deadline (30s)" in decision.reason


def test_missing_figures_count_as_no_data() -> None:
    """A metrics source that fails is a hold with its error, failing at the deadline."""
    assert decide(running(), None, T0 + 12, error="metrics source: down").action == "await-data"
    assert (
        "metrics source: down"
        in decide(running(), None, T0 + 12, error="metrics source: down").reason
    )
    assert decide(running(), None, T0 + 30, error="metrics source: down").action == "fail"


@pytest.mark.parametrize("phase", ["paused", "rolled-back", "promoted", "failed"])
def test_idle_phases_do_nothing(phase: str) -> None:
    """A paused or finished release is left alone."""
    svc = service(f'  state: {{phase: {phase}, step: 0, since: "{SINCE}"}}\n')
    assert decide(svc, None, T0 + 100).action == "idle"


def test_reconcile_adopts_what_it_saw() -> None:
    """Files unchanged since the driver last looked: nothing to reconcile."""
    svc = running()
    assert reconcile(svc, Mark.of(svc)) is None
    assert reconcile(svc, None) is None  # first sight, traffic is the step's


def test_reconcile_pauses_on_hand_edited_traffic() -> None:
    """Traffic changed under a running step (state unchanged) pauses the release."""
    before = running()
    after = running(traffic="{v1: 70, v2: 30}")
    decision = reconcile(after, Mark.of(before))
    assert decision is not None
    assert (decision.action, decision.phase, decision.traffic) == ("pause", "paused", None)
    assert "the driver last saw v1=90 v2=10" in decision.reason


def test_reconcile_follows_a_step_written_by_a_person() -> None:
    """A step changed by hand gets its traffic, observed from now."""
    before = running()
    after = running(1)
    decision = reconcile(after, Mark.of(before))
    assert decision is not None
    assert decision.action == "restore"
    assert decision.traffic == {"v1": Decimal(50), "v2": Decimal(50)}


def test_reconcile_leaves_a_person_s_terminal_state_alone() -> None:
    """A rollback or promotion written by a person is adopted, not undone."""
    before = running()
    after = service(f'  state: {{phase: rolled-back, step: 0, since: "{SINCE}"}}\n')
    assert reconcile(after, Mark.of(before)) is None
