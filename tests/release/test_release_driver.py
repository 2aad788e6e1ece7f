"""The release driver against a real policy directory, with a fake clock and a fake
metrics store: every decision, the files it writes, and people's edits."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from turnout.edit import pause, resume, rollback, set_traffic
from turnout.policy import IncrementalState, Service, load_policies
from turnout.release import Driver

from ._fakes import T0, Clock, FakeSource, write_policies


class Run:
    """One policy directory, its driver, the fake clock and the fake figures."""

    def __init__(self, directory: Path, **policy: str) -> None:
        self.directory = write_policies(directory, **policy)
        self.clock = Clock()
        self.source = FakeSource()
        self.writes = 0
        self.events: list[str] = []
        self.driver = self.new_driver()

    def new_driver(self) -> Driver:
        return Driver(
            self.directory,
            lambda: load_policies(self.directory),
            self.source,
            clock=self.clock,
            on_write=self._written,
            on_decision=self.events.append,
        )

    def _written(self) -> None:
        self.writes += 1

    def when(self) -> datetime:
        """The fake clock's now, for edits made by a person."""
        return datetime.fromtimestamp(self.clock.now, UTC)

    def service(self) -> Service:
        return load_policies(self.directory).service("checkout")

    def traffic(self) -> dict[str, float]:
        traffic = self.service().traffic
        assert not isinstance(traffic, str)
        return {v: float(s) for v, s in traffic}

    def state(self) -> IncrementalState:
        release = self.service().incremental
        assert release is not None
        assert release.state is not None
        return release.state

    async def tick(self) -> list[str]:
        return [d.action for d in await self.driver.tick()]

    async def traffic_for(
        self,
        seconds: int,
        rates: Mapping[str, int],
        errors: Mapping[str, int] | None = None,
        latency: Mapping[str, float] | None = None,
    ) -> list[str]:
        """`rates[v]` requests a second for `seconds`, ticking every second; returns
        the actions written."""
        actions: list[str] = []
        for _ in range(seconds):
            for version, rate in rates.items():
                self.source.add(
                    version,
                    self.clock.now,
                    rate,
                    errors=(errors or {}).get(version, 0),
                    latency=(latency or {}).get(version, 0.004),
                )
            self.clock.advance(1)
            actions += await self.tick()
        return actions


@pytest.fixture
def run(tmp_path: Path) -> Run:
    return Run(tmp_path / "policies")


async def test_start_writes_the_first_step(run: Run) -> None:
    """A release without state is started: step 0's traffic and the state, since now."""
    assert await run.tick() == ["start"]
    assert run.traffic() == {"v1": 90.0, "v2": 10.0}
    state = run.state()
    assert (state.phase, state.step) == ("running", 0)
    assert state.since is not None
    assert state.since.timestamp() == T0
    assert run.writes == 1
    assert run.events == ["checkout"]
    text = (run.directory / "checkout.yaml").read_text()
    assert "traffic: {v1: 90, v2: 10}  # the release changes this\n" in text


async def test_healthy_release_steps_to_promotion(run: Run) -> None:
    """A healthy canary advances at each interval's end and is promoted at 100%."""
    await run.tick()
    assert await run.traffic_for(9, {"v1": 90, "v2": 20}) == []
    assert await run.traffic_for(1, {"v1": 90, "v2": 20}) == ["advance"]
    assert run.traffic() == {"v1": 50.0, "v2": 50.0}
    assert (run.state().phase, run.state().step) == ("running", 1)
    assert await run.traffic_for(10, {"v1": 50, "v2": 50}) == ["promote"]
    service = run.service()
    assert service.stable == "v2"
    assert run.traffic() == {"v2": 100.0}
    assert (run.state().phase, run.state().step) == ("promoted", 2)
    assert "step 2/3 (50%) passed" in (run.state().reason or "")
    assert await run.traffic_for(20, {"v2": 100}) == []


async def test_bad_canary_is_rolled_back_as_soon_as_there_is_enough_data(run: Run) -> None:
    """20% errors fail the step on the first tick with minRequests, well before its end;
    traffic goes back to stable and the reason carries the figures."""
    await run.tick()
    actions = await run.traffic_for(4, {"v1": 90, "v2": 30}, errors={"v2": 6})
    assert actions == ["rollback"]
    assert run.clock.now == T0 + 4  # 120 requests of v2 by then
    assert run.traffic() == {"v1": 100.0}
    state = run.state()
    assert state.phase == "rolled-back"
    reason = state.reason or ""
    assert "error rate 0.2 > maxErrorRate 0.05" in reason
    assert "v2 120 requests, 24 errors (0.2)" in reason
    assert "v1 360 requests, 0 errors (0)" in reason
    assert await run.traffic_for(5, {"v1": 100}) == []


async def test_slow_canary_is_rolled_back(run: Run) -> None:
    """A canary whose p99 is far above 1.5x stable's is rolled back."""
    await run.tick()
    actions = await run.traffic_for(6, {"v1": 90, "v2": 30}, latency={"v1": 0.004, "v2": 0.204})
    assert actions == ["rollback"]
    assert "maxLatencyP99Increase" in (run.state().reason or "")


async def test_borderline_breach_waits_for_the_interval_end(run: Run) -> None:
    """A breach significant at 0.99 but not at 0.999 does not fail the step early; it
    fails it when the interval is over."""
    await run.tick()
    # 8% errors on 120 requests against a 5% limit: p ~ 0.09 at first...
    actions = await run.traffic_for(4, {"v1": 90, "v2": 30}, errors={"v2": 2})
    assert actions == []
    # ... significant at 0.99 (p < 0.01) but not at 0.999 by the end of the interval
    actions = await run.traffic_for(6, {"v1": 90, "v2": 30}, errors={"v2": 3})
    assert actions == ["rollback"]
    assert run.clock.now == T0 + 10


async def test_too_little_traffic_holds_then_fails_at_the_deadline(run: Run) -> None:
    """Fewer than minRequests: the step is held (said once, not written), and the
    progress deadline (3 intervals) fails the release with traffic back on stable."""
    await run.tick()
    assert await run.traffic_for(10, {"v1": 9, "v2": 1}) == []
    report = run.driver.reports()["checkout"]
    assert report.decision.action == "await-data"
    assert "fewer than minRequests 100" in report.decision.reason
    assert run.events == ["checkout", "checkout"]  # the start, then the hold, once
    assert await run.traffic_for(19, {"v1": 9, "v2": 1}) == []
    assert run.events == ["checkout", "checkout"]
    assert await run.traffic_for(1, {"v1": 9, "v2": 1}) == ["fail"]
    assert run.clock.now == T0 + 30
    state = run.state()
    assert state.phase == "failed"
    assert "no verdict within the progress deadline (30s)" in (state.reason or "")
    assert "fewer than minRequests 100" in (state.reason or "")
    assert run.traffic() == {"v1": 100.0}


async def test_metrics_source_errors_end_at_the_deadline(run: Run) -> None:
    """A metrics source that cannot answer holds the release and fails it at the
    deadline: never an endless hold."""
    await run.tick()
    run.source.fail_with = RuntimeError("Prometheus at http://x: connection refused")
    assert await run.traffic_for(29, {"v1": 90, "v2": 10}) == []
    assert "connection refused" in run.driver.reports()["checkout"].decision.reason
    assert await run.traffic_for(1, {"v1": 90, "v2": 10}) == ["fail"]


async def test_on_failure_hold_stays_and_reports(tmp_path: Path) -> None:
    """With onFailure hold a failed step keeps its traffic and goes to holding."""
    run = Run(tmp_path / "p", on_failure="hold")
    await run.tick()
    assert await run.traffic_for(4, {"v1": 90, "v2": 30}, errors={"v2": 6}) == ["hold"]
    assert run.traffic() == {"v1": 90.0, "v2": 10.0}
    assert run.state().phase == "holding"
    assert await run.traffic_for(20, {"v1": 90, "v2": 30}) == []
    assert run.driver.reports()["checkout"].decision.verdict is not None


async def test_restarted_driver_resumes_the_step_with_its_remaining_interval(run: Run) -> None:
    """A new driver (turnout restarted) keeps the step and its since: it advances when
    the interval that started before the restart ends, not a whole interval later."""
    await run.tick()
    await run.traffic_for(10, {"v1": 90, "v2": 20})
    assert run.state().step == 1
    await run.traffic_for(4, {"v1": 50, "v2": 50})
    run.driver = run.new_driver()
    assert await run.traffic_for(5, {"v1": 50, "v2": 50}) == []
    assert run.state().step == 1
    assert await run.traffic_for(1, {"v1": 50, "v2": 50}) == ["promote"]
    assert run.clock.now == T0 + 20


async def test_hand_edited_traffic_pauses_the_release(run: Run) -> None:
    """traffic changed by a person during a step is left as they wrote it and the
    release is paused, saying why; resume restores the step's traffic."""
    await run.tick()
    set_traffic(run.directory, "checkout", {"v1": Decimal(80), "v2": Decimal(20)}).write()
    assert await run.tick() == ["pause"]
    assert run.traffic() == {"v1": 80.0, "v2": 20.0}
    state = run.state()
    assert state.phase == "paused"
    assert "edited by hand to v1=80 v2=20" in (state.reason or "")
    assert "step 1/3 (10%) is v1=90 v2=10" in (state.reason or "")
    assert await run.traffic_for(20, {"v1": 80, "v2": 20}) == []
    resume(run.directory, "checkout", now=run.when()).write()
    assert await run.tick() == ["restore"]
    assert run.traffic() == {"v1": 90.0, "v2": 10.0}
    assert (run.state().phase, run.state().step) == ("running", 0)
    since = run.state().since
    assert since is not None
    assert since.timestamp() == run.clock.now


async def test_pause_and_rollback_by_a_person_are_followed(run: Run) -> None:
    """turnout pause stops the driver; resume lets it go on; turnout rollback ends it."""
    await run.tick()
    pause(run.directory, "checkout", now=run.when()).write()
    assert await run.traffic_for(15, {"v1": 90, "v2": 20}) == []
    assert run.state().phase == "paused"
    resume(run.directory, "checkout", now=run.when()).write()
    assert await run.traffic_for(9, {"v1": 90, "v2": 20}) == []  # observed afresh ...
    assert await run.traffic_for(1, {"v1": 90, "v2": 20}) == ["advance"]  # ... from resume
    assert run.clock.now == T0 + 25
    rollback(run.directory, "checkout", now=run.when()).write()
    assert await run.traffic_for(30, {"v1": 100}) == []
    assert run.state().phase == "rolled-back"
    assert run.traffic() == {"v1": 100.0}


async def test_step_written_by_a_person_is_followed(run: Run) -> None:
    """A person who writes another step gets that step's traffic, observed from now."""
    await run.tick()
    path = run.directory / "checkout.yaml"
    path.write_text(path.read_text().replace("step: 0", "step: 1"))
    assert await run.tick() == ["restore"]
    assert run.traffic() == {"v1": 50.0, "v2": 50.0}
    assert run.state().step == 1


async def test_hand_edit_found_on_start_pauses(run: Run) -> None:
    """traffic that is not the step's, found by a driver that just started, stands."""
    await run.tick()
    set_traffic(run.directory, "checkout", {"v1": Decimal(70), "v2": Decimal(30)}).write()
    run.driver = run.new_driver()
    assert await run.tick() == ["pause"]
    assert run.traffic() == {"v1": 70.0, "v2": 30.0}
    assert "found on start" in (run.state().reason or "")


async def test_a_decision_based_on_stale_files_is_not_written(run: Run) -> None:
    """Compare-and-swap: a decision made on what the files said before a person's edit
    writes nothing; the person's edit stands and is then followed."""
    await run.tick()
    stale = load_policies(run.directory)
    run.driver = Driver(run.directory, lambda: stale, run.source, clock=run.clock)
    await run.driver.tick()  # adopt the stale view
    set_traffic(run.directory, "checkout", {"v1": Decimal(75), "v2": Decimal(25)}).write()
    assert await run.traffic_for(10, {"v1": 90, "v2": 20}) == []  # would have advanced
    assert run.traffic() == {"v1": 75.0, "v2": 25.0}
    assert (run.state().phase, run.state().step) == ("running", 0)


async def test_only_the_leader_drives(run: Run) -> None:
    """A replica that does not hold the lease writes nothing."""
    leading = False
    run.driver = Driver(
        run.directory,
        lambda: load_policies(run.directory),
        run.source,
        clock=run.clock,
        leader=lambda: leading,
    )
    assert await run.tick() == []
    release = run.service().incremental
    assert release is not None
    assert release.state is None
    leading = True
    assert await run.tick() == ["start"]


async def test_dark_run_failing_blocks_the_release(tmp_path: Path) -> None:
    """A required dark run whose mirrored copies fail 30% fails the release before any
    traffic moves, with the figures in the reason."""
    run = Run(
        tmp_path / "p",
        mirror="mirror: {to: v2, percent: 100}\n",
        extra="  requireDark: {for: 20s, minRequests: 200}\n",
    )
    assert await run.tick() == ["dark"]
    assert run.state().phase == "dark"
    assert run.traffic() == {"v1": 100.0}
    actions = await run.traffic_for(5, {"v1": 50, "v2": 50}, errors={"v2": 15})
    assert actions == ["fail"]  # at the first tick with minRequests mirrored copies
    state = run.state()
    assert state.phase == "failed"
    assert "dark run of v2 failed" in (state.reason or "")
    assert "v2 200 requests, 60 errors (0.3)" in (state.reason or "")
    assert run.traffic() == {"v1": 100.0}


async def test_clean_dark_run_starts_the_first_step(tmp_path: Path) -> None:
    """A clean dark run of `for` with minRequests starts step 0."""
    run = Run(
        tmp_path / "p",
        mirror="mirror: {to: v2, percent: 100}\n",
        extra="  requireDark: {for: 20s, minRequests: 200}\n",
    )
    await run.tick()
    assert await run.traffic_for(19, {"v1": 50, "v2": 50}) == []
    assert await run.traffic_for(1, {"v1": 50, "v2": 50}) == ["start"]
    assert run.traffic() == {"v1": 90.0, "v2": 10.0}
    assert "dark run clean" in (run.state().reason or "")
