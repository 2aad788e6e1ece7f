"""Cached resources reused from one build to the next.

A translator that re-translates only what changed hands back the very same message
objects for everything else; the pool then hands back the very same
:class:`CachedResource` for them (no re-serializing, no re-hashing), and a snapshot
built from them with ``previous`` keeps the hash of every type that did not change.
A route configuration assembled from cached virtual hosts comes with its bytes, and
its references are the union of its virtual hosts', each computed once.

Entries are keyed by the identity of the message (or bytes) they were made from and
hold it, so an id is never reused while its entry lives; :meth:`ResourcePool.sweep`
forgets what the latest build did not use.
"""

from __future__ import annotations

from collections.abc import Sequence

from envoy.config.route.v3.route_components_pb2 import VirtualHost
from google.protobuf.message import Message

from turnout.cache._references import virtual_host_cluster_names
from turnout.cache._snapshot import CachedResource
from turnout.cache._types import CLUSTER_TYPE, ENDPOINT_TYPE, ROUTE_TYPE

__all__ = ["ResourcePool"]

_NOTHING: frozenset[str] = frozenset()
_RESTS = 1024


class ResourcePool:
    """Reuses CachedResources across builds for the same message objects."""

    def __init__(self) -> None:
        self._current: dict[int, tuple[object, CachedResource]] = {}
        self._previous: dict[int, tuple[object, CachedResource]] = {}
        self._hosts: dict[int, tuple[VirtualHost, frozenset[str]]] = {}
        self._hosts_previous: dict[int, tuple[VirtualHost, frozenset[str]]] = {}
        self._rests: dict[bytes, frozenset[str] | None] = {}
        """What a cluster's bytes after its name say of its EDS name (of_cluster's memo:
        a few entries, one per distinct cluster shape; cleared when it grows past
        ``_RESTS``, a DNS cluster's endpoints making each rest distinct)."""
        self.built = 0
        """CachedResources made (not reused) since the pool was made."""

    def resource(
        self, type_url: str, message: Message, serialized: bytes | None = None
    ) -> CachedResource:
        """The cached form of ``message``, made once while the same object comes back;
        ``serialized``, its deterministic serialization if the caller has it (trusted,
        as :meth:`CachedResource.of` says)."""
        key = id(message)
        entry = self._current.get(key)
        if entry is None:
            entry = self._previous.get(key)
            if entry is not None and entry[0] is message:
                self._current[key] = entry
        if entry is not None and entry[0] is message and entry[1].type_url == type_url:
            return entry[1]
        resource = CachedResource.of(type_url, message, serialized=serialized)
        self.built += 1
        self._current[key] = (message, resource)
        return resource

    def cluster(self, serialized: bytes) -> CachedResource:
        """A Cluster given as its deterministic serialization (never parsed whole: see
        :meth:`CachedResource.of_cluster`), made once while the same bytes object comes
        back."""
        hit = self._lookup(id(serialized), serialized)
        if hit is not None and hit.type_url == CLUSTER_TYPE:
            return hit
        resource = CachedResource.of_cluster(serialized, self._rests)
        self.built += 1
        self._current[id(serialized)] = (serialized, resource)
        return resource

    def assignment(self, name: str, serialized: bytes) -> CachedResource:
        """A ClusterLoadAssignment given as its name and deterministic serialization
        (never parsed: see :meth:`CachedResource.prepared`; an assignment references
        nothing), made once while the same bytes object comes back."""
        hit = self._lookup(id(serialized), serialized)
        if hit is not None and hit.type_url == ENDPOINT_TYPE:
            return hit
        resource = CachedResource.prepared(ENDPOINT_TYPE, name, serialized, _NOTHING)
        self.built += 1
        self._current[id(serialized)] = (serialized, resource)
        return resource

    def route_configuration(
        self, name: str, virtual_hosts: Sequence[VirtualHost], serialized: bytes
    ) -> CachedResource:
        """A RouteConfiguration given as its name, its virtual hosts and its
        deterministic serialization (never parsed: see :meth:`CachedResource.prepared`)."""
        hit = self._lookup(id(serialized), serialized)
        if hit is not None:
            return hit
        if len(virtual_hosts) == 1:  # a scope's configuration: its one service's names
            references = self._host_references(virtual_hosts[0])
        else:
            references = frozenset().union(*map(self._host_references, virtual_hosts))
        resource = CachedResource.prepared(ROUTE_TYPE, name, serialized, references)
        self.built += 1
        self._current[id(serialized)] = (serialized, resource)
        return resource

    def sweep(self) -> None:
        """Forget whatever was not used since the previous sweep."""
        if len(self._rests) > _RESTS:
            self._rests.clear()
        self._previous, self._current = self._current, {}
        self._hosts_previous, self._hosts = self._hosts, {}

    def _lookup(self, key: int, source: object) -> CachedResource | None:
        entry = self._current.get(key)
        if entry is None:
            entry = self._previous.get(key)
            if entry is not None and entry[0] is source:
                self._current[key] = entry
        if entry is not None and entry[0] is source:
            return entry[1]
        return None

    def _host_references(self, vhost: VirtualHost) -> frozenset[str]:
        key = id(vhost)
        entry = self._hosts.get(key) or self._hosts_previous.get(key)
        if entry is None or entry[0] is not vhost:
            entry = (vhost, virtual_host_cluster_names(vhost))
        self._hosts[key] = entry
        return entry[1]
