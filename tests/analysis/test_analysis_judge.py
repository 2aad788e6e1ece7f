"""The judge: hold without data, fail only on a significant breach, pass otherwise."""

from __future__ import annotations

import json
import random

import pytest

from turnout.analysis import Figures, Histogram, Thresholds, judge, judge_dark
from turnout.policy import Analysis

POLICY = Thresholds(
    min_requests=100,
    max_error_rate=0.01,
    max_error_rate_increase=0.005,
    max_latency_p99=0.5,
    max_latency_p99_increase=1.2,
)


def simulate(
    rng: random.Random,
    n: int,
    *,
    error_rate: float = 0.002,
    median: float = 0.02,
    spread: float = 0.5,
    extra: float = 0.0,
    version: str = "v2",
) -> Figures:
    """n requests with errors drawn at error_rate and log-normal latency (plus extra)."""
    errors = sum(1 for _ in range(n) if rng.random() < error_rate)
    samples = [rng.lognormvariate(0.0, spread) * median + extra for _ in range(n)]
    return Figures(
        0.0,
        60.0,
        requests=n,
        errors=errors,
        latency=Histogram.of_samples(samples),
        proxies=1,
        service="checkout",
        version=version,
    )


def test_hold_below_min_requests() -> None:
    """Fewer canary requests than minRequests: hold, saying how many there are."""
    rng = random.Random(1)
    verdict = judge(simulate(rng, 99, error_rate=0.5), simulate(rng, 5000, version="v1"), POLICY)
    assert verdict.outcome == "hold"
    assert verdict.reasons == ("checkout/v2: 99 requests, fewer than minRequests 100",)
    assert verdict.checks == ()


def test_hold_without_any_report_points_at_the_sink() -> None:
    """No proxy reported the canary's cluster: the reason says to check the sink."""
    verdict = judge(
        Figures(0.0, 60.0, service="checkout", version="v2"), Figures(0.0, 60.0), POLICY
    )
    assert verdict.outcome == "hold"
    assert "metrics sink" in verdict.reason


def test_twenty_percent_errors_fail_at_the_smallest_sample() -> None:
    """A v2 answering 20% 5xx fails at exactly minRequests, in every one of 50 draws."""
    for seed in range(50):
        rng = random.Random(seed)
        canary = simulate(rng, 100, error_rate=0.2)
        verdict = judge(canary, simulate(rng, 10000, version="v1"), POLICY)
        assert verdict.outcome == "fail", (seed, verdict.reasons)
        failed = {check.name for check in verdict.checks if check.failed}
        assert {"maxErrorRate", "maxErrorRateIncrease"} <= failed
    assert "checkout/v2 error rate" in verdict.reasons[0]
    assert "> maxErrorRate 0.01 (p=" in verdict.reasons[0]


def test_latency_200ms_worse_fails_at_the_smallest_sample() -> None:
    """A v2 200 ms slower on every request fails maxLatencyP99Increase with 100 requests,
    with the Mann-Whitney effect near 1 (nearly every v2 request slower)."""
    rng = random.Random(3)
    canary = simulate(rng, 100, extra=0.2)
    verdict = judge(canary, simulate(rng, 10000, version="v1"), POLICY)
    assert verdict.outcome == "fail"
    (check,) = [c for c in verdict.checks if c.failed]
    assert check.name == "maxLatencyP99Increase"
    assert check.value > 2.0
    assert check.effect["probability_slower"] > 0.99
    assert check.p_value < 1e-10
    assert "maxLatencyP99Increase 1.2" in verdict.reason


def test_tail_only_regression_fails_on_the_tail_test() -> None:
    """5% of v2's requests 1 s slow (median unchanged) fail on the tail test even though
    the Mann-Whitney shift is small."""
    rng = random.Random(4)
    base = simulate(rng, 20000, version="v1")
    samples = [
        rng.lognormvariate(0.0, 0.5) * 0.02 + (1.0 if i % 20 == 0 else 0.0) for i in range(400)
    ]
    canary = Figures(0.0, 60.0, requests=400, latency=Histogram.of_samples(samples), proxies=1)
    verdict = judge(canary, base, POLICY)
    check = next(c for c in verdict.checks if c.name == "maxLatencyP99Increase")
    assert check.failed
    assert check.effect["tail_p"] < 1e-6
    assert check.effect["probability_slower"] < 0.6
    assert next(c for c in verdict.checks if c.name == "maxLatencyP99").failed


def test_noisy_healthy_canary_is_not_failed() -> None:
    """Over 300 windows of a canary drawn from the same distributions as stable (0.5%
    errors, jittery latency), thresholds alone would fail dozens; with significance
    required, at most 1% fail (the confidence asked for)."""
    rng = random.Random(11)
    breached = failed = 0
    windows = 300
    for _ in range(windows):
        n = rng.choice([100, 200, 500, 1000])
        canary = simulate(rng, n, error_rate=0.005, spread=0.9)
        baseline = simulate(rng, n * 5, error_rate=0.005, spread=0.9, version="v1")
        verdict = judge(canary, baseline, POLICY)
        breached += any(check.breached for check in verdict.checks)
        failed += verdict.outcome == "fail"
        assert verdict.outcome in ("pass", "fail")
    assert breached >= 30
    assert failed <= windows // 100


def test_breach_without_significance_passes_and_says_so() -> None:
    """2 errors in 100 breach maxErrorRate 0.01 but are not significant: pass, named."""
    canary = Figures(0.0, 60.0, requests=100, errors=2, proxies=1, service="s", version="v2")
    verdict = judge(canary, Figures(0.0, 60.0, requests=5000, errors=10, proxies=1), POLICY)
    assert verdict.outcome == "pass"
    assert any("but not significant" in reason for reason in verdict.reasons)
    check = next(c for c in verdict.checks if c.name == "maxErrorRate")
    assert check.breached
    assert not check.significant
    assert check.p_value == pytest.approx(0.2642, abs=1e-4)  # P(X >= 2), X ~ B(100, 0.01)


def test_confidence_sets_the_bar() -> None:
    """The same breach fails at confidence 0.9 and passes at 0.99."""
    canary = Figures(0.0, 60.0, requests=300, errors=7, proxies=1)
    baseline = Figures(0.0, 60.0, requests=5000, errors=10, proxies=1)
    only_rate = Thresholds(min_requests=100, max_error_rate=0.01)
    # P(X >= 7), X ~ B(300, 0.01) = 0.0335
    assert judge(canary, baseline, only_rate).outcome == "pass"
    assert judge(canary, baseline, Thresholds(100, 0.01, confidence=0.9)).outcome == "fail"


def test_relative_checks_need_baseline_data() -> None:
    """Without minRequests on the baseline only absolute thresholds are judged (noted);
    with only relative thresholds the verdict holds."""
    rng = random.Random(5)
    canary = simulate(rng, 500)
    idle = simulate(rng, 10, version="v1")
    verdict = judge(canary, idle, POLICY)
    assert verdict.outcome == "pass"
    assert {c.name for c in verdict.checks} == {"maxErrorRate", "maxLatencyP99"}
    assert any("no comparison with checkout/v1: 10 requests" in r for r in verdict.reasons)
    relative = Thresholds(100, max_error_rate_increase=0.01, max_latency_p99_increase=1.5)
    assert judge(canary, idle, relative).outcome == "hold"


def test_latency_needs_timed_requests() -> None:
    """Requests without latency samples (none timed) leave latency unjudged, noted."""
    canary = Figures(0.0, 60.0, requests=500, errors=0, proxies=1, service="s", version="v2")
    baseline = Figures(0.0, 60.0, requests=5000, proxies=1)
    verdict = judge(canary, baseline, POLICY)
    assert verdict.outcome == "pass"
    assert {c.name for c in verdict.checks} == {"maxErrorRate", "maxErrorRateIncrease"}
    assert any("latency not judged: 0 timed requests" in r for r in verdict.reasons)


def test_absolute_p99_limit() -> None:
    """A p99 over maxLatencyP99 fails when enough requests are slower than the limit."""
    rng = random.Random(6)
    slow = simulate(rng, 400, median=0.4, spread=0.3)
    verdict = judge(slow, slow, Thresholds(100, max_latency_p99=0.5))
    (check,) = verdict.checks
    assert check.name == "maxLatencyP99"
    assert check.value > 0.5
    assert verdict.outcome == "fail"
    assert "p99" in verdict.reason
    assert "maxLatencyP99 500ms" in verdict.reason


def test_thresholds_from_the_policy_model() -> None:
    """Thresholds read turnout.policy.Analysis (seconds for the p99 limit)."""
    analysis = Analysis(
        min_requests=50,
        max_error_rate=0.02,
        max_error_rate_increase=None,
        max_latency_p99_seconds=0.25,
        max_latency_p99_increase=1.5,
    )
    thresholds = Thresholds.from_analysis(analysis, confidence=0.95)
    assert thresholds == Thresholds(50, 0.02, None, 0.25, 1.5, 0.95)
    assert thresholds.alpha == pytest.approx(0.05)
    with pytest.raises(ValueError, match="confidence"):
        Thresholds(confidence=1.0)


def test_dark_judgement() -> None:
    """A mirror target failing 30% of its copies fails the dark judgement, labelled dark."""
    rng = random.Random(8)
    dark = simulate(rng, 300, error_rate=0.3, version="v3")
    light = simulate(rng, 3000, version="v1")
    verdict = judge_dark(dark, light, POLICY)
    assert verdict.kind == "dark"
    assert verdict.outcome == "fail"
    assert "checkout/v3 error rate" in verdict.reason
    assert judge_dark(simulate(rng, 300, version="v3"), light, POLICY).outcome == "pass"


def test_verdict_json_is_complete() -> None:
    """A verdict serializes to JSON with outcome, reasons, checks and both figures."""
    rng = random.Random(9)
    verdict = judge(simulate(rng, 200, error_rate=0.2), simulate(rng, 2000, version="v1"), POLICY)
    data = json.loads(json.dumps(verdict.to_json()))
    assert data["outcome"] == "fail"
    assert data["kind"] == "canary"
    assert data["confidence"] == 0.99
    assert data["canary"]["requests"] == 200
    assert data["baseline"]["version"] == "v1"
    names = [check["name"] for check in data["checks"]]
    assert names == [
        "maxErrorRate",
        "maxErrorRateIncrease",
        "maxLatencyP99",
        "maxLatencyP99Increase",
    ]
    assert all({"value", "limit", "p_value", "failed", "effect"} <= set(c) for c in data["checks"])
