"""`turnout serve` takes Envoy's metrics stream on its xDS port, mapped to versions by
the policies it serves."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from turnout.analysis.testing import cluster_counters, metrics_message, stream_metrics
from turnout.cache import SnapshotCache
from turnout.server import App, Controller, VersionClusters
from turnout.testing import eventually

GATEWAY = "kind: Gateway\nname: public\nport: 10000\n"
SERVICE = (
    "kind: Service\nname: web\nversions:\n  v1: {endpoints: ['127.0.0.1:9101']}\n"
    "  v2: {endpoints: ['127.0.0.1:9201']}\nstable: v1\ntraffic: {v1: 90, v2: 10}\n"
)


@contextlib.asynccontextmanager
async def running_app(policies: Path) -> AsyncIterator[App]:
    """`turnout serve` in this process on free ports; stopped (and awaited) on exit."""
    app = App(policies, "127.0.0.1:0", "127.0.0.1:0", grace_seconds=0.5)
    run = asyncio.create_task(app.run())
    try:
        await eventually(lambda: app.admin_port != 0 or run.done(), timeout=10)
        assert not run.done(), run
        yield app
    finally:
        app.stop()
        await asyncio.wait_for(run, 10)


def write_policies(tmp_path: Path, service: str = SERVICE) -> Path:
    policies = tmp_path / "policies"
    policies.mkdir(exist_ok=True)
    (policies / "gw.yaml").write_text(GATEWAY)
    (policies / "web.yaml").write_text(service)
    return policies


async def test_serve_accepts_envoy_metrics_on_the_xds_port(tmp_path: Path) -> None:
    """A metrics stream to the xDS port lands in the app's windows, by version."""
    async with running_app(write_policies(tmp_path)) as app:
        first = cluster_counters("web_v2", upstream_rq_completed=10)
        then = cluster_counters("web_v2", upstream_rq_completed=25, upstream_rq_5xx=4)
        await stream_metrics(
            f"127.0.0.1:{app.xds_port}",
            [metrics_message("edge-1", counters=first), metrics_message(counters=then)],
        )
        figures = app.analysis.figures_now("web", "v2", 0.0)
        assert (figures.requests, figures.errors) == (15, 4)
        assert figures.clusters == ("web_v2",)


def test_version_clusters_follow_reloads(tmp_path: Path) -> None:
    """The cluster map names every deployed version and follows an accepted reload."""
    policies = write_policies(tmp_path)
    controller = Controller(policies, SnapshotCache())
    clusters = VersionClusters(controller)
    assert clusters("web_v1") is None  # nothing loaded yet
    assert controller.reload()
    assert clusters("web_v1") == ("web", "v1")
    assert clusters("web_v3") is None
    assert clusters("turnout_xds") is None
    (policies / "web.yaml").write_text(
        SERVICE.replace("stable: v1", "  v3: {endpoints: ['127.0.0.1:9301']}\nstable: v1")
    )
    assert controller.reload()
    assert clusters("web_v3") == ("web", "v3")
