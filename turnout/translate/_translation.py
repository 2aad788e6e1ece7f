"""From a validated PolicySet to Envoy resources, grouped so each Envoy gets its gateways.

A :class:`Translator` remembers what it built for the last set: a service equal to
the one it translated before is not translated again (its clusters, assignments and
virtual host are reused, as the same message objects), and a gateway's route
configuration is re-assembled from its services' virtual hosts, already serialized,
by concatenation (a protobuf message is the concatenation of its fields, and
deterministic serialization writes them in field order: the result is byte-identical
to serializing the whole message). A one-service change costs one service's
translation and a copy of the gateway's route bytes, not a walk of every service.

A gateway whose hosts are all exact names (``checkout.example.com``, with or without
a port or ``:*``) is *scoped*: its listener routes by scoped RDS, with one scope, and
one route configuration, per host name (``public/checkout.example.com``), holding the
virtual hosts of the services that claim that name. A one-service change then
re-assembles, and sends, that service's route configurations only: a few hundred
bytes, whatever the gateway's size. A gateway with a wildcard host (``*``,
``*.example.com``, ``example.*``) keeps one route configuration for all its services:
Envoy finds a scope by an exact look-up of its key, with no wildcard and no fallback
scope, so a wildcard host cannot be given a scope of its own (``_listeners``). Its
exact host names still get their scopes, standby (``Translator._gateway_part``).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, TypeVar

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.endpoint.v3 import endpoint_pb2
from envoy.config.listener.v3 import listener_pb2
from envoy.config.route.v3 import route_components_pb2, route_pb2, scoped_route_pb2
from google.protobuf import json_format
from google.protobuf.message import Message

from turnout._protowire import length_delimited
from turnout.policy import Endpoint, Gateway, PolicySet, Service

from ._clusters import ServiceResources, service_resources
from ._common import framed, key
from ._listeners import listener
from ._names import GATEWAY_HEADER, scope_name
from ._routes import virtual_host_bytes

__all__ = ["Resources", "RouteParts", "Translation", "Translator", "to_json", "translate"]

_M = TypeVar("_M", bound=Message)
_T = TypeVar("_T")


@dataclass(frozen=True)
class Resources:
    """What one Envoy gets: every resource of each type, sorted by name."""

    clusters: tuple[cluster_pb2.Cluster, ...] = ()
    endpoints: tuple[endpoint_pb2.ClusterLoadAssignment, ...] = ()
    listeners: tuple[listener_pb2.Listener, ...] = ()
    routes: tuple[route_pb2.RouteConfiguration, ...] = ()
    scoped_routes: tuple[scoped_route_pb2.ScopedRouteConfiguration, ...] = ()


@dataclass(frozen=True, eq=False)
class RouteParts:
    """A gateway's route configuration, kept as its parts: the virtual hosts (one per
    attached service, by service name) and the configuration's deterministic
    serialization, assembled from theirs. ``message`` is parsed from the bytes when
    first asked for."""

    name: str
    virtual_hosts: tuple[route_components_pb2.VirtualHost, ...]
    serialized: bytes = field(repr=False)

    @functools.cached_property
    def message(self) -> route_pb2.RouteConfiguration:
        """The RouteConfiguration these parts make."""
        return route_pb2.RouteConfiguration.FromString(self.serialized)


@dataclass(frozen=True, eq=False)
class _ServicePart:  # not slotted: caches ``clusters`` and ``endpoints``
    service: Service
    built: ServiceResources
    virtual_host: route_components_pb2.VirtualHost
    route_field: bytes
    """The virtual host as field 2 of a RouteConfiguration (tag, length, bytes)."""

    @property
    def resources(self) -> ServiceResources:
        """Its clusters and assignments as written (bytes): one object for the part's
        life, so building a snapshot allocates nothing per unchanged service."""
        return self.built

    @functools.cached_property
    def clusters(self) -> tuple[cluster_pb2.Cluster, ...]:
        """The clusters as messages, parsed once when first asked for (by
        :meth:`Translation.select`; compiles take the bytes)."""
        return tuple(c.message() for c in self.resources.clusters)

    @functools.cached_property
    def endpoints(self) -> tuple[endpoint_pb2.ClusterLoadAssignment, ...]:
        """The assignments as messages, parsed once when first asked for (by
        :meth:`Translation.select`; compiles take the bytes)."""
        return tuple(a.message() for a in self.resources.assignments)


@dataclass(frozen=True, eq=False)
class _RoutePart:
    """One route configuration of a gateway, its scope (if scoped), and the service
    parts it was assembled from (re-assembled when one's virtual host bytes differ)."""

    routes: RouteParts
    scope: scoped_route_pb2.ScopedRouteConfiguration | None
    parts: tuple[_ServicePart, ...]


@dataclass(frozen=True, eq=False)
class _GatewayPart:
    gateway: Gateway
    listener: listener_pb2.Listener
    routes: dict[str, _RoutePart]
    """By host name; for a gateway that is not scoped, also the gateway's one route
    configuration, under ``""`` (the others are then standby)."""
    services: tuple[str, ...]
    parts: tuple[_ServicePart, ...]
    """The attached services' parts, by name."""


class Pieces(NamedTuple):
    """What an Envoy serving some gateways gets, as the pieces incremental builds reuse."""

    services: tuple[ServiceResources, ...]
    """Per attached service (by name), its clusters and assignments: the same
    objects for a service unchanged since the translator's previous set."""
    listeners: tuple[listener_pb2.Listener, ...]
    routes: tuple[RouteParts, ...]
    scopes: tuple[scoped_route_pb2.ScopedRouteConfiguration, ...]


class Translation:
    """The translated policy set; `select` cuts out what an Envoy with given gateways needs.

    Messages are built once in `translate` and shared by every selection: treat them as
    read-only.
    """

    def __init__(
        self, gateways: Mapping[str, _GatewayPart], services: Mapping[str, _ServicePart]
    ) -> None:
        self._gateways = dict(gateways)
        self._services = dict(services)

    @property
    def gateways(self) -> tuple[str, ...]:
        """Every gateway's name, sorted."""
        return tuple(sorted(self._gateways))

    @property
    def all(self) -> Resources:
        """The resources of every gateway."""
        return self.select(self.gateways)

    def pieces(self, gateways: Sequence[str]) -> Pieces:
        """:meth:`select` as pieces: per service, per gateway, nothing sorted or copied."""
        unknown = sorted(set(gateways) - self._gateways.keys())
        if unknown:
            raise KeyError(f"unknown gateways: {', '.join(unknown)}")
        parts = [self._gateways[name] for name in sorted(set(gateways))]
        services = sorted({s for part in parts for s in part.services})
        return Pieces(
            services=tuple(self._services[s].resources for s in services),
            listeners=tuple(part.listener for part in parts),
            routes=tuple(r.routes for part in parts for r in part.routes.values()),
            scopes=tuple(
                r.scope for part in parts for r in part.routes.values() if r.scope is not None
            ),
        )

    def route_parts(self, gateway: str) -> tuple[RouteParts, ...]:
        """The route configurations of one gateway, as parts: its one, or one per scope
        (by host name)."""
        return tuple(r.routes for r in self._gateways[gateway].routes.values())

    def select(self, gateways: Sequence[str], *, routes: bool = True) -> Resources:
        """Listeners and routes of these gateways, with the clusters and assignments of
        every service attached to them (every version's cluster, so pin headers and
        mirrors work, and the instances pool). Raises KeyError for an unknown gateway.
        ``routes=False`` leaves the route configurations out (take them as
        :meth:`route_parts`).
        """
        unknown = sorted(set(gateways) - self._gateways.keys())
        if unknown:
            raise KeyError(f"unknown gateways: {', '.join(unknown)}")
        parts = [self._gateways[name] for name in sorted(set(gateways))]
        services = sorted({s for part in parts for s in part.services})
        return Resources(
            clusters=_by_name(c for s in services for c in self._services[s].clusters),
            endpoints=_by_name(
                (e for s in services for e in self._services[s].endpoints),
                key=lambda e: e.cluster_name,
            ),
            listeners=_by_name(part.listener for part in parts),
            routes=(
                _by_name(r.routes.message for part in parts for r in part.routes.values())
                if routes
                else ()
            ),
            scoped_routes=_by_name(
                r.scope for part in parts for r in part.routes.values() if r.scope is not None
            ),
        )


def translate(policies: PolicySet) -> Translation:
    """Translate a whole policy set; the same set always gives the same messages."""
    return Translator().translate(policies)


class Translator:
    """Translates policy sets one after another, re-translating only what changed.

    A service is compared by value with the one of the same name last time (the model
    is immutable); ``translated_services`` / ``assembled_routes`` count the work done,
    so tests and benchmarks can see it.
    """

    def __init__(self, comparators: Sequence[Endpoint] = ()) -> None:
        """``comparators``: where mirrors with `compare:` copy to (`turnout serve
        --comparator`); without, they copy to the dark version."""
        self.comparators = tuple(comparators)
        self._services: dict[str, _ServicePart] = {}
        self._gateways: dict[str, _GatewayPart] = {}
        self.translated_services = 0
        """Services translated (not reused) since this translator was made."""
        self.assembled_routes = 0
        """Route configurations assembled (not reused) since this translator was made."""
        self.assembled_route_bytes = 0
        """The bytes of those route configurations."""

    def translate(self, policies: PolicySet) -> Translation:
        """Translate ``policies``, reusing every part whose inputs did not change."""
        services: dict[str, _ServicePart] = {}
        for service in policies.services:
            part = self._services.get(service.name)
            if part is None or (part.service is not service and part.service != service):
                part = _service_part(service, part, self.comparators)
                self.translated_services += 1
            services[service.name] = part
        ordered = [services[name] for name in sorted(services)]
        gateways: dict[str, _GatewayPart] = {}
        for gateway in policies.gateways:
            parts = tuple(p for p in ordered if gateway.name in p.service.gateways)
            previous = self._gateways.get(gateway.name)
            if previous is not None and previous.gateway != gateway:
                previous = None
            if previous is not None and _same(previous.parts, parts):
                gateways[gateway.name] = previous
                continue
            gateways[gateway.name] = self._gateway_part(gateway, parts, previous)
        self._services, self._gateways = services, gateways
        return Translation(gateways, services)

    def _gateway_part(
        self, gateway: Gateway, parts: tuple[_ServicePart, ...], previous: _GatewayPart | None
    ) -> _GatewayPart:
        """A gateway's listener and route configurations, reusing each route
        configuration (and scope) of ``previous`` whose services' virtual hosts are the
        same objects."""
        if previous is not None:
            patched = self._patched_gateway_part(gateway, parts, previous)
            if patched is not None:
                return patched
        groups, scoped = _scopes(parts)
        if not scoped:
            # The one route table, and beside it the scopes its exact host names would
            # have (standby: no listener routes by them). Envoy shares one scoped-RDS
            # subscription between a gateway's listeners, old and new: when the
            # gateway turns scoped again (its last wildcard host removed) while the
            # old scoped listener still drains, the new listener starts at once on
            # that subscription, and finds its scopes there, up to date, instead of
            # none until they arrive (requests in between would be 404). Checked with
            # Envoy 1.40 (tests/e2e/test_e2e_scoped.py).
            groups = {"": parts, **groups}
        old = previous.routes if previous is not None else {}
        routes: dict[str, _RoutePart] = {}
        for host, members in groups.items():
            kept = old.get(host)
            if kept is not None and _same(kept.parts, members):
                routes[host] = kept
                continue
            routes[host] = route = _route_part(gateway.name, host, members, kept)
            self.assembled_routes += 1
            self.assembled_route_bytes += len(route.routes.serialized)
        listener_message = previous.listener if previous is not None else None
        if listener_message is None or _is_scoped(previous) != scoped:
            listener_message = listener(gateway, scoped=scoped)
        return _GatewayPart(
            gateway=gateway,
            listener=listener_message,
            routes=routes,
            services=tuple(p.service.name for p in parts),
            parts=parts,
        )

    def _patched_gateway_part(
        self, gateway: Gateway, parts: tuple[_ServicePart, ...], previous: _GatewayPart
    ) -> _GatewayPart | None:
        """``previous`` with the route configurations of the services that changed
        re-assembled, when the gateway has the same services with the same hosts (a
        traffic or endpoint change): the groups by host are then the same, so only
        the changed services' own groups are visited, not every host of the gateway.
        None when services or hosts changed (the caller regroups everything)."""
        before = previous.parts
        if len(before) != len(parts):
            return None
        changed = [
            i for i, (old, new) in enumerate(zip(before, parts, strict=True)) if old is not new
        ]
        for i in changed:
            old, new = before[i].service, parts[i].service
            if old.name != new.name or old.hosts != new.hosts:
                return None
        routes = dict(previous.routes)
        for i in changed:
            part = parts[i]
            name = part.service.name
            keys = sorted({k for k in map(scope_host, part.service.hosts) if k is not None})
            if "" in routes:
                keys.append("")  # the one route table of a gateway that is not scoped
            for host in keys:
                kept = routes[host]
                members = tuple(part if m.service.name == name else m for m in kept.parts)
                if _same(kept.parts, members):
                    # Same virtual host bytes: the assembled configuration stands; the
                    # group holds the new part, so no old part outlives its change.
                    routes[host] = _RoutePart(kept.routes, kept.scope, members)
                    continue
                routes[host] = route = _route_part(gateway.name, host, members, kept)
                self.assembled_routes += 1
                self.assembled_route_bytes += len(route.routes.serialized)
        return _GatewayPart(
            gateway=gateway,
            listener=previous.listener,
            routes=routes,
            services=previous.services,
            parts=parts,
        )


def scope_host(host: str) -> str | None:
    """The scope a policy host belongs to: its name without a port, lowercased
    (``Checkout.example.com:*`` -> ``checkout.example.com``), or None for a host that
    cannot have a scope (a wildcard name, an IPv6 literal)."""
    name, colon, port = host.partition(":")
    if not name or "*" in name or "[" in host:
        return None
    if colon and not (port == "*" or port.isdigit()):
        return None
    return name.lower()


def _scopes(
    parts: tuple[_ServicePart, ...],
) -> tuple[dict[str, tuple[_ServicePart, ...]], bool]:
    """The services of a gateway grouped by the host names they claim that can have a
    scope, in name order (a service with two host names is in both), and whether the
    gateway can be scoped: it has services, and every host has a scope."""
    groups: dict[str, list[_ServicePart]] = {}
    scoped = bool(parts)
    for part in parts:
        for host in part.service.hosts:
            key = scope_host(host)
            if key is None:
                scoped = False
                continue
            members = groups.setdefault(key, [])
            if not members or members[-1] is not part:
                members.append(part)
    return {key: tuple(groups[key]) for key in sorted(groups)}, scoped


def _is_scoped(part: _GatewayPart | None) -> bool:
    return part is not None and "" not in part.routes


def _keep_equal(before: Sequence[_T], after: Sequence[_T]) -> list[_T]:
    """``after``, with each item equal to the one at its place in ``before`` replaced by
    that (older) object."""
    kept = list(after)
    for i, (old, new) in enumerate(zip(before, after, strict=False)):
        if old == new:
            kept[i] = old
    return kept


def _same(before: tuple[_ServicePart, ...], after: tuple[_ServicePart, ...]) -> bool:
    """Whether a gateway's routes assembled from ``after`` are the ones from ``before``."""
    return len(before) == len(after) and all(
        a.route_field is b.route_field for a, b in zip(before, after, strict=True)
    )


def _service_part(
    service: Service, previous: _ServicePart | None, comparators: tuple[Endpoint, ...] = ()
) -> _ServicePart:
    resources = service_resources(service, comparators)
    vhost_bytes = virtual_host_bytes(service, comparing=bool(comparators))
    if previous is not None:
        # A traffic change leaves the clusters as they were: hand back the previous
        # (equal) records, so what is cached for them downstream stays valid.
        old = previous.resources
        resources = ServiceResources(
            tuple(_keep_equal(old.clusters, resources.clusters)),
            tuple(_keep_equal(old.assignments, resources.assignments)),
        )
    route_field = length_delimited(_VIRTUAL_HOSTS, vhost_bytes)
    if previous is not None and previous.route_field == route_field:
        vhost, route_field = previous.virtual_host, previous.route_field
    else:
        vhost = route_components_pb2.VirtualHost.FromString(vhost_bytes)
    return _ServicePart(
        service=service,
        built=resources,
        virtual_host=vhost,
        route_field=route_field,
    )


def _route_part(
    gateway: str, host: str, parts: tuple[_ServicePart, ...], previous: _RoutePart | None
) -> _RoutePart:
    """The route configuration of a gateway (``host`` empty) or of one of its scopes.

    RouteConfiguration fields in number order: name (1), virtual_hosts (2), and for a
    scope request_headers_to_remove (8), the gateway header the listener wrote for the
    scope key: backends never see it."""
    name = scope_name(gateway, host) if host else gateway
    serialized = length_delimited(_NAME, name.encode()) + b"".join(p.route_field for p in parts)
    scope = None
    if host:
        serialized += _REMOVE_GATEWAY_HEADER
        # The same host's scope is the same message (names and key alike): kept, so
        # what is cached for it downstream stays valid.
        scope = previous.scope if previous is not None else None
    if host and scope is None:
        scope = scoped_route_pb2.ScopedRouteConfiguration.FromString(scope_bytes(gateway, host))
    return _RoutePart(
        routes=RouteParts(name, tuple(p.virtual_host for p in parts), serialized),
        scope=scope,
        parts=parts,
    )


def scope_bytes(gateway: str, host: str) -> bytes:
    """The ScopedRouteConfiguration of one host of a gateway, serialized: name (1) and
    route_configuration_name (2) both ``gateway/host``, key (3) of two fragments (1)
    with a string_key (1) each, the gateway's name and the host's (the listener builds
    its scope key from the gateway header and the host, in that order). Written as
    bytes, a gateway of 5,000 hosts builds no nested messages for its scopes
    (tests/translate/test_written_bytes.py holds them to the message)."""
    name = scope_name(gateway, host).encode()
    fragments = framed(_ONE, framed(_ONE, gateway.encode())) + framed(
        _ONE, framed(_ONE, host.encode())
    )
    return framed(_ONE, name) + framed(_TWO, name) + framed(_THREE, fragments)


_ONE, _TWO, _THREE = key(1), key(2), key(3)
_NAME = 1
_VIRTUAL_HOSTS = 2
_REQUEST_HEADERS_TO_REMOVE = 8
_REMOVE_GATEWAY_HEADER = length_delimited(_REQUEST_HEADERS_TO_REMOVE, GATEWAY_HEADER.encode())


def to_json(resources: Resources) -> dict[str, list[dict[str, Any]]]:
    """A JSON-ready view of the resources (for `turnout render`), each with its `@type`."""
    return {
        "clusters": [_message_json(m) for m in resources.clusters],
        "endpoints": [_message_json(m) for m in resources.endpoints],
        "listeners": [_message_json(m) for m in resources.listeners],
        "routes": [_message_json(m) for m in resources.routes],
        "scoped_routes": [_message_json(m) for m in resources.scoped_routes],
    }


def _message_json(message: Message) -> dict[str, Any]:
    body = json_format.MessageToDict(message, preserving_proto_field_name=True)
    return {"@type": f"type.googleapis.com/{message.DESCRIPTOR.full_name}", **body}


def _by_name(messages: Iterable[_M], key: Any = None) -> tuple[_M, ...]:
    return tuple(sorted(messages, key=key or (lambda m: m.name)))
