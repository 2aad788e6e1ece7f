"""Make-before-break on ADS: send order, cluster retention, warming re-sends, coalescing."""

from __future__ import annotations

import pytest

from turnout.cache import CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE, Snapshot
from turnout.testing import (
    RunningXds,
    assignment,
    decode,
    eds_cluster,
    make_snapshot,
    rds_listener,
    resource_names,
    weighted_routes,
)

pytestmark = pytest.mark.timeout(20)


async def test_publish_changing_all_types_is_sent_cds_eds_lds_rds(xds: RunningXds) -> None:
    """A publish that changes all four types reaches the proxy as CDS, EDS, LDS, RDS;
    LDS waits for CDS and EDS to be ACKed, RDS for LDS."""
    xds.publish(make_snapshot({"a": 100}, port=10000))
    client = await xds.client()
    await client.bootstrap()
    xds.publish(make_snapshot({"a": 50, "b": 50}, port=10001, endpoints={"a": [("10.0.0.1", 80)]}))
    seen = []
    clusters = await client.recv()
    seen.append(clusters.type_url)
    # Like Envoy: subscribe to the new cluster's assignment, withhold the CDS ACK
    # until the new cluster has warmed (has its assignment).
    await client.request(ENDPOINT_TYPE, ["a", "b"])
    endpoints = await client.recv()
    seen.append(endpoints.type_url)
    while resource_names(endpoints) != ["a", "b"]:
        await client.ack(endpoints, ["a", "b"])
        endpoints = await client.recv()
        seen.append(endpoints.type_url)
    await client.expect_silence(0.2)  # LDS waits for the CDS and EDS ACKs
    await client.ack(clusters)
    await client.expect_silence(0.2)
    await client.ack(endpoints)
    listeners = await client.recv()
    seen.append(listeners.type_url)
    await client.expect_silence(0.2)  # RDS waits for the LDS ACK
    await client.ack(listeners)
    routes = await client.recv()
    seen.append(routes.type_url)
    await client.ack(routes)
    await client.expect_silence(0.2)
    assert seen[0] == CLUSTER_TYPE
    assert set(seen[1:-2]) == {ENDPOINT_TYPE}
    assert seen[-2:] == [LISTENER_TYPE, ROUTE_TYPE]


async def test_cluster_is_removed_only_after_new_routes_are_acked(xds: RunningXds) -> None:
    """A cluster dropped from the snapshot stays in CDS (and EDS) until the routes that
    stopped using it are ACKed, then CDS is sent without it."""
    xds.publish(make_snapshot({"a": 50, "b": 50}))
    client = await xds.client()
    await client.bootstrap()

    xds.publish(make_snapshot({"b": 100}))
    routes = await client.recv()
    assert routes.type_url == ROUTE_TYPE  # CDS/EDS unchanged: a is still routed to
    (route_config,) = decode(routes)
    weights = route_config.virtual_hosts[0].routes[0].route.weighted_clusters.clusters
    assert [w.name for w in weights] == ["b"]
    await client.expect_silence(0.2)
    cds_status = xds.server.proxies()[0].types[CLUSTER_TYPE]
    assert cds_status.sent_version is not None

    await client.ack(routes)
    clusters = await client.recv()
    assert clusters.type_url == CLUSTER_TYPE
    assert resource_names(clusters) == ["b"]
    await client.ack(clusters, [])
    endpoints = await client.recv()
    assert endpoints.type_url == ENDPOINT_TYPE
    assert resource_names(endpoints) == ["b"]


async def test_cluster_stays_while_new_routes_are_nacked(xds: RunningXds) -> None:
    """While the routes that drop a cluster are NACKed, the cluster is not removed."""
    xds.publish(make_snapshot({"a": 50, "b": 50}))
    client = await xds.client()
    await client.bootstrap()
    xds.publish(make_snapshot({"b": 100}))
    routes = await client.recv()
    assert routes.type_url == ROUTE_TYPE
    await client.nack(routes, "route rejected")
    await client.expect_silence(0.3)


async def test_eds_is_resent_after_a_cds_change(xds: RunningXds) -> None:
    """After CDS changes a cluster, EDS is sent again though endpoints are unchanged, without
    waiting for the CDS ACK (Envoy withholds it until the changed cluster has warmed)."""
    xds.publish(make_snapshot({"a": 100}))
    client = await xds.client()
    before = await client.bootstrap()

    changed = eds_cluster("a")
    changed.connect_timeout.seconds = 5
    xds.publish(
        Snapshot.of(
            clusters=[changed],
            endpoints=[assignment("a")],
            listeners=[rds_listener("public", "public")],
            routes=[weighted_routes("public", {"a": 100})],
        )
    )
    clusters = await client.recv()
    assert clusters.type_url == CLUSTER_TYPE
    endpoints = await client.recv()  # CDS deliberately not ACKed yet
    assert endpoints.type_url == ENDPOINT_TYPE
    assert endpoints.version_info == before[ENDPOINT_TYPE].version_info
    assert endpoints.nonce != before[ENDPOINT_TYPE].nonce
    await client.ack(endpoints)
    await client.ack(clusters)
    await client.expect_silence(0.2)


async def test_rds_is_resent_after_an_lds_change(xds: RunningXds) -> None:
    """After LDS changes a listener, RDS is sent again even though routes are unchanged."""
    xds.publish(make_snapshot({"a": 100}, port=10000))
    client = await xds.client()
    before = await client.bootstrap()
    xds.publish(make_snapshot({"a": 100}, port=10002))
    listeners = await client.recv()
    assert listeners.type_url == LISTENER_TYPE
    await client.ack(listeners)
    routes = await client.recv()
    assert routes.type_url == ROUTE_TYPE
    assert routes.version_info == before[ROUTE_TYPE].version_info


async def test_empty_assignment_is_sent(xds: RunningXds) -> None:
    """A cluster without endpoints gets its empty assignment, not silence."""
    xds.publish(make_snapshot({"a": 100}))
    client = await xds.client()
    responses = await client.bootstrap()
    (load_assignment,) = decode(responses[ENDPOINT_TYPE])
    assert load_assignment.cluster_name == "a"
    assert len(load_assignment.endpoints) == 0


async def test_publishes_faster_than_acks_coalesce(xds: RunningXds) -> None:
    """Three publishes before an ACK result in one response: the latest state."""
    xds.publish(make_snapshot({"v1": 100}))
    client = await xds.client()
    await client.request(CLUSTER_TYPE)
    first = await client.recv()
    for version in ("v2", "v3", "v4"):
        xds.publish(make_snapshot({version: 100}))
    await client.expect_silence(0.3)  # at most one un-ACKed response per type
    await client.ack(first)
    latest = await client.recv()
    assert resource_names(latest) == ["v4"]
    await client.expect_silence(0.3)


async def test_routes_changed_with_endpoints_follow_the_endpoints_ack(xds: RunningXds) -> None:
    """A publish that moves an endpoint and changes a share sends EDS first and, once
    that is ACKed, RDS: an ACK that changes no subscription never marks the stream
    synced while a later type is still due (RDS was never sent: fixed)."""
    xds.publish(make_snapshot({"a": 50, "b": 50}))
    client = await xds.client()
    await client.bootstrap()
    xds.publish(make_snapshot({"a": 70, "b": 30}, endpoints={"a": [("10.0.0.9", 80)]}))
    endpoints = await client.recv()
    assert endpoints.type_url == ENDPOINT_TYPE
    await client.ack(endpoints, ["a", "b"])
    routes = await client.recv()
    assert routes.type_url == ROUTE_TYPE
    (route_config,) = decode(routes)
    weights = route_config.virtual_hosts[0].routes[0].route.weighted_clusters.clusters
    assert [(w.name, w.weight.value) for w in weights] == [("a", 70), ("b", 30)]
    await client.ack(routes)
    await client.expect_silence(0.2)
