"""How translated resources are named.

Names are what operators read in Envoy's admin pages and stats
(`cluster.checkout_v2.upstream_rq_5xx`), so they are plain and predictable. Service names
are DNS labels and version names contain no `_`, so `{service}_{version}` never collides
between two (service, version) pairs; `instances` is not a valid version name, so the
pool cluster never collides with a version cluster either.
"""

from __future__ import annotations

__all__ = ["GATEWAY_HEADER", "cluster_name", "pool_cluster_name", "route_name", "scope_name"]

GATEWAY_HEADER = "x-turnout-gateway"
"""The request header a scoped gateway's listener writes its own name into (the first
fragment of the scope key; removed before the request is forwarded)."""


def cluster_name(service: str, version: str) -> str:
    """The cluster of one deployed version: `checkout_v2`."""
    return f"{service}_{version}"


def pool_cluster_name(service: str) -> str:
    """The `traffic: instances` pool over every version's endpoints: `checkout_instances`."""
    return f"{service}_instances"


def route_name(service: str, *parts: str) -> str:
    """A route's readable name: `checkout/pin/v2`, `checkout/rule/dogfood`, `checkout/default`."""
    return "/".join((service, *parts))


def scope_name(gateway: str, host: str) -> str:
    """A scope, and its route configuration: `public/checkout.example.com`."""
    return f"{gateway}/{host}"
