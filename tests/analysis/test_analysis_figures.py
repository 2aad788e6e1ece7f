"""Histograms and figures: bucket arithmetic, quantile estimates, rates."""

from __future__ import annotations

import pytest

from turnout.analysis import ENVOY_BUCKETS, Figures, Histogram

BOUNDS = (0.01, 0.1, 1.0)


def test_envoy_default_buckets_in_seconds() -> None:
    """Envoy's default bounds (0.5 ms .. 1 h) are kept in seconds."""
    assert ENVOY_BUCKETS[0] == 0.0005
    assert ENVOY_BUCKETS[-1] == 3600.0
    assert len(ENVOY_BUCKETS) == 19


def test_of_samples_places_bounds_in_their_bucket() -> None:
    """A sample equal to a bound is in that bound's bucket; larger ones overflow."""
    histogram = Histogram.of_samples([0.0, 0.01, 0.011, 1.0, 5.0], BOUNDS)
    assert histogram.counts == (2, 1, 1, 1)
    assert histogram.total == 5


def test_from_cumulative_round_trip_and_clamping() -> None:
    """Cumulative `le` counts become per-bucket counts, the total's excess overflows,
    and a dip from rounding is clamped to zero."""
    assert Histogram.from_cumulative(BOUNDS, [2, 5, 5], 7).counts == (2, 3, 0, 2)
    assert Histogram.from_cumulative(BOUNDS, [2.4, 2.2, 3.0], 3).counts == (2, 0, 1, 0)


def test_quantile_interpolates_within_the_bucket() -> None:
    """Rank q*total is interpolated linearly in its bucket, as histogram_quantile does."""
    histogram = Histogram(BOUNDS, (0, 100, 0, 0))  # all in (0.01, 0.1]
    assert histogram.quantile(0.5) == pytest.approx(0.055)
    assert histogram.quantile(0.99) == pytest.approx(0.01 + 0.09 * 0.99)
    first = Histogram(BOUNDS, (10, 0, 0, 0))
    assert first.quantile(0.5) == pytest.approx(0.005)


def test_quantile_in_overflow_and_empty() -> None:
    """A rank past the last bound gives the last bound; no samples give None."""
    assert Histogram(BOUNDS, (1, 0, 0, 99)).quantile(0.5) == 1.0
    assert Histogram(BOUNDS).quantile(0.99) is None
    with pytest.raises(ValueError, match="between 0 and 1"):
        Histogram(BOUNDS).quantile(1.0)


def test_count_above_is_consistent_with_quantile() -> None:
    """The interpolated count above the p99 estimate is 1% of the samples."""
    histogram = Histogram(BOUNDS, (40, 50, 9, 1))
    p99 = histogram.quantile(0.99)
    assert p99 is not None
    assert histogram.count_above(p99) == pytest.approx(1.0)
    assert histogram.count_above(0.0) == 100
    assert histogram.count_above(2.0) == 1  # only the overflow


def test_merge_same_and_different_bounds() -> None:
    """Same bounds add bucket by bucket; different bounds meet on the union, each
    count in the union bucket that shares its upper bound."""
    a = Histogram(BOUNDS, (1, 2, 3, 4))
    assert a.merge(a).counts == (2, 4, 6, 8)
    b = Histogram((0.05, 0.1), (5, 6, 7))
    merged = a.merge(b)
    assert merged.bounds == (0.01, 0.05, 0.1, 1.0)
    assert merged.counts == (1, 5, 2 + 6, 3, 4 + 7)
    assert merged.total == a.total + b.total


def test_histogram_validation() -> None:
    """Counts must match the bounds, bounds increase, counts are not negative."""
    with pytest.raises(ValueError, match="counts for"):
        Histogram(BOUNDS, (1, 2))
    with pytest.raises(ValueError, match="increase"):
        Histogram((0.1, 0.1), (0, 0, 0))
    with pytest.raises(ValueError, match="negative"):
        Histogram(BOUNDS, (0, -1, 0, 0))


def test_figures_rates_and_json() -> None:
    """Error and success rates are over requests (None without any); JSON carries quantiles."""
    figures = Figures(
        10.0, 20.0, requests=200, errors=10, resets=2, latency=Histogram(BOUNDS, (0, 100, 0, 0)),
        proxies=2, service="checkout", version="v2", clusters=("checkout_v2",),
    )  # fmt: skip
    assert figures.name == "checkout/v2"
    assert figures.error_rate == 0.05
    assert figures.success_rate == pytest.approx(0.95)
    data = figures.to_json()
    assert data["latency"]["p50"] == pytest.approx(0.055)
    assert data["latency"]["buckets"] == [[0.1, 100]]
    assert data["requests"] == 200
    empty = Figures(0.0, 1.0)
    assert empty.error_rate is None
    assert empty.success_rate is None
    assert empty.p99 is None
    assert Histogram(BOUNDS, (0, 0, 0, 3)).to_json()["buckets"] == [["+Inf", 3]]
