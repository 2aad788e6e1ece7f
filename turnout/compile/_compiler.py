"""The compile layer: a validated policy set -> its translation -> checked snapshots.

Pure: no I/O, no grpc, no asyncio, and no process-wide side effects (garbage
collector tuning belongs to the server process: see turnout.server's heap keeping).
The server runtime (turnout.server) publishes what this produces; `turnout render`,
`diff`, `status --policies` and the benchmarks use the same path, so what they show is
exactly what would be served.

A set compiles only when every snapshot a proxy can be given passes
:meth:`Snapshot.check`: a compile that fails raises InconsistentSnapshotError and
leaves the compiler exactly as it was (see :meth:`Compiler.compile`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TypeVar

from envoy.config.route.v3.scoped_route_pb2 import ScopedRouteConfiguration
from google.protobuf.message import Message

from turnout.cache import (
    CLUSTER_TYPE,
    ENDPOINT_TYPE,
    LISTENER_TYPE,
    ROUTE_TYPE,
    SCOPED_ROUTE_TYPE,
    CachedResource,
    InconsistentSnapshotError,
    ResourcePool,
    Snapshot,
)
from turnout.policy import Endpoint, PolicySet
from turnout.translate import Resources, RouteParts, ServiceResources, Translation, Translator

Gateways = tuple[str, ...]
"""A set of gateway names, sorted: what one proxy group gets."""


def resources_by_type(resources: Resources) -> dict[str, Sequence[Message]]:
    """The translate layer's output keyed by xDS type URL, as the cache takes it."""
    return {
        CLUSTER_TYPE: resources.clusters,
        ENDPOINT_TYPE: resources.endpoints,
        LISTENER_TYPE: resources.listeners,
        ROUTE_TYPE: resources.routes,
        SCOPED_ROUTE_TYPE: resources.scoped_routes,
    }


@dataclass(frozen=True, slots=True)
class Compiled:
    """A policy set that is ready to serve: its translation and checked snapshots."""

    policies: PolicySet
    translation: Translation
    snapshot: Snapshot
    """What an Envoy given every gateway gets (its ``group_version`` is the policy version)."""
    groups: Mapping[Gateways, Snapshot]
    """The checked snapshot of every gateway set checked at compile: the whole set and
    each gateway alone."""
    compiler: Compiler = field(repr=False)
    """What compiled it: other gateway sets' snapshots are built with it, reusing its work."""
    _unions: dict[Gateways, Snapshot] = field(default_factory=dict, init=False, repr=False)

    @property
    def policy_version(self) -> str:
        """The policy version: what turnout serves and reports (``served_version``), what
        a proxy is synced to once it ACKed every type. It is the group snapshot version
        of the whole set (every gateway); a proxy given fewer gateways gets another
        snapshot, with its own group version and type versions, synced to this one."""
        return self.snapshot.group_version

    def for_gateways(self, gateways: Gateways) -> Snapshot:
        """The checked snapshot of what an Envoy given ``gateways`` (sorted) gets.

        Built once per gateway set and compiled set. A set not checked at compile (a
        union of several gateways but not all) is checked here; it cannot fail where
        each of its gateways passed (see :meth:`Compiler.compile`), and should it
        anyway, InconsistentSnapshotError is raised rather than anything unchecked
        returned: the stream asking logs it and its proxy keeps the config it has.
        """
        snapshot = self.groups.get(gateways)
        if snapshot is None:
            snapshot = self._unions.get(gateways)
        if snapshot is None:
            snapshot = self.compiler.union(self.translation, gateways)
            self._unions[gateways] = snapshot
        return snapshot


def compile_policies(policies: PolicySet) -> Compiled:
    """Translate a valid set and check the result; raises InconsistentSnapshotError."""
    return Compiler().compile(policies)


class Compiler:
    """Compiles policy sets one after another, redoing only what changed.

    The :class:`Translator` re-translates only services that changed and hands back
    the same messages for the rest; the :class:`ResourcePool` reuses their cached
    (serialized, hashed) forms; each snapshot is patched from the last *checked*
    snapshot of the same gateways service by service, keeps its hash of every type
    that did not change, and is checked only where it differs. A one-service change
    re-translates, serializes and hashes that service's resources and its gateway's
    routes.

    The identity contract: all of that reuse is found by object identity (a service
    whose ``(clusters, assignments)`` tuple is the very object of the last build is
    unchanged), because comparing by content would cost what it saves. A translation
    that hands back equal copies is still compiled correctly, only all of it, every
    time: ``patched_services`` counts the services patched in (tests pin that a
    one-service change patches one), so such a copy fails a test instead of silently
    turning incremental compiles off.
    """

    def __init__(self, comparators: Sequence[Endpoint] = ()) -> None:
        """``comparators``: `turnout serve --comparator` (see Translator)."""
        self.translator = Translator(comparators)
        self.pool = ResourcePool()
        self._checked: dict[Gateways, _Built] = {}
        """Per gateway set, the last build that passed the check: the only thing a new
        build is patched from and its check skips against."""
        self.patched_services = 0
        """Services added to a snapshot (new or changed since the last checked build of
        the same gateways) since this compiler was made."""

    def compile(self, policies: PolicySet) -> Compiled:
        """Translate ``policies`` and check every snapshot a proxy can be given;
        raises InconsistentSnapshotError (and keeps nothing of this compile) if one fails.

        Which gateway sets are checked: the whole set, and each gateway alone. A proxy
        gets the gateways whose ``proxies`` globs match its node.cluster, so any union
        of gateways may be asked for, and which unions a glob can reach is not known
        until a proxy connects. Checking each gateway alone covers them all: every rule
        of the check pairs a resource with partners built from its own gateway's pieces
        (a listener with its route configuration, a route with the clusters of that
        gateway's services, a cluster with its assignment), and a union of gateways
        holds every piece of each, so a union passes when each of its gateways does.
        So a failure is found here, before anything is published, and rejects the
        whole set; nothing is left to fail once a proxy connects (unions are still
        checked when built, in :meth:`union`).
        """
        translation = self.translator.translate(policies)
        self.pool.sweep()
        whole = tuple(g.name for g in policies.gateways)
        keys = [whole, *((name,) for name in whole if (name,) != whole)]
        built = {key: self._build(translation, key) for key in keys}
        found: dict[str, str] = {}  # each problem once, where first found
        for key, candidate in built.items():
            try:
                self._check(key, candidate)
            except InconsistentSnapshotError as exc:
                where = "" if key == whole else f"gateway {key[0]} alone: "
                for problem in exc.problems:
                    found.setdefault(problem, where + problem)
        if found:
            raise InconsistentSnapshotError(found.values())
        self._checked.update(built)
        groups = {key: candidate.snapshot for key, candidate in built.items()}
        return Compiled(policies, translation, groups[whole], MappingProxyType(groups), self)

    def union(self, translation: Translation, gateways: Gateways) -> Snapshot:
        """The checked snapshot of what an Envoy serving ``gateways`` gets, built from
        ``translation``; raises InconsistentSnapshotError (keeping nothing) if it fails."""
        candidate = self._build(translation, gateways)
        self._check(gateways, candidate)
        self._checked[gateways] = candidate
        return candidate.snapshot

    def _check(self, gateways: Gateways, candidate: _Built) -> None:
        last = self._checked.get(gateways)
        candidate.snapshot.check(last.snapshot if last is not None else None)

    def _build(self, translation: Translation, gateways: Gateways) -> _Built:
        """What an Envoy serving ``gateways`` gets, patched from the last checked build
        of the same gateways; not checked, and not remembered."""
        pieces = translation.pieces(gateways)
        pool = self.pool
        services = {id(pair[0]): pair for pair in pieces.services}
        previous = self._checked.get(gateways)
        if previous is None:
            removed: list[ServiceResources] = []
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
        self.patched_services += len(added)
        by_type: dict[str, Mapping[str, CachedResource]] = {
            CLUSTER_TYPE: _patch(
                old_clusters,
                [c.name for service in removed for c in service.clusters],
                [pool.cluster(c.serialized) for service in added for c in service.clusters],
            ),
            ENDPOINT_TYPE: _patch(
                old_endpoints,
                [a.name for service in removed for a in service.assignments],
                [pool.assignment(a.name, a.serialized) for s in added for a in s.assignments],
            ),
            LISTENER_TYPE: {m.name: pool.resource(LISTENER_TYPE, m) for m in pieces.listeners},
            SCOPED_ROUTE_TYPE: _patch_sources(
                previous.scopes if previous is not None else None,
                previous.snapshot.resources(SCOPED_ROUTE_TYPE) if previous is not None else {},
                pieces.scopes,
                lambda m: str(m.name),
                lambda m: pool.resource(SCOPED_ROUTE_TYPE, m),
            ),
            ROUTE_TYPE: _patch_sources(
                previous.routes if previous is not None else None,
                previous.snapshot.resources(ROUTE_TYPE) if previous is not None else {},
                pieces.routes,
                lambda parts: parts.name,
                lambda parts: pool.route_configuration(
                    parts.name, parts.virtual_hosts, parts.serialized
                ),
            ),
        }
        snapshot = Snapshot(by_type, previous=previous.snapshot if previous is not None else None)
        return _Built(services, snapshot, pieces.scopes, pieces.routes)


@dataclass(frozen=True, slots=True)
class _Built:
    services: dict[int, ServiceResources]
    """id of a service's clusters tuple -> its resources, as built (they are held, so
    the id is not reused while this lives)."""
    snapshot: Snapshot
    scopes: tuple[ScopedRouteConfiguration, ...]
    """What the snapshot's scopes were made from, in order (held: compared by identity)."""
    routes: tuple[RouteParts, ...]
    """What its route configurations were made from, in order."""


_S = TypeVar("_S")


def _patch_sources(
    before: tuple[_S, ...] | None,
    built: Mapping[str, CachedResource],
    sources: tuple[_S, ...],
    name: Callable[[_S], str],
    make: Callable[[_S], CachedResource],
) -> Mapping[str, CachedResource]:
    """The resources made from ``sources``: ``built`` (what ``before`` made) itself when
    every source is the very object at its place in ``before``, else ``built`` with
    the differing ones made again. A one-service change on a 5,000-host gateway then
    visits its own route configuration and scope, not 10,000 pool look-ups; ``make``
    runs for every source when there is nothing to patch from."""
    if before is None or len(before) != len(sources):
        return {name(source): make(source) for source in sources}
    changed = [(old, new) for old, new in zip(before, sources, strict=True) if old is not new]
    if not changed:
        return built
    result = dict(built)
    gone = {name(old) for old, _ in changed} - {name(new) for _, new in changed}
    for old_name in gone:
        del result[old_name]
    for _, new in changed:
        result[name(new)] = make(new)  # in place when the name stays, as _patch does
    return result


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
