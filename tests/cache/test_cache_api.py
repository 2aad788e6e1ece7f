"""The public surface of turnout.cache."""

from __future__ import annotations

import turnout.cache


def test_public_surface() -> None:
    """turnout.cache exports exactly its documented names, all importable."""
    assert sorted(turnout.cache.__all__) == sorted(
        [
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
    )
    for name in turnout.cache.__all__:
        assert hasattr(turnout.cache, name)
    assert turnout.cache.ORDER == (
        turnout.cache.CLUSTER_TYPE,
        turnout.cache.ENDPOINT_TYPE,
        turnout.cache.LISTENER_TYPE,
        turnout.cache.SCOPED_ROUTE_TYPE,
        turnout.cache.ROUTE_TYPE,
    )
