"""The gRPC server: ADS and the four per-type state-of-the-world services.

The ``Stream*`` (state of the world, ``_stream``) and ``Delta*`` (incremental,
``_delta``) methods are registered (``SERVICES``, ``DELTA_SERVICES``); ``Fetch*``
(REST-JSON polling) is answered UNIMPLEMENTED by grpc itself, and Envoy configured
for it fails loudly rather than half-working.

Handlers are generic (no generated servicers): requests are parsed by protobuf,
responses are written as the bytes ``_wire`` framed from cached resources, so grpc
sends them as they are.

A stream never awaits anything but its own proxy: ``publish`` only sets events, and
each stream's writer blocks on its own ``write``. A proxy that stops reading stalls
its own stream (holding at most the one response being written), never another.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import secrets
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import grpc
import grpc.aio
import structlog
from envoy.service.discovery.v3.discovery_pb2 import DeltaDiscoveryRequest, DiscoveryRequest

from turnout.cache import (
    CLUSTER_TYPE,
    ENDPOINT_TYPE,
    LISTENER_TYPE,
    ORDER,
    ROUTE_TYPE,
    SCOPED_ROUTE_TYPE,
)
from turnout.xds._callbacks import XdsCallbacks
from turnout.xds._delta import DeltaStream
from turnout.xds._security import StreamGuard, StreamRejectedError
from turnout.xds._source import SnapshotSource
from turnout.xds._status import ProxyStatus
from turnout.xds._stream import Stream

__all__ = ["DELTA_SERVICES", "SERVICES", "XdsServer"]

log = structlog.get_logger("turnout.xds")

# The four variants: SotW or incremental, one stream per type or all on ADS.
# https://www.envoyproxy.io/docs/envoy/latest/api-docs/xds_protocol#rpc-services-and-methods-for-each-variant
SERVICES: dict[str, tuple[str, str, tuple[str, ...]]] = {
    # kind: (gRPC service, method, types served)
    "ads": (
        "envoy.service.discovery.v3.AggregatedDiscoveryService",
        "StreamAggregatedResources",
        ORDER,
    ),
    "cds": ("envoy.service.cluster.v3.ClusterDiscoveryService", "StreamClusters", (CLUSTER_TYPE,)),
    "eds": (
        "envoy.service.endpoint.v3.EndpointDiscoveryService",
        "StreamEndpoints",
        (ENDPOINT_TYPE,),
    ),
    "lds": (
        "envoy.service.listener.v3.ListenerDiscoveryService",
        "StreamListeners",
        (LISTENER_TYPE,),
    ),
    "rds": ("envoy.service.route.v3.RouteDiscoveryService", "StreamRoutes", (ROUTE_TYPE,)),
    "srds": (
        "envoy.service.route.v3.ScopedRoutesDiscoveryService",
        "StreamScopedRoutes",
        (SCOPED_ROUTE_TYPE,),
    ),
}
"""Each served stream kind: its gRPC service, its streaming method and its types."""

SCALE_OPTIONS: tuple[tuple[str, Any], ...] = (
    ("grpc.server.max_pending_requests", 1 << 20),
    ("grpc.server.max_pending_requests_hard_limit", 1 << 20),
    ("grpc.experimental.tcp_max_read_buffer_size", 8192),
)
"""grpc options every XdsServer starts with, unless its ``options`` set the same keys.

grpc core queues a new stream as "pending" until the application picks it up, and
grpc.aio picks streams up one at a time on the event loop. Past 1,000 pending streams
(the default soft limit) core starts refusing new ones at random, and past 3,000 (the
hard limit) all of them: the client sees ``INTERNAL: Internal error from Core``. A
fleet reconnecting at once (a restart, a network blip) easily has thousands pending,
which is the ~2,000-stream "cap" a plain grpc.aio server shows. With these raised, one
process accepts 10,000 streams (see ``bench/fleet.py``).

Each connection's TCP endpoint sizes its next read buffer by what it read last (doubling
past 80% of the guess, shrinking 1% a read), allocates it when data arrives and keeps the
unread part of it for the next read, held while the connection idles. A SotW ACK at 500
services is 40-100 KB, so every idle Envoy's connection kept up to ~64-128 KB of read
buffer. Capped at 8 KB the endpoint reads in 8 KB slices (a big ACK takes a few more
``recvmsg`` calls) and an idle connection keeps at most 8 KB: at 1,000 proxies with a
connection each, 94 -> 54 KB per idle stream at 500 services (``python -m bench scale
--sizes 1,500 --channels 500``, the KB/conn column).
"""

DELTA_SERVICES: dict[str, tuple[str, str, tuple[str, ...]]] = {
    f"delta-{kind}": (service, "Delta" + method.removeprefix("Stream"), types)
    for kind, (service, method, types) in SERVICES.items()
}
"""The incremental kinds (``delta-ads``, ``delta-cds``...): DeltaAggregatedResources,
DeltaClusters, DeltaEndpoints, DeltaListeners, DeltaRoutes, DeltaScopedRoutes."""


class XdsServer:
    """Serves snapshots from a :class:`SnapshotSource` (``turnout.cache.SnapshotCache``)
    to Envoys over gRPC."""

    def __init__(
        self,
        cache: SnapshotSource,
        callbacks: XdsCallbacks | None = None,
        *,
        options: Sequence[tuple[str, Any]] = (),
        handlers: Sequence[grpc.GenericRpcHandler] = (),
        guard: StreamGuard | None = None,
    ) -> None:
        """``options`` are passed to ``grpc.aio.server`` as they are; ``handlers`` are
        served beside xDS on the same port (turnout's own API); ``guard`` admits
        streams (node authorization and limits, ``_security``; none by default)."""
        self._cache = cache
        self.guard = guard if guard is not None else StreamGuard()
        self._handlers = tuple(handlers)
        self._callbacks = callbacks if callbacks is not None else XdsCallbacks()
        self._options = tuple(options)
        self._streams: dict[int, Stream | DeltaStream] = {}
        self._tasks: dict[int, asyncio.Task[Any]] = {}  # each stream's handler, for drain()
        self._ids = itertools.count(1)
        # A nonce does not survive its stream; one from an earlier process (a proxy
        # reconnecting to this one) must not look live here.
        # https://www.envoyproxy.io/docs/envoy/latest/api-docs/xds_protocol#basic-protocol-overview
        self._nonce_prefix = secrets.token_hex(3) + "."
        self._server: grpc.aio.Server | None = None

    async def start(self, address: str, credentials: grpc.ServerCredentials | None = None) -> int:
        """Listen on ``address`` (``host:port``, port 0 picks one), over TLS with
        ``credentials``; return the bound port."""
        if self._server is not None:
            raise RuntimeError("XdsServer already started")
        given = {key for key, _value in self._options}
        defaults = tuple(
            o for o in (*SCALE_OPTIONS, *self.guard.server_options()) if o[0] not in given
        )
        server = grpc.aio.server(options=(*defaults, *self._options))
        methods: dict[str, dict[str, Any]] = {}
        for kind, (service, method, _types) in SERVICES.items():
            methods.setdefault(service, {})[method] = grpc.stream_stream_rpc_method_handler(
                self._behavior(kind),
                request_deserializer=self.guard.parser(DiscoveryRequest),
                response_serializer=None,  # responses are already bytes
            )
        for kind, (service, method, _types) in DELTA_SERVICES.items():
            methods.setdefault(service, {})[method] = grpc.stream_stream_rpc_method_handler(
                self._delta_behavior(kind),
                request_deserializer=self.guard.parser(DeltaDiscoveryRequest),
                response_serializer=None,
            )
        server.add_generic_rpc_handlers(
            tuple(
                grpc.method_handlers_generic_handler(service, handlers)
                for service, handlers in methods.items()
            )
        )
        if self._handlers:
            server.add_generic_rpc_handlers(self._handlers)
        port: int = (
            server.add_secure_port(address, credentials)
            if credentials is not None
            else server.add_insecure_port(address)
        )
        if port == 0:
            raise OSError(f"could not bind the xDS server to {address}")
        await server.start()
        self._server = server
        log.info("xds.listening", address=address, port=port)
        return port

    async def stop(self, grace: float | None) -> None:
        """Stop accepting streams, let open ones finish for ``grace`` seconds, then cancel."""
        if self._server is not None:
            await self._server.stop(grace)
            self._server = None

    async def drain(self, over_seconds: float, *, rng: Callable[[], float] = random.random) -> int:
        """End every open stream, one by one, spread over ``over_seconds``: the streams
        are taken in random order and the i-th of n ends at a random moment of the i-th
        of n equal slices of the window (jittered, never two at once by design), so a
        fleet's Envoys reconnect to another replica over the window instead of all in
        the same instant. A stream ended here finishes with status OK and its proxy,
        keeping its config, reconnects. Streams opened meanwhile are not waited for
        (stop the server first so none are). Returns how many were ended."""
        tasks = list(self._tasks.items())
        _shuffle(tasks, rng)
        loop = asyncio.get_running_loop()
        start, count = loop.time(), len(tasks)
        ended = 0
        for index, (stream_id, task) in enumerate(tasks):
            at = start + over_seconds * (index + rng()) / count
            await asyncio.sleep(max(0.0, at - loop.time()))
            if task.done() or stream_id not in self._tasks:
                continue  # it ended on its own meanwhile
            task.cancel()
            ended += 1
        pending = [task for _id, task in tasks if not task.done()]
        if pending:
            await asyncio.wait(pending, timeout=1.0)
        return ended

    def _track(self, stream_id: int) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks[stream_id] = task

    def proxies(self) -> list[ProxyStatus]:
        """A copy of every open stream's state, by stream id."""
        return [self._streams[k].status() for k in sorted(self._streams)]

    def proxy(self, stream_id: int) -> ProxyStatus | None:
        """A copy of one open stream's state; None once it has ended."""
        stream = self._streams.get(stream_id)
        return stream.status() if stream is not None else None

    @property
    def stream_count(self) -> int:
        """How many streams are open."""
        return len(self._streams)

    def _behavior(self, kind: str) -> Any:
        types = SERVICES[kind][2]

        async def behavior(
            _requests: AsyncIterator[DiscoveryRequest],
            context: grpc.aio.ServicerContext[Any, Any],
        ) -> None:
            stream = Stream(
                stream_id=next(self._ids),
                kind=kind,
                type_urls=types,
                cache=self._cache,
                callbacks=self._callbacks,
                nonce_prefix=self._nonce_prefix,
            )
            self._streams[stream.stream_id] = stream
            self._track(stream.stream_id)
            try:
                await self._serve(stream, context)
            except asyncio.CancelledError:
                # The proxy went away (or the server is stopping): grpc cancels the
                # handler. Re-raising only makes grpc log an error for a normal event.
                return
            finally:
                del self._streams[stream.stream_id]
                self._tasks.pop(stream.stream_id, None)

        return behavior

    def _delta_behavior(self, kind: str) -> Any:
        types = DELTA_SERVICES[kind][2]

        async def behavior(
            _requests: AsyncIterator[DeltaDiscoveryRequest],
            context: grpc.aio.ServicerContext[Any, Any],
        ) -> None:
            stream = DeltaStream(
                stream_id=next(self._ids),
                kind=kind,
                type_urls=types,
                cache=self._cache,
                callbacks=self._callbacks,
                nonce_prefix=self._nonce_prefix,
            )
            self._streams[stream.stream_id] = stream
            self._track(stream.stream_id)
            try:
                await self._serve(stream, context)
            except asyncio.CancelledError:
                return  # the proxy went away or the server is stopping (see _behavior)
            finally:
                del self._streams[stream.stream_id]
                self._tasks.pop(stream.stream_id, None)

        return behavior

    async def _serve(
        self,
        stream: Stream | DeltaStream,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> None:
        """Serve ``stream`` (its requests read by :class:`_Reads`, not grpc's request
        iterator) as the guard allows: a refused stream ends with the
        refusal's status (PERMISSION_DENIED, RESOURCE_EXHAUSTED, INVALID_ARGUMENT)."""
        refusal: tuple[grpc.StatusCode, str] | None = None
        admission = None
        try:
            admission = self.guard.open(context, stream.stream_id)
            stream.admit = admission.admit
            # Headers first. grpc.aio sends them with the first response otherwise, and
            # a write cancelled in flight leaves that op pending in core, where the
            # status sent next (with headers, in the same batch slot) fails
            # (GRPC_CALL_ERROR_TOO_MANY_OPERATIONS): the proxy gets no status at all.
            # Streams let a write in flight finish too (``_tasks``).
            await context.send_initial_metadata(())
            reads = _Reads(context)
            rejected = await stream.serve(admission.requests(reads), context.write)
            if rejected is not None:
                refusal = rejected.code, rejected.details
        except StreamRejectedError as exc:  # refused on opening (the per-peer budget)
            refusal = exc.code, exc.details
        finally:
            if admission is not None:
                admission.close()
        if refusal is not None:
            _end_with(context, *refusal)


class _Reads:
    """A call's requests, read one at a time with ``context.read()``.

    Not grpc.aio's request iterator: that is an async generator whose frame keeps the
    last request while it awaits the next, so every idle stream would hold its proxy's
    last request, and a state-of-the-world ACK repeats every subscribed name (at 500
    services a parsed RDS ACK is ~40 KB, an EDS one ~100 KB; the stream keeps only the
    interned names). This keeps nothing between requests.
    """

    __slots__ = ("_read",)

    def __init__(self, context: grpc.aio.ServicerContext[Any, Any]) -> None:
        self._read = context.read

    def __aiter__(self) -> _Reads:
        return self

    async def __anext__(self) -> Any:
        request = await self._read()
        if request is grpc.aio.EOF:
            raise StopAsyncIteration
        return request


def _end_with(
    context: grpc.aio.ServicerContext[Any, Any], code: grpc.StatusCode, details: str
) -> None:
    """Have grpc end the RPC with ``code`` once the handler returns.

    Not ``context.abort()``: abort sends the status from inside the handler and raises
    through it, so a failed send (the call already ended, an op still pending in
    core) escapes the handler, and grpc logs it with a traceback holding the
    handler's frames, the Stream among them, for as long as the log record lives;
    the abort's own exception, kept by grpc, holds them too. Set here, the status is
    sent by grpc as the handler returns, and a call already finished is left alone.
    """
    if context.done():
        return
    context.set_code(code)
    context.set_details(details)


def _shuffle(items: list[Any], rng: Callable[[], float]) -> None:
    """Fisher-Yates with ``rng`` (random.shuffle lost its random argument in 3.11)."""
    for i in range(len(items) - 1, 0, -1):
        j = int(rng() * (i + 1))
        items[i], items[j] = items[j], items[i]
