"""Type URLs of the five resource types turnout serves, in the order ADS must send them.

The order of ``ORDER`` matters: over ADS, Envoy needs a cluster (CDS) before the
assignment that fills it (EDS), and a route (RDS) must only name clusters the proxy
already has, so listeners (LDS), their scopes (SRDS, for a listener routing by scoped
RDS) and their routes come last, in the order each names the next. The server walks
the types in this order and holds a later type while an earlier one is still in flight
(https://www.envoyproxy.io/docs/envoy/latest/api-docs/xds_protocol#eventual-consistency-considerations).
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "CLUSTER_TYPE",
    "ENDPOINT_TYPE",
    "LISTENER_TYPE",
    "ORDER",
    "ROUTE_TYPE",
    "SCOPED_ROUTE_TYPE",
    "short_name",
]

CLUSTER_TYPE: Final = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
ENDPOINT_TYPE: Final = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"
LISTENER_TYPE: Final = "type.googleapis.com/envoy.config.listener.v3.Listener"
ROUTE_TYPE: Final = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"
SCOPED_ROUTE_TYPE: Final = "type.googleapis.com/envoy.config.route.v3.ScopedRouteConfiguration"

ORDER: Final[tuple[str, ...]] = (
    CLUSTER_TYPE,
    ENDPOINT_TYPE,
    LISTENER_TYPE,
    SCOPED_ROUTE_TYPE,
    ROUTE_TYPE,
)

_SHORT: Final = {
    CLUSTER_TYPE: "CDS",
    ENDPOINT_TYPE: "EDS",
    LISTENER_TYPE: "LDS",
    SCOPED_ROUTE_TYPE: "SRDS",
    ROUTE_TYPE: "RDS",
}


def short_name(type_url: str) -> str:
    """The xDS service's short name for a type URL (``CDS``...), or the URL itself."""
    return _SHORT.get(type_url, type_url)
