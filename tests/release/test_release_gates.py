"""Approval gates and release windows, driven against a real policy directory with a
fake clock (the driver's clock is injectable: no test waits for a real window)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from turnout.edit import PhaseError, approve, rollback
from turnout.release import Driver, ReleaseEvent

from ._fakes import T0
from .test_release_driver import Run

# T0 is Friday 2027-01-15 08:00 UTC: 09:00 in Europe/Berlin (CET).


def _run(
    tmp_path: Path, *, steps: str = "[10, 50, 100]", extra: str = "", interval: str = "10s"
) -> Run:
    run = Run(tmp_path / "policies", extra=extra)
    path = run.directory / "checkout.yaml"
    text = path.read_text().replace("steps: [10, 50, 100]", f"steps: {steps}")
    path.write_text(text.replace("interval: 10s", f"interval: {interval}"))
    run.driver = run.new_driver()
    return run


class Events:
    """The driver's notifications, as a notifier would receive them."""

    def __init__(self, run: Run) -> None:
        self.seen: list[ReleaseEvent] = []
        run.driver = Driver(
            run.directory,
            run.driver._policies,
            run.source,
            clock=run.clock,
            on_write=lambda: None,
            on_event=self.seen.append,
        )

    def actions(self) -> list[str]:
        return [event.action for event in self.seen]


async def test_release_waits_at_the_gate_until_approved(tmp_path: Path) -> None:
    """At `approve` a passing step writes phase waiting (traffic and since kept), says so
    once, and goes on at the first tick after `turnout approve` records who and when."""
    run = _run(tmp_path, steps="[10, approve, 50, 100]")
    events = Events(run)
    assert await run.tick() == ["start"]
    since = run.state().since
    assert await run.traffic_for(10, {"v1": 90, "v2": 20}) == ["wait"]
    state = run.state()
    assert (state.phase, state.step, state.since) == ("waiting", 0, since)
    assert (state.reason or "").startswith(
        "waiting for approval to go on to step 2/3 (50%): turnout approve records it; "
        "step 1/3 (10%) passed"
    )
    assert run.traffic() == {"v1": 90.0, "v2": 10.0}
    assert await run.traffic_for(30, {"v1": 90, "v2": 20}) == []
    assert events.actions() == ["start", "wait"]  # said once, not again per tick
    edit = approve(run.directory, "checkout", by="alice", now=run.when())
    assert edit.summary == (
        "approve checkout: step 2 of 3 (50%) of the release to v2, by alice (the release goes on)"
    )
    edit.write()
    [approval] = run.state().approvals
    assert (approval.step, approval.by, approval.at) == (1, "alice", run.when())
    assert "approvals: [{step: 1, by: alice, at: " in (run.directory / "checkout.yaml").read_text()
    assert await run.traffic_for(1, {"v1": 90, "v2": 20}) == ["advance"]
    assert run.traffic() == {"v1": 50.0, "v2": 50.0}
    assert "step 1/3 (10%) passed (approved)" in (run.state().reason or "")
    assert await run.traffic_for(10, {"v1": 50, "v2": 50}) == ["promote"]


async def test_rollback_is_never_gated(tmp_path: Path) -> None:
    """A release waiting for approval is still judged: a failing canary rolls back at once."""
    run = _run(tmp_path, steps="[10, approve, 50, 100]")
    await run.tick()
    assert await run.traffic_for(10, {"v1": 90, "v2": 20}) == ["wait"]
    actions = await run.traffic_for(5, {"v1": 90, "v2": 30}, errors={"v2": 15})
    assert actions == ["rollback"]
    assert run.state().phase == "rolled-back"
    assert run.traffic() == {"v1": 100.0}


async def test_restart_while_waiting_keeps_waiting(tmp_path: Path) -> None:
    """A driver started afresh on a waiting release (a restarted turnout) keeps waiting."""
    run = _run(tmp_path, steps="[10, approve, 50, 100]")
    await run.tick()
    assert await run.traffic_for(10, {"v1": 90, "v2": 20}) == ["wait"]
    run.driver = run.new_driver()
    assert await run.traffic_for(20, {"v1": 90, "v2": 20}) == []
    assert run.state().phase == "waiting"
    report = run.driver.reports()["checkout"]
    assert report.decision.action == "await-approval"


async def test_approval_in_advance_lets_the_release_through(tmp_path: Path) -> None:
    """A gate approved before the release reaches it does not stop it."""
    run = _run(tmp_path, steps="[10, approve, 50, 100]")
    await run.tick()
    approve(run.directory, "checkout", by="bob", now=run.when()).write()
    assert await run.traffic_for(10, {"v1": 90, "v2": 20}) == ["advance"]


def test_approve_refuses_without_a_gate_or_after_the_end(tmp_path: Path) -> None:
    """`turnout approve` says why when there is nothing to approve."""
    run = _run(tmp_path)
    with pytest.raises(PhaseError, match="has no approve gate"):
        approve(run.directory, "checkout", by="alice")
    gated = _run(tmp_path / "gated", steps="[10, approve, 50, 100]")
    rollback(gated.directory, "checkout").write()
    with pytest.raises(PhaseError, match="is rolled-back"):
        approve(gated.directory, "checkout", by="alice")


async def test_closed_window_holds_a_passing_step_and_not_a_failing_one(tmp_path: Path) -> None:
    """Outside the window a passing step holds (nothing written, the reason says when it
    opens), a failing one still rolls back at once; inside it, the step advances."""
    window = '  window: {days: Mon-Fri, hours: "09:00-09:01", timezone: Europe/Berlin}\n'
    run = _run(tmp_path, extra=window, interval="90s")
    events = Events(run)
    assert await run.tick() == ["start"]  # 09:00 Berlin: open
    assert await run.traffic_for(100, {"v1": 90, "v2": 20}) == []
    report = run.driver.reports()["checkout"]
    assert report.decision.action == "await-window"
    assert report.decision.reason.startswith(
        "outside the release window (Mon-Fri 09:00-09:01 Europe/Berlin), next opens at "
        "2027-01-18 09:00 CET (2027-01-18T08:00:00Z): step 1/3 (10%) passed"
    )
    assert run.state().phase == "running"
    assert events.actions() == ["start", "await-window"]
    monday = datetime(2027, 1, 18, 8, 0, 30, tzinfo=UTC).timestamp()
    run.clock.now = monday
    assert await run.traffic_for(1, {"v1": 90, "v2": 20}) == ["advance"]

    failing = _run(tmp_path / "failing", extra=window, interval="90s")
    await failing.tick()
    assert await failing.traffic_for(65, {"v1": 90, "v2": 2}) == []  # the window closed
    actions = await failing.traffic_for(5, {"v1": 90, "v2": 30}, errors={"v2": 30})
    assert actions == ["rollback"]
    assert failing.clock.now < T0 + 90  # at once, window closed or not


async def test_release_starts_only_inside_its_window(tmp_path: Path) -> None:
    """A release declared outside its window is not started until the window opens."""
    window = '  window: {days: Fri, hours: "10:00-17:00", timezone: Europe/Berlin}\n'
    run = _run(tmp_path, extra=window)
    assert await run.tick() == []
    assert run.service().incremental.state is None  # type: ignore[union-attr]
    assert "next opens at 2027-01-15 10:00 CET" in run.driver.reports()["checkout"].decision.reason
    run.clock.advance(3600)
    assert await run.tick() == ["start"]
