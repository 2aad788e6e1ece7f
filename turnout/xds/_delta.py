"""One incremental (Delta) xDS stream: per-resource versions, subscriptions that change
by difference, and responses that carry only what the proxy lacks.

The state-of-the-world rules of ``_stream`` hold here too (latest state wins, one
un-ACKed response per type, a NACKed version never resent, make-before-break order
with EDS never held behind CDS, warming re-sends). What Delta adds or changes is a
comment at the code it governs, with its section of Envoy's xDS protocol doc:

- what the proxy has (``have``, from initial_resource_versions), nonces, ACK:
  ``handle_request``; NACK: ``_nacked``; subscriptions and wildcard: ``_subscribe``;
- the first request answered (unless it lists versions the proxy has and nothing
  differs): ``handle_request``, ``next_response``; what a response carries
  (changes, removals held while referenced, "does not exist", rejected parts left
  out): ``_diff``, shared between streams by ``_shared_diff``; status: ``_emit``.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from datetime import datetime
from types import MappingProxyType
from typing import NamedTuple

import structlog
from envoy.service.discovery.v3.discovery_pb2 import DeltaDiscoveryRequest

from turnout._protowire import length_delimited
from turnout.cache import (
    CLUSTER_TYPE,
    ENDPOINT_TYPE,
    LISTENER_TYPE,
    ROUTE_TYPE,
    SCOPED_ROUTE_TYPE,
    CachedResource,
    Snapshot,
    intern_names,
    pairs_version,
    short_name,
)
from turnout.xds._base import StreamBase, now
from turnout.xds._callbacks import XdsCallbacks
from turnout.xds._source import SnapshotSource
from turnout.xds._status import NackRecord, TypeStatus
from turnout.xds._stream import _WILDCARD_TYPES

__all__ = ["DeltaStream", "frame_delta_response"]

log = structlog.get_logger("turnout.xds")

WILDCARD = "*"

_REFERENCED_BY = {
    CLUSTER_TYPE: (ROUTE_TYPE,),
    ENDPOINT_TYPE: (CLUSTER_TYPE,),
    ROUTE_TYPE: (LISTENER_TYPE, SCOPED_ROUTE_TYPE),
}
"""A resource of the key type stays while a resource of a value type the proxy has
references it (ADS only): a route configuration is fetched by a listener, or by a
scope of a listener that routes by scoped RDS."""

_WARMS = {
    CLUSTER_TYPE: ENDPOINT_TYPE,
    LISTENER_TYPE: ROUTE_TYPE,
    SCOPED_ROUTE_TYPE: ROUTE_TYPE,
}
"""A changed resource of the key type has the resources of the value type it names
re-sent (``_emit``). A scoped listener names no scope (Envoy subscribes to scopes as a
wildcard, and shares one subscription between listeners with the same scoped RDS
source, already warm); a changed scope has its route configuration re-sent."""

_REMOVED = None
"""In ``nacked``: the proxy rejected a response removing the name."""

# DeltaDiscoveryResponse and Resource field numbers.
_SYSTEM_VERSION_INFO = 1
_RESOURCES = 2
_TYPE_URL = 4
_NONCE = 5
_REMOVED_RESOURCES = 6
_RESOURCE_VERSION = 1
_RESOURCE_ANY = 2
_RESOURCE_NAME = 3


@functools.lru_cache(maxsize=65536)
def _resource_bytes(resource: CachedResource) -> bytes:
    """The ``Resource`` wrapper of one cached resource, framed once and shared by streams."""
    return b"".join(
        (
            length_delimited(_RESOURCE_NAME, resource.name.encode()),
            length_delimited(_RESOURCE_VERSION, resource.version.encode()),
            length_delimited(_RESOURCE_ANY, resource.serialized),
        )
    )


def _own(state: _DeltaTypeState) -> tuple[dict[str, str], dict[str, CachedResource]]:
    """``have`` and ``objects`` as this stream's own dicts (copied if shared), to change."""
    if not state.mine:
        state.have, state.objects, state.mine = dict(state.have), dict(state.objects), True
    assert isinstance(state.have, dict)
    assert isinstance(state.objects, dict)
    return state.have, state.objects


_SHARED_VERSIONS: dict[int, tuple[Mapping[str, CachedResource], Mapping[str, str]]] = {}
"""id of a shared mapping -> (the mapping, its name -> version): made once, for every
stream in sync with it (bounded: cleared when it grows past 256 mappings)."""


def _share(state: _DeltaTypeState) -> None:
    """Point ``have`` and ``objects`` at the shared mapping the proxy has exactly
    (``synced_with``) and its shared versions, dropping this stream's own copies."""
    mapping = state.synced_with
    assert mapping is not None
    state.have, state.objects, state.mine = _versions(mapping), mapping, False


def _versions(mapping: Mapping[str, CachedResource]) -> Mapping[str, str]:
    """name -> version of a shared mapping, made once for every stream."""
    hit = _SHARED_VERSIONS.get(id(mapping))
    if hit is None or hit[0] is not mapping:
        if len(_SHARED_VERSIONS) > 256:
            _SHARED_VERSIONS.clear()
        hit = (mapping, MappingProxyType({n: r.version for n, r in mapping.items()}))
        _SHARED_VERSIONS[id(mapping)] = hit
    return hit[1]


def frame_delta_response(
    system_version: str,
    type_url: str,
    resources: Iterable[CachedResource],
    removed: Iterable[str],
    nonce: str,
) -> bytes:
    """The wire bytes of a ``DeltaDiscoveryResponse`` with these fields."""
    parts = [length_delimited(_SYSTEM_VERSION_INFO, system_version.encode())]
    parts.extend(length_delimited(_RESOURCES, _resource_bytes(r)) for r in resources)
    parts.append(length_delimited(_TYPE_URL, type_url.encode()))
    parts.extend(length_delimited(_REMOVED_RESOURCES, name.encode()) for name in removed)
    parts.append(length_delimited(_NONCE, nonce.encode()))
    return b"".join(parts)


class _Diff:
    """What one response of a type would carry, and whether it would bring the proxy in sync."""

    __slots__ = ("complete", "desired", "removals", "updates", "version")

    def __init__(self) -> None:
        self.updates: list[CachedResource] = []
        self.removals: list[str] = []
        self.complete = True
        """False when a NACKed version or removal was left out."""
        self.version = ""
        """The content hash of the proxy's set once in sync."""
        self.desired: Mapping[str, CachedResource] | None = None
        """The shared mapping the proxy's set equals once in sync (None: no such mapping)."""

    def __bool__(self) -> bool:
        return bool(self.updates or self.removals)


class _SharedDiff(NamedTuple):
    """A diff between two shared mappings, kept in the newer snapshot's memo."""

    base: Mapping[str, CachedResource]
    desired: Mapping[str, CachedResource]
    updates: tuple[CachedResource, ...]
    removals: tuple[str, ...]


class _DeltaTypeState:
    """What one Delta stream knows about one resource type."""

    __slots__ = (
        "acked_version",
        "adopt",
        "answered",
        "behind_since",
        "desired_version",
        "have",
        "last_nack",
        "mine",
        "nacked",
        "names",
        "nonce",
        "objects",
        "pending_ack",
        "replaced",
        "requested",
        "resend",
        "sent_version",
        "synced_with",
        "type_url",
        "unacked",
        "wildcard",
    )

    def __init__(self, type_url: str) -> None:
        self.type_url = type_url
        self.requested = False
        self.wildcard = False
        self.names: frozenset[str] = intern_names(())
        """Explicitly subscribed names (never ``*``), interned: streams subscribing to
        the same names share one set, and it is the key of the snapshot's shared
        selection."""
        self.synced_with: Mapping[str, CachedResource] | None = None
        """A shared mapping (the snapshot's type, or a selection) ``have`` exactly
        equals, with nothing resent, rejected or kept: the next diff is computed from
        it once for every stream in the same place."""
        self.resend: set[str] = set()
        """Names to answer in the next response whatever the proxy has."""
        self.have: Mapping[str, str] = {}
        """Name -> version the proxy has ("" once unknown, after a NACK)."""
        self.objects: Mapping[str, CachedResource] = {}
        """The resources behind ``have`` that this stream knows (for their references)."""
        self.mine = True
        """Whether ``have`` and ``objects`` are this stream's own dicts. A stream whose
        proxy has exactly a shared mapping (``synced_with``) points both at shared
        objects instead (the mapping, and its versions, made once for every stream): a
        proxy of 1,500 clusters costs no per-stream copy of 4,000 names. Anything that
        changes them takes copies first (``_own``)."""
        self.replaced: dict[str, CachedResource] = {}
        """Resources replaced or removed since the last ACK (the proxy may still use them)."""
        self.adopt = False
        """``have`` came from initial_resource_versions: match it to resources once."""
        self.unacked: dict[str, str | None] = {}
        """The un-ACKed response: name -> version sent, or None for a removal."""
        self.nacked: dict[str, str | None] = {}
        """Name -> version (or removal) the proxy rejected: never sent again."""
        self.answered = False
        self.nonce: str | None = None
        self.pending_ack = False
        self.sent_version: str | None = None
        self.acked_version: str | None = None
        self.last_nack: NackRecord | None = None
        self.desired_version: str | None = None
        self.behind_since: datetime | None = None

    def status(self) -> TypeStatus:
        return TypeStatus(
            type_url=self.type_url,
            sent_version=self.sent_version,
            acked_version=self.acked_version,
            last_nack=self.last_nack,
            behind_since=self.behind_since,
        )

    def references(self) -> set[str]:
        """Every name the resources the proxy has (or may still use) of this type reference."""
        referenced: set[str] = set()
        for resources in (self.objects, self.replaced):
            for resource in resources.values():
                referenced |= resource.references
        return referenced


class DeltaStream(StreamBase[_DeltaTypeState, DeltaDiscoveryRequest]):
    """The state and the two tasks of one Delta xDS stream (ADS or one per-type service)."""

    def __init__(
        self,
        *,
        stream_id: int,
        kind: str,
        type_urls: tuple[str, ...],
        cache: SnapshotSource,
        callbacks: XdsCallbacks,
        nonce_prefix: str,
    ) -> None:
        super().__init__(
            stream_id=stream_id,
            kind=kind,
            type_urls=type_urls,
            cache=cache,
            callbacks=callbacks,
            nonce_prefix=nonce_prefix,
            new_state=_DeltaTypeState,
        )

    # -- requests ----------------------------------------------------------------------

    def handle_request(self, request: DeltaDiscoveryRequest) -> None:
        """Record what one request says (ACK, NACK, subscription changes); wake the writer."""
        state = self._accept(request.type_url, request.node)
        if state is None:
            return

        nonce = request.response_nonce
        # The live nonce of the un-ACKed response: its ACK, or its NACK with error_detail.
        # https://www.envoyproxy.io/docs/envoy/latest/api-docs/xds_protocol#incremental-xds
        if nonce and nonce == state.nonce and state.pending_ack:
            state.pending_ack = False
            if request.HasField("error_detail"):
                self._nacked(state, request.error_detail.message)
            else:
                self._acked(state)
        elif nonce:
            # Stale, or of another stream: it ACKs nothing, but its subscription changes
            # below still apply (so do those of a spontaneous request, with no nonce):
            # the server must honor them; only SotW may drop stale requests.
            # https://www.envoyproxy.io/docs/envoy/latest/api-docs/xds_protocol#incremental-xds
            log.debug(
                "xds.stale_nonce",
                stream_id=self.stream_id,
                type=short_name(state.type_url),
                nonce=nonce,
                live=state.nonce,
            )

        first = not state.requested
        # Read out of the protobuf map once, by iterating its keys (in C) and indexing:
        # updating a dict from the map, then looking each subscribed name up in it, went
        # through the map's Python KeysView/ItemsView and cost a reconnecting stream
        # ~3 ms of 4,000 names (issue 10).
        versions = request.initial_resource_versions
        initial: Mapping[str, str] = {n: versions[n] for n in versions} if first else {}
        # A reconnecting Envoy (or one meeting a restarted control plane) lists what it
        # has: nothing it has at that version is resent.
        # https://www.envoyproxy.io/docs/envoy/latest/api-docs/xds_protocol#incremental-xds
        if initial:
            _own(state)[0].update(initial)
            state.adopt = True
            # A proxy listing what it has of a type got a response of it before (on an
            # earlier stream): it is initialized and waits for nothing, so when nothing
            # differs it is sent nothing (``next_response``), as a state-of-the-world
            # proxy reconnecting with the current version is (``_stream._holds``).
            # https://www.envoyproxy.io/docs/envoy/latest/api-docs/xds_protocol#incremental-xds
            state.answered = True
        self._subscribe(
            state, request.resource_names_subscribe, request.resource_names_unsubscribe, initial
        )
        state.requested = True
        self.wake.set()

    def _subscribe(
        self,
        state: _DeltaTypeState,
        subscribe: Iterable[str],
        unsubscribe: Iterable[str],
        initial: Mapping[str, str],
    ) -> None:
        added, dropped = set(subscribe), set(unsubscribe)
        if added or dropped or initial or not state.requested:
            state.synced_with = None
        # A copy to change (subscriptions change rarely); the result is interned.
        names = set(state.names) if added or dropped else set()
        # Wildcard: ``*`` subscribes to everything the proxy group gets, on any type; on
        # CDS/LDS a first request naming nothing (to subscribe or to unsubscribe) is
        # legacy wildcard, and stays so when names are added later (unlike SotW).
        # Unsubscribing ``*`` ends it: the proxy drops what it had only through it.
        # https://www.envoyproxy.io/docs/envoy/latest/api-docs/xds_protocol#how-the-client-specifies-what-resources-to-return
        if not state.requested and not added and not dropped and state.type_url in _WILDCARD_TYPES:
            state.wildcard = True  # legacy wildcard: a first request naming nothing
        if WILDCARD in dropped:
            dropped.discard(WILDCARD)
            state.wildcard = False
            # The proxy drops what it had only through the wildcard; forget it too.
            for name in [n for n in state.have if n not in names and n not in added]:
                self._forget(state, name)
        # Unsubscribing needs no answer, except a name also covered by the wildcard:
        # the proxy cannot tell whether to keep it, so it is sent again (it exists) or
        # removed (it does not). Unknown names are ignored.
        # https://www.envoyproxy.io/docs/envoy/latest/api-docs/xds_protocol#xds-protocol-unsubscribe
        for name in dropped:
            names.discard(name)
            if state.wildcard:
                # Ambiguous for the proxy: is it still part of the wildcard? Answer it.
                state.resend.add(name)
            else:
                state.resend.discard(name)
                self._forget(state, name)
        if WILDCARD in added:
            added.discard(WILDCARD)
            state.wildcard = True
        # A name subscribed again is answered even if the proxy seems to have it (it may
        # have forgotten it), except one whose version this first request lists in
        # initial_resource_versions.
        # https://www.envoyproxy.io/docs/envoy/latest/api-docs/xds_protocol#xds-protocol-delta-subscribe
        # (Set operations: a reconnect subscribes thousands of names at once.)
        names |= added
        state.resend |= added.difference(initial) if initial else added
        if added or dropped:
            state.names = intern_names(names)

    @staticmethod
    def _forget(state: _DeltaTypeState, name: str) -> None:
        have, objects = _own(state)
        have.pop(name, None)
        objects.pop(name, None)

    def _acked(self, state: _DeltaTypeState) -> None:
        version = state.sent_version or ""
        state.acked_version = version
        if state.nacked:  # nearly always empty: no walk of what was sent
            for name in state.unacked:
                state.nacked.pop(name, None)
        state.unacked = {}
        state.replaced = {}
        if state.desired_version == version:
            state.behind_since = None
        self._call("on_ack", self.info, state.type_url, version)

    def _nacked(self, state: _DeltaTypeState, message: str) -> None:
        # Envoy applies the valid part of a rejected Delta response (CDS/LDS add what
        # they can), so the stream no longer knows which version of the rejected names
        # the proxy has: they become unknown (""), and the rejected version (or removal)
        # of each is remembered and never resent (``_diff``). Anything else is sent: new
        # content, or the content the proxy had before (a rollback reaches it).
        # https://www.envoyproxy.io/docs/envoy/latest/api-docs/xds_protocol#ack-nack-and-resource-type-instance-version
        version = state.sent_version or ""
        have = _own(state)[0]
        for name, sent in state.unacked.items():
            state.nacked[name] = sent
            have[name] = ""
        state.unacked = {}
        state.synced_with = None
        self._record_nack(state, version, message)

    # -- responses ---------------------------------------------------------------------

    def next_response(self) -> bytes | None:
        """The next response to write, already recorded as sent; None if nothing is due."""
        if not self._node_known:
            return None
        snapshot = self._snapshot()
        if snapshot is None:
            return None
        held = False
        synced = True
        for type_url in self._types:
            state = self._states[type_url]
            if not state.requested:
                continue
            diff = self._diff(state, snapshot)
            # The first request of each type is answered, with an empty response when
            # the proxy already has everything: Envoy waits for it to initialize. Not
            # one listing initial_resource_versions (``handle_request``): that proxy
            # is initialized already.
            # https://www.envoyproxy.io/docs/envoy/latest/api-docs/xds_protocol#resource-warming
            due = bool(diff) or not state.answered
            if not due and not state.pending_ack and diff.complete:
                # In sync without a response (the proxy dropped what it unsubscribed, or
                # reconnected with all it should have).
                if state.sent_version is None and self.synced_version is not None:
                    # A reconnect's type found in sync after others were: synced_at
                    # says when the last one was (as ``_stream._holds``).
                    self.synced_at = now()
                state.sent_version = state.acked_version = diff.version
                state.synced_with = diff.desired
                if diff.desired is not None:
                    _share(state)
            self._track_behind(state, diff.version)
            if due or state.pending_ack or state.acked_version != diff.version:
                synced = False
            # Make-before-break as in ``_stream``: EDS is never held behind CDS (Envoy
            # ACKs CDS only once the clusters warmed, and they warm on EDS).
            # https://www.envoyproxy.io/docs/envoy/latest/api-docs/xds_protocol#resource-warming
            if due and not state.pending_ack and (not held or type_url == ENDPOINT_TYPE):
                return self._emit(state, diff)
            if due or state.pending_ack:
                held = True
        if synced and any(s.requested for s in self._states.values()):
            policy_version = self._cache.policy_version_for(self.node_cluster, self.node_id)
            if policy_version is not None and policy_version != self.synced_version:
                self.synced_version, self.synced_at = policy_version, now()
                self._call("on_synced", self.info, policy_version)
        return None

    def _diff(self, state: _DeltaTypeState, snapshot: Snapshot) -> _Diff:
        """The resources and removals that would bring the proxy in sync for one type."""
        type_url = state.type_url
        desired: Mapping[str, CachedResource]
        if state.wildcard:
            desired, version = snapshot.resources(type_url), snapshot.type_version(type_url)
        else:
            desired, version = snapshot.select(type_url, state.names)
        # Cost follows the change: a proxy that has exactly a shared mapping diffs
        # through the snapshot's memo (``_shared_diff``). Anything else (a NACK
        # outstanding, a subscription change, a resend, a removal waiting for
        # references) takes this full diff, O(resources of the type).
        base = state.synced_with
        if base is not None and not state.resend and not state.nacked:
            diff = self._shared_diff(snapshot, type_url, base, desired)
            if diff is not None:
                diff.version, diff.desired = version, desired
                return diff
        # A reconnecting proxy that has exactly what it should (the usual case after a
        # control-plane restart) is found so by one comparison with the shared
        # versions, not name by name: it shares them at once, and its first response
        # is empty (a fleet reconnecting at once costs a comparison each).
        if (
            state.adopt
            and not state.resend
            and not state.nacked
            and state.have == _versions(desired)
        ):
            state.adopt = False
            state.synced_with = desired
            _share(state)
            diff = _Diff()
            diff.version, diff.desired = version, desired
            return diff
        if state.adopt:
            state.adopt = False
            own_have, own_objects = _own(state)
            for name, have_version in own_have.items():
                resource = desired.get(name)
                if resource is not None and resource.version == have_version:
                    own_objects[name] = resource
        diff = _Diff()
        have, nacked, resend = state.have, state.nacked, state.resend
        # Only what the proxy lacks: the resources whose version differs from ``have``.
        # https://www.envoyproxy.io/docs/envoy/latest/api-docs/xds_protocol#grouping-resources-into-responses
        for name, resource in desired.items():
            if have.get(name) != resource.version or name in resend:
                if name in nacked and nacked[name] == resource.version:
                    # Never resend a version the proxy rejected (``_nacked``).
                    # https://www.envoyproxy.io/docs/envoy/latest/api-docs/xds_protocol#ack-nack-and-resource-type-instance-version
                    diff.complete = False
                    continue
                diff.updates.append(resource)
        kept: list[str] = []
        gone = [n for n in have if n not in desired]
        # What the proxy has that it should no longer have goes in removed_resources:
        # https://www.envoyproxy.io/docs/envoy/latest/api-docs/xds_protocol#deleting-resources
        # Removal is make-before-break too (ADS): a resource goes only once nothing the
        # proxy has references it: a cluster while routes it has (sent or ACKed) route
        # or mirror to it, an assignment while a cluster uses it, a route configuration
        # while a listener fetches it (``_REFERENCED_BY``).
        # https://www.envoyproxy.io/docs/envoy/latest/api-docs/xds_protocol#eventual-consistency-considerations
        if gone:
            protected = self._referenced(type_url)
            for name in gone:
                if name in protected:
                    kept.append(name)
                elif name in nacked and nacked[name] is _REMOVED:
                    diff.complete = False
                else:
                    diff.removals.append(name)
        # Subscribed (or ambiguously unsubscribed) names that do not exist are answered
        # in removed_resources (Incremental xDS, "Knowing When a Requested Resource
        # Does Not Exist"); they stay subscribed and are sent once they appear.
        # https://www.envoyproxy.io/docs/envoy/latest/api-docs/xds_protocol#incremental-xds
        for name in resend:
            if name not in desired and name not in have and (state.wildcard or name in state.names):
                diff.removals.append(name)
        if kept:
            pairs = [(n, r.version) for n, r in desired.items()]
            pairs.extend((n, have[n]) for n in kept)
            diff.version = pairs_version(pairs)
        else:
            diff.version, diff.desired = version, desired
        return diff

    def _shared_diff(
        self,
        snapshot: Snapshot,
        type_url: str,
        base: Mapping[str, CachedResource],
        desired: Mapping[str, CachedResource],
    ) -> _Diff | None:
        """The diff from ``base`` (what the proxy has exactly) to ``desired``, computed
        once per snapshot for every stream in sync with the same ``base``; None when a
        removal must wait for references (the full diff then decides)."""
        if base is desired:
            return _Diff()
        key = ("delta-diff", type_url, id(base), id(desired))
        memo = snapshot.memo.get(key)
        if not isinstance(memo, _SharedDiff) or memo.base is not base:
            updates = tuple(
                r
                for n, r in desired.items()
                if (old := base.get(n)) is None or old.version != r.version
            )
            removals = tuple(n for n in base if n not in desired)
            memo = _SharedDiff(base, desired, updates, removals)
            snapshot.memo[key] = memo  # holds base and desired: their ids stay theirs
        if memo.removals and not self._referenced(type_url).isdisjoint(memo.removals):
            return None
        diff = _Diff()
        diff.updates.extend(memo.updates)
        diff.removals.extend(memo.removals)
        return diff

    def _referenced(self, type_url: str) -> set[str]:
        """Names of ``type_url`` that resources the proxy has of another type reference."""
        referenced: set[str] = set()
        if not self._ads:
            return referenced
        for parent in _REFERENCED_BY.get(type_url, ()):
            if parent in self._states:
                referenced |= self._states[parent].references()
        return referenced

    def _emit(self, state: _DeltaTypeState, diff: _Diff) -> bytes:
        nonce = f"{self._nonce_prefix}{next(self._nonces)}"
        warms = self._states.get(_WARMS.get(state.type_url, ""))
        updates = sorted(diff.updates, key=lambda r: r.name)
        removals = sorted(diff.removals)
        unacked: dict[str, str | None] = {}
        # A proxy that will have exactly ``diff.desired`` shares it (``_share``): its
        # own dicts are not needed, so the shared ones are read and nothing is copied.
        own = None if diff.complete and diff.desired is not None else _own(state)
        have, objects = state.have, state.objects
        for resource in updates:
            name = resource.name
            old = objects.get(name)
            if old is not None and name not in state.replaced:
                state.replaced[name] = old
            changed = have.get(name) != resource.version
            if own is not None:
                own[0][name] = resource.version
                own[1][name] = resource
            unacked[name] = resource.version
            if changed and warms is not None:
                # Envoy warms a changed cluster (listener) until its assignment (routes)
                # arrive, even when they did not change.
                # https://www.envoyproxy.io/docs/envoy/latest/api-docs/xds_protocol#resource-warming
                warms.resend |= resource.references
        for name in removals:
            old = objects.get(name)
            if old is not None and name not in state.replaced:
                state.replaced[name] = old
            if own is not None:
                own[0].pop(name, None)
                own[1].pop(name, None)
            unacked[name] = _REMOVED
        # Status: sent/acked versions are the content hash of the proxy's set after the
        # response. In sync: the desired version (the snapshot's type version, or the
        # hash of the subscribed names), so /status compares Delta and SotW proxies
        # alike; a NACKed part left out: what the proxy has. On the wire it is only
        # system_version_info, which is for debugging.
        # https://www.envoyproxy.io/docs/envoy/latest/api-docs/xds_protocol#incremental-xds
        version = diff.version if diff.complete else pairs_version(state.have.items())
        state.unacked = unacked
        state.synced_with = diff.desired if diff.complete else None
        if state.synced_with is not None:
            _share(state)
        state.sent_version = version
        state.nonce = nonce
        state.pending_ack = True
        state.answered = True
        state.resend.clear()
        self._call("on_response", self.info, state.type_url, version, len(updates))
        return frame_delta_response(version, state.type_url, updates, removals, nonce)
