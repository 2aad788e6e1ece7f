"""Clusters and endpoint assignments: EDS or DNS, health checks, the instances pool."""

from __future__ import annotations

import ipaddress

import pytest
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import config_source_pb2

from turnout.policy import INSTANCES, HealthCheck, Match, Rule, Service, Sticky
from turnout.translate._clusters import _is_ip, service_clusters

from ._policies import split, version


def _service(**changes: object) -> Service:
    base: dict[str, object] = {
        "name": "checkout",
        "gateways": ("public",),
        "hosts": ("*",),
        "versions": (
            version("v1", "127.0.0.1:9101", "127.0.0.1:9102"),
            version("v2", "10.0.0.2:9201"),
        ),
        "stable": "v1",
        "traffic": split(("v1", "95"), ("v2", "5")),
    }
    base.update(changes)
    return Service(**base)  # type: ignore[arg-type]


def _clusters(service: Service) -> dict[str, cluster_pb2.Cluster]:
    return {c.name: c for c in service_clusters(service)[0]}


def _addresses(assignment: object) -> list[str]:
    return [
        f"{e.endpoint.address.socket_address.address}:{e.endpoint.address.socket_address.port_value}"
        for locality in assignment.endpoints  # type: ignore[attr-defined]
        for e in locality.lb_endpoints
    ]


def test_one_eds_cluster_per_version() -> None:
    """Each version is an EDS cluster `{service}_{version}` over ADS, 1s connect timeout, RR."""
    clusters = _clusters(_service())
    assert sorted(clusters) == ["checkout_v1", "checkout_v2"]
    cluster = clusters["checkout_v1"]
    assert cluster.type == cluster_pb2.Cluster.EDS
    assert cluster.eds_cluster_config.eds_config.HasField("ads")
    assert cluster.eds_cluster_config.eds_config.resource_api_version == config_source_pb2.V3
    assert cluster.connect_timeout.ToSeconds() == 1
    assert cluster.lb_policy == cluster_pb2.Cluster.ROUND_ROBIN
    assert not cluster.health_checks


def test_assignment_per_eds_cluster_with_version_endpoints() -> None:
    """Each EDS cluster has an assignment of the same name holding its version's endpoints."""
    _, assignments = service_clusters(_service())
    by_name = {a.cluster_name: _addresses(a) for a in assignments}
    assert by_name == {
        "checkout_v1": ["127.0.0.1:9101", "127.0.0.1:9102"],
        "checkout_v2": ["10.0.0.2:9201"],
    }


def test_version_without_endpoints_gets_empty_assignment() -> None:
    """A version with no endpoints still gets its (empty) assignment, never none."""
    _, assignments = service_clusters(
        _service(versions=(version("v1", "127.0.0.1:1"), version("v2")))
    )
    empty = [a for a in assignments if a.cluster_name == "checkout_v2"]
    assert len(empty) == 1
    assert not empty[0].endpoints


def test_host_name_endpoint_makes_strict_dns_cluster() -> None:
    """A cluster with a host-name endpoint is STRICT_DNS with inline endpoints and no EDS."""
    service = _service(
        versions=(version("v1", "127.0.0.1:9101"), version("v2", "backend.internal:80", "::1:81"))
    )
    clusters, assignments = service_clusters(service)
    by_name = {c.name: c for c in clusters}
    dns = by_name["checkout_v2"]
    assert dns.type == cluster_pb2.Cluster.STRICT_DNS
    assert not dns.HasField("eds_cluster_config")
    assert dns.dns_lookup_family == cluster_pb2.Cluster.V4_PREFERRED
    assert _addresses(dns.load_assignment) == ["backend.internal:80", "::1:81"]
    assert by_name["checkout_v1"].type == cluster_pb2.Cluster.EDS
    assert [a.cluster_name for a in assignments] == ["checkout_v1"]


def test_health_check_checks_idle_versions_at_the_same_interval() -> None:
    """Active HTTP health checks use the policy's values, also for a version with no traffic."""
    check = HealthCheck(
        path="/ready",
        interval_seconds=1.5,
        timeout_seconds=0.25,
        unhealthy_threshold=3,
        healthy_threshold=2,
    )
    (health,) = _clusters(_service(health_check=check))["checkout_v2"].health_checks
    assert health.http_health_check.path == "/ready"
    assert (health.timeout.seconds, health.timeout.nanos) == (0, 250_000_000)
    assert (health.unhealthy_threshold.value, health.healthy_threshold.value) == (3, 2)
    intervals = {
        health.interval.ToMilliseconds(),
        health.no_traffic_interval.ToMilliseconds(),
        health.no_traffic_healthy_interval.ToMilliseconds(),
        health.unhealthy_interval.ToMilliseconds(),
        health.unhealthy_edge_interval.ToMilliseconds(),
        health.healthy_edge_interval.ToMilliseconds(),
    }
    assert intervals == {1500}


def test_no_pool_without_instances() -> None:
    """A service that never uses `traffic: instances` has no pool cluster."""
    assert "checkout_instances" not in _clusters(_service())


def test_instances_pool_holds_every_version_with_metadata() -> None:
    """The pool cluster lists every version's endpoints, each tagged with its version."""
    clusters, assignments = service_clusters(_service(traffic=INSTANCES))
    assert sorted(c.name for c in clusters) == ["checkout_instances", "checkout_v1", "checkout_v2"]
    (pool,) = [a for a in assignments if a.cluster_name == "checkout_instances"]
    endpoints = [e for locality in pool.endpoints for e in locality.lb_endpoints]
    tagged = [
        (
            e.endpoint.address.socket_address.port_value,
            e.metadata.filter_metadata["turnout"]["version"],
        )
        for e in endpoints
    ]
    assert tagged == [(9101, "v1"), (9102, "v1"), (9201, "v2")]


def test_instances_in_a_rule_creates_the_pool() -> None:
    """A rule with `traffic: instances` is enough to create the pool cluster."""
    service = _service(rules=(Rule("canary", Match(), INSTANCES),))
    assert "checkout_instances" in _clusters(service)


def test_sticky_service_uses_hash_load_balancing() -> None:
    """A sticky service's clusters hash (RING_HASH), so Envoy can set the sticky cookie."""
    sticky = _service(sticky=Sticky(cookie="c", ttl_seconds=60.0), traffic=INSTANCES)
    assert {c.lb_policy for c in _clusters(sticky).values()} == {cluster_pb2.Cluster.RING_HASH}


@pytest.mark.parametrize(
    "host",
    [
        "10.1.2.3",
        "0.0.0.0",
        "255.255.255.255",
        "01.2.3.4",
        "1.2.3",
        "256.1.1.1",
        "1.2.3.4.5",
        " 1.2.3.4",
        "1.2.3.4\x00",
        "::1",
        "fe80::1%eth0",
        "::ffff:1.2.3.4",
        "localhost",
        "backend.internal",
        "",
    ],
)
def test_ip_test_agrees_with_ipaddress(host: str) -> None:
    """The dotted-quad fast path decides exactly as ipaddress.ip_address does."""
    try:
        ipaddress.ip_address(host)
        expected = True
    except ValueError:
        expected = False
    assert _is_ip(host) is expected
