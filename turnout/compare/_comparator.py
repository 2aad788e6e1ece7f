"""`turnout compare`: the comparator process.

    Envoy ──copy (x-turnout-compare: shop/default)──► comparator ──► light (primary)
                                                         │  ├──────► light (secondary)
                                                         │  └──────► dark
    turnout ◄──figures every second── CompareService ──┘  ◄── mirror targets

It connects to turnout's gRPC port (`CompareService.Connect`), is sent the mirror
targets (route, service, light and dark endpoints, what to compare) and sends back
what it found every second. Envoy copies a mirror's share of requests to it; for each
copy whose method is listed it answers Envoy at once (202: Envoy discards the answer
anyway, and the copy's stream is freed) and then, in the background, replays the
request to a light instance (primary), a second light instance (secondary; the same
one when there is only one) and the dark version, concurrently, and compares the
answers (`_diff`).

Safety:
- It never answers a user: only Envoy's mirror reaches it, and Envoy drops the answer.
- It never slows the light path: Envoy's mirror does not wait for it, and it answers
  before comparing. What it costs light is the replays: two more requests per
  compared copy (primary and secondary), i.e. 2 x percent of light's traffic.
- Only listed methods are replayed (GET and HEAD by default): a POST is answered 202
  and counted as skipped unless `methods` lists it. Listing a method replays it
  twice on light: list only methods whose handlers may run twice.
- Bounded: at most `max_in_flight` comparisons at once (more are skipped as "busy"),
  bodies (the request's and each answer's) read up to `max_body` bytes (a bigger
  one is skipped), each call limited to `timeout`; what is kept between reports is
  capped (`Tally`).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import re
import socket
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass

import aiohttp
import grpc
import structlog
from aiohttp import web
from google.protobuf.timestamp_pb2 import Timestamp
from yarl import URL

from turnout._proto.v1 import release_pb2 as pb
from turnout._proto.v1 import release_pb2_grpc as pb_grpc

from ._diff import Answer, Settings, differences
from ._tally import Call, Tally, TargetKey

__all__ = ["COMPARE_HEADER", "REPLAY_HEADER", "Comparator", "ComparatorOptions", "shadow_host"]

log = structlog.get_logger("turnout.compare")

#: Set by Envoy on each copy (turnout.translate): the route it was mirrored from.
COMPARE_HEADER = "x-turnout-compare"
#: Set by the comparator on each replay: primary, secondary or dark.
REPLAY_HEADER = "x-turnout-replay"

# Not forwarded on a replay: hop-by-hop headers (RFC 9110 7.6.1), what aiohttp sets
# itself, and what only Envoy's copy carries.
#: Methods replayed once more after a stale kept-alive connection (it never reached
#: the server): they may run twice.
_RETRIED = frozenset({"GET", "HEAD", "OPTIONS"})

_DROPPED = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "transfer-encoding",
        "te",
        "trailer",
        "upgrade",
        "host",
        "content-length",
        COMPARE_HEADER,
        "x-envoy-internal",
        "x-envoy-expected-rq-timeout-ms",
    }
)


def shadow_host(host: str) -> str:
    """The Host a copy was sent for: Envoy appends `-shadow` to the host part
    (`shop.example.com-shadow:8080` -> `shop.example.com:8080`)."""
    match = _SHADOW.fullmatch(host)
    return f"{match['name']}{match['port'] or ''}" if match else host


_SHADOW = re.compile(r"(?P<name>.+)-shadow(?P<port>:\d+)?")


@dataclass(frozen=True, slots=True)
class ComparatorOptions:
    """How one comparator runs (`turnout compare` options)."""

    xds_address: str
    listen: str
    name: str = ""
    max_body: int = 1 << 20
    max_in_flight: int = 256
    timeout: float = 10.0
    examples: int = 3
    report_every: float = 1.0
    credentials: grpc.ChannelCredentials | None = None


@dataclass(frozen=True, slots=True)
class _Target:
    message: pb.CompareTarget
    key: TargetKey
    methods: frozenset[str]
    settings: Settings


def _target(message: pb.CompareTarget) -> _Target:
    return _Target(
        message,
        (message.service, message.to, message.light),
        frozenset(message.methods),
        Settings(
            ignore=tuple(message.ignore),
            headers=tuple(message.headers),
            redact=frozenset(message.redact),
        ),
    )


def _size(limit: int) -> str:
    return f"{limit // (1 << 20)} MiB" if limit % (1 << 20) == 0 else f"{limit} bytes"


class Comparator:
    """One comparator: serve Envoy's copies on `listen`, talk to turnout."""

    def __init__(self, options: ComparatorOptions) -> None:
        self.options = options
        self.name = options.name or f"{socket.gethostname()}/{options.listen}"
        self.tally = Tally(examples=options.examples)
        self.targets: dict[str, _Target] = {}
        self.version = ""
        self.connected = False
        self.port = 0
        self.in_flight = 0
        self._counter = itertools.count()
        self._tasks: set[asyncio.Task[None]] = set()
        self._session: aiohttp.ClientSession | None = None
        self._runner: web.AppRunner | None = None
        self._stop = asyncio.Event()
        self._targets_seen = asyncio.Event()

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> int:
        """Listen for copies; returns the port."""
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=4 * self.options.max_in_flight, ttl_dns_cache=10),
            timeout=aiohttp.ClientTimeout(total=self.options.timeout),
            auto_decompress=True,
        )
        app = web.Application(client_max_size=self.options.max_body)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        host, _, port = self.options.listen.rpartition(":")
        site = web.TCPSite(self._runner, host.strip("[]") or "0.0.0.0", int(port), backlog=512)
        await site.start()
        server = site._server  # aiohttp keeps the bound socket there (port 0)
        sockets = getattr(server, "sockets", None) or []
        self.port = sockets[0].getsockname()[1] if sockets else int(port)
        log.info(
            "comparator listening", listen=f"{host}:{self.port}", turnout=self.options.xds_address
        )
        return self.port

    async def run(self) -> None:
        """Serve copies and keep the connection to turnout until `stop()`."""
        if self._runner is None:
            await self.start()
        connection = asyncio.create_task(self._connect_forever(), name="turnout")
        try:
            await self._stop.wait()
        finally:
            connection.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await connection
            await self.close()

    def stop(self) -> None:
        self._stop.set()

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def wait_for_targets(self) -> None:
        """Until turnout has sent the targets at least once."""
        await self._targets_seen.wait()

    # -- turnout -------------------------------------------------------------------------

    async def _connect_forever(self) -> None:
        backoff = 0.25
        while not self._stop.is_set():
            try:
                await self._connect()
                backoff = 0.25
            except (grpc.aio.AioRpcError, OSError) as exc:
                if self.connected:
                    log.warning("comparator lost turnout", error=str(exc))
                self.connected = False
            await asyncio.sleep(backoff)
            backoff = min(2.0, backoff * 2)

    async def _reports(self) -> AsyncIterator[pb.CompareReport]:
        yield pb.CompareReport(comparator=self.name, listen=f"{self.options.listen}")
        while True:
            await asyncio.sleep(self.options.report_every)
            at = Timestamp()
            at.GetCurrentTime()
            yield pb.CompareReport(comparator=self.name, targets=self.tally.drain(), at=at)

    async def _connect(self) -> None:
        address = self.options.xds_address
        if self.options.credentials is not None:
            channel = grpc.aio.secure_channel(address, self.options.credentials)
        else:
            channel = grpc.aio.insecure_channel(address)
        async with channel:
            stub = pb_grpc.CompareServiceStub(channel)
            call = stub.Connect(self._reports())
            async for targets in call:
                if not self.connected:
                    log.info("comparator connected to turnout", turnout=address)
                self.connected = True
                self.set_targets(targets)

    def set_targets(self, targets: pb.CompareTargets) -> None:
        """Compare these mirror targets (what turnout sends over CompareService)."""
        fresh = {t.route: _target(t) for t in targets.targets}
        if fresh.keys() != self.targets.keys() or targets.version != self.version:
            log.info(
                "comparator targets",
                version=targets.version,
                routes=sorted(fresh),
            )
        self.targets, self.version = fresh, targets.version
        self._targets_seen.set()

    # -- Envoy's copies ------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        route = request.headers.get(COMPARE_HEADER)
        if route is None:  # not a copy: the comparator's own endpoints
            if request.path == "/healthz":
                return web.Response(text="ok\n")
            if request.path == "/readyz":
                ready = self.connected and self._targets_seen.is_set()
                return web.Response(
                    status=200 if ready else 503,
                    text="ready\n" if ready else "not connected to turnout\n",
                )
            return web.Response(status=404, text=f"not a mirrored request (no {COMPARE_HEADER})\n")
        target = self.targets.get(route)
        if target is None:
            return web.Response(status=202)
        if request.method not in target.methods:
            self.tally.skip(target.key, f"method {request.method} not listed")
            return web.Response(status=202)
        if self.in_flight >= self.options.max_in_flight:
            self.tally.skip(target.key, "busy")
            return web.Response(status=202)
        try:
            body = await request.content.read(self.options.max_body + 1)
        except (aiohttp.ClientError, asyncio.IncompleteReadError, ConnectionError):
            return web.Response(status=202)
        if len(body) > self.options.max_body:
            self.tally.skip(target.key, f"request body over {_size(self.options.max_body)}")
            return web.Response(status=202)
        headers = [(k, v) for k, v in request.headers.items() if k.lower() not in _DROPPED]
        host = shadow_host(request.headers.get("host", ""))
        self.in_flight += 1
        task = asyncio.create_task(
            self._compare(target, request.method, request.raw_path, host, headers, body)
        )
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return web.Response(status=202)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self.in_flight -= 1
        if not task.cancelled() and task.exception() is not None:
            log.error("comparison failed", error=repr(task.exception()))

    async def _compare(
        self,
        target: _Target,
        method: str,
        raw_path: str,
        host: str,
        headers: list[tuple[str, str]],
        body: bytes,
    ) -> None:
        turn = next(self._counter)
        light, dark = target.message.light_endpoints, target.message.dark_endpoints
        if not light or not dark:
            self.tally.skip(target.key, "no endpoints")
            return
        primary = light[turn % len(light)]
        secondary = light[(turn + 1) % len(light)]
        (p, p_call), (s, _), (d, d_call) = await asyncio.gather(
            self._call(primary, "primary", method, raw_path, host, headers, body),
            self._call(secondary, "secondary", method, raw_path, host, headers, body),
            self._call(dark[turn % len(dark)], "dark", method, raw_path, host, headers, body),
        )
        self.tally.calls(target.key, d_call, p_call)
        if p.status is None or s.status is None:
            self.tally.skip(target.key, "light failed")
            return
        if p.truncated or s.truncated or d.truncated:
            self.tally.skip(target.key, f"answer body over {_size(self.options.max_body)}")
            return
        path, _, query = raw_path.partition("?")
        self.tally.record(
            target.key,
            differences(p, d, target.settings),
            differences(p, s, target.settings),
            (method, path, query),
        )

    async def _call(
        self,
        endpoint: str,
        role: str,
        method: str,
        raw_path: str,
        host: str,
        headers: list[tuple[str, str]],
        body: bytes,
    ) -> tuple[Answer, Call]:
        started = time.perf_counter()
        try:
            answer = await self._request(endpoint, role, method, raw_path, host, headers, body)
        except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError) as exc:
            # A kept-alive connection the server closed as we reused it: the request
            # never got there. Replayed once more, for methods that may run twice.
            if method not in _RETRIED:
                answer = Answer(None, error=type(exc).__name__)
            else:
                answer = await self._answer(endpoint, role, method, raw_path, host, headers, body)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            answer = Answer(None, error=type(exc).__name__)
        seconds = time.perf_counter() - started
        return answer, Call(answer.status, seconds)

    async def _answer(
        self,
        endpoint: str,
        role: str,
        method: str,
        raw_path: str,
        host: str,
        headers: list[tuple[str, str]],
        body: bytes,
    ) -> Answer:
        try:
            return await self._request(endpoint, role, method, raw_path, host, headers, body)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            return Answer(None, error=type(exc).__name__)

    async def _request(
        self,
        endpoint: str,
        role: str,
        method: str,
        raw_path: str,
        host: str,
        headers: list[tuple[str, str]],
        body: bytes,
    ) -> Answer:
        assert self._session is not None
        sent = [*headers, ("Host", host), (REPLAY_HEADER, role)]
        async with self._session.request(
            method,
            URL(f"http://{endpoint}{raw_path}", encoded=True),
            headers=sent,
            data=body or None,
            skip_auto_headers=("User-Agent", "Accept-Encoding", "Content-Type"),
            allow_redirects=False,
        ) as response:
            content = await response.content.read(self.options.max_body + 1)
            return Answer(
                response.status,
                _headers(response.headers),
                content[: self.options.max_body],
                truncated=len(content) > self.options.max_body,
            )


def _headers(headers: Mapping[str, str]) -> dict[str, str]:
    joined: dict[str, str] = {}
    for name, value in headers.items():
        name = name.lower()
        joined[name] = f"{joined[name]}, {value}" if name in joined else value
    return joined
