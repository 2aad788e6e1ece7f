"""The release driver inside `turnout serve`: its metrics source, its Lease, and its
reports as the ReleaseService's views (the options are turnout.cli's).

It also runs the continuous dark judgement of every mirror target (`DarkWatch`), on
every replica and whether or not it drives: it only reads figures.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import structlog

from turnout.analysis import ClusterMap, MetricsSource, PrometheusSource, WindowStore
from turnout.api import DarkView, ReleaseAnalysisView
from turnout.edit import GitError, git_root
from turnout.policy import PolicySet
from turnout.release import (
    DEFAULT_DARK_WINDOW,
    DarkJudgement,
    DarkWatch,
    Driver,
    Lease,
    LeaseConfig,
    ReleaseEvent,
    Report,
)
from turnout.server._compare import Comparing, compare_view
from turnout.server._notify import Webhook

__all__ = [
    "Driving",
    "DrivingError",
    "ReleaseOptions",
    "analysis_view",
    "dark_view",
]

log = structlog.get_logger("turnout.release")


class DrivingError(ValueError):
    """The release options cannot be honoured (e.g. commits asked for outside a repo)."""


@dataclass(frozen=True, slots=True)
class ReleaseOptions:
    """How `turnout serve` drives incremental releases."""

    drive: bool = True
    commit: bool = False
    metrics_source: Literal["sink", "prometheus"] = "sink"
    prometheus_url: str | None = None
    leader_election: Literal["none", "kubernetes"] = "none"
    lease_name: str = "turnout-release-driver"
    tick: float = 0.25
    dark_window: float = DEFAULT_DARK_WINDOW
    dark_tick: float = 1.0
    webhooks: tuple[Webhook, ...] = ()  # --notify: where release (and other) events go


def _time(at: float) -> datetime:
    return datetime.fromtimestamp(at, UTC)


def dark_view(judgement: DarkJudgement, comparing: Comparing | None = None) -> DarkView:
    """A dark judgement as the ReleaseService's view (with its comparison, when its
    mirror has `compare:`)."""
    verdict, target = judgement.verdict, judgement.target
    return DarkView(
        to=target.to,
        light=target.light,
        segments=target.segments,
        at=_time(judgement.at),
        window_start=_time(judgement.since),
        window_seconds=judgement.window,
        outcome=judgement.outcome,
        reasons=verdict.reasons if verdict is not None else (),
        dark=verdict.canary if verdict is not None else None,
        light_figures=verdict.baseline if verdict is not None else None,
        checks=verdict.checks if verdict is not None else (),
        confidence=target.thresholds.confidence,
        error=judgement.error,
        window_note=judgement.window_note,
        note=target.note,
        comparison=compare_view(
            judgement,
            len(comparing.store.comparators) if comparing is not None else 0,
            comparing is not None and comparing.configured,
        ),
    )


def analysis_view(report: Report) -> ReleaseAnalysisView:
    """A driver's report as the ReleaseService's view."""
    decision = report.decision
    verdict, win = decision.verdict, decision.window
    return ReleaseAnalysisView(
        at=_time(report.at),
        action=decision.action,
        reason=decision.reason,
        kind=verdict.kind if verdict is not None else (win.kind if win is not None else ""),
        outcome=verdict.outcome if verdict is not None else "",
        reasons=verdict.reasons if verdict is not None else (),
        canary=verdict.canary if verdict is not None else None,
        baseline=verdict.baseline if verdict is not None else None,
        window_start=_time(win.since) if win is not None else None,
        step_ends=_time(win.ends) if win is not None else None,
        deadline=_time(win.deadline) if win is not None else None,
        checks=verdict.checks if verdict is not None else (),
        confidence=win.thresholds.confidence if win is not None else 0.0,
        error=report.error,
        window_note=report.window_note,
    )


class Driving:
    """The release driver of one `turnout serve`, with its metrics source and Lease."""

    def __init__(
        self,
        options: ReleaseOptions,
        *,
        directory: Path,
        policies: Callable[[], PolicySet | None],
        store: WindowStore,
        clusters: ClusterMap,
        on_write: Callable[[], object],
        on_decision: Callable[[str], object],
        on_dark: Callable[[str], object] | None = None,
        comparing: Comparing | None = None,
        on_event: Callable[[ReleaseEvent], object] | None = None,
    ) -> None:
        """``on_event``: each release decision worth telling (the webhook notifier)."""
        self.options = options
        self.lease: Lease | None = None
        self.driver: Driver | None = None
        self._prometheus: PrometheusSource | None = None
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        source: MetricsSource = store
        if options.prometheus_url:  # figures (--metrics-source prometheus), analysis.queries
            self._prometheus = PrometheusSource(options.prometheus_url, clusters)
        if options.metrics_source == "prometheus" and self._prometheus is not None:
            source = self._prometheus
        self.comparing = comparing
        self.dark = DarkWatch(
            policies,
            source,
            window=options.dark_window,
            tick=options.dark_tick,
            coverage=store.coverage if source is store else None,
            on_change=on_dark,
            compare=comparing.store if comparing is not None and comparing.configured else None,
        )
        if not options.drive:
            return
        if options.commit:
            try:
                git_root(directory)
            except GitError as exc:
                raise DrivingError(f"--commit-releases: {exc}") from exc
        if options.leader_election == "kubernetes":
            self.lease = Lease(LeaseConfig.in_cluster(options.lease_name))
        self.driver = Driver(
            directory,
            policies,
            source,
            tick=options.tick,
            commit=options.commit,
            on_write=on_write,
            on_decision=on_decision,
            leader=self.lease.is_leader if self.lease is not None else None,
            coverage=store.coverage if source is store else None,  # Prometheus keeps
            compare=comparing.store if comparing is not None and comparing.configured else None,
            queries=self._prometheus,
            on_event=on_event,
        )

    def start(self) -> None:
        """Start driving (and electing) and judging dark traffic on the running loop."""
        self._tasks.append(asyncio.create_task(self.dark.run(self._stop), name="dark"))
        if self.driver is None:
            log.info("release driver off (--no-drive-releases)")
            return
        log.info(
            "release driver starting",
            metrics_source=self.options.metrics_source,
            prometheus=self.options.prometheus_url,
            leader_election=self.options.leader_election,
            commit=self.options.commit,
        )
        if self.lease is not None:
            self._tasks.append(asyncio.create_task(self.lease.run(self._stop), name="lease"))
        self._tasks.append(asyncio.create_task(self.driver.run(self._stop), name="driver"))

    async def stop(self) -> None:
        """Stop driving; a Lease held is given up."""
        self._stop.set()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        if self._prometheus is not None:
            await self._prometheus.close()

    def state(self) -> str:
        """ "driving", "standby: ..." or "off"."""
        if self.driver is None:
            return "off"
        if self.lease is not None and not self.lease.is_leader():
            holder = self.lease.holder or "nobody yet"
            return f"standby: Lease {self.lease.config.name} is held by {holder}"
        return "driving"

    def analyses(self) -> Mapping[str, ReleaseAnalysisView]:
        """The driver's latest view of each release, while this turnout drives."""
        if self.driver is None or not self.driver.driving:
            return {}
        return {name: analysis_view(r) for name, r in self.driver.reports().items()}

    def dark_views(self) -> Mapping[str, tuple[DarkView, ...]]:
        """The latest dark judgement of each mirror target, per service."""
        return {
            name: tuple(dark_view(j, self.comparing) for j in judgements)
            for name, judgements in self.dark.judgements().items()
        }
