"""Incremental (Delta) xDS over a real grpc.aio stream: per-resource versions,
initial_resource_versions, subscriptions, wildcard, removals, ACK/NACK and nonces."""

from __future__ import annotations

import pytest
from conftest import RecordingCallbacks
from envoy.service.discovery.v3.discovery_pb2 import DeltaDiscoveryResponse

from turnout.cache import CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE, Snapshot
from turnout.testing import (
    DeltaClient,
    RunningXds,
    assignment,
    eds_cluster,
    make_snapshot,
)
from turnout.xds import ProxyStatus

pytestmark = pytest.mark.timeout(20)


def names(response: DeltaDiscoveryResponse) -> list[str]:
    return [r.name for r in response.resources]


def removed(response: DeltaDiscoveryResponse) -> list[str]:
    return list(response.removed_resources)


def versions(snapshot: Snapshot, type_url: str) -> dict[str, str]:
    return {n: r.version for n, r in snapshot.resources(type_url).items()}


def _status(xds: RunningXds) -> ProxyStatus:
    (status,) = xds.server.proxies()
    return status


def clusters_only(*cluster_names: str, padding: int = 0) -> Snapshot:
    """Clusters with their (empty) assignments, no listeners or routes."""
    return Snapshot.of(
        clusters=[eds_cluster(n, padding=padding) for n in cluster_names],
        endpoints=[assignment(n) for n in cluster_names],
    )


async def test_first_wildcard_request_gets_every_resource_with_its_version(
    xds: RunningXds,
) -> None:
    """A first CDS request naming nothing is a wildcard subscription: every cluster
    comes with its cache version and the cached Any bytes, nothing is removed."""
    snapshot = make_snapshot({"a": 50, "b": 50})
    xds.publish(snapshot)
    client = await xds.delta_client()
    await client.request(CLUSTER_TYPE)
    response = await client.recv()
    assert response.type_url == CLUSTER_TYPE
    assert {r.name: r.version for r in response.resources} == versions(snapshot, CLUSTER_TYPE)
    cached = snapshot.resources(CLUSTER_TYPE)
    for resource in response.resources:
        assert resource.resource.SerializeToString() == cached[resource.name].serialized
    assert removed(response) == []
    assert response.system_version_info == snapshot.type_version(CLUSTER_TYPE)
    assert response.nonce


async def test_first_wildcard_request_is_answered_even_with_nothing_to_send(
    xds: RunningXds,
) -> None:
    """The first wildcard request is answered with an empty response when the proxy
    group has no resources of the type."""
    xds.publish(Snapshot.of())
    client = await xds.delta_client()
    await client.request(LISTENER_TYPE)
    response = await client.recv()
    assert (names(response), removed(response)) == ([], [])
    assert response.nonce


async def test_reconnect_with_everything_current_gets_no_response(
    xds: RunningXds,
) -> None:
    """A reconnecting proxy whose initial_resource_versions match the snapshot is sent
    nothing (it is initialized: no empty response either), is reported in sync, and a
    later change reaches it as only what changed."""
    snapshot = make_snapshot({"a": 50, "b": 50})
    xds.publish(snapshot, version="policy-1")
    client = await xds.delta_client()
    await client.request(CLUSTER_TYPE, initial=versions(snapshot, CLUSTER_TYPE))
    await client.expect_silence(0.3)
    cds = _status(xds).types[CLUSTER_TYPE]
    assert cds.sent_version == cds.acked_version == snapshot.type_version(CLUSTER_TYPE)
    assert _status(xds).synced_version == "policy-1"
    xds.publish(make_snapshot({"a": 50, "b": 50}, extra_clusters=["c"]))
    response = await client.recv()
    assert (names(response), removed(response)) == (["c"], [])


async def test_initial_resource_versions_send_only_what_differs(xds: RunningXds) -> None:
    """On reconnect only resources whose version differs are sent, and names the proxy
    has that are gone come back in removed_resources."""
    old = clusters_only("a", "b", "gone")
    new = Snapshot.of(
        clusters=[eds_cluster("a"), eds_cluster("b", padding=10), eds_cluster("c")],
        endpoints=[assignment(n) for n in ("a", "b", "c")],
    )
    xds.publish(new)
    client = await xds.delta_client()
    await client.request(CLUSTER_TYPE, initial=versions(old, CLUSTER_TYPE))
    response = await client.recv()
    assert sorted(names(response)) == ["b", "c"]
    assert removed(response) == ["gone"]


async def test_initial_versions_for_explicit_names_are_honoured(xds: RunningXds) -> None:
    """An EDS reconnect naming its clusters with current versions gets an empty response;
    a name with an old version gets the resource."""
    snapshot = make_snapshot({"a": 50, "b": 50}, endpoints={"b": [("10.0.0.2", 80)]})
    xds.publish(snapshot)
    client = await xds.delta_client()
    initial = versions(snapshot, ENDPOINT_TYPE)
    initial["b"] = "stale"
    await client.request(ENDPOINT_TYPE, ["a", "b"], initial=initial)
    response = await client.recv()
    assert names(response) == ["b"]
    assert removed(response) == []


async def test_unknown_subscribed_name_is_removed_then_sent_when_it_appears(
    xds: RunningXds,
) -> None:
    """A subscribed name that does not exist is answered in removed_resources ("does
    not exist"), and sent once it appears."""
    xds.publish(clusters_only("a"))
    client = await xds.delta_client()
    await client.request(ENDPOINT_TYPE, ["a", "nope"])
    response = await client.recv()
    assert names(response) == ["a"]
    assert removed(response) == ["nope"]
    await client.ack(response)
    await client.expect_silence(0.2)

    xds.publish(clusters_only("a", "nope"))
    appeared = await client.recv()
    assert names(appeared) == ["nope"]
    assert removed(appeared) == []


async def test_deleted_resource_is_sent_as_removed(xds: RunningXds) -> None:
    """A resource that leaves the snapshot is sent as a removal, alone."""
    xds.publish(clusters_only("a", "b"))
    client = await xds.delta_client(kind="delta-cds")
    await client.request(CLUSTER_TYPE)
    await client.ack(await client.recv())
    xds.publish(clusters_only("a"))
    response = await client.recv()
    assert (names(response), removed(response)) == ([], ["b"])


async def test_only_the_changed_resource_is_sent(xds: RunningXds) -> None:
    """A publish that changes one cluster sends that cluster only."""
    xds.publish(clusters_only("a", "b", "c"))
    client = await xds.delta_client(kind="delta-cds")
    await client.request(CLUSTER_TYPE)
    await client.ack(await client.recv())
    changed = Snapshot.of(
        clusters=[eds_cluster("a"), eds_cluster("b", padding=5), eds_cluster("c")],
        endpoints=[assignment(n) for n in "abc"],
    )
    xds.publish(changed)
    response = await client.recv()
    assert names(response) == ["b"]
    assert response.resources[0].version == changed.resources(CLUSTER_TYPE)["b"].version


async def test_subscription_change_with_a_stale_nonce_is_applied(xds: RunningXds) -> None:
    """A request carrying a stale nonce ACKs nothing but its new subscription is answered."""
    xds.publish(clusters_only("a", "b"))
    client = await xds.delta_client()
    await client.request(ENDPOINT_TYPE, ["a"])
    first = await client.recv()
    await client.ack(first)
    xds.publish(clusters_only("a", "b", padding=3))  # clusters change, assignments do not
    await client.expect_silence(0.2)
    await client.request(ENDPOINT_TYPE, ["b"], nonce=first.nonce)
    response = await client.recv()
    assert names(response) == ["b"]


async def test_stale_nonce_neither_acks_nor_nacks(xds: RunningXds) -> None:
    """Only the live nonce of an un-ACKed response ACKs or NACKs it."""
    xds.publish(clusters_only("a"))
    client = await xds.delta_client()
    await client.request(CLUSTER_TYPE)
    first = await client.recv()
    await client.ack(first)
    xds.publish(clusters_only("a", "b"))
    second = await client.recv()
    await client.request(CLUSTER_TYPE, nonce=first.nonce, error="late complaint")
    await client.request(CLUSTER_TYPE, nonce="not-a-nonce")
    await client.expect_silence(0.2)
    cds = _status(xds).types[CLUSTER_TYPE]
    assert cds.last_nack is None
    assert cds.acked_version == first.system_version_info
    assert cds.sent_version == second.system_version_info


async def test_subscribing_again_resends_what_the_proxy_has(xds: RunningXds) -> None:
    """Subscribing to a name the proxy seems to have already resends it (the proxy may
    have forgotten it)."""
    xds.publish(clusters_only("a"))
    client = await xds.delta_client()
    await client.request(ENDPOINT_TYPE, ["a"])
    await client.ack(await client.recv())
    await client.request(ENDPOINT_TYPE, ["a"])
    again = await client.recv()
    assert names(again) == ["a"]


async def test_unsubscribing_needs_no_answer_and_stops_updates(xds: RunningXds) -> None:
    """Unsubscribing an explicit name gets no response, and later changes to it are
    not sent; phantom unsubscriptions are tolerated."""
    xds.publish(clusters_only("a", "b"))
    client = await xds.delta_client()
    await client.request(ENDPOINT_TYPE, ["a", "b"])
    await client.ack(await client.recv())
    await client.request(ENDPOINT_TYPE, unsubscribe=["b", "never-subscribed"])
    await client.expect_silence(0.2)
    xds.publish(
        Snapshot.of(
            clusters=[eds_cluster("a"), eds_cluster("b")],
            endpoints=[assignment("a"), assignment("b", [("10.0.0.9", 80)])],
        )
    )
    await client.expect_silence(0.2)
    eds = _status(xds).types[ENDPOINT_TYPE]
    assert eds.behind_since is None


async def test_legacy_wildcard_stays_when_names_are_added(xds: RunningXds) -> None:
    """After a legacy wildcard first request, subscribing to a name keeps the wildcard:
    a new cluster is still sent."""
    xds.publish(clusters_only("a"))
    client = await xds.delta_client()
    await client.request(CLUSTER_TYPE)
    await client.ack(await client.recv())
    await client.request(CLUSTER_TYPE, ["a"])
    resent = await client.recv()
    assert names(resent) == ["a"]
    await client.ack(resent)
    xds.publish(clusters_only("a", "b"))
    added = await client.recv()
    assert names(added) == ["b"]


async def test_explicit_star_on_any_type_and_unsubscribing_it(xds: RunningXds) -> None:
    """Subscribing to "*" gets everything (here on EDS); unsubscribing "*" ends it and
    later changes of names not explicitly subscribed are not sent."""
    xds.publish(clusters_only("a", "b"))
    client = await xds.delta_client()
    await client.request(ENDPOINT_TYPE, ["*", "a"])
    response = await client.recv()
    assert names(response) == ["a", "b"]
    await client.ack(response)
    await client.request(ENDPOINT_TYPE, unsubscribe=["*"])
    await client.expect_silence(0.2)
    xds.publish(
        Snapshot.of(
            clusters=[eds_cluster("a"), eds_cluster("b"), eds_cluster("c")],
            endpoints=[assignment("a", [("10.0.0.1", 80)]), assignment("b"), assignment("c")],
        )
    )
    only_a = await client.recv()
    assert names(only_a) == ["a"]


async def test_unsubscribing_a_name_also_in_the_wildcard_is_answered(xds: RunningXds) -> None:
    """With "*" and explicit names, unsubscribing a name the wildcard covers resends it,
    and unsubscribing one that does not exist removes it: the proxy cannot tell."""
    xds.publish(clusters_only("a"))
    client = await xds.delta_client()
    await client.request(CLUSTER_TYPE, ["*", "a", "ghost"])
    first = await client.recv()
    assert (names(first), removed(first)) == (["a"], ["ghost"])
    await client.ack(first)
    await client.request(CLUSTER_TYPE, unsubscribe=["a", "ghost"])
    answer = await client.recv()
    assert (names(answer), removed(answer)) == (["a"], ["ghost"])


async def test_unknown_type_and_names_are_tolerated(xds: RunningXds) -> None:
    """A request for a type the server does not serve is ignored and the stream goes on."""
    xds.publish(clusters_only("a"))
    client = await xds.delta_client()
    await client.request("type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret")
    await client.expect_silence(0.2)
    await client.request(CLUSTER_TYPE)
    assert names(await client.recv()) == ["a"]


async def test_ack_and_nack_are_recorded(xds: RunningXds, callbacks: RecordingCallbacks) -> None:
    """An ACK records the type's version as acked; a NACK records Envoy's message and
    reaches the callbacks, leaving the acked version as it was."""
    first_snapshot = clusters_only("a")
    xds.publish(first_snapshot)
    client = await xds.delta_client("envoy-d", "edge")
    await client.request(CLUSTER_TYPE)
    first = await client.recv()
    await client.ack(first)
    await client.expect_silence(0.1)
    version = first_snapshot.type_version(CLUSTER_TYPE)
    assert _status(xds).types[CLUSTER_TYPE].acked_version == version
    assert ("ack", CLUSTER_TYPE, version) in callbacks.events

    xds.publish(clusters_only("a", "b"))
    second = await client.recv()
    await client.nack(second, "cluster b: bad")
    await client.expect_silence(0.2)
    cds = _status(xds).types[CLUSTER_TYPE]
    assert cds.acked_version == version
    assert cds.last_nack is not None
    assert (cds.last_nack.version, cds.last_nack.message) == (
        second.system_version_info,
        "cluster b: bad",
    )
    assert cds.behind_since is not None
    assert ("nack", CLUSTER_TYPE, second.system_version_info, "cluster b: bad") in (
        callbacks.events
    )


async def test_nacked_resource_version_is_not_resent(xds: RunningXds) -> None:
    """A NACKed resource version is never resent (not on republish, not on resubscribe),
    a new version of it is, and so is a rollback to what the proxy had."""
    good = clusters_only("a")
    xds.publish(good)
    client = await xds.delta_client(kind="delta-cds")
    await client.request(CLUSTER_TYPE)
    await client.ack(await client.recv())

    bad = clusters_only("a", padding=7)
    xds.publish(bad)
    rejected = await client.recv()
    assert names(rejected) == ["a"]
    await client.nack(rejected, "cluster a: bad")
    await client.expect_silence(0.3)
    xds.publish(clusters_only("a", padding=7), version="same content again")
    await client.expect_silence(0.3)
    await client.request(CLUSTER_TYPE, ["a"])
    await client.expect_silence(0.3)

    xds.publish(good, version="rollback")
    rollback = await client.recv()
    assert [(r.name, r.version) for r in rollback.resources] == [
        ("a", good.resources(CLUSTER_TYPE)["a"].version)
    ]
    await client.ack(rollback)
    xds.publish(clusters_only("a", padding=8))
    fixed = await client.recv()
    assert names(fixed) == ["a"]


async def test_at_most_one_unacked_response_per_type(xds: RunningXds) -> None:
    """Publishes faster than ACKs coalesce: one response in flight per type, then the
    latest state (not the intermediate ones)."""
    xds.publish(clusters_only("a"))
    client = await xds.delta_client(kind="delta-cds")
    await client.request(CLUSTER_TYPE)
    first = await client.recv()
    xds.publish(clusters_only("a", "b"))
    xds.publish(clusters_only("a", "c"))
    await client.expect_silence(0.3)
    await client.ack(first)
    latest = await client.recv()
    assert (names(latest), removed(latest)) == (["c"], [])
    await client.ack(latest)
    await client.expect_silence(0.2)
    assert client.have[CLUSTER_TYPE].keys() == {"a", "c"}


async def test_delta_status_and_synced_version(xds: RunningXds) -> None:
    """A Delta ADS stream shows as kind "delta-ads", with per-type sent/acked versions
    equal to the snapshot's type versions and synced_version the published version."""
    snapshot = make_snapshot({"a": 100})
    xds.publish(snapshot, version="policy-1")
    client = await xds.delta_client("envoy-d", "edge")
    await client.bootstrap()
    await client.expect_silence(0.1)
    status = _status(xds)
    assert status.kind == "delta-ads"
    assert status.node_id == "envoy-d"
    for type_url in (CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE):
        type_status = status.types[type_url]
        assert type_status.sent_version == snapshot.type_version(type_url)
        assert type_status.acked_version == snapshot.type_version(type_url)
        assert type_status.behind_since is None
    assert status.synced_version == "policy-1"


async def test_delta_stream_callbacks(xds: RunningXds, callbacks: RecordingCallbacks) -> None:
    """A Delta stream reports open, response (with its resource count), ack and close."""
    snapshot = clusters_only("a", "b")
    xds.publish(snapshot)
    client = await xds.delta_client("envoy-cb")
    await client.request(CLUSTER_TYPE)
    await client.ack(await client.recv())
    await client.expect_silence(0.1)
    await client.close()
    version = snapshot.type_version(CLUSTER_TYPE)
    await _until_closed(callbacks)
    assert callbacks.events == [
        ("open", "envoy-cb"),
        ("response", CLUSTER_TYPE, version, 2),
        ("ack", CLUSTER_TYPE, version),
        ("close", "envoy-cb"),
    ]


async def _until_closed(callbacks: RecordingCallbacks) -> None:
    from turnout.testing import eventually

    await eventually(lambda: ("close", "envoy-cb") in callbacks.events)


@pytest.mark.parametrize(
    ("kind", "type_url", "subscribe"),
    [
        ("delta-cds", CLUSTER_TYPE, []),
        ("delta-eds", ENDPOINT_TYPE, ["a"]),
        ("delta-lds", LISTENER_TYPE, []),
        ("delta-rds", ROUTE_TYPE, ["public"]),
    ],
)
async def test_per_type_delta_services(
    xds: RunningXds, kind: str, type_url: str, subscribe: list[str]
) -> None:
    """Each per-type Delta service serves its type, with the type URL optional in requests."""
    snapshot = make_snapshot({"a": 100})
    xds.publish(snapshot)
    client = await xds.delta_client(kind=kind)
    await client.request("", subscribe)
    response = await client.recv()
    assert response.type_url == type_url
    assert {r.name: r.version for r in response.resources} == versions(snapshot, type_url)
    assert _status(xds).kind == kind


async def test_delta_and_sotw_streams_side_by_side(xds: RunningXds) -> None:
    """A SotW and a Delta proxy on one server both get the config and show in status."""
    xds.publish(make_snapshot({"a": 100}))
    sotw = await xds.client("sotw-1")
    delta: DeltaClient = await xds.delta_client("delta-1")
    await sotw.bootstrap()
    await delta.bootstrap()
    kinds = {p.node_id: p.kind for p in xds.server.proxies()}
    assert kinds == {"sotw-1": "ads", "delta-1": "delta-ads"}
