"""The continuous dark judgement: every mirror target judged against the versions that
answer the mirrored segments' originals, over the last N seconds, on fake figures;
then through `turnout serve`'s pieces: GetStatus, `turnout status` and WatchStatus."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import grpc.aio
import pytest

from turnout._proto.v1 import release_pb2 as pb
from turnout._proto.v1 import release_pb2_grpc
from turnout.api import to_json
from turnout.cli._status_cmd import render_status
from turnout.policy import Service, parse_policies
from turnout.release import DarkWatch, dark_targets
from turnout.server import App
from turnout.testing import eventually

from ._fakes import Clock, FakeSource

Kind = pb.StatusEvent.Kind

GATEWAY = "kind: Gateway\nname: public\nport: 10000\n"

SHOP = """\
kind: Service
name: shop
versions:
  v1: {{endpoints: ["127.0.0.1:9101"]}}
  v2: {{endpoints: ["127.0.0.1:9201"]}}
  v3: {{endpoints: ["127.0.0.1:9301"]}}
stable: v1
traffic: {traffic}
{mirror}rules:
  - name: beta
    match: {{headers: {{x-beta: "1"}}}}
    traffic: {{v2: 100}}
{rule_mirror}"""


def shop(
    traffic: str = "{v1: 90, v2: 10}",
    mirror: str = "mirror: {to: v3, percent: 100}\n",
    rule_mirror: str = "    mirror: {to: v3, percent: 50}\n",
) -> str:
    return SHOP.format(traffic=traffic, mirror=mirror, rule_mirror=rule_mirror)


def service(text: str) -> Service:
    return parse_policies({"p/gw.yaml": GATEWAY, "p/shop.yaml": text}).service("shop")


def test_targets_have_the_mirrored_segments_versions_as_light() -> None:
    """A target mirrored from the default route and a rule is judged against every
    version with a share in either, less itself."""
    (target,) = dark_targets(service(shop()))
    assert (target.service, target.to) == ("shop", "v3")
    assert target.light == ("v1", "v2")
    assert target.segments == ("default", "beta")
    assert target.note == ""
    assert target.thresholds.max_error_rate_increase == 0.01  # the default analysis
    assert target.thresholds.confidence == 0.999
    assert dark_targets(service(shop(mirror="", rule_mirror=""))) == []


def test_a_target_taking_live_traffic_is_noted() -> None:
    """A mirror target that also answers live requests is judged, with a note that its
    figures mix them."""
    text = shop(mirror="mirror: {to: v2, percent: 100}\n", rule_mirror="")
    (target,) = dark_targets(service(text))
    assert target.to == "v2"
    assert target.light == ("v1",)
    assert target.segments == ("default",)
    assert "v2 also answers live requests (default, beta)" in target.note


def _fail_then_heal(source: FakeSource, clock: Clock, seconds: int, v3_errors: int) -> None:
    for _ in range(seconds):
        source.add("v1", clock.now, 90, service="shop")
        source.add("v2", clock.now, 10, service="shop")
        source.add("v3", clock.now, 60, errors=v3_errors, service="shop")
        clock.advance(1)


async def test_verdict_follows_the_window_and_changes_are_announced() -> None:
    """v3 failing 30% of its copies fails against v1+v2 over the last 10 s (one change
    announced); more failing seconds change nothing; once the window holds only
    healthy seconds it passes (announced again)."""
    policies = parse_policies({"p/gw.yaml": GATEWAY, "p/shop.yaml": shop()})
    clock, source, changes = Clock(), FakeSource(), []
    watch = DarkWatch(lambda: policies, source, window=10.0, clock=clock, on_change=changes.append)
    assert await watch.tick() == ["shop"]  # appears, holding: no mirrored requests yet
    (judgement,) = watch.judgements()["shop"]
    assert judgement.outcome == "hold"
    _fail_then_heal(source, clock, 3, v3_errors=18)
    assert await watch.tick() == ["shop"]
    (judgement,) = watch.judgements()["shop"]
    assert judgement.outcome == "fail"
    verdict = judgement.verdict
    assert verdict is not None
    assert verdict.kind == "dark"
    assert (verdict.canary.requests, verdict.canary.errors) == (180, 54)
    assert verdict.baseline.version == "v1+v2"
    assert verdict.baseline.requests == 300
    assert "shop/v3 error rate 0.3" in verdict.reason
    _fail_then_heal(source, clock, 2, v3_errors=18)
    assert await watch.tick() == []  # still failing: no new event
    _fail_then_heal(source, clock, 12, v3_errors=0)
    assert await watch.tick() == ["shop"]
    (judgement,) = watch.judgements()["shop"]
    assert judgement.outcome == "pass", judgement.verdict
    assert judgement.since == pytest.approx(clock.now - 10.0)
    assert changes == ["shop", "shop", "shop"]


async def test_a_release_analysis_judges_its_dark_traffic() -> None:
    """With `incremental.analysis` (and requireDark.minRequests) the service's own
    thresholds judge the mirror, not the default."""
    text = shop().replace(
        "rules:",
        "incremental:\n  to: v3\n  steps: [10, 100]\n  interval: 1m\n"
        "  analysis: {minRequests: 20, maxErrorRate: 0.05}\n"
        "  requireDark: {for: 1m, minRequests: 40}\nrules:",
    )
    (target,) = dark_targets(service(text))
    assert target.thresholds.max_error_rate == 0.05
    assert target.thresholds.min_requests == 40


async def test_a_source_that_fails_is_an_error_not_a_crash() -> None:
    """A metrics source that cannot answer leaves the target unjudged, saying why."""
    policies = parse_policies({"p/gw.yaml": GATEWAY, "p/shop.yaml": shop()})
    source = FakeSource(fail_with=RuntimeError("prometheus is down"))
    watch = DarkWatch(lambda: policies, source, window=10.0, clock=Clock())
    await watch.tick()
    (judgement,) = watch.judgements()["shop"]
    assert judgement.outcome == ""
    assert judgement.error == "metrics source: prometheus is down"


@contextlib.asynccontextmanager
async def serving(tmp_path: Path) -> AsyncIterator[App]:
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "gw.yaml").write_text(GATEWAY)
    (policies / "shop.yaml").write_text(shop())
    app = App(policies, "127.0.0.1:0", "127.0.0.1:0", grace_seconds=1.0)
    run = asyncio.create_task(app.run())
    try:
        await eventually(lambda: app.admin_port != 0 or run.done(), timeout=10)
        assert not run.done(), run
        yield app
    finally:
        app.stop()
        await asyncio.wait_for(run, 10)


async def test_serve_shows_and_announces_the_dark_verdict(tmp_path: Path) -> None:
    """In `turnout serve`, figures in the sink's store for a v3 failing 30% of its
    copies give a fail in GetStatus, `turnout status` (text and --json) and one
    DARK_VERDICT event on WatchStatus."""
    async with (
        serving(tmp_path) as app,
        grpc.aio.insecure_channel(f"127.0.0.1:{app.xds_port}") as channel,
    ):
        stub = release_pb2_grpc.ReleaseServiceStub(channel)
        call = stub.WatchStatus(pb.WatchStatusRequest())
        events: list[pb.StatusEvent] = []

        async def read() -> None:
            async for event in call:
                events.append(event)

        reader = asyncio.create_task(read())
        await eventually(lambda: bool(events))  # the SNAPSHOT: now events are recorded
        now = time.time()
        for second in range(3):
            at = now - 3 + second
            app.analysis.add("shop_v1", "edge-1", at, requests=90)
            app.analysis.add("shop_v2", "edge-1", at, requests=10)
            app.analysis.add("shop_v3", "edge-1", at, requests=60, errors=18)

        def failing() -> bool:
            return any(
                e.kind == Kind.DARK_VERDICT and e.service.dark[0].outcome == "fail" for e in events
            )

        await eventually(failing, timeout=5)
        status = await stub.GetStatus(pb.GetStatusRequest())
        (dark,) = status.services[0].dark
        assert (dark.to, list(dark.light), dark.outcome) == ("v3", ["v1", "v2"], "fail")
        assert (dark.dark.requests, dark.dark.errors) == (180, 54)
        assert dark.light_figures.version == "v1+v2"
        assert dark.window_seconds == 300.0
        assert "window since restart" in dark.window_note
        text = render_status(status)
        assert "DARK TRAFFIC" in text
        assert (
            "shop: v3 (dark) against v1+v2 (light), mirrored from default, rule beta: fail" in text
        )
        rows = [line.split() for line in text.splitlines() if line.strip().startswith("v")]
        assert rows[0][:4] == ["v3", "dark", "180", "54"]
        as_json = json.loads(json.dumps(to_json(status)))
        assert as_json["services"][0]["dark"][0]["outcome"] == "fail"
        verdicts = [e for e in events if e.kind == Kind.DARK_VERDICT]
        assert [e.service.dark[0].outcome for e in verdicts][-1] == "fail"
        call.cancel()
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)
