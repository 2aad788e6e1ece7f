"""Streams as units: proxy groups, lifecycle, isolation, per-type services, callbacks."""

from __future__ import annotations

import asyncio
import time

import grpc
import grpc.aio
import pytest
from conftest import RecordingCallbacks
from envoy.service.discovery.v3.discovery_pb2 import DiscoveryRequest, DiscoveryResponse

from turnout.cache import CLUSTER_TYPE, ENDPOINT_TYPE, ROUTE_TYPE
from turnout.testing import (
    AdsClient,
    RunningXds,
    eventually,
    make_snapshot,
    resource_names,
    running_xds,
)
from turnout.xds import StreamInfo

pytestmark = pytest.mark.timeout(30)


async def test_proxy_groups_get_their_own_snapshots(xds: RunningXds) -> None:
    """Proxies in different node clusters get their group's config."""
    xds.publish({"north": make_snapshot({"n": 100}), "south": make_snapshot({"s": 100})})
    north = await xds.client("n-1", "north")
    south = await xds.client("s-1", "south")
    await north.request(CLUSTER_TYPE)
    await south.request(CLUSTER_TYPE)
    assert resource_names(await north.recv()) == ["n"]
    assert resource_names(await south.recv()) == ["s"]
    groups = {p.node_id: p.node_cluster for p in xds.server.proxies()}
    assert groups == {"n-1": "north", "s-1": "south"}


async def test_closed_stream_releases_status_and_watch(
    xds: RunningXds, callbacks: RecordingCallbacks
) -> None:
    """Closing a stream removes its status entry and its cache watch, and reports the close."""
    xds.publish(make_snapshot({"a": 100}))
    client = await xds.client("leaving")
    await client.request(CLUSTER_TYPE)
    await client.recv()
    assert [p.node_id for p in xds.server.proxies()] == ["leaving"]
    assert xds.cache.watcher_count == 1
    await client.close()
    await eventually(lambda: xds.server.stream_count == 0 and xds.cache.watcher_count == 0)
    assert xds.server.proxies() == []
    await eventually(lambda: ("close", "leaving") in callbacks.events)


async def test_stuck_stream_does_not_delay_others(xds: RunningXds) -> None:
    """A proxy that never reads its big responses does not delay another proxy's update."""
    big = 4 * 1024 * 1024

    def snapshots(step: int) -> dict[str, object]:
        return {
            "big": make_snapshot({f"big{step}": 100}, padding=big),
            "small": make_snapshot({f"small{step}": 100}),
        }

    xds.publish(snapshots(0))  # type: ignore[arg-type]
    stuck = await xds.client("stuck", "big", read=False)
    healthy = await xds.client("healthy", "small")
    await stuck.request(CLUSTER_TYPE)
    await stuck.request(ENDPOINT_TYPE, ["big0"])
    await healthy.request(CLUSTER_TYPE)
    await healthy.ack(await healthy.recv())
    await eventually(lambda: xds.server.proxies()[0].types[CLUSTER_TYPE].sent_version is not None)

    for step in range(1, 11):
        xds.publish(snapshots(step))  # type: ignore[arg-type]
        # The stuck proxy asks for more (it never read a nonce, so these are subscriptions).
        await stuck.request(ENDPOINT_TYPE, [f"big{step}"], nonce="")
        started = time.monotonic()
        response = await healthy.recv(timeout=1.0)
        assert time.monotonic() - started < 1.0
        assert resource_names(response) == [f"small{step}"]
        await healthy.ack(response)


async def test_per_type_cds_service_serves_clusters(xds: RunningXds) -> None:
    """The per-type ClusterDiscoveryService streams clusters, with ACKs and updates."""
    xds.publish(make_snapshot({"a": 100}))
    client = await xds.client(kind="cds")
    await client.request(CLUSTER_TYPE)
    first = await client.recv()
    assert resource_names(first) == ["a"]
    await client.ack(first)
    xds.publish(make_snapshot({"a": 50, "b": 50}))
    second = await client.recv()
    assert resource_names(second) == ["a", "b"]
    (status,) = xds.server.proxies()
    assert status.kind == "cds"
    assert status.types[CLUSTER_TYPE].acked_version == first.version_info


async def test_per_type_service_fills_in_a_missing_type_url(xds: RunningXds) -> None:
    """On a per-type service a request without type_url is for that service's type, and
    other types are ignored."""
    xds.publish(make_snapshot({"a": 100}))
    client = await xds.client(kind="rds")
    await client.request(CLUSTER_TYPE)
    await client.expect_silence(0.2)
    await client.request("", ["public"])
    response = await client.recv()
    assert response.type_url == ROUTE_TYPE
    assert resource_names(response) == ["public"]


async def test_delta_and_fetch_are_unimplemented(xds: RunningXds) -> None:
    """Delta and Fetch methods answer UNIMPLEMENTED rather than half-working."""
    async with grpc.aio.insecure_channel(xds.target) as channel:
        fetch = channel.unary_unary(
            "/envoy.service.cluster.v3.ClusterDiscoveryService/FetchClusters",
            request_serializer=DiscoveryRequest.SerializeToString,
            response_deserializer=DiscoveryResponse.FromString,
        )
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await fetch(DiscoveryRequest(), timeout=2)
        assert raised.value.code() == grpc.StatusCode.UNIMPLEMENTED


async def test_callbacks_see_the_stream_lifecycle(
    xds: RunningXds, callbacks: RecordingCallbacks
) -> None:
    """Callbacks receive open, response, ACK, NACK and close, in order."""
    xds.publish(make_snapshot({"a": 100}))
    client = await xds.client("cb")
    await client.request(CLUSTER_TYPE)
    first = await client.recv()
    await client.ack(first)
    xds.publish(make_snapshot({"b": 100}))
    second = await client.recv()
    await client.nack(second, "no")
    await client.expect_silence(0.1)
    await client.close()
    await eventually(lambda: ("close", "cb") in callbacks.events)
    assert callbacks.events == [
        ("open", "cb"),
        ("response", CLUSTER_TYPE, first.version_info, 1),
        ("ack", CLUSTER_TYPE, first.version_info),
        ("response", CLUSTER_TYPE, second.version_info, 1),
        ("nack", CLUSTER_TYPE, second.version_info, "no"),
        ("close", "cb"),
    ]


async def test_a_failing_callback_does_not_break_the_stream() -> None:
    """An exception in a callback is logged and the stream carries on."""

    class Broken(RecordingCallbacks):
        def on_ack(self, stream: StreamInfo, type_url: str, version: str) -> None:
            raise RuntimeError("metrics backend down")

    async with running_xds(Broken()) as xds:
        xds.publish(make_snapshot({"a": 100}))
        client = await xds.client()
        await client.request(CLUSTER_TYPE)
        await client.ack(await client.recv())
        xds.publish(make_snapshot({"b": 100}))
        assert resource_names(await client.recv()) == ["b"]


async def test_many_streams_share_one_publish(xds: RunningXds) -> None:
    """A publish reaches every open stream."""
    xds.publish(make_snapshot({"a": 100}))
    clients: list[AdsClient] = [await xds.client(f"p{i}") for i in range(20)]
    for client in clients:
        await client.request(CLUSTER_TYPE)
    for client in clients:
        await client.ack(await client.recv())
    xds.publish(make_snapshot({"b": 100}))
    responses = await asyncio.gather(*(c.recv() for c in clients))
    assert {tuple(resource_names(r)) for r in responses} == {("b",)}
