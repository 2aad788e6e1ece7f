"""Dark response diffing in Envoy: mirrors with `compare:` copy to the comparators.

With comparators configured (`turnout serve --comparator HOST:PORT`), a mirror whose
policy has `compare:` copies its share of requests to the service's comparator
cluster (`checkout__compare`) instead of the dark version's, and marks each copy with
the route it came from (`x-turnout-compare: checkout/default`), set by Envoy so a
client cannot choose it. The comparators call light and dark themselves. Envoy's
mirror is fire-and-forget: the copy's answer is discarded and never awaited by the
original request (checked with Envoy 1.40: a comparator that never answers, or is
down, leaves the light path's latency unchanged; bench/compare measures it).

Without comparators the mirror copies to the dark version as usual (nothing would
compare the answers; the dark judgement says so).

`{service}__compare` never collides with a version's cluster (`{service}_{version}`):
a version name cannot start with `_`.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.common.mutation_rules.v3 import mutation_rules_pb2
from envoy.config.core.v3 import address_pb2, base_pb2
from envoy.config.endpoint.v3 import endpoint_components_pb2, endpoint_pb2

from turnout.policy import Endpoint, Service

from ._common import duration

__all__ = ["COMPARE_HEADER", "compare_cluster", "compare_cluster_name", "compares", "mark_copy"]

#: The header Envoy sets on a copy for the comparators: the route it was mirrored
#: from (`checkout/default`, `checkout/rule/beta`).
COMPARE_HEADER = "x-turnout-compare"


def compare_cluster_name(service: str) -> str:
    """The comparators' cluster for one service: `checkout__compare`."""
    return f"{service}__compare"


def compares(service: Service) -> bool:
    """True when a mirror of the service (default route or rule) has `compare:`."""
    mirrors = [service.mirror, *(rule.mirror for rule in service.rules)]
    return any(m is not None and m.compare is not None and m.percent > 0 for m in mirrors)


def compare_cluster(service: Service, comparators: Sequence[Endpoint]) -> cluster_pb2.Cluster:
    """The cluster of the comparators, endpoints inline (STATIC for addresses,
    STRICT_DNS when any is a name, e.g. a Kubernetes Service)."""
    name = compare_cluster_name(service.name)
    ips = all(_is_ip(e.host) for e in comparators)
    cluster = cluster_pb2.Cluster(
        name=name,
        connect_timeout=duration(1.0),
        type=cluster_pb2.Cluster.STATIC if ips else cluster_pb2.Cluster.STRICT_DNS,
        load_assignment=endpoint_pb2.ClusterLoadAssignment(
            cluster_name=name,
            endpoints=[
                endpoint_components_pb2.LocalityLbEndpoints(
                    lb_endpoints=[
                        endpoint_components_pb2.LbEndpoint(
                            endpoint=endpoint_components_pb2.Endpoint(
                                address=address_pb2.Address(
                                    socket_address=address_pb2.SocketAddress(
                                        address=e.host, port_value=e.port
                                    )
                                )
                            )
                        )
                        for e in comparators
                    ]
                )
            ],
        ),
    )
    if not ips:
        cluster.dns_lookup_family = cluster_pb2.Cluster.V4_PREFERRED
    return cluster


def mark_copy(route: str) -> mutation_rules_pb2.HeaderMutation:
    """Set `x-turnout-compare: ROUTE` on the copy, overwriting what a client sent."""
    return mutation_rules_pb2.HeaderMutation(
        append=base_pb2.HeaderValueOption(
            header=base_pb2.HeaderValue(key=COMPARE_HEADER, value=route),
            append_action=base_pb2.HeaderValueOption.OVERWRITE_IF_EXISTS_OR_ADD,
        )
    )


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
