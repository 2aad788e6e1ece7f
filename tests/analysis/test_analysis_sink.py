"""The MetricsService sink: Envoy's messages into per-version windows."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc.aio
import pytest

from turnout.analysis import MetricsSink, WindowStore, _wire
from turnout.analysis.testing import (
    cluster_counters,
    latency_ms,
    metrics_message,
    stream_metrics,
)

CLUSTERS = {"checkout_v1": ("checkout", "v1"), "checkout_v2": ("checkout", "v2")}


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_counter_deltas_become_version_figures() -> None:
    """Cumulative counters are differenced per proxy and summed per version."""
    clock = Clock()
    sink = MetricsSink(WindowStore(CLUSTERS, clock=clock))
    sink.ingest(
        "e1",
        metrics_message(
            "e1",
            counters=cluster_counters(
                "checkout_v2", upstream_rq_completed=1000, upstream_rq_5xx=10
            ),
        ),
    )
    clock.now = 1001.0
    sink.ingest(
        "e1",
        metrics_message(
            counters=cluster_counters(
                "checkout_v2",
                upstream_rq_completed=1100,
                upstream_rq_5xx=30,
                upstream_cx_connect_fail=4,
                upstream_rq_timeout=1,
                upstream_rq_2xx=80,
            )
        ),
    )
    figures = sink.store.figures_now("checkout", "v2", 990.0, 1002.0)
    assert (figures.requests, figures.errors, figures.resets) == (100, 20, 5)
    assert figures.proxies == 1
    assert sink.messages == 2


def test_histograms_are_per_interval() -> None:
    """Envoy's histograms count each flush interval alone, so they are added as sent,
    converted from milliseconds to seconds."""
    clock = Clock()
    sink = MetricsSink(WindowStore(CLUSTERS, clock=clock))
    first = latency_ms([3.0] * 8 + [40.0] * 2)
    second = latency_ms([3.0] * 5)
    sink.ingest(
        "e1", metrics_message("e1", histograms={"cluster.checkout_v1.upstream_rq_time": first})
    )
    clock.now = 1001.0
    sink.ingest("e1", metrics_message(histograms={"cluster.checkout_v1.upstream_rq_time": second}))
    latency = sink.store.figures_now("checkout", "v1", 990.0, 1002.0).latency
    assert latency.total == 15
    assert latency.counts[2] == 13  # (1 ms, 5 ms]
    assert latency.counts[5] == 2  # (25 ms, 50 ms]
    assert latency.bounds[2] == 0.005


def test_fleet_sum_and_proxy_restart() -> None:
    """Two proxies add up; one restarting (uptime down, counters reset) counts from zero."""
    clock = Clock()
    sink = MetricsSink(WindowStore(CLUSTERS, clock=clock))
    for node in ("e1", "e2"):
        sink.ingest(
            node,
            metrics_message(
                node,
                gauges={"server.uptime": 100},
                counters=cluster_counters("checkout_v1", upstream_rq_completed=500),
            ),
        )
    clock.now = 1001.0
    sink.ingest(
        "e1",
        metrics_message(
            gauges={"server.uptime": 101},
            counters=cluster_counters("checkout_v1", upstream_rq_completed=510),
        ),
    )
    # e2 restarted and has already counted 600 since: all of them are new
    sink.ingest(
        "e2",
        metrics_message(
            "e2",
            gauges={"server.uptime": 1},
            counters=cluster_counters("checkout_v1", upstream_rq_completed=600),
        ),
    )
    figures = sink.store.figures_now("checkout", "v1", 990.0, 1002.0)
    assert figures.requests == 10 + 600
    assert figures.proxies == 2


def test_other_stats_and_clusters_are_ignored() -> None:
    """Stats of clusters with no version, per-zone/external variants and unknown stats
    do not count."""
    clock = Clock()
    sink = MetricsSink(WindowStore(CLUSTERS, clock=clock))
    noise = {
        **cluster_counters("turnout_xds", upstream_rq_completed=5),
        **cluster_counters("checkout_v1.external", upstream_rq_5xx=5),
        **cluster_counters("checkout_v1", upstream_rq_200=5, upstream_rq_completed=1),
        "http.public.downstream_rq_total": 5,
    }
    sink.ingest("e1", metrics_message("e1", counters=noise))
    clock.now = 1001.0
    sink.ingest("e1", metrics_message(counters={k: v * 2 for k, v in noise.items()}))
    assert sink.store.clusters() == ["checkout_v1"]
    figures = sink.store.figures_now("checkout", "v1", 990.0, 1002.0)
    assert (figures.requests, figures.errors) == (1, 0)


@pytest.fixture
async def sink_server() -> AsyncIterator[tuple[MetricsSink, str]]:
    sink = MetricsSink(WindowStore(CLUSTERS))
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((sink.handler(),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield sink, f"127.0.0.1:{port}"
    finally:
        await server.stop(None)


async def test_real_grpc_stream_and_reconnect(sink_server: tuple[MetricsSink, str]) -> None:
    """Over a real gRPC stream the node comes from the first message only; a second
    stream from the same node continues from its baseline, losing nothing."""
    sink, target = sink_server
    await stream_metrics(
        target,
        [
            metrics_message(
                "edge-7", counters=cluster_counters("checkout_v2", upstream_rq_completed=40)
            ),
            metrics_message(
                counters=cluster_counters(
                    "checkout_v2", upstream_rq_completed=50, upstream_rq_5xx=2
                )
            ),
        ],
    )
    assert sink.streams == []
    # reconnect: identifier again on the new stream's first message
    await stream_metrics(
        target,
        [
            metrics_message(
                "edge-7",
                counters=cluster_counters(
                    "checkout_v2", upstream_rq_completed=75, upstream_rq_5xx=3
                ),
            ),
        ],
    )
    figures = sink.store.figures_now("checkout", "v2", 0.0)
    assert (figures.requests, figures.errors) == (35, 3)
    assert set(sink.store.reporters()) == {"edge-7"}
    assert sink.messages == 3


def test_odd_histograms() -> None:
    """An empty histogram adds nothing, an explicit +Inf bucket is the total, buckets
    that dip (not cumulative) are clamped rather than counted negative."""
    clock = Clock()
    sink = MetricsSink(WindowStore(CLUSTERS, clock=clock))
    message = _wire.StreamMetricsMessage()
    message.identifier.node = b""
    for cluster, buckets, total in (
        ("checkout_v1", [(5.0, 0), (10.0, 0)], 0),
        ("checkout_v2", [(5.0, 3), (10.0, 2), (float("inf"), 6)], 6),
    ):
        family = message.envoy_metrics.add(
            name=f"cluster.{cluster}.upstream_rq_time", type=_wire.HISTOGRAM
        )
        histogram = family.metric.add().histogram
        histogram.sample_count = total
        for bound, count in buckets:
            histogram.bucket.add(upper_bound=bound, cumulative_count=count)
    sink.ingest("e1", message)
    assert sink.store.figures_now("checkout", "v1", 990.0, 1001.0).latency.total == 0
    latency = sink.store.figures_now("checkout", "v2", 990.0, 1001.0).latency
    assert latency.bounds == (0.005, 0.01)
    assert latency.counts == (3, 0, 3)


def test_proxies_with_different_bounds_merge() -> None:
    """Reports with different bucket bounds in one slot merge on the union of bounds."""
    clock = Clock()
    sink = MetricsSink(WindowStore(CLUSTERS, clock=clock))
    sink.ingest(
        "e1",
        metrics_message(
            "e1", histograms={"cluster.checkout_v1.upstream_rq_time": latency_ms([3.0])}
        ),
    )
    other = _wire.StreamMetricsMessage()
    family = other.envoy_metrics.add(name="cluster.checkout_v1.upstream_rq_time", type=4)
    histogram = family.metric.add().histogram
    histogram.sample_count = 2
    histogram.bucket.add(upper_bound=2.0, cumulative_count=1)
    histogram.bucket.add(upper_bound=7.0, cumulative_count=2)
    sink.ingest("e2", other)
    latency = sink.store.figures_now("checkout", "v1", 990.0, 1001.0).latency
    assert latency.total == 3
    assert 0.002 in latency.bounds
    assert 0.007 in latency.bounds
