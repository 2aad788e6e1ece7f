"""Limits on what one peer may ask: request size, malformed bytes, streams per peer
and per node, request rate. Each ends (or slows) one stream, never the server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
import pytest

from turnout._protowire import varint
from turnout.cache import CLUSTER_TYPE, ENDPOINT_TYPE, SnapshotCache
from turnout.testing import AdsClient, RunningXds, eventually, make_snapshot, resource_names
from turnout.xds import DELTA_SERVICES, SERVICES, Limits, StreamGuard, XdsServer

from .conftest import refused

ADS = "/{}/{}".format(*SERVICES["ads"][:2])
DELTA_ADS = "/{}/{}".format(*DELTA_SERVICES["delta-ads"][:2])


@pytest.fixture
async def limited(request: pytest.FixtureRequest) -> AsyncIterator[RunningXds]:
    """A plaintext XdsServer with the Limits the test passes (indirect parametrization)."""
    limits: Limits = getattr(request, "param", Limits())
    cache = SnapshotCache()
    cache.publish("v1", lambda _group: make_snapshot({"a": 100}))
    server = XdsServer(cache, guard=StreamGuard(limits=limits))
    port = await server.start("127.0.0.1:0")
    running = RunningXds(server=server, cache=cache, port=port)
    try:
        yield running
    finally:
        for client in running._clients:
            await client.close()
        await server.stop(0)


async def raw_stream(target: str, method: str, payloads: list[bytes]) -> grpc.aio.AioRpcError:
    """Write ``payloads`` as they are on a new stream and return the error ending it."""
    channel = grpc.aio.insecure_channel(target)
    try:
        call = channel.stream_stream(method)()
        for payload in payloads:
            await call.write(payload)
        with pytest.raises(grpc.aio.AioRpcError) as failure:
            await call.read()
        return failure.value
    finally:
        await channel.close()


async def served(xds: RunningXds, node_id: str) -> None:
    """A new proxy is served its config (the server is alive and well)."""
    client = await xds.client(node_id=node_id)
    assert "a" in resource_names((await client.bootstrap())[CLUSTER_TYPE])


@pytest.mark.parametrize("limited", [Limits(max_request_bytes=2048)], indirect=True)
async def test_oversized_requests_are_refused_with_resource_exhausted(
    limited: RunningXds,
) -> None:
    """A 5,000-byte DiscoveryRequest on a server limited to 2,048 bytes ends that stream
    with RESOURCE_EXHAUSTED naming both sizes; other streams and the server go on."""
    bystander = await limited.client(node_id="bystander")
    await bystander.bootstrap()
    big = await limited.client(node_id="big")
    await big.request(CLUSTER_TYPE)
    await big.recv()
    await big.request(ENDPOINT_TYPE, ["x" * 5000])
    with pytest.raises(grpc.aio.AioRpcError) as failure:
        await big.recv(timeout=5)
    assert failure.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "exceeds the limit of 2048 bytes" in (failure.value.details() or "")
    limited.publish(make_snapshot({"a": 50, "b": 50}), "v2")
    assert resource_names(await bystander.recv(timeout=5)) == ["a", "b"]
    await served(limited, "after")


async def test_garbage_bytes_end_the_stream_with_invalid_argument(limited: RunningXds) -> None:
    """Bytes that are not a DiscoveryRequest (or DeltaDiscoveryRequest) end their stream
    with INVALID_ARGUMENT, not a crash and not a silent OK; the server keeps serving."""
    for method in (ADS, DELTA_ADS):
        for garbage in (b"\xff\xff\xff\xff", b"\x0a\xff\xff\xff\xff\x0f", b"\x12" * 64):
            failure = await raw_stream(limited.target, method, [garbage])
            assert failure.code() == grpc.StatusCode.INVALID_ARGUMENT, (method, garbage)
            assert "malformed" in (failure.details() or "")
    await served(limited, "after-garbage")
    assert limited.server.stream_count == 1


async def test_a_deeply_nested_request_is_refused_cleanly(limited: RunningXds) -> None:
    """A request nesting node metadata deeper than protobuf's recursion limit is
    INVALID_ARGUMENT (a parser that recursed without limit would crash the process)."""
    # Struct -> Value -> ListValue -> Value ... as raw wire bytes, 400 levels deep
    value = b""
    for _ in range(400):
        list_value = b"\x0a" + varint(len(value)) + value  # ListValue.values = 1
        value = b"\x32" + varint(len(list_value)) + list_value  # Value.list_value = 6
    struct_entry = b"\x0a\x01k" + b"\x12" + varint(len(value)) + value  # key, value
    struct = b"\x0a" + varint(len(struct_entry)) + struct_entry  # Struct.fields
    node = b"\x0a\x01n" + b"\x1a" + varint(len(struct)) + struct  # Node.id, Node.metadata
    request = b"\x1a" + varint(len(node)) + node  # DiscoveryRequest.node = 3
    failure = await raw_stream(limited.target, ADS, [request])
    assert failure.code() == grpc.StatusCode.INVALID_ARGUMENT
    await served(limited, "after-nesting")


@pytest.mark.parametrize("limited", [Limits(max_streams_per_peer=2)], indirect=True)
async def test_streams_per_peer_are_capped(limited: RunningXds) -> None:
    """A third stream from the same address is refused with RESOURCE_EXHAUSTED before it
    is served; once one of the two closes, a new one is accepted."""
    first = await limited.client(node_id="p-1")
    await first.bootstrap()
    second = await limited.client(node_id="p-2")
    await second.bootstrap()
    third = await limited.client(node_id="p-3")
    failure = await refused(third)
    assert failure.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "127.0.0.1 already has 2 xDS streams" in (failure.details() or "")
    await first.close()
    await eventually(lambda: limited.server.stream_count == 1)
    await served(limited, "p-4")


@pytest.mark.parametrize("limited", [Limits(max_streams_per_node=1)], indirect=True)
async def test_streams_per_node_id_are_capped(limited: RunningXds) -> None:
    """A second stream claiming an open stream's node.id is refused with
    RESOURCE_EXHAUSTED and sent nothing; other node ids are served, and the id is free
    again once its stream closes."""
    first = await limited.client(node_id="same")
    await first.bootstrap()
    twin = await limited.client(node_id="same")
    failure = await refused(twin)
    assert failure.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "node.id 'same' already has 1 xDS streams" in (failure.details() or "")
    await served(limited, "other")
    await first.close()
    await eventually(lambda: all(p.node_id != "same" for p in limited.server.proxies()))
    await served(limited, "same")


async def _burst_then_marker(client: AdsClient, noops: int) -> float:
    """Bootstrap CDS, send ``noops`` repeated ACKs (no response due), then a first EDS
    request (always answered); return the seconds until that answer."""
    await client.request(CLUSTER_TYPE)
    cds = await client.recv()
    await client.ack(cds)
    loop = asyncio.get_running_loop()
    started = loop.time()
    for _ in range(noops):
        await client.request(CLUSTER_TYPE, version=cds.version_info, nonce=cds.nonce)
    await client.request(ENDPOINT_TYPE, ["a"])
    response = await client.recv(timeout=10)
    assert response.type_url == ENDPOINT_TYPE
    return loop.time() - started


@pytest.mark.parametrize("limited", [Limits(max_requests_per_second=20)], indirect=True)
async def test_requests_past_the_burst_are_read_at_the_rate_limit(limited: RunningXds) -> None:
    """At 20 requests/s (a burst of 20), 43 requests take over a second to be read,
    while another stream on the same server is served at once meanwhile."""
    slow = await limited.client(node_id="chatty")
    timing = asyncio.create_task(_burst_then_marker(slow, 40))
    await eventually(  # the burst is being read (and soon throttled)
        lambda: any(p.node_id == "chatty" for p in limited.server.proxies()),
        what="the chatty stream to be read",
    )
    loop = asyncio.get_running_loop()
    started = loop.time()
    await served(limited, "quiet")
    assert loop.time() - started < 0.8  # not held behind the chatty stream
    assert await timing >= 0.9  # (43 - 20) / 20 = 1.15 s


async def test_without_a_rate_limit_the_same_burst_is_read_at_once(limited: RunningXds) -> None:
    """The same 43 requests are all read well within the throttled time when no rate
    limit is set (what makes the throttling test meaningful)."""
    client = await limited.client(node_id="chatty")
    assert await _burst_then_marker(client, 40) < 0.6
