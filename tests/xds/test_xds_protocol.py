"""ACK, NACK, nonces, node handling and send-on-change over a real ADS stream."""

from __future__ import annotations

import pytest
from conftest import RecordingCallbacks

from turnout.cache import CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE, Snapshot
from turnout.testing import RunningXds, eds_cluster, make_snapshot, resource_names
from turnout.xds import ProxyStatus

pytestmark = pytest.mark.timeout(20)


def _status(xds: RunningXds) -> ProxyStatus:
    (status,) = xds.server.proxies()
    return status


async def test_ack_is_recorded(xds: RunningXds, callbacks: RecordingCallbacks) -> None:
    """An ACK records the acknowledged version per type and reaches the callbacks."""
    xds.publish(make_snapshot({"a": 100}))
    client = await xds.client()
    await client.request(CLUSTER_TYPE)
    response = await client.recv()
    assert _status(xds).types[CLUSTER_TYPE].acked_version is None
    await client.ack(response)
    await client.expect_silence(0.1)
    cds = _status(xds).types[CLUSTER_TYPE]
    assert cds.sent_version == cds.acked_version == response.version_info
    assert cds.behind_since is None
    assert ("ack", CLUSTER_TYPE, response.version_info) in callbacks.events


async def test_nack_is_recorded_and_not_resent(
    xds: RunningXds, callbacks: RecordingCallbacks
) -> None:
    """A NACK is recorded with Envoy's message, the rejected version is not resent, and
    the next different version is."""
    xds.publish(make_snapshot({"a": 100}))
    client = await xds.client("envoy-7", "edge")
    await client.request(CLUSTER_TYPE)
    first = await client.recv()
    await client.nack(first, "cluster a: bad connect_timeout")
    await client.expect_silence(0.3)

    nack = _status(xds).types[CLUSTER_TYPE].last_nack
    assert nack is not None
    assert (nack.version, nack.message) == (first.version_info, "cluster a: bad connect_timeout")
    assert _status(xds).node_id == "envoy-7"
    assert _status(xds).types[CLUSTER_TYPE].acked_version is None
    assert ("nack", CLUSTER_TYPE, first.version_info, "cluster a: bad connect_timeout") in (
        callbacks.events
    )

    xds.publish(make_snapshot({"a": 100}), version="same content again")
    await client.expect_silence(0.3)

    xds.publish(make_snapshot({"a": 50, "b": 50}))
    fixed = await client.recv()
    assert fixed.version_info != first.version_info
    assert resource_names(fixed) == ["a", "b"]


async def test_stale_nonce_is_ignored(xds: RunningXds) -> None:
    """A request answering an older nonce neither ACKs, NACKs nor changes subscriptions."""
    xds.publish(make_snapshot({"a": 100}, extra_clusters=["b"]))
    client = await xds.client()
    await client.request(ENDPOINT_TYPE, ["a"])
    old = await client.recv()
    await client.ack(old)
    xds.publish(
        make_snapshot({"a": 100}, extra_clusters=["b"], endpoints={"a": [("10.0.0.1", 80)]})
    )
    new = await client.recv()

    await client.request(ENDPOINT_TYPE, ["a"], nonce=old.nonce, error="late complaint")
    await client.request(ENDPOINT_TYPE, ["a", "b"], nonce=old.nonce)
    await client.expect_silence(0.3)
    eds = _status(xds).types[ENDPOINT_TYPE]
    assert eds.last_nack is None
    assert eds.acked_version == old.version_info

    await client.ack(new, ["a"])
    await client.expect_silence(0.1)
    assert _status(xds).types[ENDPOINT_TYPE].acked_version == new.version_info


async def test_nonce_of_another_type_does_not_ack(xds: RunningXds) -> None:
    """A request carrying the nonce of another type's response is stale, not an ACK."""
    xds.publish(make_snapshot({"a": 100}))
    client = await xds.client()
    await client.request(CLUSTER_TYPE)
    cds = await client.recv()
    await client.ack(cds)
    await client.request(ENDPOINT_TYPE, ["a"])
    eds = await client.recv()  # left un-ACKed

    xds.publish(make_snapshot({"a": 50, "b": 50}))
    cds2 = await client.recv()
    assert cds2.type_url == CLUSTER_TYPE
    await client.request(CLUSTER_TYPE, version=cds2.version_info, nonce=eds.nonce)
    await client.expect_silence(0.1)
    assert _status(xds).types[CLUSTER_TYPE].acked_version == cds.version_info


async def test_node_comes_from_the_first_request(xds: RunningXds) -> None:
    """The node of a stream's first request decides its identity and group; later
    requests may omit it or name another node without effect."""
    xds.publish({"g1": make_snapshot({"one": 100}), "g2": make_snapshot({"two": 100})})
    client = await xds.client("envoy-1", "g1")
    await client.request(CLUSTER_TYPE)
    cds = await client.recv()
    assert resource_names(cds) == ["one"]
    await client.ack(cds)

    client.node.cluster = "g2"
    client.node.id = "impostor"
    await client.request(LISTENER_TYPE, node=True)
    await client.recv()
    status = _status(xds)
    assert (status.node_id, status.node_cluster) == ("envoy-1", "g1")


async def test_streams_wait_for_the_first_publish(xds: RunningXds) -> None:
    """Before anything is published a stream gets no response, and gets config once it is."""
    client = await xds.client()
    await client.request(CLUSTER_TYPE)
    await client.expect_silence(0.3)
    xds.publish(make_snapshot({"a": 100}))
    assert resource_names(await client.recv()) == ["a"]


async def test_identical_republish_sends_nothing(xds: RunningXds) -> None:
    """Re-publishing identical content under a new publish version sends no response."""
    xds.publish(make_snapshot({"a": 90, "b": 10}), version="commit-1")
    client = await xds.client()
    await client.bootstrap()
    xds.publish(make_snapshot({"a": 90, "b": 10}), version="commit-2")
    await client.expect_silence(0.3)


async def test_first_request_is_answered_even_with_an_old_nonce(xds: RunningXds) -> None:
    """A reconnecting Envoy's first request carries a nonce and version from an earlier
    stream; with a version that is not the current one it is answered, not ignored as
    stale (one with the current version: ``test_xds_reconnect``)."""
    old = make_snapshot({"b": 100})
    snapshot = make_snapshot({"a": 100})
    xds.publish(snapshot)
    client = await xds.client()
    await client.request(
        CLUSTER_TYPE, version=old.type_version(CLUSTER_TYPE), nonce="previous-server.9"
    )
    response = await client.recv()
    assert response.version_info == snapshot.type_version(CLUSTER_TYPE)


async def test_unknown_type_is_ignored(xds: RunningXds) -> None:
    """A request for an unknown type URL is logged and ignored; the stream keeps working."""
    xds.publish(make_snapshot({"a": 100}))
    client = await xds.client()
    await client.request("type.googleapis.com/envoy.config.bogus.v3.Thing", ["x"])
    await client.expect_silence(0.2)
    await client.request(CLUSTER_TYPE)
    assert resource_names(await client.recv()) == ["a"]


async def test_response_version_is_the_hash_of_its_content(xds: RunningXds) -> None:
    """A response's version_info is the content hash of exactly what it carries."""
    snapshot = Snapshot.of(clusters=[eds_cluster("a"), eds_cluster("b")])
    xds.publish(snapshot)
    client = await xds.client()
    await client.request(CLUSTER_TYPE)
    wildcard = await client.recv()
    assert wildcard.version_info == snapshot.type_version(CLUSTER_TYPE)
    await client.ack(wildcard)
    await client.request(CLUSTER_TYPE, ["a"])
    only_a = await client.recv()
    assert resource_names(only_a) == ["a"]
    expected = Snapshot.of(clusters=[eds_cluster("a")]).type_version(CLUSTER_TYPE)
    assert only_a.version_info == expected


async def test_behind_since_tracks_lagging_proxies(xds: RunningXds) -> None:
    """A proxy whose ACKed version differs from what it should have is marked behind
    until it ACKs the current content."""
    xds.publish(make_snapshot({"a": 100}))
    client = await xds.client()
    await client.request(CLUSTER_TYPE)
    first = await client.recv()
    assert _status(xds).types[CLUSTER_TYPE].behind_since is not None
    await client.ack(first)
    await client.expect_silence(0.1)
    assert _status(xds).types[CLUSTER_TYPE].behind_since is None
    xds.publish(make_snapshot({"b": 100}))
    second = await client.recv()
    assert _status(xds).types[CLUSTER_TYPE].behind_since is not None
    await client.ack(second)
    await client.expect_silence(0.1)
    assert _status(xds).types[CLUSTER_TYPE].behind_since is None
    assert _status(xds).types[CLUSTER_TYPE].acked_version == second.version_info
    assert ROUTE_TYPE not in _status(xds).types


async def test_synced_version_follows_the_acks(xds: RunningXds) -> None:
    """A proxy counts as synced to a policy version only once it ACKed every type of it."""
    xds.publish(make_snapshot({"a": 100}), version="policy-1")
    client = await xds.client()
    await client.bootstrap()
    await client.expect_silence(0.1)
    assert _status(xds).synced_version == "policy-1"

    xds.publish(make_snapshot({"a": 50, "b": 50}), version="policy-2")
    cds = await client.recv()
    assert _status(xds).synced_version == "policy-1"
    await client.ack(cds)
    while True:
        try:
            response = await client.recv(timeout=0.5)
        except TimeoutError:
            break
        assert _status(xds).synced_version == "policy-1"
        await client.ack(response)
    await client.expect_silence(0.1)
    assert _status(xds).synced_version == "policy-2"
