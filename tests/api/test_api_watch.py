"""WatchStatus over a real channel: a SNAPSHOT first, then one event per change."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import grpc
import grpc.aio
import pytest

from turnout._proto.v1 import release_pb2 as pb
from turnout._proto.v1 import release_pb2_grpc
from turnout.api import (
    EndpointsView,
    IncrementalView,
    PolicyView,
    ReleaseService,
    ReleaseStateView,
    ServiceView,
)
from turnout.cache import CLUSTER_TYPE
from turnout.testing import eventually, make_snapshot

from ._served import Served

Kind = pb.StatusEvent.Kind


class Events:
    """The events of one WatchStatus call, read in the background."""

    def __init__(self, call: Any) -> None:
        self.call = call
        self.queue: asyncio.Queue[pb.StatusEvent] = asyncio.Queue()
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for event in self.call:
            self.queue.put_nowait(event)

    async def next(self, timeout: float = 3.0) -> pb.StatusEvent:  # noqa: ASYNC109
        return await asyncio.wait_for(self.queue.get(), timeout)

    async def until(self, kind: int, timeout: float = 3.0, **proxy: str) -> pb.StatusEvent:  # noqa: ASYNC109
        """The next event of ``kind`` (about the proxy with these fields), skipping others."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            event = await self.next(max(0.01, deadline - loop.time()))
            if event.kind == kind and all(getattr(event.proxy, k) == v for k, v in proxy.items()):
                return event


@pytest.fixture
async def watch(stub: release_pb2_grpc.ReleaseServiceStub) -> AsyncIterator[Events]:
    """A WatchStatus stream, cancelled after the test."""
    events = Events(stub.WatchStatus(pb.WatchStatusRequest()))
    yield events
    events.call.cancel()
    events.task.cancel()
    await asyncio.gather(events.task, return_exceptions=True)


async def test_the_first_event_is_the_full_status(served: Served, watch: Events) -> None:
    """A new watcher first gets SNAPSHOT with the whole status, numbered 1."""
    first = await watch.next()
    assert first.kind == Kind.SNAPSHOT
    assert first.sequence == 1
    assert first.HasField("status")
    assert first.status.served_version == ""


async def test_connect_ack_sync_nack_disconnect_each_give_an_event(
    served: Served, watch: Events
) -> None:
    """A proxy connecting, ACKing, syncing, NACKing and leaving each produce an event
    carrying that proxy's state after the change, in order, with rising sequences."""
    snapshot = make_snapshot({"c_v1": 100})
    served.publish(snapshot)
    await watch.next()  # SNAPSHOT
    proxy = await served.proxy("edge-1")
    await proxy.bootstrap()
    connected = await watch.until(Kind.PROXY_CONNECTED, node_id="edge-1")
    assert connected.proxy.node_cluster == "edge"
    assert connected.served_version == snapshot.group_version
    acked = await watch.until(Kind.PROXY_ACKED, node_id="edge-1")
    assert acked.sequence > connected.sequence
    synced = await watch.until(Kind.PROXY_SYNCED, node_id="edge-1")
    assert synced.proxy.synced_version == snapshot.group_version
    assert not synced.proxy.behind

    served.publish(make_snapshot({"c_v1": 50, "c_v2": 50}))
    cds = await proxy.recv()
    await proxy.nack(cds, "no such thing")
    nacked = await watch.until(Kind.PROXY_NACKED, node_id="edge-1")
    assert nacked.proxy.last_nack.message == "no such thing"
    assert nacked.proxy.last_nack.type_url == CLUSTER_TYPE
    assert nacked.proxy.behind

    stream_id = nacked.proxy.stream_id
    await proxy.close()
    gone = await watch.until(Kind.PROXY_DISCONNECTED, node_id="edge-1")
    assert gone.proxy.stream_id == stream_id


async def test_a_new_version_sends_the_full_status_with_proxies_behind(
    served: Served, watch: Events
) -> None:
    """Publishing a new version sends VERSION_SERVED with the full status, in which a
    proxy that has not yet ACKed it is behind; its later sync is PROXY_SYNCED."""
    served.publish(make_snapshot({"c_v1": 100}))
    await watch.next()
    proxy = await served.proxy("edge-1")
    await proxy.bootstrap()
    await watch.until(Kind.PROXY_SYNCED)
    second = make_snapshot({"c_v1": 90, "c_v2": 10})
    served.publish(second)
    event = await watch.until(Kind.VERSION_SERVED)
    assert event.status.served_version == second.group_version == event.served_version
    [entry] = event.status.proxies
    assert entry.behind
    assert entry.synced_version != second.group_version
    with contextlib.suppress(TimeoutError):
        while True:  # CDS, EDS and RDS changed, each after the previous is ACKed
            await proxy.ack(await proxy.recv(0.5))
    synced = await watch.until(Kind.PROXY_SYNCED)
    assert synced.proxy.synced_version == second.group_version
    assert not synced.proxy.behind


async def test_a_rejected_reload_and_a_release_state_change_are_events(
    served: Served, watch: Events
) -> None:
    """A rejected reload gives POLICY_REJECTED with the errors; a changed incremental
    state gives RELEASE_CHANGED with that service's new state."""
    service = ServiceView(
        "checkout",
        "v1",
        ("v1", "v2"),
        (),
        IncrementalView("v2", ("1", "5"), 60.0, "rollback", ReleaseStateView("running", 0)),
    )
    served.publish(make_snapshot({"c_v1": 100}), PolicyView(None, services=(service,)))
    await watch.next()
    served.reject("x.yaml:1: kind: unknown")
    rejected = await watch.until(Kind.POLICY_REJECTED)
    assert list(rejected.status.rejected.errors) == ["x.yaml:1: kind: unknown"]

    assert service.incremental is not None
    paused = replace(
        service, incremental=replace(service.incremental, state=ReleaseStateView("paused", 0))
    )
    served.publish(make_snapshot({"c_v1": 99, "c_v2": 1}), replace(served.view, services=(paused,)))
    await watch.until(Kind.VERSION_SERVED)
    changed = await watch.until(Kind.RELEASE_CHANGED)
    assert changed.service.name == "checkout"
    assert changed.service.incremental.state.phase == "paused"


async def test_a_watcher_that_falls_behind_gets_a_fresh_snapshot() -> None:
    """When a watcher's queue overflows, what it missed is replaced by one SNAPSHOT."""
    view = PolicyView(policy_version="v")
    service = ReleaseService(lambda: view, list, max_queue=2)
    context: Any = None
    stream = service._watch_status(pb.WatchStatusRequest(), context)
    first = await anext(stream)
    assert first.kind == Kind.SNAPSHOT
    for _ in range(5):
        service._fan_out(pb.StatusEvent(kind=Kind.PROXY_ACKED))
    second = await anext(stream)
    assert second.kind == Kind.SNAPSHOT
    assert second.sequence == 2
    await stream.aclose()
    await service.close()
    assert service.watcher_count == 0


async def test_close_ends_every_watch_stream(served: Served, watch: Events) -> None:
    """Closing the service ends open WatchStatus streams, so a graceful stop is not held."""
    await watch.next()
    assert served.service.watcher_count == 1
    await served.service.close()
    await asyncio.wait_for(watch.task, 3)
    await eventually(lambda: served.service.watcher_count == 0)


async def test_watch_after_close_is_unavailable(
    served: Served, stub: release_pb2_grpc.ReleaseServiceStub
) -> None:
    """A WatchStatus call on a closed service fails with UNAVAILABLE."""
    await served.service.close()
    with pytest.raises(grpc.aio.AioRpcError) as info:
        async for _ in stub.WatchStatus(pb.WatchStatusRequest(), timeout=3):
            pass
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_healthy_endpoints_moving_is_an_endpoints_changed_event(
    served: Served, watch: Events
) -> None:
    """The same set with a version's healthy count moved (Envoy's gauges, which the
    view's equality leaves out) gives ENDPOINTS_CHANGED with that service's endpoints;
    a look at an unchanged view gives nothing."""
    unknown = ServiceView("web", "v1", ("v1",), (), endpoints=(EndpointsView("v1", 2),))
    served.publish(make_snapshot({"c_v1": 100}), PolicyView("p1", services=(unknown,)))
    await watch.next()
    served.view = replace(served.view, services=(unknown,))
    served.service.policy_changed()
    healthy = replace(unknown, endpoints=(EndpointsView("v1", 2, 1),))
    served.view = replace(served.view, services=(healthy,))
    served.service.policy_changed()
    changed = await watch.until(Kind.ENDPOINTS_CHANGED)
    assert changed.service.name == "web"
    assert [(e.version, e.total, e.healthy) for e in changed.service.endpoints] == [("v1", 2, 1)]
