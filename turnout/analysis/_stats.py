"""The statistics behind the judge, with no dependencies beyond `math`.

Every test is one-sided: it asks whether the canary is *worse*, never merely different.
p-values are the probability of a result at least this bad if the canary were not worse.

- `binomial_sf`: exact binomial upper tail, for "is this share above a limit?"
- `two_proportions`: two error rates compared; the p-value is Fisher's exact test
  (one-sided), because the pooled z-test's normal approximation overstates
  significance when errors are few (2 errors in 100 against 10 in 5,000: z gives
  p = 0.0001, the exact answer is 0.022); z is reported as the effect's scale.
- `mann_whitney`: Mann-Whitney U from two histograms' bucket counts: every sample in
  one bucket ties with the others there; normal approximation with tie correction and
  continuity correction (what scipy's `mannwhitneyu(..., method="asymptotic")` computes).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "MannWhitney",
    "ProportionTest",
    "binomial_sf",
    "fisher_exact_sf",
    "mann_whitney",
    "normal_sf",
    "two_proportions",
]

_TINY = 1e-17  # a term this small relative to the running sum no longer changes it


def normal_sf(z: float) -> float:
    """P(Z > z) for a standard normal Z."""
    return 0.5 * math.erfc(z / math.sqrt(2.0))


def _log_pmf(i: int, n: int, p: float) -> float:
    return (
        math.lgamma(n + 1)
        - math.lgamma(i + 1)
        - math.lgamma(n - i + 1)
        + i * math.log(p)
        + (n - i) * math.log1p(-p)
    )


def binomial_sf(k: int, n: int, p: float) -> float:
    """P(X >= k) for X ~ Binomial(n, p), exact.

    Summed from k outwards along the tail that is smaller, so tiny p-values keep their
    precision and the loop stops once terms no longer matter (a few thousand terms at
    most for n in the millions)."""
    if k <= 0 or p >= 1.0:
        return 1.0
    if k > n or p <= 0.0:
        return 0.0
    ratio = p / (1.0 - p)
    if k > n * p:
        # Upper tail: terms fall from k on.
        term = math.exp(_log_pmf(k, n, p))
        total = 0.0
        i = k
        while term > 0.0 and i <= n:
            total += term
            if term < total * _TINY:
                break
            term *= (n - i) / (i + 1) * ratio
            i += 1
        return min(1.0, total)
    # k is at or below the mean: 1 - P(X <= k - 1), summing down from k - 1.
    term = math.exp(_log_pmf(k - 1, n, p))
    total = 0.0
    i = k - 1
    while term > 0.0 and i >= 0:
        total += term
        if term < total * _TINY:
            break
        term *= i / (n - i + 1) / ratio
        i -= 1
    return max(0.0, 1.0 - total)


def _log_comb(n: int, k: int) -> float:
    return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)


def fisher_exact_sf(k1: int, n1: int, k2: int, n2: int) -> float:
    """One-sided Fisher exact test: P(X >= k1) where X, the first group's share of all
    k1 + k2 events, is hypergeometric given the totals (H1: the first rate is larger).
    Summed from k1 along the smaller tail, stopping when terms no longer matter."""
    total, events = n1 + n2, k1 + k2
    low, high = max(0, events - n2), min(events, n1)
    if k1 <= low:
        return 1.0
    if k1 > high:
        return 0.0

    def pmf(x: int) -> float:
        return math.exp(
            _log_comb(events, x) + _log_comb(total - events, n1 - x) - _log_comb(total, n1)
        )

    def ratio_up(x: int) -> float:  # pmf(x + 1) / pmf(x)
        return (events - x) * (n1 - x) / ((x + 1) * (total - events - n1 + x + 1))

    if k1 > events * n1 / total:
        term, tail, x = pmf(k1), 0.0, k1
        while term > 0.0 and x <= high:
            tail += term
            if term < tail * _TINY or x == high:
                break
            term *= ratio_up(x)
            x += 1
        return min(1.0, tail)
    term, tail, x = pmf(k1 - 1), 0.0, k1 - 1
    while term > 0.0 and x >= low:
        tail += term
        if term < tail * _TINY or x == low:
            break
        term /= ratio_up(x - 1)
        x -= 1
    return max(0.0, 1.0 - tail)


@dataclass(frozen=True, slots=True)
class ProportionTest:
    """Two rates `k1/n1` and `k2/n2` compared (H1: the first is larger): the pooled
    z statistic and the exact one-sided p-value (Fisher)."""

    rate1: float
    rate2: float
    z: float
    p_value: float

    @property
    def difference(self) -> float:
        return self.rate1 - self.rate2


def two_proportions(k1: int, n1: int, k2: int, n2: int) -> ProportionTest:
    """k1/n1 against k2/n2, one-sided (H1: k1/n1 > k2/n2): pooled z, Fisher's p.

    Without variance (no requests on a side, or both all-or-nothing) there is no
    evidence either way: z = 0, p = 1."""
    rate1 = k1 / n1 if n1 else 0.0
    rate2 = k2 / n2 if n2 else 0.0
    if not n1 or not n2:
        return ProportionTest(rate1, rate2, 0.0, 1.0)
    pooled = (k1 + k2) / (n1 + n2)
    variance = pooled * (1.0 - pooled) * (1.0 / n1 + 1.0 / n2)
    if variance <= 0.0:
        return ProportionTest(rate1, rate2, 0.0, 1.0)
    z = (rate1 - rate2) / math.sqrt(variance)
    return ProportionTest(rate1, rate2, z, fisher_exact_sf(k1, n1, k2, n2))


@dataclass(frozen=True, slots=True)
class MannWhitney:
    """Mann-Whitney U of sample 1 against sample 2 (H1: sample 1 is stochastically
    larger). `effect` is the probability of superiority U / (n1 * n2): the chance that
    a random draw from sample 1 exceeds one from sample 2, ties counting half (0.5 =
    no difference, 1.0 = every sample 1 value is larger)."""

    u: float
    n1: int
    n2: int
    z: float
    p_value: float

    @property
    def effect(self) -> float:
        return self.u / (self.n1 * self.n2) if self.n1 and self.n2 else 0.5


def mann_whitney(counts1: Sequence[int], counts2: Sequence[int]) -> MannWhitney:
    """Mann-Whitney U from bucket counts of two samples over the same buckets
    (ascending), one-sided (H1: sample 1 larger), normal approximation with tie and
    continuity corrections."""
    if len(counts1) != len(counts2):
        raise ValueError("both samples must be counted over the same buckets")
    n1, n2 = sum(counts1), sum(counts2)
    n = n1 + n2
    if not n1 or not n2:
        return MannWhitney(0.0, n1, n2, 0.0, 1.0)
    rank_sum1 = 0.0
    ties = 0.0
    below = 0
    for c1, c2 in zip(counts1, counts2, strict=True):
        tied = c1 + c2
        if not tied:
            continue
        average_rank = below + (tied + 1) / 2.0
        rank_sum1 += c1 * average_rank
        ties += tied**3 - tied
        below += tied
    u = rank_sum1 - n1 * (n1 + 1) / 2.0
    mean = n1 * n2 / 2.0
    variance = n1 * n2 / 12.0 * ((n + 1) - ties / (n * (n - 1)))
    if variance <= 0.0:  # every sample in one bucket
        return MannWhitney(u, n1, n2, 0.0, 1.0)
    z = (u - mean - 0.5) / math.sqrt(variance)
    return MannWhitney(u, n1, n2, z, normal_sf(z))
