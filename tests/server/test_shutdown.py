"""Graceful shutdown of `turnout serve`: refuse new streams at once, end open ones as
soon as they are in step (so their Envoys reconnect to another replica), and never
take longer than the grace period."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import grpc

from turnout.cache import CLUSTER_TYPE
from turnout.server import App
from turnout.testing import AdsClient, eventually
from turnout.testing.net import port_open

GATEWAY = "kind: Gateway\nname: public\nport: 10000\n"
SERVICE = (
    "kind: Service\nname: web\nversions:\n  v1: {endpoints: ['127.0.0.1:9101']}\n"
    "  v2: {endpoints: ['127.0.0.1:9201']}\nstable: v1\ntraffic: {v1: 90, v2: 10}\n"
)


@contextlib.asynccontextmanager
async def running_app(
    tmp_path: Path, grace: float
) -> AsyncIterator[tuple[App, asyncio.Task[None]]]:
    """`turnout serve` in this process on free ports; stopped (and awaited) on exit."""
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "gw.yaml").write_text(GATEWAY)
    (policies / "web.yaml").write_text(SERVICE)
    app = App(policies, "127.0.0.1:0", "127.0.0.1:0", grace_seconds=grace)
    run = asyncio.create_task(app.run())
    try:
        await eventually(lambda: app.admin_port != 0 or run.done(), timeout=10)
        assert not run.done(), run
        yield app, run
    finally:
        app.stop()
        await asyncio.wait_for(run, grace + 5)


async def _stream_ended(client: AdsClient) -> bool:
    """Whether the client's stream has ended (read past any responses already queued)."""
    while True:
        try:
            await client.recv(timeout=3.0)
        except TimeoutError:
            return False
        except (grpc.aio.AioRpcError, EOFError):
            return True


async def _refused(client: AdsClient) -> bool:
    """Whether a new stream fails (on its first write or read) instead of being served."""
    try:
        await client.request(CLUSTER_TYPE)
        await client.recv(timeout=3.0)
    except grpc.aio.AioRpcError:
        return True
    return False


async def test_streams_in_step_are_ended_at_once(tmp_path: Path) -> None:
    """With every open stream in step, stopping ends them at once, not after the grace."""
    async with running_app(tmp_path, grace=10.0) as (app, run):
        client = await AdsClient.connect(f"127.0.0.1:{app.xds_port}", node_id="edge-1")
        try:
            await client.bootstrap()
            await eventually(
                lambda: [p.synced_version for p in app.xds.proxies()] == [app.cache.policy_version]
            )
            loop = asyncio.get_running_loop()
            started = loop.time()
            app.stop()
            await asyncio.wait_for(asyncio.shield(run), 5)
            elapsed = loop.time() - started
            assert elapsed < 2.0, f"shutdown took {elapsed:.2f}s with every stream in step"
            assert await _stream_ended(client)
        finally:
            await client.close()


async def test_a_stream_behind_holds_the_shutdown_for_the_grace_at_most(tmp_path: Path) -> None:
    """A stream that never ACKs keeps the drain going until the grace runs out, and no
    longer; meanwhile a new stream is refused."""
    grace = 1.5
    async with running_app(tmp_path, grace=grace) as (app, run):
        laggard = await AdsClient.connect(f"127.0.0.1:{app.xds_port}", node_id="laggard")
        try:
            await laggard.request(CLUSTER_TYPE)
            await laggard.recv()  # never ACKed
            loop = asyncio.get_running_loop()
            started = loop.time()
            app.stop()
            await eventually(lambda: not port_open(app.xds_port), what="the xDS listener closed")
            assert not run.done(), "the drain did not wait for the stream that is behind"
            newcomer = await AdsClient.connect(f"127.0.0.1:{app.xds_port}", node_id="late")
            try:
                assert await _refused(newcomer), "a new stream was served during the drain"
            finally:
                await newcomer.close()
            await asyncio.wait_for(asyncio.shield(run), grace + 3)
            elapsed = loop.time() - started
            assert grace - 0.2 <= elapsed < grace + 1.0, f"shutdown took {elapsed:.2f}s"
            assert await _stream_ended(laggard)
        finally:
            await laggard.close()
