"""Fuzzing the xDS stream handler: 10,000 malformed DiscoveryRequests (random bytes,
truncated and bit-flipped valid requests, wrong type URLs, huge resource_names lists,
random nonces, versions and error details) written as raw bytes on real ADS streams
to a running XdsServer. Nothing crashes it: a well-behaved proxy connected throughout
keeps being served, a new one can still connect, and once the streams close the
server holds no stream, task or Stream object more than before."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import grpc
import grpc.aio
import pytest
from envoy.config.core.v3.base_pb2 import Node
from envoy.service.discovery.v3.discovery_pb2 import DiscoveryRequest
from google.rpc.status_pb2 import Status
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from turnout.cache import CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE
from turnout.testing import AdsClient, RunningXds, make_snapshot, running_xds
from turnout.xds import SERVICES
from turnout.xds._stream import Stream

SESSIONS = 1_000
PER_SESSION = 10
"""1,000 streams of 10 requests each: 10,000 malformed requests."""
METHOD = "/{}/{}".format(*SERVICES["ads"][:2])
TYPES = [CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE]
NAME_POOL = [f"name-{i}" for i in range(20_000)]

T = TypeVar("T")

# -- malformed requests -----------------------------------------------------------


def _request(**fields: Any) -> bytes:
    return DiscoveryRequest(**fields).SerializeToString()


def _flip(data: bytes, at: int, bit: int) -> bytes:
    if not data:
        return b"\x80"
    index = at % len(data)
    return data[:index] + bytes([data[index] ^ (1 << bit)]) + data[index + 1 :]


names = st.lists(st.text(max_size=12), max_size=4)
valid = st.builds(
    lambda type_url, resource_names, version, nonce, node: _request(
        type_url=type_url,
        resource_names=resource_names,
        version_info=version,
        response_nonce=nonce,
        node=Node(id="fuzz", cluster="default") if node else None,
    ),
    st.sampled_from(TYPES),
    names,
    st.text(max_size=10),
    st.text(max_size=12),
    st.booleans(),
)
malformed = st.one_of(
    st.binary(max_size=256),  # random bytes
    st.tuples(valid, st.integers(0, 10**6)).map(lambda p: p[0][: p[1] % max(1, len(p[0]))]),
    st.tuples(valid, st.integers(0, 10**6), st.integers(0, 7)).map(lambda p: _flip(*p)),
    st.builds(  # wrong type URLs
        lambda type_url, node: _request(type_url=type_url, node=Node(id=node)),
        st.one_of(
            st.text(max_size=40),
            st.sampled_from(
                [
                    "",
                    "*",
                    "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret",
                    CLUSTER_TYPE + " ",
                    CLUSTER_TYPE.upper(),
                    "type.googleapis.com/envoy.api.v2.Cluster",
                ]
            ),
        ),
        st.text(max_size=8),
    ),
    st.builds(  # huge resource_names lists
        lambda type_url, count: _request(type_url=type_url, resource_names=NAME_POOL[:count]),
        st.sampled_from(TYPES),
        st.sampled_from([100, 1_000, 20_000]),
    ),
    st.builds(  # random nonces, versions and NACKs
        lambda type_url, nonce, version, error: _request(
            type_url=type_url,
            response_nonce=nonce,
            version_info=version,
            error_detail=Status(code=3, message=error) if error is not None else None,
        ),
        st.sampled_from(TYPES),
        st.text(max_size=20),
        st.text(max_size=20),
        st.none() | st.text(max_size=30),
    ),
)


# -- the server, on its own loop ----------------------------------------------------


class ServerThread:
    """running_xds() on an event loop in a thread, so hypothesis can drive it."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._exits = contextlib.AsyncExitStack()
        self.xds: RunningXds | None = None
        self.channel: grpc.aio.Channel | None = None

    def run(self, make: Callable[[], Awaitable[T]], timeout: float = 60) -> T:
        async def call() -> T:
            return await make()

        return asyncio.run_coroutine_threadsafe(call(), self.loop).result(timeout)

    def __enter__(self) -> ServerThread:
        self._thread.start()

        async def start() -> None:
            self.xds = await self._exits.enter_async_context(running_xds())
            self.channel = grpc.aio.insecure_channel(self.xds.target)
            self._exits.push_async_callback(self.channel.close, None)

        self.run(start)
        return self

    def __exit__(self, *exc: object) -> None:
        self.run(self._exits.aclose)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()

    def leftovers(self) -> dict[str, int]:
        """Streams, stream tasks and Stream objects the server still holds."""

        async def count() -> dict[str, int]:
            gc.collect()
            assert self.xds is not None
            tasks = [t for t in asyncio.all_tasks() if t.get_name().startswith("xds-")]
            streams = [o for o in gc.get_objects() if isinstance(o, Stream)]
            return {
                "open streams": self.xds.server.stream_count,
                "stream tasks": len(tasks),
                "Stream objects": len(streams),
            }

        return self.run(count)


async def session(channel: grpc.aio.Channel, messages: list[bytes]) -> str:
    """Write ``messages`` on one ADS stream, half-close, read to the end; the status
    the stream ended with, or "NO STATUS" when none arrived within half a second (the
    stream is then cancelled by the client)."""
    call: Any = channel.stream_stream(METHOD, request_serializer=None, response_deserializer=None)()

    async def drain() -> None:
        with contextlib.suppress(grpc.aio.AioRpcError):
            while await call.read() is not grpc.aio.EOF:
                pass

    reader = asyncio.create_task(drain())
    try:
        for message in messages:
            try:
                await call.write(message)
            except (grpc.aio.AioRpcError, asyncio.InvalidStateError):
                break  # the server ended the stream (as it should on a malformed request)
        with contextlib.suppress(grpc.aio.AioRpcError, asyncio.InvalidStateError):
            await call.done_writing()
        try:
            await asyncio.wait_for(asyncio.shield(reader), 0.5)
        except TimeoutError:
            return "NO STATUS"
        code: grpc.StatusCode = await call.code()
        return code.name
    finally:
        call.cancel()
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader


def _rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * 4096 / 2**20


def test_stream_handler_fuzz(caplog: pytest.LogCaptureFixture) -> None:
    """10,000 malformed requests on 1,000 real ADS streams: every stream ends with a
    status, the well-behaved proxy still gets a new version and ACKs it, a new proxy
    bootstraps, and afterwards no stream, stream task or Stream object is left."""
    with ServerThread() as server:
        assert server.xds is not None
        xds = server.xds
        channel = server.channel
        assert channel is not None
        xds.publish(make_snapshot({"a": 90, "b": 10}))
        good: AdsClient = server.run(lambda: xds.client("good"))
        server.run(good.bootstrap)
        statuses: Counter[str] = Counter()
        sent = [0]

        @settings(
            max_examples=SESSIONS,
            derandomize=True,
            database=None,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(st.lists(malformed, min_size=PER_SESSION, max_size=PER_SESSION))
        def run(messages: list[bytes]) -> None:
            statuses[server.run(lambda: session(channel, messages))] += 1
            sent[0] += len(messages)

        gc.collect()
        start = {"rss MB": _rss_mb(), "objects": len(gc.get_objects())}
        started = time.perf_counter()
        run()
        seconds = time.perf_counter() - started
        # The same 10,000 again: a leak grows again by as much; allocator and grpc
        # high-water marks reached by the first round do not.
        gc.collect()
        baseline = {"rss MB": _rss_mb(), "objects": len(gc.get_objects())}
        run()

        # The well-behaved proxy was served throughout and still is.
        xds.publish(make_snapshot({"a": 50, "b": 50}))

        async def follow_change() -> str:
            response = await good.recv(timeout=5)
            while response.type_url != ROUTE_TYPE:
                await good.ack(response)
                response = await good.recv(timeout=5)
            await good.ack(response)
            return str(response.version_info)

        route_version = server.run(follow_change)
        newcomer: AdsClient = server.run(lambda: xds.client("newcomer"))
        assert set(server.run(newcomer.bootstrap)) == set(TYPES)
        server.run(newcomer.close)

        # grpc logs errors raised by servicer methods with their tracebacks, which hold
        # the handlers' frames (and Stream objects): count them, then let them go.
        errors = Counter(
            r.getMessage().split(" raised")[0] for r in caplog.records if r.levelname == "ERROR"
        )
        caplog.clear()
        deadline = time.monotonic() + 10
        while (left := server.leftovers())["open streams"] > 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        gc.collect()
        after = {"rss MB": _rss_mb(), "objects": len(gc.get_objects())}
        print(
            f"\n[fuzz] {sent[0]} malformed requests on {sum(statuses.values())} streams in "
            f"{seconds:.0f}s; stream ends: {dict(statuses)}; memory {start} -> {baseline} "
            f"-> (the same again) {after}; grpc errors logged: {dict(errors)}"
        )
        assert sent[0] == 2 * SESSIONS * PER_SESSION
        assert route_version
        assert left == {"open streams": 1, "stream tasks": 2, "Stream objects": 1}, left
        assert after["rss MB"] - baseline["rss MB"] < 64, (baseline, after)
        assert after["objects"] - baseline["objects"] < 20_000, (baseline, after)
        assert statuses["INVALID_ARGUMENT"] > 0, "no request was malformed enough to be refused"


def test_a_request_over_the_size_limit_ends_only_its_stream() -> None:
    """A 5 MB DiscoveryRequest (a 300,000-name subscription) is refused by grpc with
    RESOURCE_EXHAUSTED; the server keeps serving the next stream."""
    with ServerThread() as server:
        assert server.xds is not None
        assert server.channel is not None
        channel = server.channel
        server.xds.publish(make_snapshot({"a": 100}))
        huge = _request(
            type_url=ENDPOINT_TYPE, resource_names=[f"{i:016d}" for i in range(300_000)]
        )
        assert len(huge) > 4 * 2**20
        assert server.run(lambda: session(channel, [huge])) == "RESOURCE_EXHAUSTED"
        xds = server.xds
        client: AdsClient = server.run(lambda: xds.client("after"))
        assert set(server.run(client.bootstrap)) == set(TYPES)
