"""The compile layer: a validated policy set -> its translation -> checked snapshots.

Pure: no I/O, no grpc, no asyncio. The server runtime (turnout.server) publishes what
this produces; `turnout render`, `diff`, `status --policies` and the benchmarks use
the same path, so what they show is exactly what would be served.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import structlog
from envoy.config.cluster.v3.cluster_pb2 import Cluster
from envoy.config.endpoint.v3.endpoint_pb2 import ClusterLoadAssignment
from google.protobuf.message import Message

from turnout.cache import (
    CLUSTER_TYPE,
    ENDPOINT_TYPE,
    LISTENER_TYPE,
    ROUTE_TYPE,
    CachedResource,
    ResourcePool,
    Snapshot,
)
from turnout.policy import PolicySet
from turnout.translate import Resources, Translation, Translator

log = structlog.get_logger("turnout.reload")


def resources_by_type(resources: Resources) -> dict[str, Sequence[Message]]:
    """The translate layer's output keyed by xDS type URL, as the cache takes it."""
    return {
        CLUSTER_TYPE: resources.clusters,
        ENDPOINT_TYPE: resources.endpoints,
        LISTENER_TYPE: resources.listeners,
        ROUTE_TYPE: resources.routes,
    }


@dataclass(frozen=True, slots=True)
class Compiled:
    """A policy set that is ready to serve: its translation and whole-set snapshot."""

    policies: PolicySet
    translation: Translation
    snapshot: Snapshot
    compiler: Compiler | None = None
    """What compiled it: proxy groups' snapshots are built with it, reusing its work."""

    @property
    def version(self) -> str:
        return self.snapshot.version


def compile_policies(policies: PolicySet) -> Compiled:
    """Translate a valid set and check the result; raises InconsistentSnapshotError."""
    return Compiler().compile(policies)


class Compiler:
    """Compiles policy sets one after another, redoing only what changed.

    The :class:`Translator` re-translates only services that changed and hands back
    the same messages for the rest; the :class:`ResourcePool` reuses their cached
    (serialized, hashed) forms; each snapshot is patched from the previous one of the
    same gateways service by service, keeps its hash of every type that did not
    change, and is checked only where it differs. A one-service change re-translates,
    serializes and hashes that service's resources and its gateway's routes.
    """

    def __init__(self) -> None:
        self.translator = Translator()
        self.pool = ResourcePool()
        self._built: dict[tuple[str, ...], _Built] = {}

    def compile(self, policies: PolicySet) -> Compiled:
        """Translate ``policies`` and check the result; raises InconsistentSnapshotError."""
        with _collector_paused():
            translation = self.translator.translate(policies)
            self.pool.sweep()
            gateways = tuple(g.name for g in policies.gateways)
            previous = self._built.get(gateways)
            snapshot = self.snapshot(translation, gateways)
            snapshot.check(previous.snapshot if previous is not None else None)
        return Compiled(policies, translation, snapshot, self)

    def snapshot(self, translation: Translation, gateways: tuple[str, ...]) -> Snapshot:
        """The snapshot of what an Envoy serving ``gateways`` gets."""
        pieces = translation.pieces(gateways)
        pool = self.pool
        services = {id(pair[0]): pair for pair in pieces.services}
        previous = self._built.get(gateways)
        if previous is None:
            removed: list[_ServiceMessages] = []
            added = list(services.values())
            old_clusters: Mapping[str, CachedResource] = {}
            old_endpoints: Mapping[str, CachedResource] = {}
        else:
            removed = [
                pair
                for key, pair in previous.services.items()
                if services.get(key, (None,))[0] is not pair[0]
            ]
            added = [
                pair
                for key, pair in services.items()
                if previous.services.get(key, (None,))[0] is not pair[0]
            ]
            old_clusters = previous.snapshot.resources(CLUSTER_TYPE)
            old_endpoints = previous.snapshot.resources(ENDPOINT_TYPE)
        by_type: dict[str, Mapping[str, CachedResource]] = {
            CLUSTER_TYPE: _patch(
                old_clusters,
                [m.name for clusters, _ in removed for m in clusters],
                [pool.resource(CLUSTER_TYPE, m) for clusters, _ in added for m in clusters],
            ),
            ENDPOINT_TYPE: _patch(
                old_endpoints,
                [m.cluster_name for _, endpoints in removed for m in endpoints],
                [pool.resource(ENDPOINT_TYPE, m) for _, endpoints in added for m in endpoints],
            ),
            LISTENER_TYPE: {m.name: pool.resource(LISTENER_TYPE, m) for m in pieces.listeners},
            ROUTE_TYPE: {
                parts.name: pool.route_configuration(
                    parts.name, parts.virtual_hosts, parts.serialized
                )
                for parts in pieces.routes
            },
        }
        snapshot = Snapshot(by_type, previous=previous.snapshot if previous is not None else None)
        self._built[gateways] = _Built(services, snapshot)
        return snapshot


_ServiceMessages = tuple[tuple[Cluster, ...], tuple[ClusterLoadAssignment, ...]]


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """No cyclic garbage collection while a compile builds (nearly all of what it makes
    lives on): a full compile of 5,000 services makes half a million objects, and the
    collector's passes over that growing heap were a tenth of its time. Reference
    counting still frees everything at once; the collector resumes afterwards."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


@dataclass(frozen=True, slots=True)
class _Built:
    services: dict[int, Any]
    """id of a service's clusters tuple -> (clusters, assignments), as last built."""
    snapshot: Snapshot


def _patch(
    before: Mapping[str, CachedResource], removed: list[str], added: list[CachedResource]
) -> Mapping[str, CachedResource]:
    """``before`` without ``removed`` names, with ``added``: ``before`` itself when
    that changes nothing (so the snapshot keeps its hash of the type), found before
    copying anything (a traffic change re-adds a service's very same clusters)."""
    readded = {resource.name for resource in added}
    gone = [name for name in removed if name not in readded and name in before]
    new = [resource for resource in added if before.get(resource.name) is not resource]
    if not gone and not new:
        return before
    result = dict(before)
    for name in gone:
        del result[name]
    for resource in new:
        result[resource.name] = resource
    return result
