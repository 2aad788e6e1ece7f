"""The public surface of turnout.analysis."""

from __future__ import annotations

import turnout.analysis


def test_public_surface() -> None:
    """Everything the release driver and the CLI use is re-exported, nothing private."""
    assert set(turnout.analysis.__all__) == {
        "ENVOY_BUCKETS",
        "AnalysisLike",
        "Check",
        "ClusterMap",
        "CompareStore",
        "Comparison",
        "CounterDeltas",
        "DiffExample",
        "FieldFigures",
        "classify",
        "Figures",
        "Histogram",
        "MannWhitney",
        "MetricsSink",
        "MetricsSource",
        "Outcome",
        "PrometheusError",
        "PrometheusSource",
        "ProportionTest",
        "QueryLike",
        "QueryResult",
        "QuerySource",
        "Thresholds",
        "Verdict",
        "VersionKey",
        "WindowStore",
        "binomial_sf",
        "fisher_exact_sf",
        "judge",
        "judge_dark",
        "mann_whitney",
        "measure_queries",
        "normal_sf",
        "two_proportions",
    }
    for name in turnout.analysis.__all__:
        assert getattr(turnout.analysis, name) is not None, name


def test_both_sources_offer_the_same_figures_call() -> None:
    """WindowStore and PrometheusSource answer `figures(service, version, since, until)`."""
    import inspect

    store = inspect.signature(turnout.analysis.WindowStore.figures)
    prometheus = inspect.signature(turnout.analysis.PrometheusSource.figures)
    assert list(store.parameters) == list(prometheus.parameters)
    assert inspect.iscoroutinefunction(turnout.analysis.WindowStore.figures)
    assert inspect.iscoroutinefunction(turnout.analysis.PrometheusSource.figures)
