"""From a validated PolicySet to Envoy resources, grouped so each Envoy gets its gateways."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.endpoint.v3 import endpoint_pb2
from envoy.config.listener.v3 import listener_pb2
from envoy.config.route.v3 import route_pb2
from google.protobuf import json_format
from google.protobuf.message import Message

from turnout.policy import PolicySet

from ._clusters import service_clusters
from ._listeners import listener
from ._routes import route_configuration

__all__ = ["Resources", "Translation", "to_json", "translate"]

_M = TypeVar("_M", bound=Message)


@dataclass(frozen=True)
class Resources:
    """What one Envoy gets: every resource of each type, sorted by name."""

    clusters: tuple[cluster_pb2.Cluster, ...] = ()
    endpoints: tuple[endpoint_pb2.ClusterLoadAssignment, ...] = ()
    listeners: tuple[listener_pb2.Listener, ...] = ()
    routes: tuple[route_pb2.RouteConfiguration, ...] = ()


@dataclass(frozen=True)
class _GatewayPart:
    listener: listener_pb2.Listener
    routes: route_pb2.RouteConfiguration
    services: tuple[str, ...]


@dataclass(frozen=True)
class _ServicePart:
    clusters: tuple[cluster_pb2.Cluster, ...]
    endpoints: tuple[endpoint_pb2.ClusterLoadAssignment, ...]


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

    def select(self, gateways: Sequence[str]) -> Resources:
        """Listeners and routes of these gateways, with the clusters and assignments of
        every service attached to them (every version's cluster, so pin headers and
        mirrors work, and the instances pool). Raises KeyError for an unknown gateway.
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
            routes=_by_name(part.routes for part in parts),
        )


def translate(policies: PolicySet) -> Translation:
    """Translate a whole policy set; the same set always gives the same messages."""
    services = {}
    for service in policies.services:
        clusters, endpoints = service_clusters(service)
        services[service.name] = _ServicePart(tuple(clusters), tuple(endpoints))
    gateways = {}
    for gateway in policies.gateways:
        attached = [s for s in policies.services if gateway.name in s.gateways]
        gateways[gateway.name] = _GatewayPart(
            listener=listener(gateway),
            routes=route_configuration(gateway.name, attached),
            services=tuple(sorted(s.name for s in attached)),
        )
    return Translation(gateways, services)


def to_json(resources: Resources) -> dict[str, list[dict[str, Any]]]:
    """A JSON-ready view of the resources (for `turnout render`), each with its `@type`."""
    return {
        "clusters": [_message_json(m) for m in resources.clusters],
        "endpoints": [_message_json(m) for m in resources.endpoints],
        "listeners": [_message_json(m) for m in resources.listeners],
        "routes": [_message_json(m) for m in resources.routes],
    }


def _message_json(message: Message) -> dict[str, Any]:
    body = json_format.MessageToDict(message, preserving_proto_field_name=True)
    return {"@type": f"type.googleapis.com/{message.DESCRIPTOR.full_name}", **body}


def _by_name(messages: Iterable[_M], key: Any = None) -> tuple[_M, ...]:
    return tuple(sorted(messages, key=key or (lambda m: m.name)))
