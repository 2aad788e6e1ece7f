"""Clusters and their endpoint assignments.

Each deployed version gets its own cluster (`checkout_v2`), so Envoy's per-cluster stats
are per-version stats and a pin header or a mirror can name one version. A service that
uses `traffic: instances` (by default or in a rule) also gets a pool cluster
(`checkout_instances`) holding every version's endpoints, so each version gets traffic in
proportion to its healthy instances.

Endpoints are delivered by EDS when they are IP addresses. EDS cannot carry host names:
Envoy takes an EDS endpoint's address as a literal IP and rejects anything else, and name
resolution is a property of the cluster type. So a cluster with any host-name endpoint is
a STRICT_DNS cluster with its endpoints inline (`load_assignment`), Envoy resolves the
names itself, and no ClusterLoadAssignment is emitted for it. The decision is made per
cluster, from that cluster's own endpoints.
"""

from __future__ import annotations

import functools
import ipaddress
import socket
from collections.abc import Sequence
from typing import NamedTuple

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import (
    address_pb2,
    base_pb2,
    health_check_pb2,
)
from envoy.config.endpoint.v3 import endpoint_components_pb2, endpoint_pb2
from google.protobuf import struct_pb2, wrappers_pb2

from turnout._protowire import varint
from turnout.policy import INSTANCES, Endpoint, HealthCheck, Service

from ._common import ads, duration, framed, key
from ._compare import compare_cluster, compares
from ._names import cluster_name, pool_cluster_name

__all__ = [
    "METADATA_NAMESPACE",
    "Assignment",
    "ServiceResources",
    "WrittenCluster",
    "service_clusters",
    "service_resources",
    "uses_pool",
]

#: Filter-metadata namespace on pool endpoints: `{"turnout": {"version": "v2"}}`.
METADATA_NAMESPACE = "turnout"

_CONNECT_TIMEOUT_SECONDS = 1.0


def uses_pool(service: Service) -> bool:
    """True when the default route or any rule sends traffic to the instances pool."""
    return service.traffic == INSTANCES or any(r.traffic == INSTANCES for r in service.rules)


class Assignment(NamedTuple):
    """An EDS cluster's ClusterLoadAssignment as its name (``cluster_name``) and its
    deterministic serialization: what the cache packs and hashes, never parsed on the
    way (tests/translate/test_written_bytes.py holds the name to the bytes'
    ``cluster_name``); :meth:`message` parses it."""

    name: str
    serialized: bytes

    def message(self) -> endpoint_pb2.ClusterLoadAssignment:
        """The assignment as a message, parsed from the bytes."""
        return endpoint_pb2.ClusterLoadAssignment.FromString(self.serialized)


class WrittenCluster(NamedTuple):
    """A Cluster as its name and its deterministic serialization: the cache reads its
    name and EDS name from the bytes (``CachedResource.of_cluster``); :meth:`message`
    parses it."""

    name: str
    serialized: bytes

    def message(self) -> cluster_pb2.Cluster:
        """The cluster as a message, parsed from the bytes."""
        return cluster_pb2.Cluster.FromString(self.serialized)


class ServiceResources(NamedTuple):
    """Every cluster of one service and the assignments of those that use EDS, as
    written (bytes)."""

    clusters: tuple[WrittenCluster, ...]
    assignments: tuple[Assignment, ...]


def service_clusters(
    service: Service, comparators: Sequence[Endpoint] = ()
) -> tuple[list[cluster_pb2.Cluster], list[endpoint_pb2.ClusterLoadAssignment]]:
    """Every cluster of one service, and the assignments of those that use EDS, as
    messages; with ``comparators``, the comparators' cluster when a mirror has
    `compare:`."""
    resources = service_resources(service, comparators)
    return [c.message() for c in resources.clusters], [a.message() for a in resources.assignments]


def service_resources(service: Service, comparators: Sequence[Endpoint] = ()) -> ServiceResources:
    """:func:`service_clusters` as written (bytes)."""
    members: list[tuple[str, list[bytes], list[str]]] = [
        (
            cluster_name(service.name, version.name),
            [_lb_endpoint_field(endpoint) for endpoint in version.endpoints],
            [endpoint.host for endpoint in version.endpoints],
        )
        for version in service.versions
    ]
    if uses_pool(service):
        members.append(
            (
                pool_cluster_name(service.name),
                [
                    framed(
                        _LB_ENDPOINTS,
                        _lb_endpoint(e, v.name).SerializeToString(deterministic=True),
                    )
                    for v in service.versions
                    for e in v.endpoints
                ],
                [e.host for v in service.versions for e in v.endpoints],
            )
        )
    clusters: list[WrittenCluster] = []
    assignments: list[Assignment] = []
    tail = _eds_cluster_tail(_lb_policy(service), service.health_check)
    for name, lb_endpoints, hosts in members:
        if all(map(_is_ip, hosts)):
            # An EDS cluster is its name (field 1) and then the same fields for every
            # cluster of the service: those are serialized once per distinct value
            # (_eds_cluster_tail); the joined bytes are the cluster's deterministic
            # serialization (tests/translate/test_written_bytes.py). The name is field
            # 1 of its assignment too.
            name_field = framed(_NAME, name.encode())
            clusters.append(WrittenCluster(name, name_field + tail))
            assignments.append(Assignment(name, _assignment(name_field, lb_endpoints)))
            continue
        cluster = _cluster(name, _lb_policy(service), service.health_check)
        cluster.type = cluster_pb2.Cluster.STRICT_DNS
        # `localhost` resolves to ::1 first on many hosts while test and demo backends
        # listen on 127.0.0.1: prefer IPv4, fall back to IPv6.
        cluster.dns_lookup_family = cluster_pb2.Cluster.V4_PREFERRED
        load_assignment = _assignment(framed(_NAME, name.encode()), lb_endpoints)
        cluster.load_assignment.CopyFrom(
            endpoint_pb2.ClusterLoadAssignment.FromString(load_assignment)
        )
        clusters.append(WrittenCluster(name, cluster.SerializeToString(deterministic=True)))
    if comparators and compares(service):
        compare = compare_cluster(service, comparators)
        clusters.append(WrittenCluster(compare.name, compare.SerializeToString(deterministic=True)))
    return ServiceResources(tuple(clusters), tuple(assignments))


def _assignment(name_field: bytes, lb_endpoints: list[bytes]) -> bytes:
    """A ClusterLoadAssignment, serialized: its cluster_name (field 1, given framed), and
    one LocalityLbEndpoints (2) holding the endpoints (its lb_endpoints fields, given
    framed). Zero endpoints: an empty assignment, never a missing one (Envoy would wait
    for it)."""
    if lb_endpoints:
        return name_field + framed(_ENDPOINTS, b"".join(lb_endpoints))
    return name_field


_NAME = key(1)  # Cluster.name, ClusterLoadAssignment.cluster_name
_ENDPOINTS = key(2)  # ClusterLoadAssignment.endpoints
_LB_ENDPOINTS = key(2)  # LocalityLbEndpoints.lb_endpoints
_ONE = key(1)  # LbEndpoint.endpoint, Endpoint.address, Address.socket_address
_SOCKET_HOST = key(2)  # SocketAddress.address
_SOCKET_PORT = varint(3 << 3)  # SocketAddress.port_value, a varint


@functools.lru_cache(maxsize=256)
def _eds_cluster_tail(
    lb_policy: cluster_pb2.Cluster.LbPolicy.ValueType, check: HealthCheck | None
) -> bytes:
    """Every field of an EDS cluster after its name, serialized."""
    cluster = _cluster("", lb_policy, check)
    cluster.type = cluster_pb2.Cluster.EDS
    cluster.eds_cluster_config.eds_config.CopyFrom(ads())
    tail: bytes = cluster.SerializeToString(deterministic=True)
    return tail


def _cluster(
    name: str, lb_policy: cluster_pb2.Cluster.LbPolicy.ValueType, check: HealthCheck | None
) -> cluster_pb2.Cluster:
    cluster = cluster_pb2.Cluster(
        name=name, connect_timeout=duration(_CONNECT_TIMEOUT_SECONDS), lb_policy=lb_policy
    )
    if check is not None:
        cluster.health_checks.append(_health_check(check))
    return cluster


def _lb_policy(service: Service) -> cluster_pb2.Cluster.LbPolicy.ValueType:
    # A sticky service hashes on its header/cookie inside each cluster too. This is what
    # makes `sticky: {cookie, ttl}` work at all: Envoy generates the cookie only when a
    # hash-based load balancer asks the router for the request's hash; a round-robin
    # cluster never does (checked with Envoy 1.40: ROUND_ROBIN, no Set-Cookie ever;
    # RING_HASH, Set-Cookie on every cookie-less request). It also keeps a user on one
    # instance of the pool for `traffic: instances`, i.e. on one version.
    if service.sticky is not None:
        return cluster_pb2.Cluster.RING_HASH
    return cluster_pb2.Cluster.ROUND_ROBIN


def _health_check(check: HealthCheck) -> health_check_pb2.HealthCheck:
    interval = duration(check.interval_seconds)
    return health_check_pb2.HealthCheck(
        timeout=duration(check.timeout_seconds),
        interval=interval,
        # Envoy checks a cluster that gets no traffic only every 60s by default. A
        # deployed, unreleased version (a blue/green "green") gets no traffic yet must be
        # known healthy before it does: check it at the same pace as everything else.
        no_traffic_interval=interval,
        no_traffic_healthy_interval=interval,
        unhealthy_interval=interval,
        unhealthy_edge_interval=interval,
        healthy_edge_interval=interval,
        unhealthy_threshold=wrappers_pb2.UInt32Value(value=check.unhealthy_threshold),
        healthy_threshold=wrappers_pb2.UInt32Value(value=check.healthy_threshold),
        http_health_check=health_check_pb2.HealthCheck.HttpHealthCheck(path=check.path),
    )


def _lb_endpoint_field(endpoint: Endpoint) -> bytes:
    """``_lb_endpoint(endpoint, None)`` as a LocalityLbEndpoints.lb_endpoints field (2),
    serialized: endpoint (1) > address (1) > socket_address (1) > address (2),
    port_value (3, a varint). The four nested keys and lengths are written at once
    when the socket address is short (always, for an IP address)."""
    socket = framed(_SOCKET_HOST, endpoint.host.encode()) if endpoint.host else b""
    # port_value is in the oneof port_specifier: set, it is written even when 0.
    socket += _SOCKET_PORT + varint(endpoint.port)
    n = len(socket)
    if n < 0x80 - 6:  # every length below fits one byte
        return bytes((0x12, n + 6, 0x0A, n + 4, 0x0A, n + 2, 0x0A, n)) + socket
    return framed(_LB_ENDPOINTS, framed(_ONE, framed(_ONE, framed(_ONE, socket))))


def _lb_endpoint(endpoint: Endpoint, version: str | None) -> endpoint_components_pb2.LbEndpoint:
    lb_endpoint = endpoint_components_pb2.LbEndpoint(
        endpoint=endpoint_components_pb2.Endpoint(
            address=address_pb2.Address(
                socket_address=address_pb2.SocketAddress(
                    address=endpoint.host, port_value=endpoint.port
                )
            )
        )
    )
    if version is not None:
        lb_endpoint.metadata.CopyFrom(
            base_pb2.Metadata(
                filter_metadata={
                    METADATA_NAMESPACE: struct_pb2.Struct(
                        fields={"version": struct_pb2.Value(string_value=version)}
                    )
                }
            )
        )
    return lb_endpoint


def _is_ip(host: str) -> bool:
    # inet_pton takes a dotted quad exactly as ipaddress does (four decimal octets up to
    # 255, no leading zeros) at a tenth of the cost; anything else (IPv6, with a zone
    # or not, and every host name) gets ipaddress's answer.
    try:
        socket.inet_pton(socket.AF_INET, host)
    except (OSError, ValueError):
        pass
    else:
        return True
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
