"""XdsServer.drain: at shutdown the open streams end one by one, spread over a window
with jitter, so a replica's Envoys do not all reconnect to the other replica at once."""

from __future__ import annotations

import asyncio
import itertools
import random

import grpc
import grpc.aio
import pytest

from turnout.cache import CLUSTER_TYPE
from turnout.testing import AdsClient, RunningXds, eventually, make_snapshot

pytestmark = pytest.mark.timeout(30)


async def _ended_at(client: AdsClient) -> tuple[float, str]:
    """When the client's stream ended (loop time) and how (its status or EOF)."""
    while True:
        try:
            await client.recv(timeout=10.0)
        except grpc.aio.AioRpcError as exc:
            return asyncio.get_running_loop().time(), exc.code().name
        except EOFError:
            return asyncio.get_running_loop().time(), "EOF"


async def _connected(xds: RunningXds, count: int) -> list[AdsClient]:
    xds.publish(make_snapshot({"web": 100}))
    clients = [await xds.client(f"edge-{i}", "edge") for i in range(count)]
    for client in clients:
        await client.request(CLUSTER_TYPE)
        await client.recv()
    await eventually(lambda: xds.server.stream_count == count)
    return clients


async def test_stream_ends_are_spread_over_the_window(xds: RunningXds) -> None:
    """20 streams drained over 2 s end across the window, one at a time (never more than
    a few within 50 ms), and each proxy sees its stream end cleanly."""
    clients = await _connected(xds, 20)
    loop = asyncio.get_running_loop()
    watchers = [asyncio.create_task(_ended_at(c)) for c in clients]
    started = loop.time()
    ended = await xds.server.drain(2.0, rng=random.Random(7).random)
    took = loop.time() - started
    results = await asyncio.wait_for(asyncio.gather(*watchers), 5)
    assert ended == 20
    assert xds.server.stream_count == 0
    assert 1.6 <= took <= 3.0, took
    times = sorted(at - started for at, _how in results)
    assert times[0] < 0.4, times  # the first slice is the first 0.1 s
    assert times[-1] > 1.6, times  # the last slice is the last 0.1 s
    gaps = [b - a for a, b in itertools.pairwise(times)]
    bursts = max(sum(1 for t in times if s <= t < s + 0.05) for s in times)
    assert bursts <= 3, (bursts, times)
    assert sum(gaps) / len(gaps) > 0.05, gaps  # about 2 s / 20 apart on average
    assert {how for _at, how in results} <= {"OK", "EOF"}, results


async def test_jitter_changes_the_order_and_the_moments(xds: RunningXds) -> None:
    """Two drains with different random sources end the streams in a different order at
    different moments: no fixed schedule that every replica would share."""
    orders = []
    for seed in (1, 2):
        clients = await _connected(xds, 6)
        ids = {c.node.id: i for i, c in enumerate(clients)}
        watchers = {c.node.id: asyncio.create_task(_ended_at(c)) for c in clients}
        await xds.server.drain(0.6, rng=random.Random(seed).random)
        ends = {node: (await task)[0] for node, task in watchers.items()}
        orders.append([ids[n] for n in sorted(ends, key=ends.__getitem__)])
    assert orders[0] != orders[1]
    assert sorted(orders[0]) == sorted(orders[1]) == list(range(6))


async def test_drain_without_streams_returns_at_once(xds: RunningXds) -> None:
    """Nothing open: drain returns 0 without waiting for the window."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert await xds.server.drain(5.0) == 0
    assert loop.time() - started < 0.5
