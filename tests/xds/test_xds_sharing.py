"""Cost that does not grow with the fleet: responses framed once per group, type and
version and shared by every stream; a stuck proxy holds at most one response."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from envoy.config.core.v3.base_pb2 import Node
from envoy.service.discovery.v3.discovery_pb2 import DiscoveryRequest, DiscoveryResponse

import turnout.xds._stream as stream_module
from turnout.cache import CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ORDER, SnapshotCache
from turnout.testing import eventually, make_snapshot, running_xds
from turnout.xds import StreamInfo, XdsCallbacks
from turnout.xds._stream import Stream
from turnout.xds._wire import frame_nonce

pytestmark = pytest.mark.timeout(30)


def _stream(cache: SnapshotCache, stream_id: int, group: str = "edge") -> Stream:
    stream = Stream(
        stream_id=stream_id,
        kind="ads",
        type_urls=ORDER,
        cache=cache,
        callbacks=XdsCallbacks(),
        nonce_prefix="t.",
    )
    stream.handle_request(
        DiscoveryRequest(type_url=CLUSTER_TYPE, node=Node(id=f"p{stream_id}", cluster=group))
    )
    return stream


def _without_nonce(frame: bytes) -> DiscoveryResponse:
    response = DiscoveryResponse.FromString(frame)
    assert response.nonce
    response.ClearField("nonce")
    return response


def test_streams_of_a_group_get_the_same_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every stream of a group is written the very same response bytes (nonce
    included), framed once however many streams send it."""
    framed: list[tuple[str, str]] = []
    real = stream_module.frame_body

    def counting(version: str, type_url: str, resources: object) -> bytes:
        framed.append((type_url, version))
        return real(version, type_url, resources)  # type: ignore[arg-type]

    monkeypatch.setattr(stream_module, "frame_body", counting)
    cache = SnapshotCache()
    snapshot = make_snapshot({"a": 60, "b": 40}, mirror="c")
    cache.publish(snapshot.group_version, lambda _group: snapshot)
    frames = [_stream(cache, i).next_response() for i in range(1, 51)]

    assert framed == [(CLUSTER_TYPE, snapshot.type_version(CLUSTER_TYPE))]
    first = frames[0]
    assert first is not None
    assert all(frame is first for frame in frames)
    clusters = snapshot.resources(CLUSTER_TYPE)
    body = real(
        snapshot.type_version(CLUSTER_TYPE), CLUSTER_TYPE, [clusters[n] for n in sorted(clusters)]
    )
    nonce = DiscoveryResponse.FromString(first).nonce
    assert first == body + frame_nonce(nonce)


def test_a_repeated_response_gets_a_nonce_of_its_own() -> None:
    """A stream sent the same response again (a forced re-send) gets a new nonce, so a
    late ACK of the first cannot pass for an ACK of the second."""
    cache = SnapshotCache()
    snapshot = make_snapshot({"a": 100})
    cache.publish(snapshot.group_version, lambda _group: snapshot)
    stream = _stream(cache, 1)
    first_frame = stream.next_response()
    assert first_frame is not None
    first = DiscoveryResponse.FromString(first_frame)
    stream.handle_request(
        DiscoveryRequest(
            type_url=CLUSTER_TYPE, version_info=first.version_info, response_nonce=first.nonce
        )
    )
    stream._states[CLUSTER_TYPE].force = True  # what a warming re-send sets
    again_frame = stream.next_response()
    assert again_frame is not None
    again = DiscoveryResponse.FromString(again_frame)
    assert again.version_info == first.version_info
    assert again.nonce != first.nonce
    assert _without_nonce(again_frame) == _without_nonce(first_frame)
    other = _stream(cache, 2).next_response()
    assert other is first_frame


def test_a_new_version_is_framed_once_for_all_streams(monkeypatch: pytest.MonkeyPatch) -> None:
    """After a publish, the new version's response is framed once for the whole group."""
    calls: list[str] = []
    real = stream_module.frame_body

    def counting(version: str, type_url: str, resources: object) -> bytes:
        calls.append(type_url)
        return real(version, type_url, resources)  # type: ignore[arg-type]

    cache = SnapshotCache()
    one = make_snapshot({"a": 100})
    cache.publish(one.group_version, lambda _group: one)
    streams = [_stream(cache, i) for i in range(1, 21)]
    for stream in streams:
        frame = stream.next_response()
        assert frame is not None
        ack = DiscoveryResponse.FromString(frame)
        stream.handle_request(
            DiscoveryRequest(
                type_url=CLUSTER_TYPE, version_info=ack.version_info, response_nonce=ack.nonce
            )
        )
        assert stream.next_response() is None
    monkeypatch.setattr(stream_module, "frame_body", counting)
    two = make_snapshot({"a": 50, "b": 50})
    cache.publish(two.group_version, lambda _group: two)
    responses = [stream.next_response() for stream in streams]
    assert all(r is not None for r in responses)
    assert calls == [CLUSTER_TYPE]


def test_groups_with_different_content_get_their_own_bytes() -> None:
    """Streams of two groups with different snapshots get their own group's resources."""
    cache = SnapshotCache()
    north, south = make_snapshot({"n": 100}), make_snapshot({"s": 100})
    cache.publish("v", lambda group: north if group == "north" else south)
    a = _stream(cache, 1, "north").next_response()
    b = _stream(cache, 2, "south").next_response()
    assert a is not None
    assert b is not None
    assert _without_nonce(a) != _without_nonce(b)
    assert _without_nonce(a).version_info == north.type_version(CLUSTER_TYPE)


async def test_a_stuck_transport_holds_one_response_per_stream() -> None:
    """When a write never completes, the writer holds that one response: later
    publishes and requests build and queue nothing more for the stream."""
    cache = SnapshotCache()
    snapshot = make_snapshot({"a0": 100})
    cache.publish(snapshot.group_version, lambda _group: snapshot)
    written: list[bytes] = []
    never = asyncio.Event()

    async def stuck_write(frame: bytes) -> None:
        written.append(frame)
        await never.wait()

    requests: asyncio.Queue[DiscoveryRequest] = asyncio.Queue()

    async def incoming() -> AsyncIterator[DiscoveryRequest]:
        while True:
            yield await requests.get()

    stream = Stream(
        stream_id=1,
        kind="ads",
        type_urls=ORDER,
        cache=cache,
        callbacks=XdsCallbacks(),
        nonce_prefix="t.",
    )
    task = asyncio.create_task(stream.serve(incoming(), stuck_write))
    try:
        requests.put_nowait(
            DiscoveryRequest(type_url=CLUSTER_TYPE, node=Node(id="stuck", cluster="edge"))
        )
        await eventually(lambda: len(written) == 1)
        for step in range(1, 30):
            update = make_snapshot({f"a{step}": 100})
            cache.publish(update.group_version, lambda _group, u=update: u)
            requests.put_nowait(DiscoveryRequest(type_url=ENDPOINT_TYPE, resource_names=["a0"]))
            requests.put_nowait(DiscoveryRequest(type_url=LISTENER_TYPE))
            # the reader handles a request as it takes it: an empty queue means handled
            await eventually(requests.empty, interval=0, what=f"step {step}'s requests")
        assert len(written) == 1
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


class _Counting(XdsCallbacks):
    def __init__(self) -> None:
        self.responses: dict[str, list[str]] = {}

    def on_response(
        self, stream: StreamInfo, type_url: str, version: str, resource_count: int
    ) -> None:
        self.responses.setdefault(stream.node_id, []).append(type_url)


async def test_a_proxy_that_does_not_read_is_sent_nothing_more() -> None:
    """Over real grpc, a proxy that never reads its 4 MB responses gets at most one
    response per type it asked for, however many versions are published meanwhile
    (whatever grpc's buffers absorb, nothing queues up), while a reading proxy on the
    same server gets every update."""
    counting = _Counting()
    big = 4 * 1024 * 1024
    async with running_xds(counting) as xds:
        xds.publish(make_snapshot({"big": 100}, padding=big))
        stuck = await xds.client("stuck", read=False)
        await stuck.request(CLUSTER_TYPE)
        await eventually(lambda: counting.responses.get("stuck") == [CLUSTER_TYPE])
        await stuck.request(ENDPOINT_TYPE, ["big"])
        healthy = await xds.client("healthy")
        await healthy.request(CLUSTER_TYPE)
        await healthy.ack(await healthy.recv())
        for step in range(5):
            xds.publish(make_snapshot({f"b{step}": 100}, padding=big))
            await stuck.request(ENDPOINT_TYPE, [f"b{step}"], nonce="")
            await healthy.ack(await healthy.recv(timeout=5.0))
        # the behaviour under test is an absence (nothing more is sent to `stuck`, which
        # has no event to await): 200 ms is the window turnout is given to misbehave
        await asyncio.sleep(0.2)
        sent = counting.responses["stuck"]
        assert sent[0] == CLUSTER_TYPE
        assert len(sent) <= 2
        assert len(set(sent)) == len(sent)
        assert len(counting.responses["healthy"]) == 6
