"""Each release decision is one WatchStatus event over a real channel, and with
--commit-releases one git commit of the step."""

from __future__ import annotations

import asyncio
import subprocess
from dataclasses import replace
from pathlib import Path

import grpc.aio

from turnout._proto.v1 import release_pb2 as pb
from turnout._proto.v1 import release_pb2_grpc
from turnout.api import PolicyView, ReleaseService
from turnout.policy import load_policies
from turnout.release import Driver
from turnout.server import analysis_view, service_view

from ._fakes import Clock, FakeSource, write_policies

Kind = pb.StatusEvent.Kind


async def test_each_decision_is_one_watch_event(tmp_path: Path) -> None:
    """The driver's decisions reach WatchStatus as RELEASE_DECISION events, one each,
    carrying the release's analysis with the figures."""
    directory = write_policies(tmp_path / "p")
    clock, source = Clock(), FakeSource()
    service: ReleaseService | None = None

    def policy() -> PolicyView:
        view = service_view(load_policies(directory).service("checkout"))
        report = driver.reports().get("checkout")
        if report is not None and view.incremental is not None:
            analysis = analysis_view(report)
            view = replace(view, incremental=replace(view.incremental, analysis=analysis))
        return PolicyView(policy_version="v", services=(view,), release_driver="driving")

    def decided(name: str) -> None:
        assert service is not None
        service.release_decided(name)

    driver = Driver(
        directory,
        lambda: load_policies(directory),
        source,
        clock=clock,
        on_decision=decided,
    )
    service = ReleaseService(policy, list)
    server = grpc.aio.server()
    server.add_generic_rpc_handlers([service.handler()])
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            call = release_pb2_grpc.ReleaseServiceStub(channel).WatchStatus(pb.WatchStatusRequest())
            queue: asyncio.Queue[pb.StatusEvent] = asyncio.Queue()

            async def read() -> None:
                async for event in call:
                    queue.put_nowait(event)

            reader = asyncio.create_task(read())
            snapshot = await asyncio.wait_for(queue.get(), 3)
            assert snapshot.kind == Kind.SNAPSHOT
            assert snapshot.status.release_driver == "driving"

            async def decisions() -> list[pb.StatusEvent]:
                """The RELEASE_DECISION events that arrive within a second."""
                found = []
                try:
                    while True:
                        event = await asyncio.wait_for(queue.get(), 1.0)
                        if event.kind == Kind.RELEASE_DECISION:
                            found.append(event)
                except TimeoutError:
                    return found

            await driver.tick()  # start
            received = await decisions()
            for _ in range(4):  # 20% errors: rolled back once there are 100 requests
                source.add("v1", clock.now, 90)
                source.add("v2", clock.now, 30, errors=6)
                clock.advance(1)
                await driver.tick()
            received += await decisions()
            actions = [e.service.incremental.analysis.action for e in received]
            assert actions == ["start", "rollback"]
            last = received[-1].service.incremental.analysis
            assert (last.outcome, last.kind) == ("fail", "canary")
            assert (last.canary.requests, last.canary.errors) == (120, 24)
            assert last.baseline.requests == 360
            assert "maxErrorRate" in last.reason
            call.cancel()
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)
    finally:
        await service.close()
        await server.stop(0)


async def test_commit_releases_commits_each_step(tmp_path: Path) -> None:
    """With commit, each step the driver writes is one git commit of that file."""
    directory = write_policies(tmp_path / "repo" / "policies")
    root = tmp_path / "repo"

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=root, check=True, capture_output=True, text=True
        ).stdout

    git("init", "--quiet")
    git("config", "user.email", "driver@example.com")
    git("config", "user.name", "driver")
    git("add", ".")
    git("commit", "--quiet", "-m", "policies")
    clock, source = Clock(), FakeSource()
    driver = Driver(directory, lambda: load_policies(directory), source, clock=clock, commit=True)
    await driver.tick()
    for _ in range(10):
        source.add("v1", clock.now, 90)
        source.add("v2", clock.now, 20)
        clock.advance(1)
        await driver.tick()
    subjects = git("log", "--format=%s").splitlines()
    assert len(subjects) == 3
    assert subjects[1].startswith("turnout: release checkout: start: step 1/3 (10%)")
    assert subjects[0].startswith("turnout: release checkout: advance: step 2/3 (50%)")
    assert git("status", "--porcelain") == ""
    assert git("show", "--stat", "--format=", "HEAD").split()[0] == "policies/checkout.yaml"
