"""Which names a response carries: wildcard, explicit names, new and missing names."""

from __future__ import annotations

import pytest

from turnout.cache import CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE, Snapshot
from turnout.testing import (
    RunningXds,
    make_snapshot,
    rds_listener,
    resource_names,
    weighted_routes,
)

pytestmark = pytest.mark.timeout(20)


async def test_empty_first_request_is_wildcard(xds: RunningXds) -> None:
    """An empty first CDS request gets every cluster, and stays wildcard while empty."""
    xds.publish(make_snapshot({"a": 50, "b": 50}))
    client = await xds.client()
    await client.request(CLUSTER_TYPE)
    first = await client.recv()
    assert resource_names(first) == ["a", "b"]
    await client.ack(first)
    xds.publish(make_snapshot({"a": 50, "b": 25, "c": 25}))
    assert resource_names(await client.recv()) == ["a", "b", "c"]


async def test_star_is_wildcard_and_explicit_names_are_not(xds: RunningXds) -> None:
    """`*` subscribes to everything (plus names listed); later explicit names without `*`
    subscribe to exactly those names."""
    xds.publish(make_snapshot({"a": 50, "b": 50}))
    client = await xds.client()
    await client.request(LISTENER_TYPE, ["*", "public"])
    star = await client.recv()
    assert resource_names(star) == ["public"]
    await client.ack(star)

    await client.request(CLUSTER_TYPE, ["*"])
    clusters = await client.recv()
    assert resource_names(clusters) == ["a", "b"]
    await client.ack(clusters, ["b"])
    assert resource_names(await client.recv()) == ["b"]


async def test_new_eds_name_is_answered_with_an_unchanged_snapshot(xds: RunningXds) -> None:
    """Subscribing to another existing name is answered at once, though nothing was published."""
    xds.publish(make_snapshot({"a": 50, "b": 50}))
    client = await xds.client()
    await client.request(ENDPOINT_TYPE, ["a"])
    first = await client.recv()
    assert resource_names(first) == ["a"]
    await client.ack(first, ["a", "b"])
    second = await client.recv()
    assert resource_names(second) == ["a", "b"]


async def test_resubscribed_name_is_answered_again(xds: RunningXds) -> None:
    """A name dropped and subscribed again while responses were held is answered again,
    though the content equals what was last sent (Envoy re-creating a resource waits
    for it); the route configuration ACKed and unchanged is not sent again."""
    listeners = [
        rds_listener("public", "public", 10000),
        rds_listener("admin", "other", 10001),
        rds_listener("extra", "public", 10002),
    ]
    routes = [weighted_routes("public", {"a": 100}), weighted_routes("other", {"a": 100})]
    xds.publish(Snapshot.of(listeners=listeners, routes=routes))
    client = await xds.client()
    await client.request(LISTENER_TYPE)
    await client.ack(await client.recv())
    await client.request(ROUTE_TYPE, ["other", "public"])
    first_routes = await client.recv()
    await client.ack(first_routes)

    xds.publish(Snapshot.of(listeners=listeners[:2], routes=routes))  # removal: no re-send
    lds = await client.recv()
    assert resource_names(lds) == ["admin", "public"]
    # While LDS is un-ACKed, RDS is held: drop "other" and subscribe to it again.
    await client.request(ROUTE_TYPE, ["public"])
    await client.request(ROUTE_TYPE, ["other", "public"])
    await client.expect_silence(0.2)
    await client.ack(lds)
    again = await client.recv()
    assert again.type_url == ROUTE_TYPE
    assert resource_names(again) == ["other"]
    assert again.version_info == first_routes.version_info


async def test_missing_name_is_sent_when_it_appears(xds: RunningXds) -> None:
    """A subscribed name that does not exist is left out, and sent once it is published."""
    xds.publish(make_snapshot({"a": 100}))
    client = await xds.client()
    await client.request(ENDPOINT_TYPE, ["a", "later"])
    first = await client.recv()
    assert resource_names(first) == ["a"]
    await client.ack(first)
    await client.expect_silence(0.2)
    xds.publish(make_snapshot({"a": 100}, extra_clusters=["later"]))
    assert resource_names(await client.recv()) == ["a", "later"]


async def test_names_are_never_duplicated(xds: RunningXds) -> None:
    """Names repeated in a request, or named besides `*`, appear once in the response."""
    xds.publish(make_snapshot({"a": 50, "b": 50}))
    client = await xds.client()
    await client.request(CLUSTER_TYPE, ["*", "a", "a", "b"])
    clusters = await client.recv()
    assert resource_names(clusters) == ["a", "b"]
    await client.ack(clusters)
    await client.request(ENDPOINT_TYPE, ["b", "a", "b", "a"])
    assert resource_names(await client.recv()) == ["a", "b"]


async def test_an_ack_swapping_one_name_for_another_is_a_subscription_change(
    xds: RunningXds,
) -> None:
    """An ACK naming as many names as the last request but one of them different is
    answered with the new selection, and repeating the same names in another order
    after that is no change (ACKs repeating the subscription are compared as bytes:
    ``_stream._names_key``)."""
    xds.publish(make_snapshot({"a": 40, "b": 30, "c": 30}))
    client = await xds.client()
    await client.request(ENDPOINT_TYPE, ["a", "b"])
    first = await client.recv()
    assert resource_names(first) == ["a", "b"]
    await client.ack(first)  # the same names again: nothing to send
    await client.expect_silence()
    await client.request(ENDPOINT_TYPE, ["a", "c"])
    swapped = await client.recv()
    assert resource_names(swapped) == ["a", "c"]
    await client.ack(swapped, ["c", "a"])
    await client.expect_silence()
