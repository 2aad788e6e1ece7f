"""What a metrics source answers: one version's figures over one window.

A latency distribution is kept as Envoy and Prometheus keep it, as counts in fixed
buckets, so figures from many proxies and many seconds add up exactly; quantiles are
estimated from the buckets the way Prometheus' `histogram_quantile` does (linear
within the bucket that holds the rank).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ENVOY_BUCKETS", "Figures", "Histogram"]

ENVOY_BUCKETS: tuple[float, ...] = tuple(
    ms / 1000.0
    for ms in (
        0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000,
        60000, 300000, 600000, 1800000, 3600000,
    )
)  # fmt: skip
"""Envoy's default histogram bucket bounds, in seconds (it reports milliseconds)."""

_CHECKED_BOUNDS: set[tuple[float, ...]] = {ENVOY_BUCKETS}  # bounds known to increase


@dataclass(frozen=True, slots=True)
class Histogram:
    """Samples counted in buckets: `counts[i]` samples in (bounds[i-1], bounds[i]]
    (the first bucket starts at 0) and `counts[-1]` above the last bound.
    Bounds are in seconds, strictly increasing."""

    bounds: tuple[float, ...] = ENVOY_BUCKETS
    counts: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if not self.counts:
            object.__setattr__(self, "counts", (0,) * (len(self.bounds) + 1))
        if len(self.counts) != len(self.bounds) + 1:
            raise ValueError(f"{len(self.counts)} counts for {len(self.bounds)} bounds")
        if self.bounds not in _CHECKED_BOUNDS:
            if any(b <= a for a, b in zip(self.bounds, self.bounds[1:], strict=False)):
                raise ValueError("histogram bounds must increase")
            if len(_CHECKED_BOUNDS) < 64:
                _CHECKED_BOUNDS.add(self.bounds)
        if min(self.counts) < 0:
            raise ValueError("histogram counts cannot be negative")

    @classmethod
    def from_cumulative(
        cls, bounds: Sequence[float], cumulative: Sequence[float], total: float
    ) -> Histogram:
        """From Prometheus-style cumulative counts (`le` buckets) and the total count.
        Counts are rounded; a bucket that would be negative (rounding, or a scrape
        seeing buckets at different moments) is counted as 0."""
        counts: list[int] = []
        previous = 0
        for value in [*cumulative, max(total, cumulative[-1] if cumulative else 0.0)]:
            current = max(previous, round(value))
            counts.append(current - previous)
            previous = current
        return cls(tuple(float(b) for b in bounds), tuple(counts))

    @classmethod
    def of_samples(
        cls, samples: Iterable[float], bounds: tuple[float, ...] = ENVOY_BUCKETS
    ) -> Histogram:
        """Bucket raw samples (seconds); a sample equal to a bound falls in that bucket."""
        counts = [0] * (len(bounds) + 1)
        for sample in samples:
            index = 0
            while index < len(bounds) and sample > bounds[index]:
                index += 1
            counts[index] += 1
        return cls(bounds, tuple(counts))

    @property
    def total(self) -> int:
        return sum(self.counts)

    def merge(self, other: Histogram) -> Histogram:
        """The sum of two histograms. With different bounds the union of bounds is
        used and each of `other`'s buckets lands in the union bucket sharing its upper
        bound (its samples are no larger than that bound, possibly smaller)."""
        if other.bounds == self.bounds:
            return Histogram(
                self.bounds, tuple(a + b for a, b in zip(self.counts, other.counts, strict=True))
            )
        bounds = tuple(sorted(set(self.bounds) | set(other.bounds)))
        counts = [0] * (len(bounds) + 1)
        position = {bound: i for i, bound in enumerate(bounds)}
        for histogram in (self, other):
            for bound, count in zip(histogram.bounds, histogram.counts, strict=False):
                counts[position[bound]] += count
            counts[-1] += histogram.counts[-1]
        return Histogram(bounds, tuple(counts))

    def quantile(self, q: float) -> float | None:
        """The estimated q-quantile (0 < q < 1) in seconds; None without samples.
        Within the bucket that holds rank q * total, the value is interpolated
        linearly; a rank in the overflow bucket gives the last bound (as Prometheus)."""
        if not 0.0 < q < 1.0:
            raise ValueError("q must be between 0 and 1")
        total = self.total
        if total == 0:
            return None
        rank = q * total
        below = 0
        for index, count in enumerate(self.counts):
            if count and below + count >= rank:
                if index == len(self.bounds):
                    return self.bounds[-1]
                lower = self.bounds[index - 1] if index else 0.0
                upper = self.bounds[index]
                return lower + (upper - lower) * (rank - below) / count
            below += count
        return self.bounds[-1]  # unreachable: the counts add up to total

    def count_above(self, value: float) -> float:
        """The estimated number of samples greater than `value` (seconds), with samples
        spread evenly within each bucket, the same assumption `quantile` makes."""
        above = float(self.counts[-1])
        for index, bound in enumerate(self.bounds):
            lower = self.bounds[index - 1] if index else 0.0
            count = self.counts[index]
            if not count or bound <= value:
                continue
            if lower >= value:
                above += count
            else:
                above += count * (bound - value) / (bound - lower)
        return above

    def to_json(self) -> dict[str, Any]:
        """Bounds (seconds, `+Inf` last) with their non-cumulative counts, zeros left out."""
        buckets = [
            [bound, count]
            for bound, count in zip([*self.bounds, math.inf], self.counts, strict=True)
            if count
        ]
        return {
            "total": self.total,
            "buckets": [[b if b != math.inf else "+Inf", c] for b, c in buckets],
        }


@dataclass(frozen=True, slots=True)
class Figures:
    """One version's traffic figures over [since, until) (Unix seconds), summed over
    every proxy that reported it.

    `requests` counts requests Envoy finished against the version's cluster
    (`upstream_rq_completed`); `errors` those answered 5xx, including the 503/504
    Envoy answers itself when the upstream resets, refuses the connection or times
    out; `resets` is the part of `errors` that got no answer from the upstream at all.
    `latency` is the upstream request time (`upstream_rq_time`). `proxies` is how many
    proxies reported the version's cluster in the window; 0 means no data at all, which
    is not the same as no traffic when the source is not receiving anything.
    """

    since: float
    until: float
    requests: int = 0
    errors: int = 0
    resets: int = 0
    latency: Histogram = field(default_factory=Histogram)
    proxies: int = 0
    service: str = ""
    version: str = ""
    clusters: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        """`service/version`, or the clusters' names when not labelled."""
        if self.service or self.version:
            return f"{self.service}/{self.version}"
        return ",".join(self.clusters) or "(unnamed)"

    @property
    def error_rate(self) -> float | None:
        """errors / requests; None without requests."""
        return self.errors / self.requests if self.requests else None

    @property
    def success_rate(self) -> float | None:
        """1 - error_rate; None without requests."""
        rate = self.error_rate
        return None if rate is None else 1.0 - rate

    @property
    def p50(self) -> float | None:
        return self.latency.quantile(0.5)

    @property
    def p90(self) -> float | None:
        return self.latency.quantile(0.9)

    @property
    def p99(self) -> float | None:
        return self.latency.quantile(0.99)

    def log_json(self) -> dict[str, Any]:
        """The figures compactly, for a log event: counts, the error rate (5 places) and
        p50/p99 in milliseconds (0.1 ms); :meth:`to_json` has the whole histogram."""
        rate, p50, p99 = self.error_rate, self.p50, self.p99
        return {
            "version": self.version,
            "requests": self.requests,
            "errors": self.errors,
            "resets": self.resets,
            "error_rate": None if rate is None else round(rate, 5),
            "p50_ms": None if p50 is None else round(p50 * 1000, 1),
            "p99_ms": None if p99 is None else round(p99 * 1000, 1),
            "proxies": self.proxies,
        }

    def to_json(self) -> dict[str, Any]:
        """The figures as plain JSON values (latency quantiles in seconds)."""
        return {
            "service": self.service,
            "version": self.version,
            "clusters": list(self.clusters),
            "since": self.since,
            "until": self.until,
            "proxies": self.proxies,
            "requests": self.requests,
            "errors": self.errors,
            "resets": self.resets,
            "error_rate": self.error_rate,
            "success_rate": self.success_rate,
            "latency": {
                "p50": self.p50,
                "p90": self.p90,
                "p99": self.p99,
                **self.latency.to_json(),
            },
        }
