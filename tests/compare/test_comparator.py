"""The comparator process's own behaviour, against real backends over real HTTP (its
targets given directly, as turnout would send them)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest

from turnout._proto.v1 import release_pb2 as pb
from turnout.compare import COMPARE_HEADER, Comparator, ComparatorOptions
from turnout.testing import eventually
from turnout.testing.backend import Backend


@pytest.fixture
async def comparator() -> AsyncIterator[tuple[Comparator, list[Backend]]]:
    backends = [
        Backend("v1", instance="a", catalog=True).start(),
        Backend("v1", instance="b", catalog=True).start(),
        Backend("v3", instance="dark", catalog=True, latency=0.5).start(),
    ]
    found = Comparator(
        ComparatorOptions(xds_address="127.0.0.1:1", listen="127.0.0.1:0", max_body=1000)
    )
    await found.start()
    found.set_targets(  # what turnout sends over CompareService
        pb.CompareTargets(
            version="v",
            targets=[
                pb.CompareTarget(
                    route="shop/default",
                    service="shop",
                    to="v3",
                    light="v1",
                    light_endpoints=[backends[0].address, backends[1].address],
                    dark_endpoints=[backends[2].address],
                    methods=["GET"],
                    headers=["content-type"],
                )
            ],
        )
    )
    try:
        yield found, backends
    finally:
        await found.close()
        for backend in backends:
            backend.stop()


async def test_copies_are_answered_at_once_and_compared_after(
    comparator: tuple[Comparator, list[Backend]],
) -> None:
    """Envoy's copy is answered 202 before the (500 ms slow) dark version answers; the
    comparison lands in the tally afterwards, with both light instances called."""
    found, backends = comparator
    url = f"http://127.0.0.1:{found.port}/items/a?page=2"
    headers = {COMPARE_HEADER: "shop/default", "Host": "shop.example.com-shadow"}
    async with aiohttp.ClientSession() as session:
        began = time.perf_counter()
        async with session.get(url, headers=headers) as response:
            assert response.status == 202
        assert time.perf_counter() - began < 0.4
    key = ("shop", "v3", "v1")

    def compared() -> int | None:
        return found.tally._targets[key].compared or None if key in found.tally._targets else None

    await eventually(compared, 5, what="the comparison")
    (figures,) = found.tally.drain()
    assert {f.field for f in figures.fields} == {"body:$.meta.generatedAt", "body:$.meta.requestId"}
    assert figures.dark_calls.requests == 1
    assert [b.counts().by_host for b in backends] == [{"shop.example.com": 1}] * 3


async def test_unlisted_methods_big_bodies_and_unknown_routes_are_not_replayed(
    comparator: tuple[Comparator, list[Backend]],
) -> None:
    """A POST (not listed), a body over max_body, and a route turnout did not send are
    answered 202 and never reach a backend; the first two are counted as skipped."""
    found, backends = comparator
    url = f"http://127.0.0.1:{found.port}/orders"
    async with aiohttp.ClientSession() as session:
        for method, route, body in (
            ("POST", "shop/default", b"{}"),
            ("GET", "shop/default", b"x" * 2000),
            ("GET", "other/default", b""),
        ):
            headers = {COMPARE_HEADER: route}
            async with session.request(method, url, headers=headers, data=body) as response:
                assert response.status == 202
    await asyncio.sleep(0)  # nothing was scheduled: the skips are counted at once
    (figures,) = found.tally.drain()
    assert dict(figures.skipped) == {
        "method POST not listed": 1,
        "request body over 1000 bytes": 1,
    }
    assert [b.counts().requests for b in backends] == [0, 0, 0]


async def test_own_endpoints(comparator: tuple[Comparator, list[Backend]]) -> None:
    """Without the mark it serves its own /healthz, and /readyz says it is not connected
    to turnout (no real turnout here)."""
    found, _backends = comparator
    async with aiohttp.ClientSession() as session:
        async with session.get(f"http://127.0.0.1:{found.port}/healthz") as response:
            assert response.status == 200
        async with session.get(f"http://127.0.0.1:{found.port}/readyz") as response:
            assert response.status == 503
        async with session.get(f"http://127.0.0.1:{found.port}/items") as response:
            assert response.status == 404
