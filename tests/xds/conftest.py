"""Fixtures for the xDS server tests: a real grpc.aio server on 127.0.0.1:0."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from turnout.testing import RunningXds, running_xds
from turnout.xds import StreamInfo, XdsCallbacks


class RecordingCallbacks(XdsCallbacks):
    """Keeps every callback invocation, in order."""

    def __init__(self) -> None:
        self.events: list[tuple[object, ...]] = []

    def on_stream_open(self, stream: StreamInfo) -> None:
        self.events.append(("open", stream.node_id))

    def on_stream_close(self, stream: StreamInfo) -> None:
        self.events.append(("close", stream.node_id))

    def on_response(
        self, stream: StreamInfo, type_url: str, version: str, resource_count: int
    ) -> None:
        self.events.append(("response", type_url, version, resource_count))

    def on_ack(self, stream: StreamInfo, type_url: str, version: str) -> None:
        self.events.append(("ack", type_url, version))

    def on_nack(self, stream: StreamInfo, type_url: str, version: str, message: str) -> None:
        self.events.append(("nack", type_url, version, message))


@pytest.fixture
def callbacks() -> RecordingCallbacks:
    """Callbacks that record what the server reported."""
    return RecordingCallbacks()


@pytest.fixture
async def xds(callbacks: RecordingCallbacks) -> AsyncIterator[RunningXds]:
    """A running XdsServer with an empty cache; clients are closed and the server stopped after."""
    async with running_xds(callbacks) as running:
        yield running
