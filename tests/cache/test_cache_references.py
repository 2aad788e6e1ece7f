"""The edges between resources: route -> clusters, listener -> routes, cluster -> EDS name."""

from __future__ import annotations

from envoy.config.cluster.v3.cluster_pb2 import Cluster
from envoy.config.listener.v3.listener_components_pb2 import Filter
from envoy.config.route.v3.route_components_pb2 import Route, RouteAction, RouteMatch
from google.protobuf.any_pb2 import Any

from turnout.cache import eds_name, listener_route_names, route_cluster_names
from turnout.testing import eds_cluster, rds_listener, weighted_routes


def test_route_references_weighted_clusters_and_mirrors() -> None:
    """Weighted clusters, a plain cluster and mirror targets (route and virtual host) count."""
    routes = weighted_routes("public", {"a": 90, "b": 10}, mirror="dark")
    vhost = routes.virtual_hosts[0]
    vhost.routes.append(Route(match=RouteMatch(prefix="/pinned"), route=RouteAction(cluster="p")))
    vhost.routes.append(
        Route(match=RouteMatch(prefix="/dyn"), route=RouteAction(cluster_header="x"))
    )
    vhost.request_mirror_policies.add(cluster="vh-dark")
    assert route_cluster_names(routes) == {"a", "b", "dark", "p", "vh-dark"}


def test_listener_references_rds_names_inside_the_hcm() -> None:
    """A listener's RDS names are read from its decoded HTTP connection manager; other
    filters are skipped."""
    listener = rds_listener("public", "public-routes")
    other = Any(
        type_url="type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy"
    )
    listener.filter_chains[0].filters.insert(0, Filter(name="tcp", typed_config=other))
    default_chain = rds_listener("x", "default-routes").filter_chains[0]
    listener.default_filter_chain.CopyFrom(default_chain)
    assert listener_route_names(listener) == {"public-routes", "default-routes"}


def test_eds_name_uses_service_name_or_cluster_name() -> None:
    """An EDS cluster is filled by its service_name, else its own name; others by nothing."""
    plain = eds_cluster("a")
    named = eds_cluster("b")
    named.eds_cluster_config.service_name = "b-endpoints"
    static = Cluster(name="s", type=Cluster.DiscoveryType.STATIC)
    assert (eds_name(plain), eds_name(named), eds_name(static)) == ("a", "b-endpoints", None)
