"""GetStatus over a real channel: the served set, its services and every proxy's state."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import grpc
import grpc.aio
import pytest

from turnout._proto.v1 import release_pb2 as pb
from turnout._proto.v1 import release_pb2_grpc
from turnout.api import (
    IncrementalView,
    MirrorView,
    PolicyView,
    ReleaseStateView,
    SegmentView,
    ServiceView,
    ShareView,
)
from turnout.cache import CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE
from turnout.testing import eventually, make_snapshot

from ._served import Served

CHECKOUT = ServiceView(
    name="checkout",
    stable="v1",
    versions=("v1", "v2", "v3"),
    segments=(
        SegmentView(
            "default",
            is_rule=False,
            shares=(ShareView("v1", "95"), ShareView("v2", "5")),
            mirror=MirrorView("v3", "12.5"),
        ),
        SegmentView("dogfood", is_rule=True, shares=(ShareView("v2", "100"),)),
        SegmentView("pool", is_rule=True, instances=True),
    ),
    incremental=IncrementalView(
        to="v2",
        steps=("1", "5", "25"),
        interval_seconds=60.0,
        on_failure="rollback",
        state=ReleaseStateView(
            "running", step=1, since=datetime(2026, 11, 28, 8, 0, tzinfo=UTC), reason="ok"
        ),
    ),
)


async def test_status_before_anything_is_served_is_empty_not_an_error(
    served: Served, stub: release_pb2_grpc.ReleaseServiceStub
) -> None:
    """Before the first valid set GetStatus answers with an empty served version."""
    status = await stub.GetStatus(pb.GetStatusRequest(), timeout=5)
    assert status.served_version == ""
    assert not status.HasField("accepted_at")
    assert list(status.proxies) == []


async def test_status_reports_services_segments_mirrors_and_release_state(
    served: Served, stub: release_pb2_grpc.ReleaseServiceStub
) -> None:
    """Each service's stable version, its segments in match order with exact shares,
    mirrors and its incremental release state are reported as the view gives them."""
    served.publish(make_snapshot({"c_v1": 100}), PolicyView(None, services=(CHECKOUT,)))
    served.reject("a.yaml:3: traffic: shares sum to 90, not 100")
    status = await stub.GetStatus(pb.GetStatusRequest(), timeout=5)
    assert status.served_version == served.cache.policy_version
    assert status.HasField("accepted_at")
    assert list(status.rejected.errors) == ["a.yaml:3: traffic: shares sum to 90, not 100"]
    assert list(status.last_rejected.errors) == list(status.rejected.errors)
    assert (status.reloads_accepted, status.reloads_rejected) == (1, 1)
    [service] = status.services
    assert (service.name, service.stable, list(service.versions)) == (
        "checkout",
        "v1",
        ["v1", "v2", "v3"],
    )
    segments = [
        (s.name, s.is_rule, [(x.version, x.percent) for x in s.shares], s.instances)
        for s in service.segments
    ]
    assert segments == [
        ("default", False, [("v1", "95"), ("v2", "5")], False),
        ("dogfood", True, [("v2", "100")], False),
        ("pool", True, [], True),
    ]
    assert (service.segments[0].mirror.to, service.segments[0].mirror.percent) == ("v3", "12.5")
    assert not service.segments[1].HasField("mirror")
    release = service.incremental
    assert (release.to, list(release.steps), release.on_failure) == (
        "v2",
        ["1", "5", "25"],
        "rollback",
    )
    assert (release.state.phase, release.state.step, release.state.reason) == ("running", 1, "ok")
    assert release.state.since.ToDatetime(tzinfo=UTC) == datetime(2026, 11, 28, 8, 0, tzinfo=UTC)


async def test_a_release_without_state_has_no_state_message(
    served: Served, stub: release_pb2_grpc.ReleaseServiceStub
) -> None:
    """An incremental release with no `state:` yet reports no state (not started)."""
    assert CHECKOUT.incremental is not None
    service = replace(CHECKOUT, incremental=replace(CHECKOUT.incremental, state=None))
    served.publish(make_snapshot({"c_v1": 100}), PolicyView(None, services=(service,)))
    status = await stub.GetStatus(pb.GetStatusRequest(), timeout=5)
    assert status.services[0].HasField("incremental")
    assert not status.services[0].incremental.HasField("state")


async def test_status_reports_each_proxy_acked_versions_and_sync(
    served: Served, stub: release_pb2_grpc.ReleaseServiceStub
) -> None:
    """A proxy that ACKed everything shows its node, stream kind, ACKed version per type
    in xDS order, the served version as synced, and is not behind."""
    snapshot = make_snapshot({"c_v1": 100})
    served.publish(snapshot)
    proxy = await served.proxy("edge-1", "edge")
    accepted = await proxy.bootstrap()
    await eventually(lambda: served.server.proxies()[0].synced_version == snapshot.group_version)
    status = await stub.GetStatus(pb.GetStatusRequest(), timeout=5)
    [entry] = status.proxies
    assert (entry.node_id, entry.node_cluster, entry.stream_kind) == ("edge-1", "edge", "ads")
    assert [(t.type, t.acked_version) for t in entry.types] == [
        ("CDS", accepted[CLUSTER_TYPE].version_info),
        ("EDS", accepted[ENDPOINT_TYPE].version_info),
        ("LDS", accepted[LISTENER_TYPE].version_info),
        ("RDS", accepted[ROUTE_TYPE].version_info),
    ]
    assert entry.synced_version == snapshot.group_version == status.served_version
    assert not entry.behind
    assert not entry.HasField("behind_since")
    assert not entry.HasField("last_nack")


async def test_a_proxy_that_nacks_is_behind_since_then_with_envoys_message(
    served: Served, stub: release_pb2_grpc.ReleaseServiceStub
) -> None:
    """After a publish the proxy rejects, it is behind, since about the publish, and
    its last NACK carries Envoy's message and the rejected version."""
    served.publish(make_snapshot({"c_v1": 100}))
    proxy = await served.proxy()
    await proxy.bootstrap()
    before = datetime.now(UTC)
    served.publish(make_snapshot({"c_v1": 50, "c_v2": 50}))
    cds = await proxy.recv()
    await proxy.nack(cds, "cluster c_v2: bad config")
    await eventually(lambda: served.server.proxies()[0].types[CLUSTER_TYPE].last_nack is not None)
    status = await stub.GetStatus(pb.GetStatusRequest(), timeout=5)
    [entry] = status.proxies
    assert entry.behind
    assert entry.synced_version != status.served_version
    assert entry.behind_since.ToDatetime(tzinfo=UTC) >= before.replace(microsecond=0)
    assert entry.last_nack.message == "cluster c_v2: bad config"
    assert entry.last_nack.version == cds.version_info
    assert entry.last_nack.type_url == CLUSTER_TYPE
    assert entry.types[0].last_nack.message == "cluster c_v2: bad config"


async def test_a_stream_that_has_not_identified_itself_is_not_a_proxy(
    served: Served, stub: release_pb2_grpc.ReleaseServiceStub
) -> None:
    """A stream that has not sent its first request (no node yet) is not listed."""
    served.publish(make_snapshot({"c_v1": 100}))
    await served.proxy()  # opened, but nothing sent
    await eventually(lambda: served.server.stream_count == 1)
    status = await stub.GetStatus(pb.GetStatusRequest(), timeout=5)
    assert list(status.proxies) == []


async def test_release_service_shares_the_xds_port(served: Served) -> None:
    """The ReleaseService answers on the xDS server's port, and xDS still works there."""
    async with grpc.aio.insecure_channel(served.target) as channel:
        stub = release_pb2_grpc.ReleaseServiceStub(channel)
        await stub.GetStatus(pb.GetStatusRequest(), timeout=5)
        unknown = channel.unary_unary("/turnout.v1.ReleaseService/Nope")
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await unknown(b"", timeout=5)
        assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED
    served.publish(make_snapshot({"c_v1": 100}))
    proxy = await served.proxy()
    await proxy.bootstrap()
