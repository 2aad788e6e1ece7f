"""One process of simulated Envoys for the fleet benchmark (`python -m bench._fleet_client`).

Many ADS streams (state of the world, or Delta for a share of them) over a few grpc.aio
channels, driven by JSON-line commands on stdin, answering on stdout. Each stream
behaves like Envoy closely enough for a control plane to notice nothing: the node on
the first request, CDS and LDS by wildcard, SRDS by wildcard once a listener routes by
scoped RDS, EDS and RDS by the names the clusters, listeners and scopes it got name
(route configurations, in state of the world, are kept when a response leaves them
out, as Envoy does), an ACK (or a NACK, for a stream told to reject everything) of
every response with its nonce, and on a broken stream a reconnect with jittered backoff
that keeps the config it has (SotW sends its last ACKed versions, Delta its
``initial_resource_versions``).

Timing: every ACK is stamped with ``time.monotonic()`` (CLOCK_MONOTONIC is one clock
for every process on the machine), so the orchestrator can measure from the moment it
wrote a policy file.

Commands (one JSON object a line) and answers:

- ``{"cmd": "connect", "port", "count", "first", "channels", "group", "delta_every"}``:
  open ``count`` streams named ``sim-{first + i}``; every ``delta_every``-th is Delta
  (0: none). Answers at once.
- ``{"cmd": "state"}``: how many streams are open (their requests written), in sync
  (every type ACKed on this stream and nothing un-ACKed: after a reconnect that was
  sent nothing, only the server can tell), and the set of RDS versions they ACKed.
- ``{"cmd": "mark", "nack_every"}``: remember each stream's RDS version, reset the
  counters; every ``nack_every``-th stream NACKs everything from now on (0: none).
- ``{"cmd": "changed"}``: how many streams (of those not NACKing) have ACKed an RDS
  version other than the marked one, and how many are expected to: counted as the
  ACKs happen, so polling it while a change converges costs the fleet nothing per
  stream (``state`` walks every stream).
- ``{"cmd": "report"}``: per stream, the ACK time of its first RDS version other than
  the marked one (or null), responses and bytes received since the mark, and for
  NACKing streams their NACK count.
- ``{"cmd": "quit"}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import sys
import threading
import time
from typing import Any as AnyType

import grpc
import grpc.aio
from envoy.config.cluster.v3.cluster_pb2 import Cluster
from envoy.config.core.v3.base_pb2 import Node
from envoy.config.listener.v3.listener_pb2 import Listener
from envoy.config.route.v3.scoped_route_pb2 import ScopedRouteConfiguration
from envoy.service.discovery.v3.discovery_pb2 import (
    DeltaDiscoveryRequest,
    DeltaDiscoveryResponse,
    DiscoveryRequest,
)
from google.protobuf.any_pb2 import Any
from google.rpc.status_pb2 import Status

from turnout._protowire import length_delimited
from turnout.cache import (
    CLUSTER_TYPE,
    ENDPOINT_TYPE,
    LISTENER_TYPE,
    ORDER,
    ROUTE_TYPE,
    SCOPED_ROUTE_TYPE,
    eds_name,
    listener_route_names,
    listener_scoped_routes,
)

ADS = "/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources"
DELTA_ADS = "/envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources"
_FOLLOWS = {CLUSTER_TYPE: ENDPOINT_TYPE, LISTENER_TYPE: ROUTE_TYPE, SCOPED_ROUTE_TYPE: ROUTE_TYPE}
"""A response of the key type names resources of the value type to subscribe to."""
_WILDCARD = (CLUSTER_TYPE, LISTENER_TYPE, SCOPED_ROUTE_TYPE)
_SCOPED = "scoped"
"""Among a listener response's followed names: a listener routes by scoped RDS."""

_names_memo: dict[tuple[str, bytes], tuple[str, ...]] = {}


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def _sotw_fields(raw: bytes) -> tuple[str, list[bytes], str, str]:
    """version_info, the resources' ``Any.value`` bytes (only for CDS/LDS, whose
    references a proxy follows), type_url and nonce of a serialized DiscoveryResponse:
    reading four top-level fields by hand is what keeps the simulated fleet cheap
    enough to share two cores with the server."""
    version = type_url = nonce = ""
    anys: list[tuple[int, int]] = []
    pos, end = 0, len(raw)
    while pos < end:
        key, pos = _varint(raw, pos)
        if key & 7 != 2:
            raise ValueError(f"unexpected wire type in field {key >> 3}")
        length, pos = _varint(raw, pos)
        field, stop = key >> 3, pos + length
        if field == 1:
            version = raw[pos:stop].decode()
        elif field == 2:
            anys.append((pos, stop))
        elif field == 4:
            type_url = raw[pos:stop].decode()
        elif field == 5:
            nonce = raw[pos:stop].decode()
        pos = stop
    values: list[bytes] = []
    if type_url in _FOLLOWS:
        values = [Any.FromString(raw[a:b]).value for a, b in anys]
    return version, values, type_url, nonce


def _string_field(number: int, text: str) -> bytes:
    return length_delimited(number, text.encode())


_names_field_memo: dict[tuple[str, ...], bytes] = {}
_ack_memo: dict[tuple[str, tuple[str, ...], str, str], bytes] = {}


def _ack_bytes(type_url: str, names: tuple[str, ...], version: str, nonce: str) -> bytes:
    """A serialized SotW ACK (DiscoveryRequest: version_info, resource_names, type_url,
    response_nonce). turnout sends every stream of a group the same response, nonce
    included, so the streams of this process ACK it with the same bytes: built once."""
    key = (type_url, names, version, nonce)
    ack = _ack_memo.get(key)
    if ack is None:
        if len(_ack_memo) > 256:
            _ack_memo.clear()
        ack = _ack_memo[key] = _build_ack(type_url, names, version, nonce)
    return ack


def _build_ack(type_url: str, names: tuple[str, ...], version: str, nonce: str) -> bytes:
    encoded = _names_field_memo.get(names)
    if encoded is None:
        encoded = b"".join(_string_field(3, name) for name in names)
        if len(_names_field_memo) > 64:
            _names_field_memo.clear()
        _names_field_memo[names] = encoded
    return (
        _string_field(1, version) + encoded + _string_field(4, type_url) + _string_field(5, nonce)
    )


_request_memo: dict[tuple[str, tuple[str, ...], str], bytes] = {}
"""(type, names, what the proxy has) -> a reconnect's serialized request, without the
node: 10,000 proxies reconnecting at once with the same config would otherwise each
build the same 1,500-name (Delta: 1,500-entry map) request, which is the simulator's
CPU, not the server's."""


_SOTW_NODE = DiscoveryRequest.DESCRIPTOR.fields_by_name["node"].number
_DELTA_NODE = DeltaDiscoveryRequest.DESCRIPTOR.fields_by_name["node"].number


def _remember(key: tuple[str, tuple[str, ...], str], body: bytes) -> None:
    if len(_request_memo) > 64:
        _request_memo.clear()
    _request_memo[key] = body


def _followed_names(type_url: str, resources: list[bytes]) -> tuple[str, ...]:
    """EDS names of clusters / RDS names of listeners (with ``_SCOPED`` if one routes by
    scoped RDS) / RDS names of scopes, decoded once per distinct bytes in this process
    (every stream gets the same config: decoding it 2,500 times would measure the
    simulator, not the server)."""
    key = (type_url, b"".join(resources))
    hit = _names_memo.get(key)
    if hit is not None:
        return hit
    names: set[str] = set()
    for value in resources:
        if type_url == CLUSTER_TYPE:
            name = eds_name(Cluster.FromString(value))
            if name is not None:
                names.add(name)
        elif type_url == SCOPED_ROUTE_TYPE:
            names.add(ScopedRouteConfiguration.FromString(value).route_configuration_name)
        else:
            listener = Listener.FromString(value)
            names |= listener_route_names(listener)
            if listener_scoped_routes(listener):
                names.add(_SCOPED)
    result = tuple(sorted(names))
    if len(_names_memo) > 64:
        _names_memo.clear()
    _names_memo[key] = result
    return result


class Proxy:
    """One simulated Envoy: a stream, reconnected when it breaks, and what it accepted."""

    def __init__(
        self, node_id: str, group: str, channel: grpc.aio.Channel, delta: bool, fleet: Fleet
    ) -> None:
        self.node = Node(id=node_id, cluster=group)
        self.fleet = fleet
        self.channel = channel
        self.delta = delta
        self.nack = False
        self.versions: dict[str, str] = {}
        """SotW: per type, the version last ACKed."""
        self.have: dict[str, dict[str, str]] = {t: {} for t in ORDER}
        """Delta: per type, name -> version accepted."""
        self.have_version: dict[str, str] = {}
        """Delta: per type, the system_version_info of the last response applied."""
        self.names: dict[str, tuple[str, ...]] = {}
        self.sources: dict[str, tuple[str, ...]] = {}
        """SotW: RDS names by the type that named them (listeners, scopes)."""
        self.subscribed: set[str] = set()
        self.pending: dict[str, bool] = {}
        self.open = False
        self.acked_at: dict[str, float] = {}
        self.rds_marked: str | None = None
        self.changed_at: float | None = None
        self.responses = 0
        self.bytes = 0
        self.nacks = 0
        self.reconnects = 0
        self.received = 0
        """Responses received since the process started (never reset)."""
        self._call: AnyType = None

    # -- state -------------------------------------------------------------------------

    @property
    def synced(self) -> bool:
        return (
            self.open
            and len(self.acked_at) >= 4
            and self.subscribed <= self.acked_at.keys()
            and not any(self.pending.values())
        )

    @property
    def rds_version(self) -> str | None:
        if self.delta:
            routes = self.have[ROUTE_TYPE]
            return ",".join(f"{n}={v}" for n, v in sorted(routes.items())) or None
        return self.versions.get(ROUTE_TYPE)

    def mark(self, nack: bool) -> None:
        self.rds_marked = self.rds_version
        self.changed_at = None
        self.responses = self.bytes = self.nacks = 0
        self.nack = nack

    # -- the stream --------------------------------------------------------------------

    async def run(self) -> None:
        backoff = 0.25
        while True:
            self.pending = {}
            started = time.monotonic()
            try:
                await self._stream()
            except asyncio.CancelledError:
                raise
            except Exception:
                pass
            self.open = False
            if time.monotonic() - started > 5:
                backoff = 0.25
            self.reconnects += 1
            await asyncio.sleep(random.uniform(0.5, 1.0) * backoff)
            backoff = min(backoff * 2, 4.0)

    async def _stream(self) -> None:
        method = DELTA_ADS if self.delta else ADS
        self._call = self.channel.stream_stream(method)()
        self.acked_at = {}
        self.subscribed = set()
        first = True
        for type_url in (CLUSTER_TYPE, LISTENER_TYPE):
            await self._subscribe(type_url, first=first)
            first = False
        for type_url in (SCOPED_ROUTE_TYPE, ENDPOINT_TYPE, ROUTE_TYPE):
            if self.names.get(type_url) or type_url in self.have_types:
                await self._subscribe(type_url, first=False)
        # Open once its requests are written: a proxy that reconnects with what the
        # server has may be sent nothing at all.
        self.open = True
        while True:
            raw = await self._call.read()
            if raw is grpc.aio.EOF:
                return
            self.open = True
            self.responses += 1
            self.received += 1
            self.bytes += len(raw)
            if self.delta:
                await self._on_delta(DeltaDiscoveryResponse.FromString(raw))
            else:
                await self._on_sotw(*_sotw_fields(raw))

    @property
    def have_types(self) -> set[str]:
        """Wildcard types beyond CDS/LDS this proxy subscribed to (SRDS, once needed)."""
        return {t for t in (SCOPED_ROUTE_TYPE,) if t in self.names}

    async def _subscribe(self, type_url: str, *, first: bool) -> None:
        """A stream's request for one type: the names, and what the proxy has (SotW: the
        version last ACKed; Delta: initial_resource_versions), the node on the first."""
        names = self.names.get(type_url, ())
        self.subscribed.add(type_url)
        if self.delta:
            has = self.have_version.get(type_url, "")
            key = (type_url, names, has)
            body = _request_memo.get(key)
            if body is None:
                body = DeltaDiscoveryRequest(
                    type_url=type_url,
                    resource_names_subscribe=names or (("*",) if type_url in _WILDCARD else ()),
                    initial_resource_versions=self.have[type_url],
                ).SerializeToString()
                if has:  # ``have`` is what ``has`` names: any proxy with it shares the bytes
                    _remember(key, body)
        else:
            key = (type_url, names, self.versions.get(type_url, ""))
            body = _request_memo.get(key)
            if body is None:
                body = DiscoveryRequest(
                    type_url=type_url, resource_names=names, version_info=key[2]
                ).SerializeToString()
                _remember(key, body)
        if first:
            # A message's fields may come in any order: the node is appended.
            field = _DELTA_NODE if self.delta else _SOTW_NODE
            body += length_delimited(field, self.node.SerializeToString())
        self.pending[type_url] = True  # a subscription: an answer is due
        await self._call.write(body)

    async def _on_sotw(self, version: str, values: list[bytes], type_url: str, nonce: str) -> None:
        follows = _FOLLOWS.get(type_url)
        if follows is not None and not self.nack:
            named = _followed_names(type_url, values)
            if _SCOPED in named and SCOPED_ROUTE_TYPE not in self.names:
                self.names[SCOPED_ROUTE_TYPE] = ()
                await self._subscribe(SCOPED_ROUTE_TYPE, first=False)
            self.sources[type_url] = tuple(n for n in named if n != _SCOPED)
            if follows == ROUTE_TYPE:
                sources = (self.sources.get(t, ()) for t in (LISTENER_TYPE, SCOPED_ROUTE_TYPE))
                names = tuple(sorted({n for source in sources for n in source}))
            else:
                names = self.sources[type_url]
            if names != self.names.get(follows):
                self.names[follows] = names
                self.subscribed.add(follows)
                await self._write(
                    DiscoveryRequest(
                        type_url=follows,
                        resource_names=names,
                        version_info=self.versions.get(follows, ""),
                    )
                )
        if self.nack:
            self.nacks += 1
            request = DiscoveryRequest(
                type_url=type_url,
                resource_names=self.names.get(type_url, ()),
                response_nonce=nonce,
                version_info=self.versions.get(type_url, ""),
            )
            request.error_detail.CopyFrom(Status(code=3, message="simulated rejection"))
            await self._write(request)
            return
        self.versions[type_url] = version
        await self._call.write(_ack_bytes(type_url, self.names.get(type_url, ()), version, nonce))
        self._acked(type_url)

    async def _on_delta(self, response: DeltaDiscoveryResponse) -> None:
        type_url = response.type_url
        request = DeltaDiscoveryRequest(type_url=type_url, response_nonce=response.nonce)
        if self.nack:
            self.nacks += 1
            request.error_detail.CopyFrom(Status(code=3, message="simulated rejection"))
            await self._write(request)
            return
        have = self.have[type_url]
        for name in response.removed_resources:
            have.pop(name, None)
        for resource in response.resources:
            have[resource.name] = resource.version
        # The server's system_version_info names the set the proxy has after this
        # response (the content hash of its names and versions): proxies that applied
        # the same responses share it, and with it their reconnect requests' bytes.
        self.have_version[type_url] = response.system_version_info
        follows = _FOLLOWS.get(type_url)
        if follows is not None and response.resources:
            names = _followed_names(type_url, [r.resource.value for r in response.resources])
            if _SCOPED in names and SCOPED_ROUTE_TYPE not in self.names:
                self.names[SCOPED_ROUTE_TYPE] = ()
                await self._subscribe(SCOPED_ROUTE_TYPE, first=False)
            names = tuple(n for n in names if n != _SCOPED)
            self.subscribed.add(follows)
            wanted = set(self.names.get(follows, ())) | set(names)
            new = sorted(wanted - set(self.names.get(follows, ())))
            if new:
                self.names[follows] = tuple(sorted(wanted))
                await self._write(
                    DeltaDiscoveryRequest(type_url=follows, resource_names_subscribe=new)
                )
        await self._write(request)
        self._acked(type_url)

    async def _write(self, request: DiscoveryRequest | DeltaDiscoveryRequest) -> None:
        if not request.response_nonce:
            self.pending[request.type_url] = True  # a subscription: an answer is due
        await self._call.write(request.SerializeToString())

    def _acked(self, type_url: str) -> None:
        now = time.monotonic()
        self.acked_at[type_url] = now
        self.pending[type_url] = False
        if (
            type_url == ROUTE_TYPE
            and self.changed_at is None
            and self.rds_marked is not None
            and self.rds_version != self.rds_marked
        ):
            self.changed_at = now
            if not self.nack:
                self.fleet.changed += 1


class Fleet:
    def __init__(self) -> None:
        self.proxies: list[Proxy] = []
        self.channels: list[grpc.aio.Channel] = []
        self.tasks: list[asyncio.Task[None]] = []
        self.changed = 0
        """Streams not NACKing whose RDS version changed since the mark."""
        self.expect_changed = 0
        """Streams not NACKing, counted at the mark."""

    def connect(self, command: dict[str, AnyType]) -> dict[str, AnyType]:
        target = f"127.0.0.1:{command['port']}"
        options = [
            ("grpc.use_local_subchannel_pool", 1),
            ("grpc.max_receive_message_length", 256 * 1024 * 1024),
            ("grpc.initial_reconnect_backoff_ms", 200),
            ("grpc.min_reconnect_backoff_ms", 200),
            ("grpc.max_reconnect_backoff_ms", 2000),
        ]
        channels = [
            grpc.aio.insecure_channel(target, options=options)
            for _ in range(max(1, int(command.get("channels", 8))))
        ]
        self.channels += channels
        delta_every = int(command.get("delta_every", 0))
        first = int(command.get("first", 0))
        for i in range(int(command["count"])):
            delta = bool(delta_every) and i % delta_every == delta_every - 1
            channel = channels[i % len(channels)]
            proxy = Proxy(f"sim-{first + i}", command.get("group", "edge"), channel, delta, self)
            self.proxies.append(proxy)
            self.tasks.append(asyncio.create_task(proxy.run()))
        return {"ok": True}

    def state(self) -> dict[str, AnyType]:
        return {
            "open": sum(p.open for p in self.proxies),
            "synced": sum(p.synced for p in self.proxies),
            "reconnects": sum(p.reconnects for p in self.proxies),
            "received": sum(p.received for p in self.proxies),
            "changed": sum(p.changed_at is not None for p in self.proxies if not p.nack),
            "expect_changed": sum(not p.nack for p in self.proxies),
        }

    def mark(self, command: dict[str, AnyType]) -> dict[str, AnyType]:
        nack_every = int(command.get("nack_every", 0))
        for i, proxy in enumerate(self.proxies):
            proxy.mark(bool(nack_every) and i % nack_every == 0)
        self.changed = 0
        self.expect_changed = sum(not p.nack for p in self.proxies)
        return {"ok": True}

    def changed_count(self) -> dict[str, AnyType]:
        return {"changed": self.changed, "expect_changed": self.expect_changed}

    def report(self) -> dict[str, AnyType]:
        return {
            "proxies": [
                {
                    "changed_at": p.changed_at,
                    "responses": p.responses,
                    "bytes": p.bytes,
                    "nack": p.nack,
                    "nacks": p.nacks,
                    "delta": p.delta,
                    "rds": p.rds_version,
                    "versions": p.versions if not p.delta else {},
                }
                for p in self.proxies
            ]
        }

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        for channel in self.channels:
            with contextlib.suppress(Exception):
                await channel.close(grace=None)


async def main() -> None:
    loop = asyncio.get_running_loop()
    lines: asyncio.Queue[str] = asyncio.Queue()

    def read_stdin() -> None:
        for line in sys.stdin:
            loop.call_soon_threadsafe(lines.put_nowait, line)
        loop.call_soon_threadsafe(lines.put_nowait, '{"cmd": "quit"}')

    threading.Thread(target=read_stdin, daemon=True).start()
    fleet = Fleet()
    while True:
        command = json.loads(await lines.get())
        name = command["cmd"]
        if name == "quit":
            await fleet.close()
            print(json.dumps({"ok": True}), flush=True)
            return
        if name == "connect":
            answer = fleet.connect(command)
        elif name == "state":
            answer = fleet.state()
        elif name == "mark":
            answer = fleet.mark(command)
        elif name == "changed":
            answer = fleet.changed_count()
        elif name == "report":
            answer = fleet.report()
        else:
            answer = {"error": f"unknown command {name!r}"}
        print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
