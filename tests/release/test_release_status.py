"""What `turnout status` shows of a release the driver is judging: the driver's report
through the ReleaseService's messages to the text."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from turnout.api import PolicyView, status_message
from turnout.cli._release_status import render_releases
from turnout.policy import load_policies
from turnout.release import Driver
from turnout.server import analysis_view, service_view

from ._fakes import Clock, FakeSource, write_policies


async def driven(tmp_path: Path, seconds: int, v2_errors: int) -> tuple[str, object]:
    directory = write_policies(tmp_path / "p")
    clock, source = Clock(), FakeSource()
    driver = Driver(directory, lambda: load_policies(directory), source, clock=clock)
    await driver.tick()
    for _ in range(seconds):
        source.add("v1", clock.now, 90)
        source.add("v2", clock.now, 30, errors=v2_errors)
        clock.advance(1)
        await driver.tick()
    service = load_policies(directory).service("checkout")
    view = service_view(service)
    assert view.incremental is not None
    report = driver.reports()["checkout"]
    from dataclasses import replace

    view = replace(view, incremental=replace(view.incremental, analysis=analysis_view(report)))
    status = status_message(
        PolicyView(policy_version="abc", services=(view,), release_driver="driving"), []
    )
    now = datetime.fromtimestamp(clock.now, UTC)
    return "\n".join(render_releases(status, now)), status


async def test_status_shows_step_share_time_figures_and_verdict(tmp_path: Path) -> None:
    """A release in its step: phase, step and share, time in step, both versions'
    figures, the verdict so far and what the driver is doing."""
    text, _ = await driven(tmp_path, 3, 0)
    lines = text.splitlines()
    assert lines[0] == "RELEASES (this turnout's release driver: driving)"
    assert lines[1] == "checkout: v1 -> v2: running, step 1/3 (v2 at 10%), 3.0s in step of 10.0s"
    assert "verdict: hold (canary, confidence 0.999); judged at the end in 7.0s" in lines[2]
    assert (
        "why: observe: observing: checkout/v2: 90 requests, fewer than minRequests 100"
        in (lines[3])
    )
    table = [line.split() for line in lines[5:8]]
    assert table[0][:4] == ["VERSION", "ROLE", "REQUESTS", "ERRORS"]
    assert table[1][:5] == ["v2", "to", "90", "0", "0"]
    assert table[2][:5] == ["v1", "stable", "270", "0", "0"]


async def test_status_shows_a_rollback_with_its_figures(tmp_path: Path) -> None:
    """A rolled-back release says so, and why, with the figures of both versions."""
    text, status = await driven(tmp_path, 5, 6)
    assert "checkout: v1 -> v2: rolled-back, step 1/3 (v2 at 10%)" in text
    assert "why: rollback: step 1/3 (10%) failed: checkout/v2 error rate 0.2 > maxErrorRate" in text
    assert "last change: step 1/3 (10%) failed" in text
    analysis = status.services[0].incremental.analysis  # type: ignore[attr-defined]
    assert analysis.outcome == "fail"
    assert analysis.canary.requests == 120
    assert analysis.canary.errors == 24
    assert [c.name for c in analysis.checks if c.significant] == ["maxErrorRate"]


async def test_no_release_no_section(tmp_path: Path) -> None:
    """Without incremental releases the status has no release section."""
    status = status_message(PolicyView(policy_version="abc"), [])
    assert render_releases(status) == []
