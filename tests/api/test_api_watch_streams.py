"""A round of proxy events copies only the streams it is about (XdsServer.proxy), not the
whole fleet; a new served version still carries every proxy."""

from __future__ import annotations

import asyncio
import contextlib

import grpc.aio

from turnout._proto.v1 import release_pb2 as pb
from turnout._proto.v1 import release_pb2_grpc
from turnout.api import PolicyView, ReleaseService
from turnout.cache import SnapshotCache
from turnout.testing import AdsClient, eventually, make_snapshot
from turnout.xds import ProxyStatus, XdsServer

Kind = pb.StatusEvent.Kind


async def test_proxy_events_copy_only_their_streams() -> None:
    """While proxies ACK, the hub asks for each pending stream by id; only a policy change
    (a full status) copies every stream."""
    cache = SnapshotCache()
    view = [PolicyView(policy_version=None)]
    whole: list[int] = []
    server: list[XdsServer] = []

    def proxies() -> list[ProxyStatus]:
        whole.append(1)
        return server[0].proxies()

    service = ReleaseService(lambda: view[0], proxies, proxy=lambda sid: server[0].proxy(sid))
    server.append(XdsServer(cache, service.callbacks, handlers=[service.handler()]))
    port = await server[0].start("127.0.0.1:0")
    clients: list[AdsClient] = []
    events: list[pb.StatusEvent] = []
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            call = release_pb2_grpc.ReleaseServiceStub(channel).WatchStatus(pb.WatchStatusRequest())

            async def read() -> None:
                async for event in call:
                    events.append(event)

            reader = asyncio.create_task(read())
            await eventually(lambda: bool(events))  # the SNAPSHOT: the watch is on
            snapshot = make_snapshot({"c_v1": 100})
            cache.publish(snapshot.group_version, lambda _group: snapshot)
            view[0] = PolicyView(policy_version=snapshot.group_version)
            service.policy_changed()
            await eventually(lambda: any(e.kind == Kind.VERSION_SERVED for e in events))
            before = len(whole)
            for node in ("edge-1", "edge-2"):
                client = await AdsClient.connect(f"127.0.0.1:{port}", node_id=node)
                clients.append(client)
                await client.bootstrap()

            def synced() -> set[str] | None:
                nodes = {e.proxy.node_id for e in events if e.kind == Kind.PROXY_SYNCED}
                return nodes if {"edge-1", "edge-2"} <= nodes else None

            await eventually(synced)
            assert len(whole) == before  # every proxy round asked stream by stream
            acked = [e for e in events if e.kind == Kind.PROXY_ACKED]
            assert {e.proxy.node_id for e in acked} == {"edge-1", "edge-2"}
            call.cancel()
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)
    finally:
        for client in clients:
            with contextlib.suppress(Exception):
                await client.close()
        await service.close()
        await server[0].stop(0)
