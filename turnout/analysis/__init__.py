"""Release analysis: Envoy's own metrics, windows over them, and a judge.

    Envoy ──StreamMetrics──► MetricsSink ──► WindowStore ─┐
    Envoy ◄──scrape── Prometheus ◄── PrometheusSource ────┤ figures(service, version, since, until)
                                                          ▼
                                   judge(canary, baseline, Thresholds) -> Verdict

analysis imports no policy, translation or serving code: which Envoy cluster carries
which (service, version) is handed in as data (`ClusterMap`), and the composition
root serves `MetricsSink.handler()` on turnout's gRPC port.
"""

from __future__ import annotations

from turnout.analysis._clusters import ClusterMap, VersionKey
from turnout.analysis._compare import (
    CompareStore,
    Comparison,
    DiffExample,
    FieldFigures,
    classify,
)
from turnout.analysis._figures import ENVOY_BUCKETS, Figures, Histogram
from turnout.analysis._judge import (
    AnalysisLike,
    Check,
    Outcome,
    Thresholds,
    Verdict,
    judge,
    judge_dark,
)
from turnout.analysis._prometheus import PrometheusError, PrometheusSource
from turnout.analysis._queries import QueryLike, QueryResult, QuerySource, measure_queries
from turnout.analysis._sink import MetricsSink
from turnout.analysis._source import MetricsSource
from turnout.analysis._stats import (
    MannWhitney,
    ProportionTest,
    binomial_sf,
    fisher_exact_sf,
    mann_whitney,
    normal_sf,
    two_proportions,
)
from turnout.analysis._windows import CounterDeltas, WindowStore

__all__ = [
    "ENVOY_BUCKETS",
    "AnalysisLike",
    "Check",
    "ClusterMap",
    "CompareStore",
    "Comparison",
    "CounterDeltas",
    "DiffExample",
    "FieldFigures",
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
    "classify",
    "fisher_exact_sf",
    "judge",
    "judge_dark",
    "mann_whitney",
    "measure_queries",
    "normal_sf",
    "two_proportions",
]
