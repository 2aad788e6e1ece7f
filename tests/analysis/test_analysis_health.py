"""Envoy's membership_healthy gauge, per cluster: what the dashboard shows as healthy/total."""

from __future__ import annotations

from turnout.analysis import MetricsSink, WindowStore
from turnout.analysis.testing import metrics_message


def test_healthy_endpoints_are_the_worst_view_of_the_proxies_streaming() -> None:
    """Each proxy's last membership_healthy counts; a cluster shows the lowest, and a
    proxy whose stream ended is forgotten; the version moves only on a change."""
    sink = MetricsSink(WindowStore(lambda cluster: None))
    gauge = "cluster.shop_v1.membership_healthy"
    sink.ingest(
        "e1", metrics_message("e1", gauges={gauge: 2, "cluster.shop_v2.membership_healthy": 1})
    )
    sink.ingest("e2", metrics_message("e2", gauges={gauge: 1}))
    assert sink.healthy() == {"shop_v1": 1, "shop_v2": 1}
    version = sink.health_version
    sink.ingest("e2", metrics_message(gauges={gauge: 1}))
    assert sink.health_version == version  # the same figures: nothing new
    sink.ingest("e2", metrics_message(gauges={gauge: 2}))
    assert sink.healthy()["shop_v1"] == 2
    assert sink.health_version > version
    sink._forget_health("e1")
    assert sink.healthy() == {"shop_v1": 2}
