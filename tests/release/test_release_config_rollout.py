"""The release driver beside a config rollout: a step held at the canary proxies is not
timed against its interval, and is still rolled back when it fails."""

from __future__ import annotations

from pathlib import Path

import pytest

from turnout.policy import Service

from .test_release_driver import Run


@pytest.fixture
def run(tmp_path: Path) -> Run:
    return Run(tmp_path / "policies")


class Reached:
    """What a config rollout says of the service's config: None while at the canary."""

    def __init__(self) -> None:
        self.at: float | None = None

    def __call__(self, service: Service) -> float | None:
        return self.at


async def test_a_step_held_at_the_canary_does_not_count_against_its_interval(run: Run) -> None:
    """However long the step is held at the canary it does not advance; once it reached
    every proxy its 10 s interval counts from then, not from state.since."""
    reached = Reached()
    run.driver.config_reached = reached
    assert await run.tick() == ["start"]
    assert await run.traffic_for(15, {"v1": 90, "v2": 20}) == []
    assert run.driver.reports()["checkout"].decision.reason.startswith("config rollout:")
    reached.at = run.clock.now
    assert await run.traffic_for(9, {"v1": 90, "v2": 20}) == []
    assert await run.traffic_for(1, {"v1": 90, "v2": 20}) == ["advance"]


async def test_a_failing_step_at_the_canary_is_rolled_back(run: Run) -> None:
    """A step that fails while only the canary has it is rolled back at once (the
    rollback, only safer, goes everywhere without a bake)."""
    run.driver.config_reached = Reached()
    assert await run.tick() == ["start"]
    actions = await run.traffic_for(5, {"v1": 90, "v2": 100}, errors={"v2": 50})
    assert actions == ["rollback"]
