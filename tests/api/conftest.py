"""Fixtures: an XdsServer serving the ReleaseService beside xDS on 127.0.0.1:0, a
settable policy view, and a ReleaseService client over a real channel."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import grpc.aio
import pytest

from turnout._proto.v1 import release_pb2_grpc
from turnout.api import ReleaseService
from turnout.cache import SnapshotCache
from turnout.xds import XdsServer

from ._served import Served


@pytest.fixture
async def served() -> AsyncIterator[Served]:
    """A running server with the ReleaseService; everything is stopped after the test."""
    cache = SnapshotCache()
    holder: list[Served] = []
    service = ReleaseService(lambda: holder[0].view, lambda: holder[0].server.proxies())
    server = XdsServer(cache, service.callbacks, handlers=[service.handler()])
    port = await server.start("127.0.0.1:0")
    holder.append(Served(server=server, cache=cache, service=service, port=port))
    try:
        yield holder[0]
    finally:
        for client in holder[0].clients:
            with contextlib.suppress(Exception):
                await client.close()
        await service.close()
        await server.stop(0)


@pytest.fixture
async def stub(served: Served) -> AsyncIterator[release_pb2_grpc.ReleaseServiceStub]:
    """A ReleaseService client on its own channel."""
    async with grpc.aio.insecure_channel(served.target) as channel:
        yield release_pb2_grpc.ReleaseServiceStub(channel)
