"""Translation: pure functions from the validated policy model to Envoy v3 resources.

`translate(policies)` builds every listener, route configuration, cluster and endpoint
assignment once; `Translation.select(gateways)` gives the part an Envoy serving those
gateways needs. No I/O, no clocks, no asyncio: the same PolicySet gives byte-identical
messages (serialized deterministically), so snapshot versions can be content hashes.
"""

from __future__ import annotations

from ._clusters import Assignment, ServiceResources, WrittenCluster
from ._compare import COMPARE_HEADER, compare_cluster_name
from ._names import cluster_name, pool_cluster_name, route_name
from ._translation import Resources, RouteParts, Translation, Translator, to_json, translate

__all__ = [
    "COMPARE_HEADER",
    "Assignment",
    "Resources",
    "RouteParts",
    "ServiceResources",
    "Translation",
    "Translator",
    "WrittenCluster",
    "cluster_name",
    "compare_cluster_name",
    "pool_cluster_name",
    "route_name",
    "to_json",
    "translate",
]
