"""The reload path: policy files -> validated set -> Envoy resources -> published snapshot.

This is the composition root's glue between the layers. A set is published only when
it loads, validates, translates and passes the snapshot consistency check; otherwise
it is rejected whole, its errors are kept for `/status`, and what is being served is
left exactly as it was.
"""

from __future__ import annotations

import contextlib
import gc
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
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
    InconsistentSnapshotError,
    ResourcePool,
    Snapshot,
    SnapshotCache,
)
from turnout.policy import PolicySet, PolicySetError, load_policies
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


@dataclass(slots=True)
class Rejection:
    at: str
    errors: list[str]


@dataclass(slots=True)
class Controller:
    """Loads the policy directory and publishes every accepted set to the cache."""

    directory: Path
    cache: SnapshotCache
    current: Compiled | None = None
    rejected: Rejection | None = None
    last_rejected: Rejection | None = None
    accepted_at: str | None = None
    reloads: dict[str, int] = field(default_factory=lambda: {"accepted": 0, "rejected": 0})
    compiler: Compiler = field(default_factory=Compiler)

    def reload(self) -> bool:
        """Load, validate, translate and publish; False when the set was rejected."""
        started = time.perf_counter()
        try:
            compiled = self.compiler.compile(load_policies(self.directory))
        except PolicySetError as exc:
            return self._reject([str(p) for p in exc.problems])
        except InconsistentSnapshotError as exc:
            return self._reject([f"{self.directory}: translated config is inconsistent: {exc}"])
        previous = self.current
        self.rejected = None
        if previous is not None and previous.version == compiled.version:
            if previous.policies != compiled.policies:
                # Only what Envoy never sees changed (e.g. an incremental release's
                # state): the same snapshot is served, the files' policies are current.
                self.current = compiled
                log.info(
                    "policy set changed; Envoy's config unchanged",
                    version=compiled.version,
                    summary=summarize(previous.policies, compiled.policies),
                )
                return True
            log.info("policy set unchanged", version=compiled.version)
            return True
        self.cache.publish(compiled.version, _resolver(compiled))
        self.current = compiled
        self.accepted_at = _now()
        self.reloads["accepted"] += 1
        log.info(
            "policy set accepted",
            version=compiled.version,
            previous=previous.version if previous else None,
            summary=summarize(previous.policies if previous else None, compiled.policies),
            ms=round((time.perf_counter() - started) * 1000, 1),
        )
        return True

    def _reject(self, errors: list[str]) -> bool:
        self.rejected = self.last_rejected = Rejection(_now(), errors)
        self.reloads["rejected"] += 1
        serving = self.current.version if self.current else None
        log.error(
            "policy set rejected; still serving the last good set",
            version=serving,
            serving=serving,
            summary=rejection_summary(errors),
            errors=errors,
        )
        return False

    def status(self) -> dict[str, Any]:
        return {
            "version": self.current.version if self.current else None,
            "accepted_at": self.accepted_at,
            "policies": str(self.directory),
            "rejected": _rejection_json(self.rejected),
            "last_rejected": _rejection_json(self.last_rejected),
            "reloads": dict(self.reloads),
        }


def _resolver(compiled: Compiled) -> Any:
    """node.cluster -> snapshot of the gateways that Envoy gets, built once per gateway set."""
    by_gateways: dict[tuple[str, ...], Snapshot] = {}

    def resolve(node_cluster: str) -> Snapshot:
        gateways = compiled.policies.gateways_for(node_cluster)
        snapshot = by_gateways.get(gateways)
        if snapshot is None:
            if gateways == tuple(g.name for g in compiled.policies.gateways):
                snapshot = compiled.snapshot
            elif compiled.compiler is not None:
                snapshot = compiled.compiler.snapshot(compiled.translation, gateways)
            else:
                snapshot = Snapshot.build(resources_by_type(compiled.translation.select(gateways)))
            by_gateways[gateways] = snapshot
        return snapshot

    return resolve


def summarize(old: PolicySet | None, new: PolicySet) -> str:
    """One line saying what changed between two sets, for the reload log event."""
    if old is None:
        return f"{len(new.gateways)} gateways, {len(new.services)} services"
    old_services: Mapping[str, Any] = {s.name: s for s in old.services}
    new_services: Mapping[str, Any] = {s.name: s for s in new.services}
    parts = [f"+service {n}" for n in sorted(new_services.keys() - old_services.keys())]
    parts += [f"-service {n}" for n in sorted(old_services.keys() - new_services.keys())]
    for name in sorted(new_services.keys() & old_services.keys()):
        before, after = old_services[name], new_services[name]
        if before.traffic != after.traffic:
            parts.append(f"{name} traffic {_traffic(before.traffic)} -> {_traffic(after.traffic)}")
        elif before != after:
            parts.append(f"{name} changed")
    if {g.name: g for g in old.gateways} != {g.name: g for g in new.gateways}:
        parts.append("gateways changed")
    return "; ".join(parts) or "no change in policies"


def rejection_summary(errors: Sequence[str]) -> str:
    """One line for the reject log event: how many problems, and the first."""
    if not errors:
        return "rejected"
    first = " ".join(errors[0].split())
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{len(errors)} error(s): {first}{more}"


def _traffic(traffic: Any) -> str:
    if isinstance(traffic, str):
        return traffic
    return ",".join(f"{v}={share}" for v, share in traffic)


def _rejection_json(rejection: Rejection | None) -> dict[str, Any] | None:
    return None if rejection is None else {"at": rejection.at, "errors": rejection.errors}


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")
