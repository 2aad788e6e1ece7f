"""The statistics, against reference values computed once with scipy 1.17
(`scipy.stats.binom.sf`, `norm.sf`, `fisher_exact(..., alternative="greater")`,
`mannwhitneyu(..., alternative="greater", method="asymptotic")`) and against
brute-force sums."""

from __future__ import annotations

import math
import random

import pytest

from turnout.analysis import (
    binomial_sf,
    fisher_exact_sf,
    mann_whitney,
    normal_sf,
    two_proportions,
)


@pytest.mark.parametrize(
    ("k", "n", "p", "expected"),
    [
        (20, 100, 0.01, 2.4944165604029208e-20),
        (3, 100, 0.01, 0.07937320225218046),
        (1, 100, 0.01, 0.6339676587267705),
        (5, 10, 0.5, 0.623046875),
        (6, 10, 0.5, 0.376953125),
        (120, 10000, 0.01, 0.027597256302066213),
        (90, 10000, 0.01, 0.8548985399310538),
        (10100, 1000000, 0.01, 0.15865123214580007),
    ],
)
def test_binomial_sf_matches_reference(k: int, n: int, p: float, expected: float) -> None:
    """binomial_sf(k, n, p) is P(X >= k) for X ~ Binomial(n, p), to 1e-7 relative."""
    assert binomial_sf(k, n, p) == pytest.approx(expected, rel=1e-7)


def test_binomial_sf_edges() -> None:
    """No successes needed is certain, more than n impossible, p of 0 or 1 decides."""
    assert binomial_sf(0, 10, 0.3) == 1.0
    assert binomial_sf(11, 10, 0.3) == 0.0
    assert binomial_sf(1, 10, 0.0) == 0.0
    assert binomial_sf(10, 10, 1.0) == 1.0
    assert binomial_sf(10, 10, 0.5) == pytest.approx(0.5**10)


def test_binomial_sf_agrees_with_direct_sum() -> None:
    """For small n the tail equals the sum of exact binomial terms, on both sides of the mean."""
    n, p = 40, 0.13
    for k in range(n + 2):
        direct = sum(math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(k, n + 1))
        assert binomial_sf(k, n, p) == pytest.approx(direct, rel=1e-9, abs=1e-15)


def test_normal_sf_reference() -> None:
    """normal_sf is the standard normal upper tail."""
    assert normal_sf(1.959963984540054) == pytest.approx(0.025)
    assert normal_sf(0.0) == 0.5
    assert normal_sf(-1.0) == pytest.approx(0.8413447460685429)
    assert normal_sf(5.0) == pytest.approx(2.866515718791933e-07)


@pytest.mark.parametrize(
    ("k1", "n1", "k2", "n2", "expected"),
    [
        (2, 100, 10, 5000, 0.02210474005020935),
        (30, 1000, 10, 1000, 0.0010041667809150047),
        (10, 1000, 30, 1000, 0.9996990902116218),
        (20, 100, 20, 10000, 1.2896399543382416e-30),
        (0, 100, 5, 1000, 1.0),
        (5, 50, 0, 50, 0.028142247214412164),
        (7, 300, 10, 5000, 2.0650346431679137e-05),
    ],
)
def test_fisher_exact_matches_reference(
    k1: int, n1: int, k2: int, n2: int, expected: float
) -> None:
    """The one-sided Fisher exact p-value matches scipy's to 1e-9 relative."""
    assert fisher_exact_sf(k1, n1, k2, n2) == pytest.approx(expected, rel=1e-9)


def test_fisher_exact_agrees_with_direct_sum() -> None:
    """For small tables the p-value is the hypergeometric upper tail summed directly."""
    n1, n2, k2 = 7, 9, 4
    for k1 in range(n1 + 1):
        events, total = k1 + k2, n1 + n2
        direct = sum(
            math.comb(events, x) * math.comb(total - events, n1 - x) / math.comb(total, n1)
            for x in range(k1, min(events, n1) + 1)
        )
        assert fisher_exact_sf(k1, n1, k2, n2) == pytest.approx(direct, rel=1e-12)


def test_two_proportions_reference() -> None:
    """30/1000 against 10/1000: pooled z 3.194 (scipy's norm gives p 0.0007), exact p 0.001."""
    test = two_proportions(30, 1000, 10, 1000)
    assert test.z == pytest.approx(3.1943828249996993)
    assert normal_sf(test.z) == pytest.approx(0.0007006507904801069)
    assert test.p_value == pytest.approx(0.0010041667809150047)
    assert test.difference == pytest.approx(0.02)


def test_few_errors_are_judged_exactly() -> None:
    """2 errors in 100 against 10 in 5,000 look significant to the z-test (p 0.0001)
    but are not (exact p 0.022): the p-value reported is the exact one."""
    test = two_proportions(2, 100, 10, 5000)
    assert normal_sf(test.z) < 0.001
    assert test.p_value == pytest.approx(0.02210474005020935)


def test_two_proportions_one_sided_and_degenerate() -> None:
    """A better first proportion gives p > 0.5; no variance or no samples gives p = 1."""
    assert two_proportions(10, 1000, 30, 1000).p_value > 0.99
    assert two_proportions(0, 100, 0, 100).p_value == 1.0
    assert two_proportions(5, 0, 1, 100).p_value == 1.0


@pytest.mark.parametrize(
    ("counts1", "counts2", "u", "p_value"),
    [
        ([0, 3, 5, 2, 0], [1, 4, 3, 0, 0], 57.5, 0.05112452008010389),
        ([10, 50, 30, 8, 2], [20, 60, 15, 5, 0], 6205.0, 0.0005712934545398453),
        ([20, 60, 15, 5, 0], [10, 50, 30, 8, 2], 3795.0, 0.9994341120230246),
    ],
)
def test_mann_whitney_matches_reference(
    counts1: list[int], counts2: list[int], u: float, p_value: float
) -> None:
    """U and the tie- and continuity-corrected one-sided p-value match scipy's."""
    result = mann_whitney(counts1, counts2)
    assert result.u == u
    assert result.p_value == pytest.approx(p_value, rel=1e-9)


def test_mann_whitney_u_is_pairwise_count() -> None:
    """U counts the pairs where sample 1 is larger, ties half, on random bucket counts."""
    rng = random.Random(7)
    for _ in range(50):
        buckets = rng.randint(1, 8)
        c1 = [rng.randint(0, 6) for _ in range(buckets)]
        c2 = [rng.randint(0, 6) for _ in range(buckets)]
        if not sum(c1) or not sum(c2):
            continue
        pairs = sum(
            a * b * (1.0 if i > j else 0.5 if i == j else 0.0)
            for i, a in enumerate(c1)
            for j, b in enumerate(c2)
        )
        result = mann_whitney(c1, c2)
        assert result.u == pytest.approx(pairs)
        assert result.effect == pytest.approx(pairs / (sum(c1) * sum(c2)))


def test_mann_whitney_degenerate() -> None:
    """Everything in one bucket (or an empty side) is no evidence: p = 1, effect 0.5."""
    same = mann_whitney([0, 9, 0], [0, 4, 0])
    assert same.p_value == 1.0
    assert same.effect == 0.5
    assert mann_whitney([0, 0], [3, 1]).p_value == 1.0
    with pytest.raises(ValueError, match="same buckets"):
        mann_whitney([1, 2], [1, 2, 3])
