"""How a stream ends: a write in flight is let finish (bounded), a refused stream ends
with its status and leaves nothing behind (``turnout/xds/_tasks.py``)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import weakref
from collections.abc import AsyncIterator, Iterator

import grpc
import grpc.aio
import pytest
from envoy.config.core.v3.base_pb2 import Node
from envoy.service.discovery.v3.discovery_pb2 import DiscoveryRequest, DiscoveryResponse

from turnout.cache import CLUSTER_TYPE, ORDER, SnapshotCache
from turnout.testing import RunningXds, eventually, make_snapshot
from turnout.xds import SERVICES, StreamRejectedError, XdsCallbacks
from turnout.xds import _tasks as tasks
from turnout.xds._stream import Stream

ADS = "/{}/{}".format(*SERVICES["ads"][:2])


def _stream() -> Stream:
    cache = SnapshotCache()
    snapshot = make_snapshot({"a": 100})
    cache.publish(snapshot.group_version, lambda _group: snapshot)
    return Stream(
        stream_id=1,
        kind="ads",
        type_urls=ORDER,
        cache=cache,
        callbacks=XdsCallbacks(),
        nonce_prefix="t.",
    )


def _first_then_refused(release: asyncio.Event) -> AsyncIterator[DiscoveryRequest]:
    """The proxy's first request, then (once ``release`` is set) a refusal."""

    async def requests() -> AsyncIterator[DiscoveryRequest]:
        yield DiscoveryRequest(type_url=CLUSTER_TYPE, node=Node(id="p", cluster="edge"))
        await release.wait()
        raise StreamRejectedError(grpc.StatusCode.INVALID_ARGUMENT, "malformed")

    return requests()


async def test_a_write_in_flight_when_the_stream_is_refused_is_let_finish() -> None:
    """A refusal arriving while a response is being written does not cancel that
    write: the stream ends, returning the refusal, once the write has finished."""
    stream = _stream()
    refuse, finish = asyncio.Event(), asyncio.Event()
    outcome: list[str] = []

    async def slow_write(frame: bytes) -> None:
        try:
            refuse.set()  # the refusal arrives while this write is in flight
            await finish.wait()
            outcome.append("written")
        except asyncio.CancelledError:
            outcome.append("cancelled")
            raise

    serving = asyncio.create_task(stream.serve(_first_then_refused(refuse), slow_write))
    await eventually(refuse.is_set, what="the write to start")
    # the behaviour under test is an absence: with the refusal in, the stream must not
    # end for as long as the write is in flight; 50 ms is the window it is given to
    await asyncio.sleep(0.05)
    assert not serving.done(), "the stream ended with a write in flight"
    finish.set()
    rejected = await asyncio.wait_for(serving, 2)
    assert outcome == ["written"]
    assert isinstance(rejected, StreamRejectedError)
    assert rejected.code == grpc.StatusCode.INVALID_ARGUMENT
    assert rejected.__traceback__ is None, "the refusal would keep the stream's frames alive"


async def test_a_write_that_never_finishes_is_cancelled_after_the_grace(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A proxy that stopped reading holds its stream's end for WRITE_GRACE at most:
    then its write is cancelled and the refusal returned."""
    monkeypatch.setattr(tasks, "WRITE_GRACE", 0.2)
    stream = _stream()
    refuse = asyncio.Event()
    cancelled = asyncio.Event()

    async def stuck_write(frame: bytes) -> None:
        refuse.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    loop = asyncio.get_running_loop()
    started = loop.time()
    rejected = await asyncio.wait_for(stream.serve(_first_then_refused(refuse), stuck_write), 2)
    took = loop.time() - started
    assert isinstance(rejected, StreamRejectedError)
    assert cancelled.is_set()
    assert 0.2 <= took < 1.5, took


@contextlib.contextmanager
def _no_cycle_collection() -> Iterator[None]:
    enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


async def test_a_refused_stream_leaves_nothing_behind(xds: RunningXds) -> None:
    """A proxy refused (malformed bytes) while a large response is being written to
    it, and not reading, still reads that response and then INVALID_ARGUMENT; the
    stream's Stream is freed as the RPC ends, without waiting for the cycle collector
    (no refusal, abort or logged traceback keeps its frames)."""
    xds.publish(make_snapshot({f"c{i}": 10 for i in range(10)}, padding=200_000))
    channel = grpc.aio.insecure_channel(xds.target)
    try:
        with _no_cycle_collection():
            call = channel.stream_stream(ADS, request_serializer=None, response_deserializer=None)()
            first = DiscoveryRequest(type_url=CLUSTER_TYPE, node=Node(id="refused", cluster="x"))
            await call.write(first.SerializeToString())
            await eventually(lambda: [p.node_id for p in xds.server.proxies()] == ["refused"])
            (stream,) = (
                o for o in gc.get_objects() if isinstance(o, Stream) and o.node_id == "refused"
            )
            alive = weakref.ref(stream)
            del stream
            # the 2 MB CDS response is emitted, its write stuck in flow control
            await eventually(
                lambda: xds.server.proxies()[0].types[CLUSTER_TYPE].sent_version,
                what="the CDS response to be written",
            )
            await call.write(b"\xff\xff\xff")
            responses: list[DiscoveryResponse] = []

            async def read_all() -> None:
                while (raw := await call.read()) is not grpc.aio.EOF:
                    responses.append(DiscoveryResponse.FromString(raw))

            with pytest.raises(grpc.aio.AioRpcError) as failure:
                await read_all()
            assert failure.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert [r.type_url for r in responses] == [CLUSTER_TYPE]
            assert len(responses[0].resources) == 10
            await eventually(lambda: xds.server.stream_count == 0)
            await eventually(lambda: alive() is None, timeout=2)
    finally:
        await channel.close()


async def test_an_idle_stream_keeps_no_request(xds: RunningXds) -> None:
    """Once a stream has handled its proxy's ACK and waits, no request of it is alive
    on the server: a state-of-the-world ACK repeats every subscribed name (~40 KB
    parsed for 500 route configurations), and grpc.aio's request iterator kept the
    last one per stream (``_server._Reads``)."""
    xds.publish(make_snapshot({f"c{i}": 10 for i in range(50)}))
    channel = grpc.aio.insecure_channel(xds.target)
    try:
        call = channel.stream_stream(ADS, request_serializer=None, response_deserializer=None)()
        node = Node(id="idle", cluster="x")
        await call.write(DiscoveryRequest(type_url=CLUSTER_TYPE, node=node).SerializeToString())
        response = DiscoveryResponse.FromString(await call.read())
        ack = DiscoveryRequest(
            type_url=CLUSTER_TYPE,
            version_info=response.version_info,
            response_nonce=response.nonce,
            resource_names=[f"c{i}" for i in range(50)],
        )
        await call.write(ack.SerializeToString())
        del ack, response
        await eventually(
            lambda: xds.server.proxies()[0].types[CLUSTER_TYPE].acked_version is not None,
            what="the ACK to be handled",
        )
        gc.collect()
        # The client above sends bytes and keeps none of its requests as messages.
        assert [o for o in gc.get_objects() if isinstance(o, DiscoveryRequest)] == []
        call.cancel()
    finally:
        await channel.close()
