"""Helpers for testing against turnout's xDS server without Envoy.

- :func:`running_xds` starts an :class:`~turnout.xds.XdsServer` and its
  :class:`~turnout.cache.SnapshotCache` on ``127.0.0.1:0``.
- :class:`AdsClient` plays Envoy over a real grpc.aio channel, on ADS or on one
  per-type service: it sends requests, ACKs and NACKs the way Envoy does (node on the
  first request only; an ACK repeats the subscription with the response's version and
  nonce; a NACK carries the previously accepted version and an ``error_detail``).
- :class:`DeltaClient` does the same over incremental xDS (``delta-ads`` or a per-type
  ``delta-*`` service): subscriptions by difference, ``initial_resource_versions`` on
  reconnect, and the name -> version map a proxy keeps from the responses it accepts.
- ``eds_cluster``, ``assignment``, ``rds_listener``, ``weighted_routes`` and
  ``make_snapshot`` build small, consistent Envoy configs from xds-protos messages.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import grpc
import grpc.aio
from envoy.config.cluster.v3.cluster_pb2 import Cluster
from envoy.config.core.v3.address_pb2 import Address, SocketAddress
from envoy.config.core.v3.base_pb2 import Node
from envoy.config.core.v3.config_source_pb2 import (
    AggregatedConfigSource,
    ApiVersion,
    ConfigSource,
)
from envoy.config.endpoint.v3.endpoint_components_pb2 import (
    Endpoint,
    LbEndpoint,
    LocalityLbEndpoints,
)
from envoy.config.endpoint.v3.endpoint_pb2 import ClusterLoadAssignment
from envoy.config.listener.v3.listener_components_pb2 import Filter, FilterChain
from envoy.config.listener.v3.listener_pb2 import Listener
from envoy.config.route.v3.route_components_pb2 import (
    Route,
    RouteAction,
    RouteMatch,
    VirtualHost,
    WeightedCluster,
)
from envoy.config.route.v3.route_pb2 import RouteConfiguration
from envoy.config.route.v3.scoped_route_pb2 import ScopedRouteConfiguration
from envoy.extensions.filters.http.router.v3.router_pb2 import Router
from envoy.extensions.filters.network.http_connection_manager.v3.http_connection_manager_pb2 import (  # noqa: E501
    HttpConnectionManager,
    HttpFilter,
    Rds,
)
from envoy.service.discovery.v3.discovery_pb2 import (
    DeltaDiscoveryRequest,
    DeltaDiscoveryResponse,
    DiscoveryRequest,
    DiscoveryResponse,
)
from google.protobuf.any_pb2 import Any as AnyProto
from google.protobuf.duration_pb2 import Duration
from google.protobuf.message import Message
from google.protobuf.wrappers_pb2 import UInt32Value
from google.rpc.status_pb2 import Status

from turnout.cache import (
    CLUSTER_TYPE,
    ENDPOINT_TYPE,
    HCM_TYPE,
    LISTENER_TYPE,
    ORDER,
    ROUTE_TYPE,
    SCOPED_ROUTE_TYPE,
    Snapshot,
    SnapshotCache,
    eds_name,
    listener_route_names,
    listener_scoped_routes,
)
from turnout.xds import DELTA_SERVICES, SERVICES, XdsCallbacks, XdsServer

__all__ = [
    "AdsClient",
    "DeltaClient",
    "RunningXds",
    "assignment",
    "decode",
    "decode_delta",
    "eds_cluster",
    "make_snapshot",
    "rds_listener",
    "resource_names",
    "running_xds",
    "weighted_routes",
]

_MESSAGES: Mapping[str, type[Message]] = {
    CLUSTER_TYPE: Cluster,
    ENDPOINT_TYPE: ClusterLoadAssignment,
    LISTENER_TYPE: Listener,
    ROUTE_TYPE: RouteConfiguration,
    SCOPED_ROUTE_TYPE: ScopedRouteConfiguration,
}

_ADS_SOURCE = ConfigSource(ads=AggregatedConfigSource(), resource_api_version=ApiVersion.V3)


# -- Envoy messages ------------------------------------------------------------------


def eds_cluster(name: str, *, padding: int = 0) -> Cluster:
    """An EDS cluster fed over ADS; ``padding`` bytes of metadata make it big on purpose."""
    cluster = Cluster(
        name=name,
        type=Cluster.DiscoveryType.EDS,
        connect_timeout=Duration(seconds=1),
    )
    cluster.eds_cluster_config.eds_config.CopyFrom(_ADS_SOURCE)
    if padding:
        cluster.metadata.filter_metadata["turnout.test"].update({"padding": "x" * padding})
    return cluster


def assignment(name: str, endpoints: Iterable[tuple[str, int]] = ()) -> ClusterLoadAssignment:
    """The ClusterLoadAssignment of cluster ``name`` (empty when no endpoints are given)."""
    lb_endpoints = [
        LbEndpoint(
            endpoint=Endpoint(
                address=Address(socket_address=SocketAddress(address=host, port_value=port))
            )
        )
        for host, port in endpoints
    ]
    result = ClusterLoadAssignment(cluster_name=name)
    if lb_endpoints:
        result.endpoints.append(LocalityLbEndpoints(lb_endpoints=lb_endpoints))
    return result


def rds_listener(name: str, route_name: str, port: int = 10000) -> Listener:
    """A listener on ``port`` whose HTTP connection manager fetches ``route_name`` by RDS."""
    router = AnyProto()
    router.Pack(Router())
    hcm = HttpConnectionManager(
        stat_prefix=name,
        rds=Rds(config_source=_ADS_SOURCE, route_config_name=route_name),
        http_filters=[HttpFilter(name="envoy.filters.http.router", typed_config=router)],
    )
    typed = AnyProto(type_url=HCM_TYPE, value=hcm.SerializeToString(deterministic=True))
    return Listener(
        name=name,
        address=Address(socket_address=SocketAddress(address="127.0.0.1", port_value=port)),
        filter_chains=[
            FilterChain(
                filters=[
                    Filter(name="envoy.filters.network.http_connection_manager", typed_config=typed)
                ]
            )
        ],
    )


def weighted_routes(
    name: str, weights: Mapping[str, int], *, mirror: str | None = None, vhost: str = "svc"
) -> RouteConfiguration:
    """One virtual host matching every path, split across ``weights``, optionally mirrored."""
    action = RouteAction(
        weighted_clusters=WeightedCluster(
            clusters=[
                WeightedCluster.ClusterWeight(name=cluster, weight=UInt32Value(value=weight))
                for cluster, weight in weights.items()
            ]
        )
    )
    if mirror is not None:
        action.request_mirror_policies.add(cluster=mirror)
    return RouteConfiguration(
        name=name,
        virtual_hosts=[
            VirtualHost(
                name=vhost,
                domains=["*"],
                routes=[Route(match=RouteMatch(prefix="/"), route=action)],
            )
        ],
    )


def make_snapshot(
    weights: Mapping[str, int],
    *,
    gateway: str = "public",
    port: int = 10000,
    mirror: str | None = None,
    endpoints: Mapping[str, Sequence[tuple[str, int]]] | None = None,
    extra_clusters: Iterable[str] = (),
    padding: int = 0,
) -> Snapshot:
    """A consistent snapshot: one listener and route config named ``gateway``, splitting
    across the ``weights`` clusters (plus ``mirror`` and ``extra_clusters``), each an
    EDS cluster with its assignment (empty unless ``endpoints`` names some)."""
    names = sorted({*weights, *extra_clusters, *([mirror] if mirror else [])})
    endpoints = endpoints or {}
    snapshot = Snapshot.of(
        clusters=[eds_cluster(n, padding=padding) for n in names],
        endpoints=[assignment(n, endpoints.get(n, ())) for n in names],
        listeners=[rds_listener(gateway, gateway, port)],
        routes=[weighted_routes(gateway, weights, mirror=mirror)],
    )
    snapshot.check()
    return snapshot


def decode(response: DiscoveryResponse) -> list[Message]:
    """The resources of a response, unpacked."""
    result: list[Message] = []
    for packed in response.resources:
        message_type = _MESSAGES[packed.type_url]
        result.append(message_type.FromString(packed.value))
    return result


def decode_delta(response: DeltaDiscoveryResponse) -> dict[str, Message]:
    """The resources of a Delta response, unpacked, by the name their wrapper carries."""
    return {
        r.name: _MESSAGES[r.resource.type_url].FromString(r.resource.value)
        for r in response.resources
    }


def resource_names(response: DiscoveryResponse) -> list[str]:
    """The names of a response's resources, in the order they were sent."""
    return [
        str(m.cluster_name) if isinstance(m, ClusterLoadAssignment) else str(m.name)  # type: ignore[attr-defined]
        for m in decode(response)
    ]


def _scope_route_names(scopes: Iterable[Message]) -> set[str]:
    return {s.route_configuration_name for s in scopes if isinstance(s, ScopedRouteConfiguration)}


def _eds_names(message: Message) -> list[str]:
    name = eds_name(message)
    return [] if name is None else [name]


# -- the simulated Envoy -------------------------------------------------------------


class AdsClient:
    """A simulated Envoy on one xDS stream (ADS, or one per-type service)."""

    def __init__(
        self,
        channel: grpc.aio.Channel,
        *,
        node_id: str,
        node_cluster: str,
        kind: str = "ads",
        read: bool = True,
    ) -> None:
        """Open the stream on ``channel``; with ``read=False`` responses are never read
        (a stuck proxy: grpc flow control then pushes back on the server)."""
        service, method, _types = SERVICES[kind]
        self.node = Node(id=node_id, cluster=node_cluster)
        self._channel = channel
        self._call: Any = channel.stream_stream(
            f"/{service}/{method}",
            request_serializer=DiscoveryRequest.SerializeToString,
            response_deserializer=DiscoveryResponse.FromString,
        )()
        self._responses: asyncio.Queue[DiscoveryResponse | BaseException] = asyncio.Queue()
        self._reader = asyncio.create_task(self._read()) if read else None
        self._sent_node = False
        self.versions: dict[str, str] = {}
        """Per type, the version last ACKed (what a NACK reports as still applied)."""
        self.nonces: dict[str, str] = {}
        """Per type, the nonce of the last response received."""
        self.names: dict[str, tuple[str, ...]] = {}
        """Per type, the names last requested."""

    @classmethod
    async def connect(
        cls,
        target: str,
        *,
        node_id: str = "proxy-1",
        node_cluster: str = "default",
        kind: str = "ads",
        read: bool = True,
        credentials: grpc.ChannelCredentials | None = None,
    ) -> AdsClient:
        """Open a channel to ``target`` (over TLS with ``credentials``) and a stream on it."""
        channel = _channel(target, credentials)
        return cls(channel, node_id=node_id, node_cluster=node_cluster, kind=kind, read=read)

    async def _read(self) -> None:
        try:
            while True:
                response = await self._call.read()
                if response is grpc.aio.EOF:
                    self._responses.put_nowait(EOFError("stream ended"))
                    return
                self.nonces[response.type_url] = response.nonce
                self._responses.put_nowait(response)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # the RPC failed: hand the error to recv()
            self._responses.put_nowait(exc)

    async def request(
        self,
        type_url: str,
        names: Iterable[str] = (),
        *,
        version: str | None = None,
        nonce: str | None = None,
        error: str | None = None,
        node: bool | None = None,
    ) -> None:
        """Send a DiscoveryRequest. By default, like Envoy: the last ACKed version, the
        last received nonce of this type, and the node only on the stream's first request."""
        names = tuple(names)
        request = DiscoveryRequest(
            type_url=type_url,
            resource_names=names,
            version_info=self.versions.get(type_url, "") if version is None else version,
            response_nonce=self.nonces.get(type_url, "") if nonce is None else nonce,
        )
        if node or (node is None and not self._sent_node):
            request.node.CopyFrom(self.node)
            self._sent_node = True
        if error is not None:
            request.error_detail.CopyFrom(Status(code=3, message=error))
        self.names[type_url] = names
        await self._call.write(request)

    async def recv(self, timeout: float = 2.0) -> DiscoveryResponse:  # noqa: ASYNC109 - the API promised in INTERFACES
        """The next response; raises TimeoutError if none arrives within ``timeout``."""
        item = await asyncio.wait_for(self._responses.get(), timeout)
        if isinstance(item, BaseException):
            raise item
        return item

    async def expect_silence(self, timeout: float = 0.3) -> None:  # noqa: ASYNC109 - a window, not a deadline
        """Assert that no response arrives within ``timeout`` seconds."""
        try:
            response = await self.recv(timeout)
        except TimeoutError:
            return
        raise AssertionError(
            f"unexpected response {response.type_url} version={response.version_info} "
            f"names={resource_names(response)}"
        )

    async def ack(self, response: DiscoveryResponse, names: Iterable[str] | None = None) -> None:
        """Accept ``response``: repeat the subscription (or ``names``), its version and nonce."""
        self.versions[response.type_url] = response.version_info
        await self.request(
            response.type_url,
            self.names.get(response.type_url, ()) if names is None else names,
            version=response.version_info,
            nonce=response.nonce,
        )

    async def nack(
        self, response: DiscoveryResponse, message: str, names: Iterable[str] | None = None
    ) -> None:
        """Reject ``response`` with ``message``, reporting the version still applied."""
        await self.request(
            response.type_url,
            self.names.get(response.type_url, ()) if names is None else names,
            nonce=response.nonce,
            error=message,
        )

    async def bootstrap(self, timeout: float = 2.0) -> dict[str, DiscoveryResponse]:  # noqa: ASYNC109 - per response
        """Subscribe like Envoy starting up over ADS and ACK everything, following
        references: CDS (wildcard), EDS for its clusters, LDS (wildcard), SRDS
        (wildcard) if a listener routes by scoped RDS, RDS for its listeners and scopes.
        Returns the accepted response per type."""
        accepted: dict[str, DiscoveryResponse] = {}
        await self.request(CLUSTER_TYPE)
        accepted[CLUSTER_TYPE] = cds = await self.recv(timeout)
        await self.ack(cds)
        eds_names = sorted({n for c in decode(cds) for n in _eds_names(c)})
        await self.request(ENDPOINT_TYPE, eds_names)
        accepted[ENDPOINT_TYPE] = eds = await self.recv(timeout)
        await self.ack(eds)
        await self.request(LISTENER_TYPE)
        accepted[LISTENER_TYPE] = lds = await self.recv(timeout)
        await self.ack(lds)
        rds_names = sorted({n for lst in decode(lds) for n in listener_route_names(lst)})
        if any(listener_scoped_routes(lst) for lst in decode(lds)):
            await self.request(SCOPED_ROUTE_TYPE)
            accepted[SCOPED_ROUTE_TYPE] = srds = await self.recv(timeout)
            await self.ack(srds)
            rds_names = sorted({*rds_names, *_scope_route_names(decode(srds))})
        await self.request(ROUTE_TYPE, rds_names)
        accepted[ROUTE_TYPE] = rds = await self.recv(timeout)
        await self.ack(rds)
        return accepted

    async def resume(self, previous: AdsClient) -> None:
        """Reconnect like Envoy whose stream ``previous`` broke: keep what it ACKed and
        subscribed to, and ask again for every type it had asked for, in xDS order, with
        those names and the version last ACKed, without a nonce (a nonce does not
        survive its stream; Envoy clears it and keeps the version)."""
        self.versions = dict(previous.versions)
        self.names = dict(previous.names)
        for type_url in ORDER:
            if type_url in self.names:
                await self.request(type_url, self.names[type_url], nonce="")

    async def close(self) -> None:
        """Cancel the stream and close the channel."""
        self._call.cancel()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        await self._channel.close(grace=None)


class DeltaClient:
    """A simulated Envoy on one incremental xDS stream (``delta-ads`` or ``delta-cds``...).

    Like Envoy, it keeps per type the name -> version of every resource it accepted
    (``have``), applies ``removed_resources``, ACKs with the response's nonce only, and
    sends ``initial_resource_versions`` when asked to reconnect.
    """

    def __init__(
        self,
        channel: grpc.aio.Channel,
        *,
        node_id: str,
        node_cluster: str,
        kind: str = "delta-ads",
        read: bool = True,
    ) -> None:
        """Open the stream on ``channel``; ``read=False`` never reads (a stuck proxy)."""
        service, method, _types = DELTA_SERVICES[kind]
        self.node = Node(id=node_id, cluster=node_cluster)
        self._channel = channel
        self._call: Any = channel.stream_stream(
            f"/{service}/{method}",
            request_serializer=DeltaDiscoveryRequest.SerializeToString,
            response_deserializer=DeltaDiscoveryResponse.FromString,
        )()
        self._responses: asyncio.Queue[DeltaDiscoveryResponse | BaseException] = asyncio.Queue()
        self._reader = asyncio.create_task(self._read()) if read else None
        self._sent_node = False
        self.have: dict[str, dict[str, str]] = {}
        """Per type, name -> version of the resources accepted (and not removed since)."""
        self.received_bytes = 0
        """The serialized size of every response received."""

    @classmethod
    async def connect(
        cls,
        target: str,
        *,
        node_id: str = "proxy-1",
        node_cluster: str = "default",
        kind: str = "delta-ads",
        read: bool = True,
        credentials: grpc.ChannelCredentials | None = None,
    ) -> DeltaClient:
        """Open a channel to ``target`` (over TLS with ``credentials``) and a stream on it."""
        channel = _channel(target, credentials)
        return cls(channel, node_id=node_id, node_cluster=node_cluster, kind=kind, read=read)

    async def _read(self) -> None:
        try:
            while True:
                response = await self._call.read()
                if response is grpc.aio.EOF:
                    self._responses.put_nowait(EOFError("stream ended"))
                    return
                self.received_bytes += response.ByteSize()
                self._responses.put_nowait(response)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # the RPC failed: hand the error to recv()
            self._responses.put_nowait(exc)

    async def request(
        self,
        type_url: str,
        subscribe: Iterable[str] = (),
        unsubscribe: Iterable[str] = (),
        *,
        initial: Mapping[str, str] | None = None,
        nonce: str = "",
        error: str | None = None,
        node: bool | None = None,
    ) -> None:
        """Send a DeltaDiscoveryRequest (a spontaneous one unless ``nonce`` is given); the
        node goes on the stream's first request only, unless ``node`` says otherwise."""
        request = DeltaDiscoveryRequest(
            type_url=type_url,
            resource_names_subscribe=list(subscribe),
            resource_names_unsubscribe=list(unsubscribe),
            initial_resource_versions=dict(initial or {}),
            response_nonce=nonce,
        )
        if node or (node is None and not self._sent_node):
            request.node.CopyFrom(self.node)
            self._sent_node = True
        if error is not None:
            request.error_detail.CopyFrom(Status(code=3, message=error))
        for name in unsubscribe:
            self.have.get(type_url, {}).pop(name, None)
        await self._call.write(request)

    async def recv(self, timeout: float = 2.0) -> DeltaDiscoveryResponse:  # noqa: ASYNC109 - as AdsClient.recv
        """The next response; raises TimeoutError if none arrives within ``timeout``."""
        item = await asyncio.wait_for(self._responses.get(), timeout)
        if isinstance(item, BaseException):
            raise item
        return item

    async def expect_silence(self, timeout: float = 0.3) -> None:  # noqa: ASYNC109 - a window, not a deadline
        """Assert that no response arrives within ``timeout`` seconds."""
        try:
            response = await self.recv(timeout)
        except TimeoutError:
            return
        raise AssertionError(
            f"unexpected response {response.type_url} "
            f"resources={[r.name for r in response.resources]} "
            f"removed={list(response.removed_resources)}"
        )

    def apply(self, response: DeltaDiscoveryResponse) -> None:
        """Record a response's resources and removals in ``have`` (what accepting does)."""
        have = self.have.setdefault(response.type_url, {})
        for resource in response.resources:
            have[resource.name] = resource.version
        for name in response.removed_resources:
            have.pop(name, None)

    async def ack(self, response: DeltaDiscoveryResponse) -> None:
        """Accept ``response``: apply it and answer with its nonce."""
        self.apply(response)
        await self.request(response.type_url, nonce=response.nonce)

    async def nack(self, response: DeltaDiscoveryResponse, message: str) -> None:
        """Reject ``response`` with ``message`` (nothing of it is applied)."""
        await self.request(response.type_url, nonce=response.nonce, error=message)

    async def bootstrap(self, timeout: float = 2.0) -> dict[str, DeltaDiscoveryResponse]:  # noqa: ASYNC109 - per response
        """Subscribe like Envoy starting up over Delta ADS and ACK everything, following
        references: CDS (legacy wildcard), EDS for its clusters, LDS, SRDS if a listener
        routes by scoped RDS, RDS for its listeners and scopes. Returns the accepted
        response per type."""
        accepted: dict[str, DeltaDiscoveryResponse] = {}
        await self.request(CLUSTER_TYPE)
        accepted[CLUSTER_TYPE] = cds = await self.recv(timeout)
        await self.ack(cds)
        eds_names = sorted({n for c in decode_delta(cds).values() for n in _eds_names(c)})
        await self.request(ENDPOINT_TYPE, eds_names)
        accepted[ENDPOINT_TYPE] = eds = await self.recv(timeout)
        await self.ack(eds)
        await self.request(LISTENER_TYPE)
        accepted[LISTENER_TYPE] = lds = await self.recv(timeout)
        await self.ack(lds)
        listeners = list(decode_delta(lds).values())
        rds_names = sorted({n for lst in listeners for n in listener_route_names(lst)})
        if any(listener_scoped_routes(lst) for lst in listeners):
            await self.request(SCOPED_ROUTE_TYPE)
            accepted[SCOPED_ROUTE_TYPE] = srds = await self.recv(timeout)
            await self.ack(srds)
            scopes = list(decode_delta(srds).values())
            rds_names = sorted({*rds_names, *_scope_route_names(scopes)})
        await self.request(ROUTE_TYPE, rds_names)
        accepted[ROUTE_TYPE] = rds = await self.recv(timeout)
        await self.ack(rds)
        return accepted

    async def close(self) -> None:
        """Cancel the stream and close the channel."""
        self._call.cancel()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        await self._channel.close(grace=None)


def _channel(target: str, credentials: grpc.ChannelCredentials | None) -> grpc.aio.Channel:
    options = [("grpc.max_receive_message_length", 256 * 1024 * 1024)]
    if credentials is None:
        return grpc.aio.insecure_channel(target, options=options)
    return grpc.aio.secure_channel(target, credentials, options=options)


# -- the in-process server -----------------------------------------------------------


@dataclass
class RunningXds:
    """An XdsServer and its cache, listening on ``127.0.0.1:port``."""

    server: XdsServer
    cache: SnapshotCache
    port: int
    _clients: list[AdsClient | DeltaClient] = field(default_factory=list)

    @property
    def target(self) -> str:
        """The address clients connect to."""
        return f"127.0.0.1:{self.port}"

    async def client(
        self,
        node_id: str = "proxy-1",
        node_cluster: str = "default",
        *,
        kind: str = "ads",
        read: bool = True,
    ) -> AdsClient:
        """A connected simulated Envoy, closed when the server context ends."""
        client = await AdsClient.connect(
            self.target, node_id=node_id, node_cluster=node_cluster, kind=kind, read=read
        )
        self._clients.append(client)
        return client

    async def delta_client(
        self,
        node_id: str = "proxy-1",
        node_cluster: str = "default",
        *,
        kind: str = "delta-ads",
        read: bool = True,
    ) -> DeltaClient:
        """A connected simulated Delta Envoy, closed when the server context ends."""
        client = await DeltaClient.connect(
            self.target, node_id=node_id, node_cluster=node_cluster, kind=kind, read=read
        )
        self._clients.append(client)
        return client

    def publish(self, snapshots: Snapshot | Mapping[str, Snapshot], version: str = "") -> None:
        """Publish one snapshot for every proxy group, or one per group (others get an
        empty snapshot), as policy version ``version`` (default: made of the snapshots'
        group versions)."""
        if isinstance(snapshots, Snapshot):
            single = snapshots
            self.cache.publish(version or single.group_version, lambda _group: single)
            return
        groups = dict(snapshots)
        empty = Snapshot.of()
        self.cache.publish(
            version or "+".join(s.group_version for _, s in sorted(groups.items())),
            lambda group: groups.get(group, empty),
        )


@contextlib.asynccontextmanager
async def running_xds(callbacks: XdsCallbacks | None = None) -> AsyncIterator[RunningXds]:
    """Start an XdsServer with an empty SnapshotCache on 127.0.0.1:0; stop it on exit."""
    cache = SnapshotCache()
    server = XdsServer(cache, callbacks)
    port = await server.start("127.0.0.1:0")
    running = RunningXds(server=server, cache=cache, port=port)
    try:
        yield running
    finally:
        for client in running._clients:
            with contextlib.suppress(Exception):
                await client.close()
        await server.stop(0)
