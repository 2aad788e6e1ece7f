"""Immutable, content-addressed snapshots of the resources one proxy group gets.

Every version string here is a content hash (a sha256 hex prefix), never a counter or
a timestamp: the same resources give the same versions in every process and after
every restart, so a restarted control plane sends nothing new to an Envoy that already
has the config, and replicas are interchangeable. Three are kept apart:

- a resource's ``version``: the hash of its serialized ``Any`` (Delta xDS's per-resource
  version);
- a **type version** (:meth:`Snapshot.type_version`, :func:`content_version`): the hash
  of every resource of one type a proxy group gets, sent as ``version_info``;
- the **group snapshot version** (:attr:`Snapshot.group_version`): the hash of a
  snapshot's type versions. The **policy version** (``Compiled.policy_version``,
  ``SnapshotCache.policy_version``) is the group snapshot version of the whole set
  (every gateway): what turnout says it serves and a proxy is synced to.

A set of resources is hashed as the sum of its members' digests (each a sha256 of the
resource's name and version, computed once with the resource), so hashing a type of
15,000 resources is a sum of cached integers, not a sort and 15,000 hash updates: a
one-service change re-hashes its type in well under a millisecond.

Each resource is packed into an ``Any`` and serialized exactly once, with
``deterministic=True`` (map fields would otherwise serialize in hash order and the
hash would differ between processes). The server frames these bytes into responses
without serializing them again.
"""

from __future__ import annotations

import hashlib
import weakref
from collections.abc import Hashable, Iterable, Mapping
from types import MappingProxyType
from typing import NamedTuple

from envoy.config.cluster.v3.cluster_pb2 import Cluster
from envoy.config.endpoint.v3.endpoint_pb2 import ClusterLoadAssignment
from envoy.config.listener.v3.listener_pb2 import Listener
from envoy.config.route.v3.route_pb2 import RouteConfiguration
from envoy.config.route.v3.scoped_route_pb2 import ScopedRouteConfiguration
from google.protobuf.any_pb2 import Any
from google.protobuf.message import Message

from turnout._protowire import length_delimited, varint
from turnout.cache._references import eds_name, listener_route_names, route_cluster_names
from turnout.cache._types import (
    CLUSTER_TYPE,
    ENDPOINT_TYPE,
    LISTENER_TYPE,
    ORDER,
    ROUTE_TYPE,
    SCOPED_ROUTE_TYPE,
)

__all__ = [
    "CachedResource",
    "InconsistentSnapshotError",
    "Selection",
    "Snapshot",
    "content_version",
    "intern_names",
    "pairs_version",
]

HASH_CHARS = 16
"""Hex characters kept of a sha256: 64 bits, plenty to tell versions of one config apart."""

_MESSAGE_TYPES: Mapping[str, type[Message]] = {
    CLUSTER_TYPE: Cluster,
    ENDPOINT_TYPE: ClusterLoadAssignment,
    LISTENER_TYPE: Listener,
    ROUTE_TYPE: RouteConfiguration,
    SCOPED_ROUTE_TYPE: ScopedRouteConfiguration,
}


class InconsistentSnapshotError(ValueError):
    """A snapshot names resources it does not contain; ``problems`` lists every one."""

    def __init__(self, problems: Iterable[str]) -> None:
        self.problems: tuple[str, ...] = tuple(problems)
        super().__init__("inconsistent snapshot:\n" + "\n".join(f"  {p}" for p in self.problems))


class CachedResource:
    """One resource, packed and serialized once, with its content hash. Immutable:
    nothing assigns to it once made (a plain slotted class rather than a frozen
    dataclass: a compile makes one per resource, 40,000 for 5,000 services, and a
    frozen dataclass's ``__init__`` costs a call per field).

    ``references`` are the names this resource depends on: for a cluster its EDS
    name (if any), for a listener its RDS names, for a route configuration the
    clusters it routes or mirrors to, for an assignment nothing.
    """

    __slots__ = ("digest", "name", "references", "serialized", "source", "type_url", "version")

    type_url: str
    name: str
    source: Message | None
    """The message, when it was made from one (else :attr:`message` parses the bytes)."""
    serialized: bytes
    """The deterministic serialization of the ``Any`` holding ``message``."""
    version: str
    references: frozenset[str]
    digest: int
    """This resource's share of a :func:`content_version`: ``_digest(name, version)``."""

    def __init__(
        self,
        type_url: str,
        name: str,
        source: Message | None,
        serialized: bytes,
        version: str,
        references: frozenset[str],
    ) -> None:
        self.type_url = type_url
        self.name = name
        self.source = source
        self.serialized = serialized
        self.version = version
        self.references = references
        # _digest(name, version), written out: one is made per resource
        self.digest = int.from_bytes(
            hashlib.sha256(f"{name}\x00{version}\n".encode()).digest()[:_DIGEST_BYTES], "big"
        )

    def __repr__(self) -> str:
        return (
            f"CachedResource(type_url={self.type_url!r}, name={self.name!r},"
            f" version={self.version!r})"
        )

    @property
    def message(self) -> Message:
        """The resource as a message (parsed from the cached bytes if need be)."""
        if self.source is not None:
            return self.source
        return _MESSAGE_TYPES[self.type_url].FromString(Any.FromString(self.serialized).value)

    @classmethod
    def prepared(
        cls, type_url: str, name: str, value: bytes, references: frozenset[str]
    ) -> CachedResource:
        """A resource given as its name, the deterministic serialization of its message
        and its references (a route configuration assembled from cached virtual hosts),
        trusted to be exactly what :meth:`of` would compute from the message."""
        if type_url not in _MESSAGE_TYPES:
            raise ValueError(f"unknown resource type {type_url!r}")
        return cls._packed(type_url, name, None, value, references)

    @classmethod
    def of(
        cls,
        type_url: str,
        message: Message,
        *,
        serialized: bytes | None = None,
        references: frozenset[str] | None = None,
    ) -> CachedResource:
        """Pack ``message`` (of the type ``type_url`` names) and hash it.

        A caller that already has the message's deterministic serialization, or its
        references, passes them (a route configuration assembled from cached virtual
        hosts): they are trusted to be exactly what would be computed.
        """
        expected = _MESSAGE_TYPES.get(type_url)
        if expected is None:
            raise ValueError(f"unknown resource type {type_url!r}")
        if type(message) is not expected and not isinstance(message, expected):
            raise TypeError(f"{type_url} needs {expected.__name__}, got {type(message).__name__}")
        if serialized is None:
            serialized = message.SerializeToString(deterministic=True)
        return cls._packed(
            type_url,
            _name_of(message),
            message,
            serialized,
            _references_of(message) if references is None else references,
        )

    @classmethod
    def of_cluster(
        cls, serialized: bytes, rests: dict[bytes, frozenset[str] | None] | None = None
    ) -> CachedResource:
        """A Cluster given as its deterministic serialization, never parsed whole on the
        way (:attr:`message` parses it when asked): what :meth:`of` computes from the
        message, read from the bytes.

        A message parsed from concatenated serializations is their merge (protobuf's
        wire format), and deterministic serialization writes the name (field 1) first.
        So a cluster is its name field followed by the rest, and parses to the rest's
        message with that name: its EDS name is the rest's ``service_name``, or the
        name when that is empty. The rest of a big gateway's clusters is the same few
        byte strings, so each is parsed once per ``rests`` (a memo the caller keeps:
        rest -> its EDS service name as a one-element set, empty for "the cluster's own
        name", or None when the rest is not an EDS cluster). Bytes that do not start
        with a name, or whose rest names the cluster again, go through :meth:`of`.
        """
        split = _leading_name(serialized)
        if split is None:
            return cls.of(CLUSTER_TYPE, Cluster.FromString(serialized), serialized=serialized)
        name, rest = split
        if rests is None:
            rests = {}
        eds = rests.get(rest, _UNSEEN)
        if eds is _UNSEEN:
            message = Cluster.FromString(rest)
            if message.name:  # the name given twice: the last one counts
                return cls.of(CLUSTER_TYPE, Cluster.FromString(serialized), serialized=serialized)
            service = eds_name(message)
            eds = None if service is None else frozenset((service,) if service else ())
            rests[rest] = eds
        if eds is None:
            references = _NONE
        elif eds:
            references = eds
        else:
            references = frozenset((name,))
        return cls._packed(CLUSTER_TYPE, name, None, serialized, references)

    @classmethod
    def _packed(
        cls,
        type_url: str,
        name: str,
        message: Message | None,
        serialized: bytes,
        references: frozenset[str],
    ) -> CachedResource:
        """The resource whose message serializes (deterministically) to ``serialized``,
        packed in an Any and hashed: the one place :meth:`of`, :meth:`prepared` and
        :meth:`of_cluster` make one."""
        # An Any is type_url (field 1) then value (field 2): framed by hand, the
        # bytes equal Any(...).SerializeToString(deterministic=True) without a copy
        # into a message first.
        packed = _any_prefix(type_url) + varint(len(serialized)) + serialized
        return cls(
            type_url,
            name,
            message,
            packed,
            hashlib.sha256(packed).hexdigest()[:HASH_CHARS],
            references,
        )

    def to_any(self) -> Any:
        """A fresh ``Any`` parsed from the cached bytes."""
        return Any.FromString(self.serialized)


def content_version(resources: Iterable[CachedResource]) -> str:
    """The content hash of exactly these resources (order does not matter).

    The server uses it as a response's ``version_info``, so a response's version
    names what it contains; a snapshot's type version is the same function over
    all the resources of that type. Equal to :func:`pairs_version` over the
    resources' (name, version) pairs.
    """
    return _set_version(sum(r.digest for r in resources))


def pairs_version(pairs: Iterable[tuple[str, str]]) -> str:
    """:func:`content_version` of resources given as (name, version) pairs (what a
    Delta proxy says it has): equal for equal sets."""
    return _set_version(sum(_digest(name, version) for name, version in pairs))


_DIGEST_BYTES = 16
_DIGEST_MASK = (1 << (8 * _DIGEST_BYTES)) - 1


def _digest(name: str, version: str) -> int:
    """One (name, version) pair as 128 bits of sha256: a set's hash is their sum, which
    any order gives alike. Names are unique within a set, so the sum of distinct pairs'
    digests tells sets apart as well as a hash of their sorted list would."""
    data = f"{name}\x00{version}\n".encode()
    return int.from_bytes(hashlib.sha256(data).digest()[:_DIGEST_BYTES], "big")


def _set_version(total: int) -> str:
    return _hash((total & _DIGEST_MASK).to_bytes(_DIGEST_BYTES, "big"))


class Selection(NamedTuple):
    """Some resources of one type, by name, and their :func:`content_version`."""

    resources: Mapping[str, CachedResource]
    version: str


class _Names(frozenset[str]):
    """An interned name set (a plain frozenset subclass, so it can be weakly referenced)."""


_INTERNED: weakref.WeakValueDictionary[frozenset[str], _Names] = weakref.WeakValueDictionary()


def intern_names(names: Iterable[str]) -> frozenset[str]:
    """One shared frozenset object per distinct set of names, while anyone holds it.

    Streams subscribing to the same names (every Envoy of a group asks EDS for the
    same clusters) then hold the same object, so :meth:`Snapshot.select` finds its
    memo by identity instead of comparing thousands of names per stream.
    """
    key = frozenset(names)
    interned = _INTERNED.get(key)
    if interned is None:
        interned = _Names(key)
        _INTERNED[key] = interned
    return interned


class Snapshot:
    """The resources of the five types one proxy group gets, immutable once built.

    What streams derive from a snapshot (a selection of names, a response's framing)
    is computed once and kept with it: a publish makes a new snapshot, so the memo
    never outlives the content it was computed from, and the work per publish grows
    with the number of distinct things asked, not with the number of streams.
    """

    __slots__ = (
        "_checked",
        "_group_version",
        "_memo",
        "_resources",
        "_selections",
        "_type_versions",
    )

    def __init__(
        self,
        resources: Mapping[str, Mapping[str, CachedResource]],
        *,
        previous: Snapshot | None = None,
    ) -> None:
        """Prefer :meth:`build`; this takes already cached resources, keyed by type then name.

        With ``previous``, a type whose resources are all the very objects
        ``previous`` holds keeps ``previous``'s mapping and hash (a one-service change
        then re-hashes only the types it touched).
        """
        unknown = set(resources) - set(ORDER)
        if unknown:
            raise ValueError(f"unknown resource types: {sorted(unknown)}")
        self._resources: dict[str, Mapping[str, CachedResource]] = {}
        self._type_versions: dict[str, str] = {}
        for type_url in ORDER:
            given = resources.get(type_url, {})
            if previous is not None and _same_objects(previous.resources(type_url), given):
                self._resources[type_url] = previous.resources(type_url)
                self._type_versions[type_url] = previous.type_version(type_url)
            else:
                self._resources[type_url] = MappingProxyType(dict(given))
                self._type_versions[type_url] = content_version(given.values())
        whole = hashlib.sha256()
        for type_url in ORDER:
            whole.update(f"{type_url}\x00{self._type_versions[type_url]}\n".encode())
        self._group_version = whole.hexdigest()[:HASH_CHARS]
        self._selections: dict[tuple[str, frozenset[str]], Selection] = {}
        self._memo: dict[Hashable, object] = {}
        self._checked = False

    @classmethod
    def build(cls, resources: Mapping[str, Iterable[Message]]) -> Snapshot:
        """Pack, serialize and hash every message once; names must be unique per type."""
        cached: dict[str, dict[str, CachedResource]] = {}
        for type_url, messages in resources.items():
            by_name: dict[str, CachedResource] = {}
            for message in messages:
                resource = CachedResource.of(type_url, message)
                if resource.name in by_name:
                    raise ValueError(f"duplicate {type_url} resource {resource.name!r}")
                by_name[resource.name] = resource
            cached[type_url] = by_name
        return cls(cached)

    @classmethod
    def of(
        cls,
        *,
        clusters: Iterable[Cluster] = (),
        endpoints: Iterable[ClusterLoadAssignment] = (),
        listeners: Iterable[Listener] = (),
        routes: Iterable[RouteConfiguration] = (),
        scoped_routes: Iterable[ScopedRouteConfiguration] = (),
    ) -> Snapshot:
        """:meth:`build` with one keyword per type."""
        return cls.build(
            {
                CLUSTER_TYPE: clusters,
                ENDPOINT_TYPE: endpoints,
                LISTENER_TYPE: listeners,
                ROUTE_TYPE: routes,
                SCOPED_ROUTE_TYPE: scoped_routes,
            }
        )

    @property
    def group_version(self) -> str:
        """The group snapshot version: the content hash of this snapshot, every type of
        what one proxy group gets (a hash of the type versions). It is not the policy
        version (``Compiled.policy_version``, the whole set's), nor sent to Envoy."""
        return self._group_version

    def type_version(self, type_url: str) -> str:
        """The type version: the content hash of every resource of one type, sent to
        Envoy as a response's ``version_info`` (xDS's per-type version)."""
        return self._type_versions[type_url]

    def resources(self, type_url: str) -> Mapping[str, CachedResource]:
        """The resources of one type, by name (read-only)."""
        return self._resources[type_url]

    def select(self, type_url: str, names: frozenset[str]) -> Selection:
        """The resources of one type that ``names`` names (absent names are skipped),
        computed once per snapshot and name set (pass :func:`intern_names` sets)."""
        key = (type_url, names)
        selection = self._selections.get(key)
        if selection is None:
            current = self._resources[type_url]
            chosen = {name: current[name] for name in sorted(names) if name in current}
            selection = Selection(MappingProxyType(chosen), content_version(chosen.values()))
            self._selections[key] = selection
        return selection

    @property
    def memo(self) -> dict[Hashable, object]:
        """Values derived from this snapshot by its consumers, kept as long as it lives.

        Keys are the consumer's own (start them with a string naming the use); a value
        must depend on nothing but this snapshot and the objects its key holds.
        """
        return self._memo

    def check(self, previous: Snapshot | None = None) -> None:
        """Raise :class:`InconsistentSnapshotError` listing every dangling or unused name.

        - every assignment fills some EDS cluster, and every EDS cluster has one
          (Envoy keeps a cluster without its assignment warming forever);
        - every route configuration is fetched by some listener or scope (of a
          listener routing by scoped RDS), and every name a listener or scope fetches
          exists (a listener without its routes never warms);
        - every cluster a route routes or mirrors to exists.

        ``previous`` lets it skip what both share (the cluster/assignment pairing when
        both types are the very same, which route configurations are fetched when the
        listeners and scopes are the very same and the configurations' names too, a
        route configuration that is the same object while the clusters are too), but
        only when ``previous`` itself passed this check (:attr:`checked`): skipping
        against one that failed, or was never checked, would pass its faults on unseen,
        so such a ``previous`` is ignored.
        """
        if previous is not None and not previous.checked:
            previous = None
        problems: list[str] = []
        clusters = self._resources[CLUSTER_TYPE]
        assignments = self._resources[ENDPOINT_TYPE]
        listeners = self._resources[LISTENER_TYPE]
        routes = self._resources[ROUTE_TYPE]
        same_clusters = same_names = False
        old_routes: Mapping[str, CachedResource] = {}
        if previous is not None:
            same_clusters = previous.resources(CLUSTER_TYPE) is clusters
            old_assignments = previous.resources(ENDPOINT_TYPE)
            same_names = old_assignments is assignments or (
                old_assignments.keys() == assignments.keys()
            )
            old_routes = previous.resources(ROUTE_TYPE)

        # Pairing is clusters' EDS names against assignment names: with the very same
        # clusters and the same assignment names it cannot have changed.
        if not (same_clusters and same_names):
            problems += _pairing_problems(clusters, assignments)

        # Which route configurations are fetched: with the very same listeners and
        # scopes, and the same route configuration names, it cannot have changed.
        scopes = self._resources[SCOPED_ROUTE_TYPE]
        if not (
            previous is not None
            and previous.resources(LISTENER_TYPE) is listeners
            and previous.resources(SCOPED_ROUTE_TYPE) is scopes
            and (old_routes is routes or old_routes.keys() == routes.keys())
        ):
            fetched_by: dict[str, list[str]] = {}
            for listener in listeners.values():
                for name in listener.references:
                    fetched_by.setdefault(name, []).append(f"listener {listener.name}")
            for scope in scopes.values():
                for name in scope.references:
                    fetched_by.setdefault(name, []).append(f"scope {scope.name}")
            for name in sorted(set(fetched_by) - set(routes)):
                problems.append(
                    f"{', '.join(sorted(fetched_by[name]))}: no route configuration {name!r}"
                )
            for name in sorted(set(routes) - set(fetched_by)):
                problems.append(f"route configuration {name!r}: no listener uses it")

        changed = (
            [r for r in routes.values() if old_routes.get(r.name) is not r]
            if same_clusters
            else routes.values()
        )
        # Membership per reference, not references.difference(clusters.keys()): a set's
        # difference with a keys view walks the view, every cluster once per route
        # configuration (5,000 scoped configurations x 15,000 clusters). Every name any
        # changed configuration routes to is looked up once; only when one is missing
        # are the configurations walked one by one, in name order, to say which.
        named = frozenset().union(*(route.references for route in changed))
        if any(name not in clusters for name in named):
            for route in sorted(changed, key=lambda r: r.name):
                for name in sorted(n for n in route.references if n not in clusters):
                    problems.append(f"route configuration {route.name!r}: no cluster {name!r}")
        if problems:
            raise InconsistentSnapshotError(problems)
        self._checked = True

    @property
    def checked(self) -> bool:
        """Whether :meth:`check` has passed on this snapshot (only such a snapshot may
        be served, or be the ``previous`` another's check skips against)."""
        return self._checked

    def __repr__(self) -> str:
        counts = ", ".join(f"{len(self._resources[t])}" for t in ORDER)
        return (
            f"<Snapshot {self._group_version} clusters/endpoints/listeners/scopes/routes={counts}>"
        )


def _pairing_problems(
    clusters: Mapping[str, CachedResource], assignments: Mapping[str, CachedResource]
) -> list[str]:
    filled = frozenset().union(*(cluster.references for cluster in clusters.values()))
    if filled == assignments.keys():
        return []  # the usual answer, found with set operations only
    problems: list[str] = []
    filled_by: dict[str, list[str]] = {}
    for cluster in clusters.values():
        for name in cluster.references:
            filled_by.setdefault(name, []).append(cluster.name)
    for name in sorted(set(filled_by) - set(assignments)):
        problems.append(f"cluster {', '.join(sorted(filled_by[name]))}: no assignment {name!r}")
    for name in sorted(set(assignments) - set(filled_by)):
        problems.append(f"assignment {name!r}: no EDS cluster uses it")
    return problems


def _same_objects(
    before: Mapping[str, CachedResource], after: Mapping[str, CachedResource]
) -> bool:
    if before is after:
        return True
    if len(before) != len(after):
        return False
    return all(before.get(name) is resource for name, resource in after.items())


_ANY_PREFIXES: dict[str, bytes] = {}


def _any_prefix(type_url: str) -> bytes:
    """An ``Any``'s type_url field (1) and the tag of its value field (2)."""
    prefix = _ANY_PREFIXES.get(type_url)
    if prefix is None:
        prefix = _ANY_PREFIXES[type_url] = length_delimited(1, type_url.encode()) + b"\x12"
    return prefix


def _hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:HASH_CHARS]


def _name_of(message: Message) -> str:
    if isinstance(message, ClusterLoadAssignment):
        name = str(message.cluster_name)
    else:
        name = str(message.name)  # type: ignore[attr-defined]
    if not name:
        raise ValueError(f"{type(message).__name__} without a name")
    return name


_NONE: frozenset[str] = frozenset()
_UNSEEN = frozenset({"\x00unseen"})


def _leading_name(serialized: bytes) -> tuple[str, bytes] | None:
    """A message's bytes split after a leading, non-empty field 1 (length-delimited, so
    key 0x0a): the field's text and the bytes after it; None when they do not start so."""
    if len(serialized) < 2 or serialized[0] != 0x0A:
        return None
    length, shift, at = 0, 0, 1
    while True:
        if at >= len(serialized) or shift > 28:
            return None
        byte = serialized[at]
        at += 1
        length |= (byte & 0x7F) << shift
        if byte < 0x80:
            break
        shift += 7
    end = at + length
    if length == 0 or end > len(serialized):
        return None
    return serialized[at:end].decode(), serialized[end:]


def _references_of(message: Message) -> frozenset[str]:
    kind = type(message)
    if kind is ClusterLoadAssignment:
        return _NONE
    if kind is Cluster:
        name = eds_name(message)
        return _NONE if name is None else frozenset((name,))
    if isinstance(message, Listener):
        return listener_route_names(message)
    if isinstance(message, RouteConfiguration):
        return route_cluster_names(message)
    if isinstance(message, ScopedRouteConfiguration):
        return frozenset({message.route_configuration_name})
    return _NONE
