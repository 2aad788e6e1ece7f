"""What one resource names of another: the edges the consistency check and the
server's make-before-break follow.

- A route configuration names clusters in three places: ``route.cluster``, every
  entry of ``route.weighted_clusters``, and every ``request_mirror_policies`` target
  (on the route and on the virtual host). A mirror target is a real dependency: Envoy
  rejects nothing, but mirrors to a missing cluster are silently dropped.
  ``cluster_header`` names a cluster only at request time and cannot be followed.
- A listener names route configurations only inside the opaque ``typed_config`` of
  its HTTP connection manager filters, so the Any has to be decoded to find them. A
  connection manager routing by scoped RDS names none: it takes every scope there is
  (``listener_scoped_routes`` gives its scope set's name), and each
  ScopedRouteConfiguration names its route configuration.
- An EDS cluster is filled by the ClusterLoadAssignment named by
  ``eds_cluster_config.service_name``, or by the cluster's own name when that is empty.
"""

from __future__ import annotations

from collections.abc import Iterator

from envoy.config.cluster.v3.cluster_pb2 import Cluster
from envoy.config.listener.v3.listener_pb2 import Listener
from envoy.config.route.v3.route_components_pb2 import VirtualHost
from envoy.config.route.v3.route_pb2 import RouteConfiguration
from envoy.extensions.filters.network.http_connection_manager.v3.http_connection_manager_pb2 import (  # noqa: E501
    HttpConnectionManager,
)
from google.protobuf.any_pb2 import Any
from google.protobuf.message import DecodeError

__all__ = [
    "HCM_TYPE",
    "eds_name",
    "listener_route_names",
    "listener_scoped_routes",
    "route_cluster_names",
    "virtual_host_cluster_names",
]

HCM_TYPE = (
    "type.googleapis.com/"
    "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
)


def route_cluster_names(route_config: RouteConfiguration) -> frozenset[str]:
    """Every cluster a route configuration can send (or mirror) traffic to."""
    names: set[str] = set()
    for vhost in route_config.virtual_hosts:
        names |= virtual_host_cluster_names(vhost)
    return frozenset(names)


def virtual_host_cluster_names(vhost: VirtualHost) -> frozenset[str]:
    """Every cluster one virtual host can send (or mirror) traffic to."""
    # Read through the cluster_specifier oneof: ``action.cluster`` is "" and
    # ``weighted_clusters`` empty unless the oneof holds them, so asking which one is
    # set reads the same names with half the attribute look-ups (a compile reads every
    # virtual host of 5,000 services).
    names: set[str] = {p.cluster for p in vhost.request_mirror_policies}
    for route in vhost.routes:
        if not route.HasField("route"):
            continue
        action = route.route
        which = action.WhichOneof("cluster_specifier")
        if which == "cluster":
            names.add(action.cluster)
        elif which == "weighted_clusters":
            for weighted in action.weighted_clusters.clusters:
                names.add(weighted.name)
        mirrors = action.request_mirror_policies
        if mirrors:
            for mirror in mirrors:
                names.add(mirror.cluster)
    names.discard("")
    return frozenset(names)


def listener_route_names(listener: Listener) -> frozenset[str]:
    """The route configuration names a listener's HTTP connection managers fetch by RDS."""
    names: set[str] = set()
    for hcm in _connection_managers(listener):
        if hcm.HasField("rds") and hcm.rds.route_config_name:
            names.add(hcm.rds.route_config_name)
    return frozenset(names)


def listener_scoped_routes(listener: Listener) -> frozenset[str]:
    """The names of the scoped route sets (``scoped_routes.name``) a listener's HTTP
    connection managers take by scoped RDS."""
    return frozenset(
        hcm.scoped_routes.name
        for hcm in _connection_managers(listener)
        if hcm.HasField("scoped_routes") and hcm.scoped_routes.HasField("scoped_rds")
    )


def eds_name(cluster: Cluster) -> str | None:
    """The EDS resource name that fills this cluster, or None if it is not an EDS cluster."""
    if cluster.WhichOneof("cluster_discovery_type") != "type":
        return None
    if cluster.type != _EDS:
        return None
    return str(cluster.eds_cluster_config.service_name or cluster.name)


_EDS = Cluster.DiscoveryType.EDS  # an enum's attribute look-up is slow: once


def _connection_managers(listener: Listener) -> Iterator[HttpConnectionManager]:
    chains = list(listener.filter_chains)
    if listener.HasField("default_filter_chain"):
        chains.append(listener.default_filter_chain)
    anys: list[Any] = [f.typed_config for chain in chains for f in chain.filters]
    if listener.HasField("api_listener"):
        anys.append(listener.api_listener.api_listener)
    for typed in anys:
        if typed.type_url != HCM_TYPE:
            continue
        try:
            yield HttpConnectionManager.FromString(typed.value)
        except DecodeError:
            # Envoy would reject such a listener itself; a reference walk just skips it.
            continue
