"""Delta over ADS keeps the SotW ordering rules: make-before-break, clusters removed only
after routes stop using them, warming re-sends; and a one-service change sends only
that service's resources."""

from __future__ import annotations

from decimal import Decimal

import pytest
from envoy.service.discovery.v3.discovery_pb2 import DeltaDiscoveryResponse

from turnout.cache import CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE, Snapshot
from turnout.policy import Endpoint, Gateway, PolicySet, Service, Version
from turnout.testing import DeltaClient, RunningXds, make_snapshot
from turnout.translate import translate

pytestmark = pytest.mark.timeout(20)


def names(response: DeltaDiscoveryResponse) -> list[str]:
    return [r.name for r in response.resources]


def removed(response: DeltaDiscoveryResponse) -> list[str]:
    return list(response.removed_resources)


async def test_change_of_all_types_goes_cds_eds_lds_rds(xds: RunningXds) -> None:
    """A publish changing all four types reaches a Delta ADS proxy as CDS, EDS, LDS,
    RDS; LDS waits for CDS and EDS to be ACKed, RDS for LDS."""
    xds.publish(make_snapshot({"a": 100}, port=10000))
    client = await xds.delta_client()
    await client.bootstrap()
    xds.publish(make_snapshot({"a": 50, "b": 50}, port=10001, endpoints={"a": [("10.0.0.1", 80)]}))
    seen = []
    clusters = await client.recv()
    seen.append(clusters.type_url)
    assert names(clusters) == ["b"]
    # Like Envoy: subscribe to the new cluster's assignment and withhold the CDS ACK
    # until it has warmed.
    await client.request(ENDPOINT_TYPE, ["b"])
    endpoints = await client.recv()
    seen.append(endpoints.type_url)
    got = set(names(endpoints))
    while got != {"a", "b"}:
        await client.ack(endpoints)
        endpoints = await client.recv()
        seen.append(endpoints.type_url)
        got |= set(names(endpoints))
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


async def test_cluster_is_removed_only_after_routes_stop_using_it(xds: RunningXds) -> None:
    """A cluster dropped from the snapshot is not removed (nor its assignment) until the
    routes that stopped using it are ACKed; then CDS removes it, then EDS."""
    xds.publish(make_snapshot({"a": 50, "b": 50}))
    client = await xds.delta_client()
    await client.bootstrap()

    xds.publish(make_snapshot({"b": 100}))
    routes = await client.recv()
    assert routes.type_url == ROUTE_TYPE
    assert names(routes) == ["public"]
    await client.expect_silence(0.2)
    await client.ack(routes)
    clusters = await client.recv()
    assert (clusters.type_url, names(clusters), removed(clusters)) == (CLUSTER_TYPE, [], ["a"])
    await client.expect_silence(0.2)  # the assignment stays while the proxy may have a
    await client.ack(clusters)
    endpoints = await client.recv()
    assert (endpoints.type_url, removed(endpoints)) == (ENDPOINT_TYPE, ["a"])
    await client.ack(endpoints)
    await client.expect_silence(0.2)
    assert client.have[CLUSTER_TYPE].keys() == {"b"}


async def test_cluster_stays_while_new_routes_are_nacked(xds: RunningXds) -> None:
    """While the routes that drop a cluster are NACKed, the proxy may still route to it:
    the cluster is not removed."""
    xds.publish(make_snapshot({"a": 50, "b": 50}))
    client = await xds.delta_client()
    await client.bootstrap()
    xds.publish(make_snapshot({"b": 100}))
    routes = await client.recv()
    await client.nack(routes, "route: bad")
    await client.expect_silence(0.3)
    (status,) = xds.server.proxies()
    assert status.types[ROUTE_TYPE].last_nack is not None
    assert status.types[ROUTE_TYPE].behind_since is not None
    assert client.have[CLUSTER_TYPE].keys() == {"a", "b"}


async def test_assignment_is_resent_after_its_cluster_changes(xds: RunningXds) -> None:
    """A changed cluster warms until its assignment arrives: after the CDS response,
    the (unchanged) assignment of that cluster alone is sent again."""
    xds.publish(make_snapshot({"a": 50, "b": 50}))
    client = await xds.delta_client()
    await client.bootstrap()
    xds.publish(make_snapshot({"a": 50, "b": 50}, padding=3))
    clusters = await client.recv()
    assert (clusters.type_url, names(clusters)) == (CLUSTER_TYPE, ["a", "b"])
    endpoints = await client.recv()
    assert (endpoints.type_url, names(endpoints)) == (ENDPOINT_TYPE, ["a", "b"])


async def test_routes_are_resent_after_their_listener_changes(xds: RunningXds) -> None:
    """A changed listener warms until its routes arrive: after the LDS response the
    (unchanged) route configuration is sent again."""
    xds.publish(make_snapshot({"a": 100}, port=10000))
    client = await xds.delta_client()
    await client.bootstrap()
    xds.publish(make_snapshot({"a": 100}, port=10001))
    listeners = await client.recv()
    assert (listeners.type_url, names(listeners)) == (LISTENER_TYPE, ["public"])
    await client.ack(listeners)
    routes = await client.recv()
    assert (routes.type_url, names(routes)) == (ROUTE_TYPE, ["public"])


def _shop(count: int, changed: int | None = None, share: int = 90) -> Snapshot:
    """`count` services behind one gateway; service `changed` gets a different split
    and a moved v2 endpoint."""
    services = []
    for i in range(count):
        moved = i == changed
        services.append(
            Service(
                name=f"svc{i:02d}",
                gateways=("public",),
                hosts=(f"svc{i:02d}.test",),
                versions=(
                    Version("v1", (Endpoint(f"10.1.0.{i + 1}", 8080),)),
                    Version("v2", (Endpoint(f"10.2.0.{i + 1}", 8081 if moved else 8080),)),
                ),
                stable="v1",
                traffic=(
                    ("v1", Decimal(share if moved else 90)),
                    ("v2", Decimal(100 - share if moved else 10)),
                ),
            )
        )
    resources = translate(PolicySet(gateways=(Gateway("public", 10000),), services=tuple(services)))
    everything = resources.all
    snapshot = Snapshot.of(
        clusters=everything.clusters,
        endpoints=everything.endpoints,
        listeners=everything.listeners,
        routes=everything.routes,
        scoped_routes=everything.scoped_routes,
    )
    snapshot.check()
    return snapshot


async def _drain(client: DeltaClient) -> dict[str, list[str]]:
    """ACK every response until the server is quiet; the names received per type."""
    received: dict[str, list[str]] = {}
    while True:
        try:
            response = await client.recv(0.3)
        except TimeoutError:
            return received
        received.setdefault(response.type_url, []).extend(names(response))
        received[response.type_url].extend(f"-{n}" for n in removed(response))
        await client.ack(response)


async def test_one_service_change_sends_only_that_services_resources(xds: RunningXds) -> None:
    """With 20 services on a gateway, changing one service's split and one of its
    endpoints sends that service's assignment and route configuration (its host's
    scope's) only, nothing of the 19 others."""
    xds.publish(_shop(20))
    client = await xds.delta_client()
    await client.bootstrap()
    before = client.received_bytes
    xds.publish(_shop(20, changed=7, share=60))
    received = await _drain(client)
    assert received == {ENDPOINT_TYPE: ["svc07_v2"], ROUTE_TYPE: ["public/svc07.test"]}
    assert client.received_bytes - before < 2_000


async def test_routes_changed_with_endpoints_follow_the_endpoints_ack(xds: RunningXds) -> None:
    """A publish that moves an endpoint and changes a share reaches a Delta ADS proxy
    as EDS and then, once that is ACKed, RDS (as on SotW)."""
    xds.publish(make_snapshot({"a": 50, "b": 50}))
    client = await xds.delta_client()
    await client.bootstrap()
    xds.publish(make_snapshot({"a": 70, "b": 30}, endpoints={"a": [("10.0.0.9", 80)]}))
    endpoints = await client.recv()
    assert (endpoints.type_url, names(endpoints)) == (ENDPOINT_TYPE, ["a"])
    await client.ack(endpoints)
    routes = await client.recv()
    assert routes.type_url == ROUTE_TYPE
    await client.ack(routes)
    await client.expect_silence(0.2)
