"""The metrics sink's cost per Envoy report: how many proxies one turnout can take.

A synthetic report shaped like Envoy 1.40's (full stat names; per cluster ~20 counters
of which the sink reads 2 here, and one latency histogram with samples, as on a busy
gateway where every cluster saw traffic in the interval), ingested from many proxies.

    python -m bench.metrics_sink [--clusters 100] [--reports 400]
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from turnout.analysis import MetricsSink, WindowStore
from turnout.analysis._wire import StreamMetricsMessage
from turnout.analysis.testing import latency_ms, metrics_message

_STATS = [
    "upstream_rq_completed",
    "upstream_rq_5xx",
    "upstream_rq_2xx",
    "upstream_rq_200",
    "upstream_rq_total",
    "upstream_cx_total",
    "upstream_cx_active",
    "upstream_cx_destroy",
    "upstream_rq_pending_total",
    "upstream_cx_rx_bytes_total",
    "upstream_cx_tx_bytes_total",
    "membership_change",
    "update_success",
    "update_attempt",
    "lb_healthy_panic",
    "upstream_cx_http1_total",
    "external.upstream_rq_2xx",
    "external.upstream_rq_completed",
    "upstream_rq_503",
    "retry_or_shadow_abandoned",
]


def report(clusters: list[str], k: int, node: str | None) -> bytes:
    counters = {f"cluster.{c}.{s}": 1000.0 * k + i for c in clusters for i, s in enumerate(_STATS)}
    counters.update({f"http.public.stat_{i}": float(k) for i in range(200)})
    histograms = {f"cluster.{c}.upstream_rq_time": latency_ms([3.0] * k) for c in clusters}
    message: Any = metrics_message(
        node, counters=counters, histograms=histograms, gauges={"server.uptime": k}
    )
    return bytes(message.SerializeToString())


def run(clusters: int = 100, reports: int = 400) -> None:
    names = [f"svc{i}_v{j}" for i in range(clusters // 2) for j in (1, 2)]
    store = WindowStore({name: (name.split("_")[0], name.split("_")[1]) for name in names})
    sink = MetricsSink(store)
    first, later = report(names, 1, "bench"), report(names, 2, None)
    proxies = reports // 2
    started = time.perf_counter()
    for i in range(proxies):
        sink.ingest(f"edge-{i}", StreamMetricsMessage.FromString(first))
        sink.ingest(f"edge-{i}", StreamMetricsMessage.FromString(later))
    elapsed = time.perf_counter() - started
    per_report = elapsed / (2 * proxies)
    families = len(StreamMetricsMessage.FromString(later).envoy_metrics)
    print(
        f"metrics sink: {len(names)} busy clusters, {families} families, {len(later)} bytes "
        f"per report: {per_report * 1000:.2f} ms each, {1 / per_report:.0f} reports/s; "
        f"at stats_flush_interval 5s one core takes ~{5 / per_report:.0f} such proxies"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.metrics_sink", description=__doc__)
    parser.add_argument("--clusters", type=int, default=100)
    parser.add_argument("--reports", type=int, default=400)
    args = parser.parse_args()
    run(args.clusters, args.reports)
