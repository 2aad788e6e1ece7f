"""Which Envoy cluster carries which (service, version): given to analysis as data.

analysis knows nothing of policies or of how translation names clusters; the
composition root passes either a mapping `{cluster: (service, version)}` or a
callable answering the same (None for a cluster that is no version of a service,
such as `turnout_xds` or a `traffic: instances` pool, whose stats mix versions).
A callable is asked afresh each time, so it can follow policy reloads.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

__all__ = ["ClusterMap", "VersionKey", "clusters_of", "resolver"]

VersionKey = tuple[str, str]
"""(service, version)"""

ClusterMap = Mapping[str, VersionKey] | Callable[[str], VersionKey | None]


def resolver(clusters: ClusterMap) -> Callable[[str], VersionKey | None]:
    """The cluster map as a function from cluster name to (service, version) or None."""
    if isinstance(clusters, Mapping):
        return clusters.get
    return clusters


def clusters_of(
    resolve: Callable[[str], VersionKey | None], known: Iterable[str], service: str, version: str
) -> tuple[str, ...]:
    """The clusters among `known` that carry `service`'s `version`, sorted."""
    return tuple(sorted(name for name in known if resolve(name) == (service, version)))
