"""Snapshots of Envoy resources and the cache that publishes them.

This layer imports protobuf and Envoy's resource types only: no gRPC, no policy,
no translation. See ``_snapshot`` for the hashing rules and ``_references`` for the
edges between resources.
"""

from __future__ import annotations

from turnout.cache._cache import SnapshotCache, Staged, Watch
from turnout.cache._pool import ResourcePool
from turnout.cache._references import (
    HCM_TYPE,
    eds_name,
    listener_route_names,
    listener_scoped_routes,
    route_cluster_names,
    virtual_host_cluster_names,
)
from turnout.cache._snapshot import (
    CachedResource,
    InconsistentSnapshotError,
    Selection,
    Snapshot,
    content_version,
    intern_names,
    pairs_version,
)
from turnout.cache._types import (
    CLUSTER_TYPE,
    ENDPOINT_TYPE,
    LISTENER_TYPE,
    ORDER,
    ROUTE_TYPE,
    SCOPED_ROUTE_TYPE,
    short_name,
)

__all__ = [
    "CLUSTER_TYPE",
    "ENDPOINT_TYPE",
    "HCM_TYPE",
    "LISTENER_TYPE",
    "ORDER",
    "ROUTE_TYPE",
    "SCOPED_ROUTE_TYPE",
    "CachedResource",
    "InconsistentSnapshotError",
    "ResourcePool",
    "Selection",
    "Snapshot",
    "SnapshotCache",
    "Staged",
    "Watch",
    "content_version",
    "eds_name",
    "intern_names",
    "listener_route_names",
    "listener_scoped_routes",
    "pairs_version",
    "route_cluster_names",
    "short_name",
    "virtual_host_cluster_names",
]
