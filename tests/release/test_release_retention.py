"""The sink's windows are long enough for every release: the store keeps at least the
longest window a policy may judge (resized on reload), and when the figures still
cover less than asked (turnout restarted mid-step) the status says so."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from turnout.analysis import WindowStore
from turnout.api import PolicyView, status_message
from turnout.cli._release_status import render_releases
from turnout.policy import load_policies
from turnout.release import Driver, longest_window
from turnout.server import RETENTION, RETENTION_MARGIN, App, analysis_view, service_view

from ._fakes import T0, Clock, FakeSource, write_policies


def _store(clock: Clock) -> WindowStore:
    return WindowStore(lambda c: ("checkout", c), retention=1800.0, clock=clock)


def test_a_raised_retention_keeps_older_figures() -> None:
    """With 30 minutes kept a 45-minute-old slot is dropped; with 2 h kept it counts."""
    for retention, expected in ((1800.0, 1), (7200.0, 2)):
        clock = Clock()
        store = _store(clock)
        store.ensure_retention(retention, minimum=1800.0)
        store.add("v2", "edge-1", clock.now, requests=1)
        clock.advance(45 * 60)
        store.add("v2", "edge-1", clock.now, requests=1)
        figures = store.figures_now("checkout", "v2", T0, clock.now + 1)
        assert figures.requests == expected


def test_retention_never_drops_below_the_minimum() -> None:
    """Asking for less than the minimum keeps the minimum."""
    store = _store(Clock())
    assert store.ensure_retention(10.0, minimum=1800.0) == 1800.0
    assert store.ensure_retention(4000.0, minimum=1800.0) == 4000.0
    assert store.ensure_retention(10.0, minimum=1800.0) == 1800.0


def test_coverage_says_since_restart_then_retention() -> None:
    """Right after start the figures begin at the store's start; once it has run past
    its retention, at now - retention."""
    clock = Clock()
    store = _store(clock)
    clock.advance(60)
    assert store.coverage() == (T0, "since restart")
    clock.advance(3600)
    assert store.coverage() == (clock.now - 1800.0, "retention 30m")


def test_longest_window_is_the_longest_progress_deadline(tmp_path: Path) -> None:
    """interval 10s gives 30s (3 x); a requireDark of 1h gives 3h; progressDeadline
    counts when longer; no release gives 0."""
    mirror = "mirror: {to: v2, percent: 100}\n"
    plain = load_policies(write_policies(tmp_path / "a"))
    assert longest_window(plain.services) == 30.0
    dark = load_policies(
        write_policies(tmp_path / "b", mirror=mirror, extra="  requireDark: {for: 1h}\n")
    )
    assert longest_window(dark.services) == 3 * 3600.0
    deadline = load_policies(write_policies(tmp_path / "c", extra="  progressDeadline: 2h\n"))
    assert longest_window(deadline.services) == 7200.0
    assert longest_window(()) == 0.0


def test_reload_resizes_the_sink_windows(tmp_path: Path) -> None:
    """turnout serve keeps 30 minutes by default, 2 h + a margin once a release's
    progressDeadline is 2 h, and 30 minutes again when the release is gone."""
    directory = write_policies(tmp_path / "p")
    app = App(directory, "127.0.0.1:0", "127.0.0.1:0")
    assert app.reload()
    assert app.analysis.retention == RETENTION
    write_policies(directory, extra="  progressDeadline: 2h\n")
    assert app.reload()
    assert app.analysis.retention == 7200.0 + RETENTION_MARGIN
    (directory / "checkout.yaml").write_text(
        (directory / "checkout.yaml").read_text().split("incremental:")[0]
    )
    assert app.reload()
    assert app.analysis.retention == RETENTION


@pytest.mark.parametrize(
    ("started", "note"),
    [
        (T0 + 4, "window since restart: figures cover the last 6s of the 10s asked"),
        (T0 - 60, ""),
    ],
)
async def test_status_says_when_the_window_is_shorter_than_asked(
    tmp_path: Path, started: float, note: str
) -> None:
    """A turnout (store) started 4 s into a 10 s step shows its figures as covering
    only the last 6 s, in the report, GetStatus and `turnout status`; a store older
    than the step says nothing."""
    directory = write_policies(tmp_path / "p")
    clock, source = Clock(), FakeSource()
    store = _store(Clock(started))
    driver = Driver(
        directory,
        lambda: load_policies(directory),
        source,
        clock=clock,
        coverage=store.coverage,
    )
    await driver.tick()  # starts the release at T0
    clock.advance(10)
    await driver.tick()
    report = driver.reports()["checkout"]
    assert report.window_note == note
    view = service_view(load_policies(directory).service("checkout"))
    assert view.incremental is not None
    view = replace(view, incremental=replace(view.incremental, analysis=analysis_view(report)))
    status = status_message(PolicyView(policy_version="x", services=(view,)), [])
    assert status.services[0].incremental.analysis.window_note == note
    text = "\n".join(render_releases(status, datetime.fromtimestamp(clock.now, UTC)))
    if note:
        assert f"figures over the last 10.0s ({note}):" in text
    else:
        assert "figures over the last 10.0s:" in text
