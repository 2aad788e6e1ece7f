"""`turnout serve` (the App, in this process) over mutual TLS: xDS, the ReleaseService
and Envoy's metrics stream on one port, each refusing identities the map does not
allow."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import grpc
import pytest
from envoy.config.core.v3.base_pb2 import Node

from turnout._proto.v1 import release_pb2 as pb
from turnout._proto.v1 import release_pb2_grpc
from turnout.analysis import _wire
from turnout.analysis.testing import cluster_counters, metrics_message
from turnout.cache import CLUSTER_TYPE
from turnout.server import App, ServerCertificates
from turnout.testing import AdsClient, eventually, resource_names
from turnout.xds import IdentityMap, StreamGuard

from ._certs import KeyPair
from .conftest import IDENTITY_MAP, Pki, refused

GATEWAY = "kind: Gateway\nname: public\nport: 10000\nproxies: [cluster-a]\n"
SERVICE = (
    "kind: Service\nname: web\nversions:\n  v1: {endpoints: ['127.0.0.1:9101']}\n"
    "  v2: {endpoints: ['127.0.0.1:9201']}\nstable: v1\ntraffic: {v1: 90, v2: 10}\n"
)


@contextlib.asynccontextmanager
async def mtls_app(pki: Pki, tmp_path: Path) -> AsyncIterator[App]:
    """An App serving one gateway to cluster-a over mutual TLS with the test identity
    map, on free ports; stopped (and awaited) on exit."""
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "gw.yaml").write_text(GATEWAY)
    (policies / "web.yaml").write_text(SERVICE)
    cert, key = pki.server.write(tmp_path, "server")
    app = App(
        policies,
        "127.0.0.1:0",
        "127.0.0.1:0",
        grace_seconds=0.2,
        tls=ServerCertificates(cert, key, pki.ca_path),
        guard=StreamGuard(IdentityMap.from_config(IDENTITY_MAP)),
    )
    run = asyncio.create_task(app.run())
    try:
        await eventually(lambda: app.admin_port != 0 or run.done(), timeout=10)
        assert not run.done(), run
        yield app
    finally:
        app.stop()
        await asyncio.wait_for(run, 10)


async def get_status(app: App, pki: Pki, identity: KeyPair) -> pb.Status:
    """GetStatus over mutual TLS presenting ``identity``."""
    credentials = pki.credentials(identity)
    async with grpc.aio.secure_channel(f"127.0.0.1:{app.xds_port}", credentials) as channel:
        stub = release_pb2_grpc.ReleaseServiceStub(channel)
        status: pb.Status = await stub.GetStatus(pb.GetStatusRequest(), timeout=5)
        return status


async def first_watch_event(app: App, pki: Pki, identity: KeyPair) -> pb.StatusEvent:
    """The first WatchStatus event over mutual TLS presenting ``identity``."""
    credentials = pki.credentials(identity)
    async with grpc.aio.secure_channel(f"127.0.0.1:{app.xds_port}", credentials) as channel:
        stub = release_pb2_grpc.ReleaseServiceStub(channel)
        call = stub.WatchStatus(pb.WatchStatusRequest(), timeout=5)
        event: pb.StatusEvent = await call.read()
        call.cancel()
        return event


async def stream_metrics(app: App, pki: Pki, identity: KeyPair, messages: Sequence[Any]) -> Any:
    """One Envoy metrics stream over mutual TLS presenting ``identity``."""

    async def requests() -> AsyncIterator[Any]:
        for message in messages:
            yield message
            await asyncio.sleep(0)  # a yield to the loop (each message sent alone), no wait

    credentials = pki.credentials(identity)
    async with grpc.aio.secure_channel(f"127.0.0.1:{app.xds_port}", credentials) as channel:
        call = channel.stream_unary(
            f"/{_wire.SERVICE}/{_wire.METHOD}",
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=_wire.StreamMetricsResponse.FromString,
        )
        return await call(requests(), timeout=5)


def claiming(node_cluster: str, **counters: float) -> Any:
    """A first metrics message from node ``envoy-1`` claiming ``node_cluster``."""
    message = metrics_message(counters=cluster_counters("web_v2", **counters))
    message.identifier.node = Node(id="envoy-1", cluster=node_cluster).SerializeToString()
    return message


async def test_serve_authorizes_xds_by_certificate(pki: Pki, tmp_path: Path) -> None:
    """turnout serve over mTLS serves Envoy A its gateway as cluster-a and refuses it as
    cluster-b with PERMISSION_DENIED, counted in /metrics."""
    async with mtls_app(pki, tmp_path) as app:
        target = f"127.0.0.1:{app.xds_port}"
        good = await AdsClient.connect(
            target,
            node_id="a-1",
            node_cluster="cluster-a",
            credentials=pki.credentials(pki.client_a),
        )
        bad = await AdsClient.connect(
            target,
            node_id="a-2",
            node_cluster="cluster-b",
            credentials=pki.credentials(pki.client_a),
        )
        try:
            accepted = await good.bootstrap()
            assert resource_names(accepted[CLUSTER_TYPE]) == ["web_v1", "web_v2"]
            assert (await refused(bad)).code() == grpc.StatusCode.PERMISSION_DENIED
            assert [p.node_id for p in app.xds.proxies()] == ["a-1"]
            exposition = app.metrics.exposition().decode()
            assert 'turnout_xds_streams_rejected_total{code="PERMISSION_DENIED"} 1.0' in exposition
            assert "turnout_tls_certificate_reloads_total 0.0" in exposition
        finally:
            await good.close()
            await bad.close()


async def test_release_service_answers_only_the_api_identities(pki: Pki, tmp_path: Path) -> None:
    """GetStatus and WatchStatus answer the operator's identity (api: ops/sa/*) and
    refuse a proxy's certificate with PERMISSION_DENIED."""
    async with mtls_app(pki, tmp_path) as app:
        status = await get_status(app, pki, pki.operator)
        assert status.served_version
        event = await first_watch_event(app, pki, pki.operator)
        assert event.HasField("status")
        for call in (get_status, first_watch_event):
            with pytest.raises(grpc.aio.AioRpcError) as failure:
                await call(app, pki, pki.client_a)
            assert failure.value.code() == grpc.StatusCode.PERMISSION_DENIED
            assert "may not call /turnout.v1.ReleaseService/" in (failure.value.details() or "")


async def test_metrics_are_taken_only_for_a_node_the_certificate_may_claim(
    pki: Pki, tmp_path: Path
) -> None:
    """Envoy A's stats are taken for release analysis when its metrics stream names a
    cluster-a node; claiming cluster-b is refused with PERMISSION_DENIED and nothing of
    it is counted (a proxy cannot steer another group's release)."""
    async with mtls_app(pki, tmp_path) as app:
        await stream_metrics(
            app, pki, pki.client_a, [claiming("cluster-a", upstream_rq_completed=5)]
        )
        assert app.sink.messages == 1
        with pytest.raises(grpc.aio.AioRpcError) as failure:
            await stream_metrics(
                app, pki, pki.client_a, [claiming("cluster-b", upstream_rq_5xx=1000)]
            )
        assert failure.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert app.sink.messages == 1
        without_node = metrics_message(counters=cluster_counters("web_v2", upstream_rq_5xx=1))
        with pytest.raises(grpc.aio.AioRpcError) as failure:
            await stream_metrics(app, pki, pki.client_a, [without_node])
        assert failure.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert app.sink.messages == 1
