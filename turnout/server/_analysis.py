"""Release analysis wired to the served policies: which cluster is which version.

analysis is handed the map from Envoy cluster names to (service, version) as data; this
is where it comes from: the controller's current policy set, named as translate names
clusters. Built once per accepted set, so the sink can ask for every stat it reads.
"""

from __future__ import annotations

from turnout.analysis import VersionKey
from turnout.policy import PolicySet
from turnout.server._controller import Controller
from turnout.translate import cluster_name

__all__ = ["VersionClusters", "version_clusters"]


def version_clusters(policies: PolicySet) -> dict[str, VersionKey]:
    """{cluster: (service, version)} for every deployed version of every service.
    (A `traffic: instances` pool mixes versions and is not in the map.)"""
    return {
        cluster_name(service.name, version.name): (service.name, version.name)
        for service in policies.services
        for version in service.versions
    }


class VersionClusters:
    """A `ClusterMap` callable that follows the controller's current policy set."""

    def __init__(self, controller: Controller) -> None:
        self._controller = controller
        self._policies: PolicySet | None = None
        self._map: dict[str, VersionKey] = {}

    def __call__(self, cluster: str) -> VersionKey | None:
        current = self._controller.current
        if current is None:
            return None
        if current.policies is not self._policies:
            self._map = version_clusters(current.policies)
            self._policies = current.policies
        return self._map.get(cluster)
