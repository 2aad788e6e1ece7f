"""The comparators' figures over a window, noise learned per field, and the dark
verdict's maxDiffRate check."""

from __future__ import annotations

from turnout._proto.v1 import release_pb2 as pb
from turnout.analysis import (
    ENVOY_BUCKETS,
    CompareStore,
    Comparison,
    FieldFigures,
    Figures,
    Histogram,
    Thresholds,
    classify,
    judge_dark,
)


def comparison(
    compared: int,
    differing: dict[frozenset[str], int],
    noise: dict[frozenset[str], int],
) -> Comparison:
    fields: dict[str, list[int]] = {}
    for column, sets in ((0, differing), (1, noise)):
        for names, count in sets.items():
            for name in names:
                fields.setdefault(name, [0, 0])[column] += count
    return Comparison(
        "shop",
        "v3",
        "v1",
        0.0,
        60.0,
        compared,
        tuple(FieldFigures(n, d, k) for n, (d, k) in sorted(fields.items())),
        tuple(differing.items()),
        tuple(noise.items()),
        comparators=1,
    )


def figures(version: str, requests: int) -> Figures:
    latency = Histogram.of_samples([0.002] * requests)
    return Figures(0.0, 60.0, requests, 0, 0, latency, 1, "shop", version)


THRESHOLDS = Thresholds(
    min_requests=100, max_error_rate_increase=0.01, confidence=0.999, max_diff_rate=0.01
)
AT = frozenset({"body:$.at"})
ID = frozenset({"body:$.id"})
TOTAL = frozenset({"body:$.total"})


def test_fields_differing_between_light_copies_are_noise() -> None:
    """A timestamp and a request id that differ between the two light answers as often
    as against dark are noise; a total that never differs between light copies is not."""
    found = classify(
        comparison(1000, {AT | ID: 950, AT | ID | TOTAL: 50}, {AT | ID: 1000}), alpha=0.001
    )
    beyond = {f.field for f in found.fields if f.beyond_noise}
    assert beyond == {"body:$.total"}
    assert found.fields[0].field == "body:$.total"  # beyond noise first
    assert (found.differing, found.light_differing, found.noise) == (50, 0, 1000)


def test_a_field_noisy_at_a_low_rate_still_counts_when_dark_is_far_worse() -> None:
    """Light copies differing in 1% and dark in 10%: beyond noise, counted in both."""
    found = classify(comparison(2000, {TOTAL: 200}, {TOTAL: 20}), alpha=0.001)
    assert found.fields[0].beyond_noise
    assert (found.differing, found.light_differing) == (200, 20)


def test_a_field_noisy_half_as_often_is_noise() -> None:
    """A millisecond timestamp differing in 60% between light copies and 95% against a
    slower dark is noise, however many requests."""
    found = classify(comparison(10_000, {AT: 9500}, {AT: 6000}), alpha=0.001)
    assert not found.fields[0].beyond_noise
    assert found.differing == 0


def test_dark_differing_beyond_noise_fails() -> None:
    """5% of answers differing in `total` fails maxDiffRate 0.01, naming the field."""
    verdict = judge_dark(
        figures("v3", 1000),
        figures("v1", 1000),
        THRESHOLDS,
        comparison(1000, {AT | ID: 950, AT | ID | TOTAL: 50}, {AT | ID: 1000}),
    )
    assert verdict.outcome == "fail"
    (reason,) = verdict.reasons
    assert reason.startswith(
        "shop/v3 answers differ from v1's in 50 of 1000 compared requests (in body:$.total)"
    )
    check = next(c for c in verdict.checks if c.name == "maxDiffRate")
    assert check.failed
    assert abs(check.value - 0.05) < 1e-9
    assert verdict.comparison is not None
    assert verdict.comparison.differing == 50


def test_only_noise_passes() -> None:
    """Dark differing from light only where two light copies do passes."""
    verdict = judge_dark(
        figures("v3", 1000),
        figures("v1", 1000),
        THRESHOLDS,
        comparison(1000, {AT | ID: 1000}, {AT | ID: 1000}),
    )
    assert verdict.outcome == "pass", verdict.reasons
    assert "beyond noise in 0 of 1000 compared requests" in verdict.reasons[-1]


def test_a_few_differences_below_significance_pass_with_the_breach_named() -> None:
    """2 of 100 differing breaches 0.01 but is not significant at 0.999: pass, said."""
    verdict = judge_dark(
        figures("v3", 100), figures("v1", 100), THRESHOLDS, comparison(100, {TOTAL: 2}, {})
    )
    assert verdict.outcome == "pass"
    assert "but not significant" in verdict.reasons[-1]


def test_without_comparisons_the_verdict_holds() -> None:
    """With compare set but too few (or no) comparisons, a clean dark run holds; a dark
    version failing on its figures still fails."""
    held = judge_dark(figures("v3", 500), figures("v1", 500), THRESHOLDS, None)
    assert held.outcome == "hold"
    assert held.reasons[0] == (
        "shop/v3: 0 responses compared, fewer than minRequests 100 "
        "(no comparator connected: is `turnout compare` running?)"
    )
    bad = Figures(0.0, 60.0, 500, 200, 0, Histogram(), 1, "shop", "v3")
    assert judge_dark(bad, figures("v1", 500), THRESHOLDS, None).outcome == "fail"


def target_figures(compared: int, total: int) -> pb.TargetFigures:
    counts = [0] * (len(ENVOY_BUCKETS) + 1)
    counts[2] = compared
    return pb.TargetFigures(
        service="shop",
        to="v3",
        light="v1",
        compared=compared,
        skipped={"busy": 1},
        fields=[pb.FieldCount(field="body:$.total", differing=total, noise=0)],
        differing=[pb.FieldSet(fields=["body:$.total"], count=total)],
        dark_calls=pb.CallFigures(requests=compared, errors=1, latency_counts=counts),
        light_calls=pb.CallFigures(requests=compared, latency_counts=counts),
        examples=[
            pb.ExampleDiff(
                field="body:$.total",
                example=pb.DiffExample(method="GET", path="/", light="1", other="2", kind="dark"),
            )
        ],
    )


async def test_the_store_sums_comparators_over_a_window() -> None:
    """Reports from two comparators add up in the window they arrived in; older slots
    are outside a later window; the calls are figures per version."""
    now = [1000.0]
    store = CompareStore(clock=lambda: now[0])
    store.connected("a")
    store.reported("a", [target_figures(10, 1)])
    store.reported("b", [target_figures(20, 2)])
    now[0] = 1010.0
    store.reported("a", [target_figures(5, 0)])
    whole = store.comparison("shop", "v3", 990.0, 1011.0)
    assert (whole.compared, whole.skipped, whole.comparators) == (35, {"busy": 3}, 2)
    assert whole.fields == (FieldFigures("body:$.total", 3, 0, examples=whole.fields[0].examples),)
    assert dict(whole.differing_sets) == {frozenset({"body:$.total"}): 3}
    assert store.comparison("shop", "v3", 1005.0, 1011.0).compared == 5
    dark = await store.figures("shop", "v3", 990.0, 1011.0)
    light = await store.figures("shop", "v1", 990.0, 1011.0)
    assert (dark.requests, dark.errors, light.requests) == (35, 3, 35)
    assert dark.p50 is not None
    assert 0.001 < dark.p50 <= 0.005
    store.disconnected("a")
    store.disconnected("b")
    assert store.comparison("shop", "v3", 990.0, 1011.0).comparators == 0
