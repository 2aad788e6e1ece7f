"""One state-of-the-world xDS stream: a reader that records what the proxy asked for
and acknowledged, and a writer that decides what to send from the current snapshot.

Each protocol rule is a comment at the code it governs, with its section of Envoy's
xDS protocol doc:

- nonces, stale requests, ACK/NACK, the first request of a type: ``handle_request``;
  a reconnecting proxy that has the current version is sent nothing: ``_holds``;
- wildcard and named subscriptions: ``_subscribe``;
- send on change, never resend a NACKed version, newly subscribed names: ``_due``;
- latest state wins, make-before-break order over ADS (EDS never held behind CDS):
  ``next_response``; clusters kept while routes the proxy has use them:
  ``_retained_clusters``; warming re-sends: ``_emit``;
- one framed response, nonce included, shared by every stream: ``_shared_response``.
"""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable, Iterable, Mapping
from datetime import datetime
from types import MappingProxyType
from typing import NamedTuple

import structlog
from envoy.service.discovery.v3.discovery_pb2 import DiscoveryRequest

from turnout.cache import (
    CLUSTER_TYPE,
    ENDPOINT_TYPE,
    LISTENER_TYPE,
    ROUTE_TYPE,
    SCOPED_ROUTE_TYPE,
    CachedResource,
    Snapshot,
    content_version,
    intern_names,
    short_name,
)
from turnout.xds._base import StreamBase, now
from turnout.xds._callbacks import XdsCallbacks
from turnout.xds._source import SnapshotSource
from turnout.xds._status import NackRecord, TypeStatus
from turnout.xds._wire import frame_body, frame_nonce

__all__ = ["Stream"]

log = structlog.get_logger("turnout.xds")

# Envoy subscribes to scoped routes as a wildcard: ScopedRdsConfigSubscription starts
# its subscription with no names (unless given an xdstp srds_resources_locator, which
# turnout's listeners never set), and in state of the world a response to a subscription
# naming nothing is the whole set, scopes missing from it are removed
# (ScopedRdsConfigSubscription::onConfigUpdate; GrpcMuxImpl hands a watch with no names
# every resource of the response).
_WILDCARD_TYPES = frozenset({CLUSTER_TYPE, LISTENER_TYPE, SCOPED_ROUTE_TYPE})
_WARMS = {CLUSTER_TYPE: (ENDPOINT_TYPE,), LISTENER_TYPE: (SCOPED_ROUTE_TYPE, ROUTE_TYPE)}
"""After a response of the key type that adds or changes resources, re-send the value types."""

_CHANGES_ONLY = frozenset({ROUTE_TYPE})
"""Types whose responses carry only the resources the proxy has not ACKed at their
current version (``_emit``)."""

Content = Mapping[str, CachedResource]

_NOTHING: Content = MappingProxyType({})
"""What a type has sent and ACKed before its first response: one object for every
stream, so what is memoized per (sent, acked) pair in a snapshot (``_missing_clusters``,
``_adds_or_changes``) is one entry for the fleet, not one per stream (~1 KB each)."""

_NO_NAMES: frozenset[str] = frozenset()
"""A type's ``new_names`` when none are waiting (shared by every stream)."""


class _TypeState:
    """What one stream knows about one resource type."""

    __slots__ = (
        "acked",
        "acked_version",
        "answered",
        "behind_since",
        "desired_version",
        "force",
        "last_nack",
        "legacy_wildcard",
        "nacked_version",
        "names",
        "names_key",
        "new_names",
        "nonce",
        "pending_ack",
        "requested",
        "sent",
        "sent_version",
        "type_url",
        "wildcard",
    )

    def __init__(self, type_url: str) -> None:
        self.type_url = type_url
        self.requested = False
        self.wildcard = False
        self.legacy_wildcard = False
        self.names: frozenset[str] = intern_names(())
        self.names_key: bytes | None = None
        """The resource names of the request that set ``names``, as the proxy sent
        them (:func:`_names_key`)."""
        self.new_names: frozenset[str] = _NO_NAMES
        """Names subscribed since the last response: answer as soon as one exists."""
        self.answered = False
        self.nonce: str | None = None
        self.pending_ack = False
        self.sent: Content = _NOTHING
        self.sent_version: str | None = None
        self.acked: Content = _NOTHING
        self.acked_version: str | None = None
        self.nacked_version: str | None = None
        self.last_nack: NackRecord | None = None
        self.force = False
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


class Stream(StreamBase[_TypeState, DiscoveryRequest]):
    """The state and the two tasks of one xDS stream (ADS or one per-type service)."""

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
            new_state=_TypeState,
        )
        self._shared_nonce_prefix = f"{nonce_prefix}s"
        self._computed: Snapshot | None = None
        """The snapshot :meth:`next_response` last worked from."""
        self._retaining = False
        """Whether that computation kept clusters the snapshot dropped (make-before-break)."""
        self._recheck = False
        """Whether the response just emitted may leave another type due at once."""

    async def _write(self, write: Callable[[bytes], Awaitable[None]]) -> None:
        # The base loop, plus: after a write that holds every later type, wait at once.
        while True:
            # Clear before computing: a wake-up that lands while we compute or send is
            # not lost, it makes the next wait return at once.
            self.wake.clear()
            frame = self.next_response()
            if frame is None:
                await self.wake.wait()
            else:
                # Everything about this response was recorded before this await; the
                # reader may change state meanwhile, the next loop sees it.
                await write(frame)
                if not self._recheck:
                    # Nothing else can be due until the proxy answers or a publish
                    # (either wakes us): every later type is held behind this one.
                    await self.wake.wait()

    # -- requests ----------------------------------------------------------------------

    def handle_request(self, request: DiscoveryRequest) -> None:
        """Record what one request says (subscription, ACK or NACK) and wake the writer."""
        state = self._accept(request.type_url, request.node)
        if state is None:
            return

        nonce = request.response_nonce
        acked = False
        if state.nonce is None:
            # A request before any response of its type on this stream: a nonce does not
            # survive its stream, so its nonce refers to an earlier one (a reconnecting
            # Envoy, a restarted control plane) and means nothing here. Its version_info
            # is the last version the proxy ACKed of the type (Envoy keeps it across
            # streams, and a NACK never replaces it): kept as what the proxy has, for
            # status and for ``_holds``, which answers nothing if that is current.
            # https://www.envoyproxy.io/docs/envoy/latest/api-docs/xds_protocol#ack-nack-and-resource-type-instance-version
            if not state.answered:
                state.acked_version = request.version_info or None
        elif nonce and nonce != state.nonce:
            # Stale: only the latest nonce sent of a type is live (one of another type
            # never matches). A stale request answers a response whose successor the
            # proxy had not yet seen; it is ignored entirely, subscription changes
            # included: the proxy sends another once it has processed the newer one.
            # https://www.envoyproxy.io/docs/envoy/latest/api-docs/xds_protocol#resource-updates
            log.debug(
                "xds.stale_nonce",
                stream_id=self.stream_id,
                type=short_name(state.type_url),
                nonce=nonce,
                live=state.nonce,
            )
            return
        elif nonce and state.pending_ack:
            # The live nonce of the un-ACKed response: its ACK, or its NACK when
            # error_detail is set (comparing versions, as old servers did, cannot tell
            # a NACK from a subscription change on EDS/RDS).
            # https://www.envoyproxy.io/docs/envoy/latest/api-docs/xds_protocol#ack-and-nack-semantics-summary
            state.pending_ack = False
            if request.HasField("error_detail"):
                self._nacked(state, request.error_detail.message)
            else:
                self._acked(state)
                acked = True

        changed = self._subscribe(state, request)
        state.requested = True
        if changed or not acked or not self._settled():
            self.wake.set()

    def _subscribe(self, state: _TypeState, request: DiscoveryRequest) -> bool:
        """Apply a request's names; whether the subscription changed. Consumes the
        request (:func:`_names_key` clears what was already read of it)."""
        # An ACK repeats the subscription (a change brings one per stream, each naming
        # every subscribed resource: 2,000 EDS names, 500 route configurations), almost
        # always byte for byte as the proxy last sent it: then it means what it meant
        # then (names, wildcard) and is found so by comparing bytes, without making a
        # string per name to build a set of them.
        key = _names_key(request)
        if state.requested and key == state.names_key:
            return bool(state.new_names)
        before = (state.names, state.wildcard, state.legacy_wildcard, state.requested)
        shared_key, listed = _subscription(key, request)
        names: frozenset[str] = listed
        # CDS/LDS: ``*`` subscribes to everything (plus any names listed); a first
        # request naming nothing is legacy wildcard and stays so while requests stay
        # empty; names without ``*`` then mean exactly those names. EDS/RDS are never
        # wildcard: a response has exactly the subscribed names that exist.
        # https://www.envoyproxy.io/docs/envoy/latest/api-docs/xds_protocol#how-the-client-specifies-what-resources-to-return
        if state.type_url in _WILDCARD_TYPES:
            if "*" in names:
                names = intern_names(names - _STAR)
                state.wildcard, state.legacy_wildcard = True, False
            elif not names and (not state.requested or state.legacy_wildcard):
                state.wildcard, state.legacy_wildcard = True, True
            else:
                state.wildcard, state.legacy_wildcard = False, False
        # A newly requested name must be sent even if it went out before (same section).
        if names != state.names:
            state.new_names |= names - state.names
            state.names = names
        state.names_key = shared_key
        return bool(state.new_names) or before != (
            state.names,
            state.wildcard,
            state.legacy_wildcard,
            True,
        )

    def _settled(self) -> bool:
        """After an ACK that changed no subscription: whether the writer, woken now,
        would find nothing to send. If so the stream's sync is recorded here and the
        writer is left asleep (on a fleet-wide change that saves a task switch and a
        pass over every type per stream); if not, or when unsure, the writer decides.

        The writer's last computation stands when it worked from the current
        snapshot and kept no dropped cluster (an ACK of routes can release those);
        then nothing is due exactly when every requested type has its desired version
        ACKed, nothing forced and no newly subscribed name waiting."""
        snapshot = self._computed
        if snapshot is None or self._retaining or snapshot is not self._snapshot():
            return False
        for state in self._states.values():
            if state.requested and (
                state.pending_ack
                or state.force
                or state.new_names
                or not state.answered
                or state.acked_version != state.desired_version
            ):
                return False
        self._record_synced()
        return True

    def _acked(self, state: _TypeState) -> None:
        version = state.sent_version or ""
        state.acked_version = version
        state.acked = state.sent
        state.nacked_version = None
        if state.desired_version == version:
            state.behind_since = None
        self._call("on_ack", self.info, state.type_url, version)

    def _nacked(self, state: _TypeState, message: str) -> None:
        version = state.sent_version or ""
        state.nacked_version = version
        self._record_nack(state, version, message)

    # -- responses ---------------------------------------------------------------------

    def next_response(self) -> bytes | None:
        """The next response to write, already recorded as sent; None if nothing is due."""
        # Latest state wins: what to send is computed only when the writer is about to
        # send, from the current snapshot, with at most one un-ACKed response per type.
        # Publishes arriving faster than ACKs coalesce; a slow proxy skips versions.
        # https://www.envoyproxy.io/docs/envoy/latest/api-docs/xds_protocol#when-to-send-an-update
        if not self._node_known:
            return None
        snapshot = self._snapshot()
        if snapshot is None:
            return None
        retained = self._retained_clusters(snapshot)
        self._computed, self._retaining = snapshot, bool(retained)
        held = False
        synced = True
        for index, type_url in enumerate(self._types):
            state = self._states[type_url]
            if not state.requested:
                continue
            content, version = self._content(state, snapshot, retained)
            if not state.answered and state.acked_version == version and not state.force:
                self._holds(state, content, version)
            self._track_behind(state, version)
            due = self._due(state, content, version)
            if due or state.pending_ack or state.acked_version != version:
                synced = False
            # Make-before-break (ADS): types go in the order CDS, EDS, LDS, RDS
            # (``_types``), each held while an earlier requested type has a change to
            # send or an un-ACKed response.
            # https://www.envoyproxy.io/docs/envoy/latest/api-docs/xds_protocol#eventual-consistency-considerations
            # But EDS is never held behind CDS: Envoy (checked with 1.40) withholds its
            # CDS ACK until the clusters it just got have warmed, and they warm only on
            # an EDS response, so waiting for that ACK would deadlock. (CDS still goes
            # first: it is earlier in this loop; LDS/RDS wait for warm, ACKed clusters.)
            # https://www.envoyproxy.io/docs/envoy/latest/api-docs/xds_protocol#resource-warming
            if due and not state.pending_ack and (not held or type_url == ENDPOINT_TYPE):
                if any(self._states[t].requested for t in self._types[index + 1 :]):
                    # The types after this one were not looked at: their desired
                    # versions are stale, so the ACK of this response must wake the
                    # writer (``_settled`` would find them ACKed and call the stream
                    # synced while, say, RDS changed with EDS was never sent).
                    self._computed = None
                return self._emit(snapshot, state, content, version)
            if due or state.pending_ack:
                # Make-before-break: nothing later in ORDER goes out before this is
                # sent and ACKed (a per-type stream has a single type anyway).
                held = True
        if synced and any(s.requested for s in self._states.values()):
            self._record_synced()
        return None

    def _record_synced(self) -> None:
        policy_version = self._cache.policy_version_for(self.node_cluster, self.node_id)
        if policy_version is not None and policy_version != self.synced_version:
            self.synced_version, self.synced_at = policy_version, now()
            self._call("on_synced", self.info, policy_version)

    def _retained_clusters(self, snapshot: Snapshot) -> Content:
        """Clusters gone from the snapshot that routes the proxy may still use reference."""
        # Make-before-break (ADS): a cluster (with its assignment, ``_content``) stays
        # while the route configurations last sent or last ACKed name it; once routes
        # without it are ACKed, it is removed.
        # https://www.envoyproxy.io/docs/envoy/latest/api-docs/xds_protocol#eventual-consistency-considerations
        cds = self._states.get(CLUSTER_TYPE)
        rds = self._states.get(ROUTE_TYPE)
        if not self._ads or cds is None or rds is None:
            return {}
        missing = _missing_clusters(snapshot, rds.sent, rds.acked)
        if not missing:
            return {}
        retained: dict[str, CachedResource] = {}
        for name in missing:
            old = cds.sent.get(name) or cds.acked.get(name)
            if old is not None:
                retained[name] = old
        return retained

    def _content(
        self, state: _TypeState, snapshot: Snapshot, retained: Content
    ) -> tuple[Content, str]:
        """Exactly the resources this stream should have of one type, by name, and
        their content version. Without retained clusters in play (nearly always), this
        is shared by every stream of the group: the whole type for a wildcard, else a
        selection memoized in the snapshot."""
        type_url = state.type_url
        extra: Mapping[str, CachedResource] = {}
        if retained and type_url == CLUSTER_TYPE:
            extra = retained
        elif retained and type_url == ENDPOINT_TYPE:
            kept: dict[str, CachedResource] = {}
            for name in {n for cluster in retained.values() for n in cluster.references}:
                old = state.sent.get(name) or state.acked.get(name)
                if old is not None:
                    kept[name] = old
            extra = kept
        current = snapshot.resources(type_url)
        if not extra:
            if state.wildcard:
                return current, snapshot.type_version(type_url)  # hashed once per publish
            return snapshot.select(type_url, state.names)
        content: dict[str, CachedResource]
        if state.wildcard:
            missing = {n: r for n, r in extra.items() if n not in current}
            if not missing:
                return current, snapshot.type_version(type_url)
            content = {**current, **missing}
        else:
            content = {}
            for name in state.names:
                resource = current.get(name) or extra.get(name)
                if resource is not None:
                    content[name] = resource
        return content, content_version(content.values())

    def _holds(self, state: _TypeState, content: Content, version: str) -> None:
        """Record that the proxy already has ``content``: its first request of the type
        on this stream named ``version``, the content hash of exactly what it would be
        sent now. Nothing is sent; the type counts as sent and ACKed at that version,
        so what follows works from it as from an ACKed response: the next route
        configurations go as changes from ``content``, clusters the routes name are
        kept, a later listener or cluster change forces its warming re-send, and the
        stream is reported synced."""
        # A reconnecting Envoy (or one meeting a restarted control plane) sends, in its
        # first request of each type, the version_info it last ACKed; a server that
        # already holds that version for it need not answer, and leaves the request
        # open until the type changes (as go-control-plane does when the request's
        # version is the current one). Versions are content hashes of exactly what a
        # stream gets, identical across restarts for the same policies, so an equal
        # version means the proxy has this very content. The first request of a proxy
        # that has nothing (an empty version_info), or an older version, or of a type
        # a cluster or listener response just forced (warming), is answered in full.
        # https://www.envoyproxy.io/docs/envoy/latest/api-docs/xds_protocol#ack-nack-and-resource-type-instance-version
        # https://www.envoyproxy.io/docs/envoy/latest/api-docs/xds_protocol#when-to-send-an-update
        state.sent = state.acked = content
        state.sent_version = version
        state.answered = True
        state.new_names = _NO_NAMES
        if self.synced_version is not None:
            # Already synced on the types asked for so far (a reconnecting Envoy's
            # requests of its types arrive one by one): synced_at says when the last
            # of them was found in sync, so a fleet's storm ends when turnout says.
            self.synced_at = now()

    def _due(self, state: _TypeState, content: Content, version: str) -> bool:
        if not state.answered:
            # A first request whose version is not the current one (``_holds``).
            return True
        if version == state.nacked_version:
            # Never resend what the proxy rejected (it keeps its last good version):
            # wait for content that hashes differently. Resending is go-control-plane's
            # NACK loop (its issue #962): resend, reject, resend...
            # https://www.envoyproxy.io/docs/envoy/latest/api-docs/xds_protocol#ack-nack-and-resource-type-instance-version
            return False
        if state.force:
            return True  # a warming re-send (``_emit``)
        if state.new_names and not state.new_names.isdisjoint(content.keys()):
            # A newly subscribed name that exists goes out even with unchanged content.
            # https://www.envoyproxy.io/docs/envoy/latest/api-docs/xds_protocol#how-the-client-specifies-what-resources-to-return
            # One that does not exist yet stays subscribed and goes once it appears.
            # https://www.envoyproxy.io/docs/envoy/latest/api-docs/xds_protocol#knowing-when-a-requested-resource-does-not-exist
            return True
        # Send on change: ``version`` is the content hash of exactly what would be sent.
        # https://www.envoyproxy.io/docs/envoy/latest/api-docs/xds_protocol#when-to-send-an-update
        return version != state.sent_version

    def _emit(self, snapshot: Snapshot, state: _TypeState, content: Content, version: str) -> bytes:
        # Warming: Envoy warms a changed cluster until it gets an EDS response for it,
        # and a changed listener until it gets RDS, even unchanged ones; when its EDS
        # subscription did not change it may never ask. So a CDS (LDS) response that
        # adds or changes resources forces the next EDS (RDS) response. A cluster with
        # no endpoints gets its empty assignment: withheld, it warms forever (envoy#9934).
        # https://www.envoyproxy.io/docs/envoy/latest/api-docs/xds_protocol#resource-warming
        # A listener that routes by scoped RDS warms until it has its scopes (SRDS) and
        # each scope's route configuration (RDS), so LDS forces both.
        warms = [t for t in _WARMS.get(state.type_url, ()) if t in self._states]
        if warms and _adds_or_changes(snapshot, state.sent, content):
            for warmed in warms:
                self._states[warmed].force = True
        # Route configurations: only what changed. In state of the world only Listener
        # and Cluster responses must carry every resource; for the other types a
        # response carries the resources that changed, and a subscribed resource left
        # out is kept as the proxy has it ("Grouping Resources into Responses",
        # https://www.envoyproxy.io/docs/envoy/latest/api-docs/xds_protocol#grouping-resources-into-responses;
        # Envoy's GrpcMuxImpl calls back only the RDS/EDS watches whose names are in the
        # response). Each route configuration has its own watch in Envoy, so on a scoped
        # gateway a one-service change sends that service's route configurations, not
        # the gateway's. ``version_info`` still names the whole selection the proxy then
        # has. The base is what the proxy ACKed (not what was last sent: a NACKed
        # response may have been applied in part, so its resources go again); a forced
        # re-send (warming) and the first response carry everything.
        base: Content | None = None
        if state.type_url in _CHANGES_ONLY and state.answered and not state.force:
            base = state.acked
        shared = _shared_response(
            snapshot,
            state.type_url,
            version,
            content,
            self._shared_nonce_prefix,
            base,
            state.new_names,
        )
        frame, nonce = shared.frame, shared.nonce
        if nonce == state.nonce:
            # This very response again (a warming re-send, a newly subscribed name with
            # unchanged content): it needs a nonce of its own, or an ACK of the first
            # would pass for an ACK of this one.
            nonce = f"{self._nonce_prefix}{next(self._nonces)}"
            frame = shared.frame[: shared.body_size] + frame_nonce(nonce)
        state.sent = content
        state.sent_version = version
        state.nonce = nonce
        state.pending_ack = True
        state.answered = True
        state.force = False
        # The shared empty set, not clear(): a set keeps the table it grew to, and the
        # first subscription of a 1,500-cluster EDS left a 64 KB table per stream (an
        # empty set of its own is 216 bytes per type and stream).
        state.new_names = _NO_NAMES
        # After CDS, EDS may go at once (it is never held behind CDS); with dropped
        # clusters kept, a routes response can release some. Otherwise every later
        # type waits for this response's ACK.
        self._recheck = state.type_url == CLUSTER_TYPE or self._retaining
        self._call("on_response", self.info, state.type_url, version, len(content))
        return frame


def _names_key(request: DiscoveryRequest) -> bytes:
    """The request's resource names, in order, as their wire bytes: equal exactly when
    the names and their order are. The other fields are cleared to serialize the names
    alone (C code, no string per name): call once everything else was read."""
    for field in _NOT_NAMES:
        request.ClearField(field)
    key: bytes = request.SerializeToString()
    return key


_NOT_NAMES = tuple(f.name for f in DiscoveryRequest.DESCRIPTOR.fields if f.name != "resource_names")

_STAR = frozenset({"*"})

_SUBSCRIPTIONS: dict[bytes, tuple[bytes, frozenset[str]]] = {}
_SUBSCRIPTIONS_KEPT = 256


def _subscription(key: bytes, request: DiscoveryRequest) -> tuple[bytes, frozenset[str]]:
    """A request's names, interned (``intern_names``), and its :func:`_names_key` as
    one bytes object per distinct subscription: the streams of a group ask for the
    same names, so only the first stream to send them makes a string per name, and a
    stream holds a reference to the key, not a copy of 2,000 names. A bounded table:
    past :data:`_SUBSCRIPTIONS_KEPT` entries it starts again (what streams hold lives
    on)."""
    hit = _SUBSCRIPTIONS.get(key)
    if hit is None:
        if len(_SUBSCRIPTIONS) >= _SUBSCRIPTIONS_KEPT:
            _SUBSCRIPTIONS.clear()
        hit = _SUBSCRIPTIONS[key] = (key, intern_names(request.resource_names))
    return hit


# -- shared per snapshot -------------------------------------------------------------
#
# Every stream of a proxy group reads the same snapshot and, nearly always, the same
# mappings of resources (the wildcard type, or one memoized selection), so what a
# stream derives from them is memoized in the snapshot under the identity of those
# mappings: a publish costs each stream a few dict look-ups, not a walk of its config.
# Keys hold ids; the memoized value holds the objects themselves, so an id cannot be
# reused while its entry lives.


def _missing_clusters(snapshot: Snapshot, sent: Content, acked: Content) -> frozenset[str]:
    """Clusters that the route configurations last sent or ACKed name, not in ``snapshot``."""
    key = ("xds.missing_clusters", id(sent), id(acked))
    hit = snapshot.memo.get(key)
    if isinstance(hit, tuple) and hit[0] is sent and hit[1] is acked:
        missing: frozenset[str] = hit[2]
        return missing
    current = snapshot.resources(CLUSTER_TYPE)
    referenced: set[str] = set()
    for routes in (sent, acked):
        for route in routes.values():
            referenced |= route.references
    missing = frozenset(name for name in referenced if name not in current)
    snapshot.memo[key] = (sent, acked, missing)
    return missing


def _adds_or_changes(snapshot: Snapshot, before: Content, after: Content) -> bool:
    """Whether ``after`` has a resource ``before`` lacks or holds at another version."""
    if before is after:
        return False
    key = ("xds.adds_or_changes", id(before), id(after))
    hit = snapshot.memo.get(key)
    if isinstance(hit, tuple) and hit[0] is before and hit[1] is after:
        changed: bool = hit[2]
        return changed
    changed = any(
        (old := before.get(name)) is None or old.version != resource.version
        for name, resource in after.items()
    )
    snapshot.memo[key] = (before, after, changed)
    return changed


class _Response(NamedTuple):
    nonce: str
    frame: bytes
    """The whole response: the body and the nonce (last)."""
    body_size: int
    """How many bytes of ``frame`` are the response without its nonce (kept as a
    length, not a second copy of a response that may be megabytes)."""


_SHARED_NONCES = itertools.count(1)
"""Numbers the shared responses of this process (with the server's random prefix, a
nonce never repeats within a process, nor across restarts)."""


def _shared_response(
    snapshot: Snapshot,
    type_url: str,
    version: str,
    content: Content,
    nonce_prefix: str,
    base: Content | None = None,
    new_names: Iterable[str] = (),
) -> _Response:
    """The response for (snapshot, type, version), framed once, nonce included.

    ``version`` is the content hash of exactly ``content``, so every stream sending
    this version sends these bytes: even the nonce is shared. A nonce only has to tell
    the responses of one stream apart, and a stream is sent a given response once per
    snapshot (the caller gives a repeat its own nonce), so the same bytes go to every
    stream and nothing is copied or framed per stream.

    With a ``base`` (what the proxy has), the response carries only the resources of
    ``content`` that ``base`` lacks or holds at another version, and ``new_names``; it
    is shared by the streams with that same base (the streams of a group ACKed the
    same selection object).
    """
    # A nonce is valid only in the context of its stream:
    # https://www.envoyproxy.io/docs/envoy/latest/api-docs/xds_protocol#basic-protocol-overview
    fresh = frozenset(new_names)
    key = ("xds.response", type_url, version, id(base), fresh)
    hit = snapshot.memo.get(key)
    if isinstance(hit, tuple) and hit[0] is base:
        response: _Response = hit[1]
        return response
    names = sorted(content)
    if base is not None:
        names = [
            name
            for name in names
            if name in fresh
            or (old := base.get(name)) is None
            or old.version != content[name].version
        ]
    body = frame_body(version, type_url, (content[name] for name in names))
    nonce = f"{nonce_prefix}{next(_SHARED_NONCES)}"
    response = _Response(nonce, body + frame_nonce(nonce), len(body))
    snapshot.memo[key] = (base, response)
    return response
