"""The xDS server serves any SnapshotSource, not only turnout's SnapshotCache."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from turnout.cache import CLUSTER_TYPE, Snapshot
from turnout.testing import AdsClient, eventually, make_snapshot, resource_names
from turnout.xds import SnapshotSource, XdsServer

pytestmark = pytest.mark.timeout(20)


class _Handle:
    def __init__(self, wakes: list[Callable[[], None]], wake: Callable[[], None]) -> None:
        self._wakes, self._wake = wakes, wake

    def cancel(self) -> None:
        if self._wake in self._wakes:
            self._wakes.remove(self._wake)


class FixedSource:
    """One snapshot per proxy group, set by hand: the smallest SnapshotSource."""

    def __init__(self) -> None:
        self.policy_version: str | None = None
        self.groups: dict[str, Snapshot] = {}
        self.wakes: list[Callable[[], None]] = []

    def set(self, version: str, groups: dict[str, Snapshot]) -> None:
        self.policy_version, self.groups = version, groups
        for wake in list(self.wakes):
            wake()

    def policy_version_for(self, node_cluster: str, node_id: str) -> str | None:
        return self.policy_version

    def snapshot_for(self, node_cluster: str, node_id: str) -> Snapshot | None:
        return self.groups.get(node_cluster)

    def watch(self, wake: Callable[[], None]) -> _Handle:
        self.wakes.append(wake)
        return _Handle(self.wakes, wake)


async def test_server_streams_from_a_source_that_is_not_the_cache() -> None:
    """A stream reads only the SnapshotSource members: a hand-rolled source is served
    per proxy group, a change it announces reaches the proxy, and a closed stream
    cancels its watch."""
    source = FixedSource()
    typed: SnapshotSource = source  # mypy: the protocol is all the server asks for
    server = XdsServer(typed)
    port = await server.start("127.0.0.1:0")
    try:
        source.set("v1", {"edge": make_snapshot({"a": 100})})
        client = await AdsClient.connect(f"127.0.0.1:{port}", node_cluster="edge")
        try:
            await client.request(CLUSTER_TYPE)
            first = await client.recv()
            assert resource_names(first) == ["a"]
            await client.ack(first)
            source.set("v2", {"edge": make_snapshot({"a": 50, "b": 50})})
            second = await client.recv()
            assert resource_names(second) == ["a", "b"]
            assert len(source.wakes) == 1
        finally:
            await client.close()
    finally:
        await server.stop(0)
    # the handler's cleanup runs as the cancelled stream unwinds, not before stop returns
    await eventually(lambda: not source.wakes, what="the closed stream's watch cancelled")
