"""maxLatencyP99Increase on few-millisecond latencies: a ratio of p99s estimated from
Envoy's buckets needs an absolute rise (minLatencyIncrease) too, so a bucket jump is
not a regression while a real slowdown still is."""

from __future__ import annotations

import random

import pytest

from turnout.analysis import Figures, Histogram, Thresholds, judge

RATIO = Thresholds(min_requests=100, max_latency_p99_increase=1.5)


def figures(rng: random.Random, n: int, latency: float, version: str) -> Figures:
    """n requests taking `latency` seconds, +-0.3 ms of jitter, in Envoy's buckets."""
    samples = [latency + rng.uniform(-0.0003, 0.0003) for _ in range(n)]
    return Figures(
        0.0,
        60.0,
        requests=n,
        latency=Histogram.of_samples(samples),
        proxies=1,
        service="checkout",
        version=version,
    )


def test_two_ms_slower_at_four_ms_passes() -> None:
    """A canary at 6 ms against a 4 ms stable crosses Envoy's 5 ms bound and doubles its
    p99 estimate, yet passes: the rise is under the 10 ms floor."""
    rng = random.Random(1)
    canary, stable = figures(rng, 2000, 0.006, "v2"), figures(rng, 2000, 0.004, "v1")
    verdict = judge(canary, stable, RATIO)
    (check,) = verdict.checks
    assert check.value >= 1.9  # the estimate's ratio: the bucket jump is there
    assert check.significant  # and the canary is measurably slower
    assert not check.breached
    assert check.effect["difference_seconds"] < 0.010
    assert verdict.outcome == "pass", verdict.reasons


def test_two_hundred_ms_slower_fails() -> None:
    """A canary 200 ms slower than a 4 ms stable fails the ratio, naming the rise."""
    rng = random.Random(2)
    canary, stable = figures(rng, 300, 0.204, "v2"), figures(rng, 2000, 0.004, "v1")
    verdict = judge(canary, stable, RATIO)
    assert verdict.outcome == "fail", verdict.reasons
    (check,) = verdict.checks
    assert check.failed
    assert check.effect["difference_seconds"] > 0.19
    assert "maxLatencyP99Increase 1.5 (and minLatencyIncrease 10ms)" in verdict.reason


def test_the_floor_is_configurable() -> None:
    """With minLatencyIncrease 1 ms the same 2 ms bucket jump is a breach again (the
    floor, not the ratio, is what let it pass)."""
    rng = random.Random(3)
    canary, stable = figures(rng, 2000, 0.006, "v2"), figures(rng, 2000, 0.004, "v1")
    strict = Thresholds(min_requests=100, max_latency_p99_increase=1.5, min_latency_increase=0.001)
    assert judge(canary, stable, strict).outcome == "fail"
    with pytest.raises(ValueError, match="min_latency_increase"):
        Thresholds(min_latency_increase=-1.0)


def test_a_faster_canary_never_fails_the_ratio() -> None:
    """A canary faster than stable is not failed, whatever the floor."""
    rng = random.Random(4)
    canary, stable = figures(rng, 2000, 0.004, "v2"), figures(rng, 2000, 0.2, "v1")
    strict = Thresholds(min_requests=100, max_latency_p99_increase=1.0, min_latency_increase=0.001)
    assert judge(canary, stable, strict).outcome == "pass"
