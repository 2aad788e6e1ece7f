"""The judge: a canary's figures against its baseline's, over the same window.

Pure functions, no I/O. The rule, for each threshold the policy sets:

- **hold** when the canary has fewer than `min_requests` requests in the window: too
  little data to judge anything (the verdict says how many there are). A comparison
  with the baseline also needs `min_requests` on the baseline; without them only the
  absolute thresholds are judged, and with none of those the verdict holds.
- **fail** when a threshold is breached by the observed figures AND the breach is
  statistically significant at `confidence` (p-value below 1 - confidence):
  - `max_error_rate`: exact binomial test of the canary's errors against the limit;
  - `max_error_rate_increase`: two proportions (Fisher's exact test), canary worse;
  - `max_latency_p99`: binomial test of the canary's requests slower than the limit
    against the 1% a p99 at the limit allows;
  - `max_latency_p99_increase` (a ratio): breached only when the canary's p99 is
    above both ratio x the baseline's p99 AND the baseline's p99 + `min_latency_increase`
    (an absolute floor, 10 ms by default); significant when Mann-Whitney U (the canary's
    whole latency distribution is slower) or the tail test against that allowed p99
    is, each at half the allowed error rate (Bonferroni), and the Mann-Whitney effect
    says the canary is the slower one.

The floor is there because p99s are estimated from Envoy's buckets (0.5, 1, 5, 10, 25
ms...): a canary 2 ms slower at 4 ms moves from the (1, 5] bucket into (5, 10] and its
p99 estimate doubles (4.96 -> 9.95 ms), a ratio of 2 on a difference that no user
sees. Below 10 ms the buckets are at most 5 ms wide, so a 10 ms floor keeps such
bucket jumps from ever breaching a ratio, while a canary 200 ms slower breaches it by
far.
- **pass** otherwise; a breach that is not (yet) significant is named in the reasons.

So a noisy but healthy canary is not failed by a few unlucky seconds (at confidence
0.99 a healthy canary fails a check at most once in a hundred windows, and only when
its figures also breach a threshold), while a clearly worse one fails as soon as it
has `min_requests`: 20% errors against a 1% limit is significant at p < 1e-10 with 100
requests.

Custom checks (`analysis.queries`, measured by `measure_queries`) are judged beside
these, once the canary has `min_requests` (before, they are shown but not judged): a
query's value above its `max` (or above stable's by more than `maxIncrease`) fails;
there is no test of significance for an arbitrary query, so the value is the verdict.
A query without data holds the verdict (it never passes). Every verdict lists each
query's value with its limit among its checks (`query:NAME`).

The same rule judges dark traffic (`judge_dark`): the mirror target's cluster counts
the mirrored copies (its answers are discarded by Envoy, but its stats are its own),
judged against the light version that served the originals.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal, Protocol

from turnout.analysis._compare import Comparison, classify, diff_check_values
from turnout.analysis._figures import Figures, Histogram
from turnout.analysis._queries import QueryResult
from turnout.analysis._stats import binomial_sf, mann_whitney, two_proportions

__all__ = ["AnalysisLike", "Check", "Outcome", "Thresholds", "Verdict", "judge", "judge_dark"]

Outcome = Literal["pass", "fail", "hold"]

_P99_TAIL = 0.01  # the share of requests a p99 lets through above it


class AnalysisLike(Protocol):
    """The policy's `incremental.analysis` (turnout.policy.Analysis has these)."""

    @property
    def min_requests(self) -> int: ...
    @property
    def max_error_rate(self) -> float | None: ...
    @property
    def max_error_rate_increase(self) -> float | None: ...
    @property
    def max_latency_p99_seconds(self) -> float | None: ...
    @property
    def max_latency_p99_increase(self) -> float | None: ...
    @property
    def min_latency_increase_seconds(self) -> float: ...


@dataclass(frozen=True, slots=True)
class Thresholds:
    """What the judge checks (None: not checked) and how sure it must be to fail."""

    min_requests: int = 100
    max_error_rate: float | None = None
    max_error_rate_increase: float | None = None
    max_latency_p99: float | None = None  # seconds
    max_latency_p99_increase: float | None = None  # ratio to the baseline's p99
    confidence: float = 0.99
    min_latency_increase: float = 0.010  # seconds: the least p99 rise a ratio breach needs
    #: `mirror.compare.maxDiffRate` (dark judgements only): with it, a dark verdict
    #: needs the comparators' comparison and passes only when that does.
    max_diff_rate: float | None = None

    def __post_init__(self) -> None:
        if not 0.5 <= self.confidence < 1.0:
            raise ValueError("confidence must be in [0.5, 1)")
        if self.min_latency_increase < 0:
            raise ValueError("min_latency_increase cannot be negative")

    @classmethod
    def from_analysis(cls, analysis: AnalysisLike, confidence: float = 0.99) -> Thresholds:
        """From the policy's `incremental.analysis`."""
        return cls(
            min_requests=analysis.min_requests,
            max_error_rate=analysis.max_error_rate,
            max_error_rate_increase=analysis.max_error_rate_increase,
            max_latency_p99=analysis.max_latency_p99_seconds,
            max_latency_p99_increase=analysis.max_latency_p99_increase,
            confidence=confidence,
            min_latency_increase=analysis.min_latency_increase_seconds,
        )

    @property
    def alpha(self) -> float:
        """The p-value below which a breach is significant: 1 - confidence."""
        return 1.0 - self.confidence


@dataclass(frozen=True, slots=True)
class Check:
    """One threshold judged: the observed value against its limit, whether it is
    breached, the p-value of the test that the canary is worse, and the effect size."""

    name: str  # the policy field: maxErrorRate, maxErrorRateIncrease, ...
    value: float
    limit: float
    breached: bool
    p_value: float
    significant: bool
    effect: dict[str, float] = field(default_factory=dict)
    note: str = ""

    @property
    def failed(self) -> bool:
        return self.breached and self.significant

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "value": _finite(self.value),
            "limit": self.limit,
            "breached": self.breached,
            "significant": self.significant,
            "failed": self.failed,
            "p_value": self.p_value,
            "effect": {k: _finite(v) for k, v in self.effect.items()},
            **({"note": self.note} if self.note else {}),
        }


@dataclass(frozen=True, slots=True)
class Verdict:
    """The judge's answer with the reasons and every figure it was based on."""

    outcome: Outcome
    reasons: tuple[str, ...]
    checks: tuple[Check, ...]
    canary: Figures
    baseline: Figures
    confidence: float
    kind: Literal["canary", "dark"] = "canary"
    comparison: Comparison | None = None  # dark response diffing, classified

    @property
    def reason(self) -> str:
        """The reasons in one line (for `incremental.state.reason` and logs)."""
        return "; ".join(self.reasons)

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "outcome": self.outcome,
            "reasons": list(self.reasons),
            "confidence": self.confidence,
            "checks": [check.to_json() for check in self.checks],
            "canary": self.canary.to_json(),
            "baseline": self.baseline.to_json(),
            **(
                {"compared": self.comparison.compared, "differing": self.comparison.differing}
                if self.comparison is not None
                else {}
            ),
        }


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _fmt(value: float) -> str:
    return f"{value:.3g}"


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f}ms"


def _tail_test(figures: Figures, limit: float) -> tuple[int, float]:
    """(estimated requests slower than `limit`, p-value that more than 1% are)."""
    above = round(figures.latency.count_above(limit))
    return above, binomial_sf(above, figures.latency.total, _P99_TAIL)


def _error_rate(c: Figures, t: Thresholds, limit: float) -> Check:
    rate = c.errors / c.requests
    p = binomial_sf(c.errors, c.requests, limit)
    return Check(
        "maxErrorRate",
        rate,
        limit,
        rate > limit,
        p,
        p < t.alpha,
        {"excess": rate - limit},
    )


def _error_rate_increase(c: Figures, b: Figures, t: Thresholds, limit: float) -> Check:
    test = two_proportions(c.errors, c.requests, b.errors, b.requests)
    ratio = test.rate1 / test.rate2 if test.rate2 else (math.inf if test.rate1 else 1.0)
    return Check(
        "maxErrorRateIncrease",
        test.difference,
        limit,
        test.difference > limit,
        test.p_value,
        test.p_value < t.alpha,
        {"difference": test.difference, "ratio": ratio, "z": test.z},
    )


def _latency_p99(c: Figures, t: Thresholds, limit: float, p99: float) -> Check:
    above, p = _tail_test(c, limit)
    return Check(
        "maxLatencyP99",
        p99,
        limit,
        p99 > limit,
        p,
        p < t.alpha,
        {"excess": p99 - limit, "share_above_limit": above / c.latency.total},
    )


def _latency_p99_increase(
    c: Figures, b: Figures, t: Thresholds, limit: float, p99: float, base_p99: float
) -> Check:
    ratio = p99 / base_p99 if base_p99 > 0 else (math.inf if p99 > 0 else 1.0)
    difference = p99 - base_p99
    allowed = max(limit * base_p99, base_p99 + t.min_latency_increase)
    bounds = Histogram(c.latency.merge(b.latency).bounds)  # aligned if the two differ
    canary, baseline = c.latency.merge(bounds), b.latency.merge(bounds)
    mw = mann_whitney(canary.counts, baseline.counts)
    above, tail_p = _tail_test(c, allowed)
    p = min(1.0, 2.0 * min(mw.p_value, tail_p))  # Bonferroni over the two tests
    return Check(
        "maxLatencyP99Increase",
        ratio,
        limit,
        p99 > allowed,  # the ratio AND the absolute floor
        p,
        p < t.alpha and mw.effect > 0.5,  # and the canary is the slower one
        {
            "ratio": ratio,
            "difference_seconds": difference,
            "allowed_p99_seconds": allowed,
            "min_latency_increase_seconds": t.min_latency_increase,
            "mann_whitney_p": mw.p_value,
            "mann_whitney_z": mw.z,
            "probability_slower": mw.effect,
            "tail_p": tail_p,
            "share_above_allowed_p99": above / c.latency.total,
        },
    )


def _describe(check: Check, canary: str, baseline: str) -> str:
    if check.name == "maxErrorRate":
        what = f"{canary} error rate {_fmt(check.value)} > maxErrorRate {_fmt(check.limit)}"
    elif check.name == "maxErrorRateIncrease":
        what = (
            f"{canary} error rate {_fmt(check.value)} above {baseline}'s "
            f"> maxErrorRateIncrease {_fmt(check.limit)}"
        )
    elif check.name == "maxLatencyP99":
        what = f"{canary} p99 {_ms(check.value)} > maxLatencyP99 {_ms(check.limit)}"
    else:
        difference = check.effect.get("difference_seconds", 0.0)
        floor = check.effect.get("min_latency_increase_seconds", 0.0)
        what = (
            f"{canary} p99 {_fmt(check.value)}x {baseline}'s (+{_ms(difference)}) "
            f"> maxLatencyP99Increase {_fmt(check.limit)} (and minLatencyIncrease {_ms(floor)})"
        )
    if check.significant:
        return f"{what} (p={check.p_value:.2g})"
    return f"{what}, but not significant (p={check.p_value:.2g})"


def judge(
    canary: Figures,
    baseline: Figures,
    thresholds: Thresholds,
    queries: Sequence[QueryResult] = (),
) -> Verdict:
    """Judge `canary` against `baseline` (figures over the same window), and the custom
    checks measured for the same window (`queries`)."""
    return _judge(canary, baseline, thresholds, "canary", queries)


def _query_check(result: QueryResult) -> Check:
    """A measured custom check against its limit (`query:NAME`)."""
    value = result.value if result.value is not None else math.nan
    if result.max_increase is not None:
        base = result.baseline if result.baseline is not None else math.nan
        difference = value - base
        breached = difference > result.max_increase
        effect = {"value": value, "stable": base, "difference": difference}
        limit, observed = result.max_increase, difference
    else:
        limit = result.max if result.max is not None else math.inf
        breached, effect, observed = value > limit, {"value": value}, value
    return Check(
        f"query:{result.name}",
        observed,
        limit,
        breached,
        0.0 if breached else 1.0,
        breached,
        effect,
        note=result.query,
    )


def _describe_query(check: Check, result: QueryResult, canary: str, baseline: str) -> str:
    name = result.name
    if result.max_increase is not None:
        what = (
            f"{name} {_fmt(check.effect['value'])} for {canary} vs {_fmt(check.effect['stable'])} "
            f"for {baseline}: +{_fmt(check.value)}"
        )
        limit = f"maxIncrease {_fmt(check.limit)}"
    else:
        what, limit = f"{name} {_fmt(check.value)} for {canary}", f"max {_fmt(check.limit)}"
    return f"{what} > {limit}" if check.breached else f"{what} (within {limit})"


def _no_data(result: QueryResult, canary: str, baseline: str) -> str:
    which = canary if result.value is None else baseline
    why = f": {result.error}" if result.error else ""
    return f"{result.name}: no data for {which}{why} (a custom check without data holds)"


def judge_dark(
    dark: Figures, light: Figures, thresholds: Thresholds, comparison: Comparison | None = None
) -> Verdict:
    """Judge a mirror target's figures (`dark`, the mirrored copies) against the light
    version that served the same requests' originals, by the same rule as `judge`.
    With `thresholds.max_diff_rate` (`mirror.compare`), the comparators' `comparison`
    is judged too (`maxDiffRate`, see `_compare`); without enough of it the verdict
    cannot pass: it holds."""
    if thresholds.max_diff_rate is None:
        return _judge(dark, light, thresholds, "dark")
    plain = _judge(dark, light, replace(thresholds, max_diff_rate=None), "dark")
    return _with_comparison(plain, thresholds, thresholds.max_diff_rate, comparison)


def _diff_check(comparison: Comparison, t: Thresholds, limit: float) -> Check:
    value, p, rate = diff_check_values(comparison)
    n = comparison.compared
    return Check(
        "maxDiffRate",
        value,
        limit,
        value > limit,
        p,
        p < t.alpha,
        {
            "differing_rate": rate,
            "light_differing_rate": comparison.light_differing / n if n else 0.0,
            "differing": float(comparison.differing),
            "compared": float(n),
        },
    )


def _describe_diff(check: Check, comparison: Comparison) -> str:
    fields = [f.field for f in comparison.fields if f.beyond_noise][:3]
    where = f" (in {', '.join(fields)})" if fields else ""
    what = (
        f"{comparison.service}/{comparison.to} answers differ from {comparison.light}'s in "
        f"{comparison.differing} of {comparison.compared} compared requests{where}: "
        f"{_fmt(check.effect.get('differing_rate', 0.0))}, {_fmt(check.value)} above "
        f"light-vs-light noise > maxDiffRate {_fmt(check.limit)}"
    )
    if check.significant:
        return f"{what} (p={check.p_value:.2g})"
    return f"{what}, but not significant (p={check.p_value:.2g})"


def _with_comparison(
    plain: Verdict, t: Thresholds, limit: float, comparison: Comparison | None
) -> Verdict:
    """A dark verdict on the figures, with the comparison judged: fails if either
    fails, passes only if both pass, holds otherwise."""
    name = plain.canary.name
    if comparison is None or comparison.compared < t.min_requests:
        count = comparison.compared if comparison is not None else 0
        why = f"{name}: {count} responses compared, fewer than minRequests {t.min_requests}"
        if comparison is None or not comparison.comparators:
            why += " (no comparator connected: is `turnout compare` running?)"
        if plain.outcome == "fail":
            return replace(plain, comparison=comparison)
        return replace(plain, outcome="hold", reasons=(why, *plain.reasons), comparison=comparison)
    compared = classify(comparison, t.alpha)
    check = _diff_check(compared, t, limit)
    checks = (*plain.checks, check)
    described = _describe_diff(check, compared)
    if check.failed:
        reasons = plain.reasons if plain.outcome == "fail" else ()
        return replace(
            plain, outcome="fail", reasons=(*reasons, described), checks=checks, comparison=compared
        )
    if plain.outcome == "fail":
        return replace(plain, checks=checks, comparison=compared)
    if not check.breached:
        rate = compared.differing_rate or 0.0
        described = (
            f"{name} answers differ from {compared.light}'s beyond noise in "
            f"{compared.differing} of {compared.compared} compared requests ({_fmt(rate)})"
        )
    outcome: Outcome = "hold" if plain.outcome == "hold" and not plain.checks else "pass"
    reasons = tuple(r for r in plain.reasons if not r.startswith("within thresholds"))
    return replace(
        plain, outcome=outcome, reasons=(*reasons, described), checks=checks, comparison=compared
    )


def _judge(
    c: Figures,
    b: Figures,
    t: Thresholds,
    kind: Literal["canary", "dark"],
    queries: Sequence[QueryResult] = (),
) -> Verdict:
    cname, bname = c.name, b.name
    measured = [(q, _query_check(q)) for q in queries if q.measured]
    query_checks = [check for _, check in measured]
    query_reasons = [_describe_query(check, q, cname, bname) for q, check in measured]
    no_data = [_no_data(q, cname, bname) for q in queries if not q.measured]
    query_failed = [
        r for (_, check), r in zip(measured, query_reasons, strict=True) if check.failed
    ]

    def verdict(
        outcome: Outcome, reasons: list[str], checks: list[Check], *, judged: bool = True
    ) -> Verdict:
        """`judged=False`: too few requests to judge anything, the queries included
        (they are shown, not held against the version)."""
        if outcome == "pass" and no_data:
            outcome, reasons = "hold", [*no_data, *reasons]
        elif outcome == "hold":
            reasons = [*reasons, *no_data]
        if query_failed and outcome != "fail" and judged:
            outcome, reasons = "fail", query_failed
        elif outcome == "fail":
            reasons = [*reasons, *query_failed]
        else:
            reasons = [*reasons, *(r for r in query_reasons if r not in query_failed)]
        every = (*checks, *query_checks)
        return Verdict(outcome, tuple(reasons), every, c, b, t.confidence, kind)

    if c.requests < t.min_requests:
        why = f"{cname}: {c.requests} requests, fewer than minRequests {t.min_requests}"
        if c.proxies == 0:
            why += " (no proxy reported its cluster: is Envoy's metrics sink configured?)"
        return verdict("hold", [why], [], judged=False)

    checks: list[Check] = []
    notes: list[str] = []
    comparable = b.requests >= t.min_requests
    if t.max_error_rate is not None:
        checks.append(_error_rate(c, t, t.max_error_rate))
    if t.max_error_rate_increase is not None and comparable:
        checks.append(_error_rate_increase(c, b, t, t.max_error_rate_increase))
    p99 = c.p99
    latency_judged = t.max_latency_p99 is not None or t.max_latency_p99_increase is not None
    if latency_judged and (p99 is None or c.latency.total < t.min_requests):
        notes.append(
            f"latency not judged: {c.latency.total} timed requests of {cname}, "
            f"fewer than minRequests {t.min_requests}"
        )
    elif p99 is not None:
        if t.max_latency_p99 is not None:
            checks.append(_latency_p99(c, t, t.max_latency_p99, p99))
        base_p99 = b.p99
        if (
            t.max_latency_p99_increase is not None
            and comparable
            and base_p99 is not None
            and b.latency.total >= t.min_requests
        ):
            checks.append(_latency_p99_increase(c, b, t, t.max_latency_p99_increase, p99, base_p99))
    relative = t.max_error_rate_increase is not None or t.max_latency_p99_increase is not None
    if relative and not comparable:
        notes.append(
            f"no comparison with {bname}: {b.requests} requests, "
            f"fewer than minRequests {t.min_requests}"
        )

    failed = [check for check in checks if check.failed]
    if failed:
        return verdict("fail", [_describe(check, cname, bname) for check in failed], checks)
    if not checks and not query_checks:
        return verdict("hold", notes or ["no thresholds to judge"], checks)
    reasons = [_describe(check, cname, bname) for check in checks if check.breached]
    if not reasons:
        reasons = [_summary(c, b, comparable)]
    return verdict("pass", reasons + notes, checks)


def _summary(c: Figures, b: Figures, comparable: bool) -> str:
    def one(f: Figures) -> str:
        p99 = f.p99
        latency = f", p99 {_ms(p99)}" if p99 is not None else ""
        return f"{f.name} {f.requests} requests, error rate {_fmt(f.error_rate or 0.0)}{latency}"

    if comparable:
        return f"within thresholds: {one(c)}; {one(b)}"
    return f"within thresholds: {one(c)}"
