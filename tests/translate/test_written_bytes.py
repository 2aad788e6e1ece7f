"""What translation writes as bytes (virtual hosts, scopes, clusters, assignments) is
the messages' own serialization."""

from __future__ import annotations

import pytest
from envoy.config.route.v3 import scoped_route_pb2

from turnout.policy import Endpoint
from turnout.translate._clusters import service_resources
from turnout.translate._routes import virtual_host, virtual_host_bytes
from turnout.translate._translation import scope_bytes

from ._policies import comprehensive
from .test_served_bytes import variety


@pytest.mark.parametrize("comparing", [False, True])
def test_virtual_host_bytes_are_the_messages_serialization(comparing: bool) -> None:
    """For every service of the representative sets (sticky, instances, pins with and
    without `when`, every match kind, zero shares, compare mirrors), the written bytes
    equal virtual_host's message serialized deterministically."""
    services = [*comprehensive().services, *variety().services]
    for service in services:
        expected = virtual_host(service, comparing=comparing).SerializeToString(deterministic=True)
        assert virtual_host_bytes(service, comparing=comparing) == expected, service.name


@pytest.mark.parametrize("host", ["checkout.example.com", "a", "x" * 200])
def test_scope_bytes_are_the_messages_serialization(host: str) -> None:
    """A scope written as bytes is the ScopedRouteConfiguration message serialized."""
    fragment = scoped_route_pb2.ScopedRouteConfiguration.Key.Fragment
    message = scoped_route_pb2.ScopedRouteConfiguration(
        name=f"public/{host}",
        route_configuration_name=f"public/{host}",
        key=scoped_route_pb2.ScopedRouteConfiguration.Key(
            fragments=[fragment(string_key="public"), fragment(string_key=host)]
        ),
    )
    assert scope_bytes("public", host) == message.SerializeToString(deterministic=True)


@pytest.mark.parametrize("comparing", [False, True])
def test_service_resources_bytes_are_their_messages(comparing: bool) -> None:
    """Every cluster's and assignment's bytes are its message serialized, and its name
    the name its bytes carry (an assignment is cached under the name given with it: one
    cached under another name than its own would pair with the wrong cluster in the
    consistency check)."""
    comparators = [Endpoint("127.0.0.1", 7070)] if comparing else []
    assignments = 0
    for service in [*comprehensive().services, *variety().services]:
        resources = service_resources(service, comparators)
        for cluster in resources.clusters:
            message = cluster.message()
            assert message.name == cluster.name
            assert message.SerializeToString(deterministic=True) == cluster.serialized
        for assignment in resources.assignments:
            message = assignment.message()
            assert message.cluster_name == assignment.name
            assert message.SerializeToString(deterministic=True) == assignment.serialized
            assignments += 1
    assert assignments > 20
