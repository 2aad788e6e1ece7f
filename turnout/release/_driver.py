"""The release driver: steps every incremental release, inside `turnout serve`.

Every `tick` it takes the policy set (the files' truth, as the composition root last
loaded it), and for each service with `incremental:`:

1. `reconcile`s the files against what it last saw (a person's edit is followed, or
   makes it pause; see `_machine`);
2. reads both versions' figures over the step's window from the metrics source and
   judges them (`window`, `judge_window`), then `decide`s;
3. writes a decision that changes anything through `turnout.edit.set_release` (the path
   of `turnout set-traffic`: round-trip, validated whole, atomic) as a compare-and-swap
   against what it decided on, tells the composition root at once (`on_write`: reload
   and push, without waiting for the file watcher), and optionally commits it.

Every decision is one structured log event (`release decision`) with the figures it
was based on, one call of `on_decision` (a WatchStatus event) and one `ReleaseEvent`
to `on_event` (the webhook notifier); a release held where it is (for data, for an
approval, for the release window) is said once per step and reason, not per tick.
The custom checks of `analysis.queries` are measured from `queries` (Prometheus)
for the same window and judged with the figures. Nothing but the
files is remembered across restarts: `since` in the state gives the step's start, so a
restarted driver resumes at the same step with the remaining interval.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import structlog

from turnout.analysis import (
    CompareStore,
    Comparison,
    MetricsSource,
    QueryResult,
    QuerySource,
    Verdict,
    measure_queries,
)
from turnout.edit import ConflictError, EditError, commit, set_release, write_if_unchanged
from turnout.policy import PolicySet, Service

from ._machine import (
    HOLDS,
    Decision,
    Mark,
    Window,
    decide,
    judge_window,
    reconcile,
    window,
)

__all__ = ["Driver", "ReleaseEvent", "Report"]

log = structlog.get_logger("turnout.release")


@dataclass(frozen=True, slots=True)
class Report:
    """The driver's latest word on one release, for `turnout status`."""

    service: str
    decision: Decision
    at: float  # when it was decided (Unix seconds)
    since: float | None  # when the step or phase started
    share: Decimal | None  # `to`'s share at the step
    error: str = ""  # why the figures could not be read, or the edit not written
    window_note: str = ""  # set when the figures cover less of the window than asked


@dataclass(frozen=True, slots=True)
class ReleaseEvent:
    """A decision worth telling people about (`Driver(on_event=...)`): a step written,
    or a release held where it is (once per step and reason)."""

    service: str
    action: str
    phase: str
    step: int
    steps: int
    share: Decimal | None  # `to`'s share at the step (None before the first)
    to: str
    stable: str
    traffic: dict[str, Decimal] | None  # the new default traffic, when it changed
    reason: str
    verdict: Verdict | None
    at: float


def _verdict_json(verdict: Verdict | None, win: Window | None) -> dict[str, Any]:
    if verdict is None:
        return {}
    return {
        "verdict": verdict.outcome,
        "kind": verdict.kind,
        "canary": verdict.canary.log_json(),
        "baseline": verdict.baseline.log_json(),
        "checks": [
            {
                "name": c.name,
                "value": round(c.value, 5),
                "limit": c.limit,
                "breached": c.breached,
                "p_value": float(f"{c.p_value:.3g}"),
                "significant": c.significant,
            }
            for c in verdict.checks
        ],
        "confidence": verdict.confidence,
        **({"window_s": round(win.until - win.since, 1)} if win is not None else {}),
    }


class Driver:
    """Drives every incremental release in `directory` (see the module docstring)."""

    def __init__(
        self,
        directory: Path,
        policies: Callable[[], PolicySet | None],
        source: MetricsSource,
        *,
        clock: Callable[[], float] = time.time,
        tick: float = 0.25,
        commit: bool = False,
        on_write: Callable[[], object] | None = None,
        on_decision: Callable[[str], object] | None = None,
        leader: Callable[[], bool] | None = None,
        coverage: Callable[[float], tuple[float, str]] | None = None,
        queries: QuerySource | None = None,
        on_event: Callable[[ReleaseEvent], object] | None = None,
        compare: CompareStore | None = None,
    ) -> None:
        """``coverage(now)``: from when the source's figures are complete, and why not
        earlier (`WindowStore.coverage`); a window reaching before it is reported as
        shorter than asked. ``queries`` runs `analysis.queries` (None: they hold).
        ``clock`` is injectable: tests step through release windows without waiting."""
        self.directory = directory
        self._policies = policies
        self._source = source
        self._clock = clock
        self._tick = tick
        self._commit = commit
        self._on_write = on_write
        self._on_decision = on_decision
        self._leader = leader
        self._coverage = coverage
        self._queries = queries
        self._on_event = on_event
        self._compare = compare  # the comparators' figures (dark runs with compare:)
        self.config_reached: Callable[[Service], float | None] | None = None
        """When a service's current config reached every proxy (a config rollout may
        hold a step at the canary proxies first): None while it has not. A step counts
        its interval from then, not from ``state.since``; until then it is judged only
        to fail (a failing step is rolled back, and a rollback goes everywhere at once).
        Unset: every step counts from ``state.since``."""
        self._marks: dict[str, Mark] = {}
        self._reports: dict[str, Report] = {}
        self._announced: dict[str, tuple[str, str, int, float | None]] = {}
        self.driving = False  # whether the last tick drove (this replica leads)
        self._waiting = False

    # -- what status shows -------------------------------------------------------------

    def reports(self) -> dict[str, Report]:
        """The latest report per service with a release."""
        return dict(self._reports)

    # -- the loop ----------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Tick until `stop` is set."""
        while not stop.is_set():
            try:
                await self.tick()
            except Exception:
                log.exception("release driver tick failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self._tick)

    async def tick(self) -> list[Decision]:
        """Look at every release once; returns the decisions written."""
        if self._leader is not None and not self._leader():
            if self.driving:
                log.info("release driver standing by: another replica leads")
            self.driving = False
            self._marks.clear()  # what we saw may be stale when we lead again
            return []
        if not self.driving:
            log.info("release driver driving", policies=str(self.directory))
        self.driving = True
        policies = self._policies()
        if policies is None:
            if not self._waiting:
                log.warning("release driver waiting: no valid policy set to drive (rejected?)")
            self._waiting = True
            return []
        self._waiting = False
        now = self._clock()
        written: list[Decision] = []
        names = set()
        for service in policies.services:
            if service.incremental is None:
                continue
            names.add(service.name)
            decision = await self._drive(service, now)
            if decision is not None:
                written.append(decision)
        for gone in set(self._marks) - names:
            del self._marks[gone]
        for gone in set(self._reports) - names:
            del self._reports[gone]
            self._announced.pop(gone, None)
        return written

    async def _drive(self, service: Service, now: float) -> Decision | None:
        name = service.name
        basis = Mark.of(service)
        decision = reconcile(service, self._marks.get(name))
        error = note = ""
        if decision is None:
            self._marks[name] = basis
            shift, rolling, since = self._config_shift(service)
            win = window(service, now - shift)
            if win is not None and shift:  # the step's figures count from when it reached all
                win = replace(win, since=win.since + shift, until=now)
            verdict: Verdict | None = None
            if win is not None:
                note = self._window_note(win, now)
                try:
                    source, comparison = self._dark_source(name, win)
                    canary, baseline, measured = await asyncio.gather(
                        source.figures(name, win.canary, win.since, win.until),
                        source.figures(name, win.baseline, win.since, win.until),
                        self._measure(win),
                    )
                    verdict = judge_window(win, canary, baseline, measured, comparison)
                except Exception as exc:  # a source down must not stop the driver
                    error = f"metrics source: {exc}"
            if rolling and (verdict is None or verdict.outcome != "fail"):
                # observed as at the start of the step: nothing advances, nothing times out
                decision = decide(service, verdict, since, error=error)
                decision = replace(decision, reason=f"{rolling}; {decision.reason}")
            else:
                decision = decide(service, verdict, now - shift, error=error)
        if decision.writes:
            return await self._write(service, decision, basis, now)
        last = self._reports.get(name)
        if (
            decision.action == "idle"
            and last is not None
            and last.decision.writes
            and last.decision.phase == decision.phase
        ):
            return None  # a finished or paused release keeps showing what ended it
        self._report(service, decision, now, error, note)
        self._announce_hold(service, decision, now)
        return None

    def _config_shift(self, service: Service) -> tuple[float, str, float]:
        """(seconds the step's interval starts after ``state.since``: the time its config
        took to reach every proxy; why it has not started, or ""; ``state.since``)."""
        release = service.incremental
        state = release.state if release is not None else None
        if self.config_reached is None or state is None or state.since is None:
            return 0.0, "", 0.0
        reached = self.config_reached(service)
        since = state.since.timestamp()
        if reached is None:  # at the canary only: the interval has not started
            why = (
                "config rollout: this step is at the canary proxies only; its interval "
                "starts when every proxy has it"
            )
            return 0.0, why, since
        return max(0.0, reached - since), "", since

    async def _measure(self, win: Window) -> tuple[QueryResult, ...]:
        if not win.queries:
            return ()
        return await measure_queries(
            self._queries, win.queries, win.canary, win.baseline, win.until
        )

    def _dark_source(self, name: str, win: Window) -> tuple[MetricsSource, Comparison | None]:
        """A dark run whose mirror has `compare:` is judged on the comparators' calls and
        comparison: Envoy copies to them, not to the dark version."""
        if win.kind != "dark" or win.thresholds.max_diff_rate is None or self._compare is None:
            return self._source, None
        return self._compare, self._compare.comparison(name, win.canary, win.since, win.until)

    def _window_note(self, win: Window, now: float) -> str:
        """Why the figures cover less than [since, now], if they do."""
        if self._coverage is None:
            return ""
        covered, why = self._coverage(now)
        if covered <= win.since:
            return ""
        asked = max(0.0, now - win.since)
        return (
            f"window {why}: figures cover the last {_span(now - covered)} "
            f"of the {_span(asked)} asked"
        )

    # -- writing -----------------------------------------------------------------------

    def _edit(self, service: str, decision: Decision, basis: Mark, when: datetime) -> Any:
        edit = set_release(
            self.directory,
            service,
            phase=decision.phase,
            step=decision.step,
            reason=decision.reason,
            summary=f"release {service}: {decision.action}: {decision.reason}",
            traffic=decision.traffic,
            stable=decision.stable,
            expect=lambda current: Mark.of(current) == basis,
            now=when,
        )
        if edit.changed:
            write_if_unchanged(edit)
        return edit

    async def _write(
        self, service: Service, decision: Decision, basis: Mark, now: float
    ) -> Decision | None:
        name = service.name
        when = datetime.fromtimestamp(now, UTC)
        state = service.incremental.state if service.incremental else None
        if decision.keep_since and state is not None and state.since is not None:
            when = state.since  # waiting keeps the step's window: its since stays
        try:
            edit = await asyncio.to_thread(self._edit, name, decision, basis, when)
        except ConflictError as exc:
            # A person's edit came first: look again next tick, and follow it.
            log.info("release edit skipped: the files changed", service=name, why=str(exc))
            return None
        except EditError as exc:
            log.error(
                "release decision not written",
                service=name,
                action=decision.action,
                reason=decision.reason,
                error=str(exc),
            )
            self._report(service, decision, now, f"not written: {exc}")
            return None
        self._marks[name] = Mark.of(edit.policies.service(name))
        if self._on_write is not None:
            self._on_write()
        written = self._clock()
        state = edit.policies.service(name).incremental
        since = (
            state.state.since.timestamp() if state and state.state and state.state.since else now
        )
        self._reports[name] = Report(name, decision, now, since, _share(service, decision))
        self._log(service, decision, now, written_ms=round((written - now) * 1000, 1))
        self._event(service, decision, now)
        if decision.action == "wait":  # said now: the ticks waiting after it are not news
            self._announced[name] = ("await-approval", "waiting", decision.step, since)
        if self._on_decision is not None:
            self._on_decision(name)
        if self._commit and edit.changed:
            try:
                sha = await asyncio.to_thread(commit, self.directory, edit.paths, edit.message)
                log.info("release step committed", service=name, commit=sha)
            except EditError as exc:
                log.error("release step not committed", service=name, error=str(exc))
        return decision

    # -- telling ----------------------------------------------------------------------

    def _report(
        self, service: Service, decision: Decision, now: float, error: str, note: str = ""
    ) -> None:
        release = service.incremental
        state = release.state if release else None
        since = state.since.timestamp() if state and state.since else None
        self._reports[service.name] = Report(
            service.name, decision, now, since, _share(service, decision), error, note
        )

    def _announce_hold(self, service: Service, decision: Decision, now: float) -> None:
        """A release held where it is (for data, an approval, the release window) is
        said once per step and reason (log, watch and notification events)."""
        name = service.name
        if decision.action not in HOLDS:
            self._announced.pop(name, None)
            return
        key = (decision.action, decision.phase, decision.step, self._reports[name].since)
        if self._announced.get(name) == key:
            return
        self._announced[name] = key
        self._log(service, decision, now)
        self._event(service, decision, now)
        if self._on_decision is not None:
            self._on_decision(name)

    def _event(self, service: Service, decision: Decision, now: float) -> None:
        """Tell `on_event` (the notifier: it only queues, never blocks the tick)."""
        release = service.incremental
        if self._on_event is None or release is None:
            return
        try:
            self._on_event(
                ReleaseEvent(
                    service=service.name,
                    action=decision.action,
                    phase=decision.phase,
                    step=decision.step,
                    steps=len(release.steps),
                    share=_share(service, decision),
                    to=release.to,
                    stable=service.stable,
                    traffic=decision.traffic,
                    reason=decision.reason,
                    verdict=decision.verdict,
                    at=now,
                )
            )
        except Exception:  # a notifier's bug must never stop a release
            log.exception("release event not delivered to the notifier", service=service.name)

    def _log(self, service: Service, decision: Decision, now: float, **extra: Any) -> None:
        release = service.incremental
        share = _share(service, decision)
        log.info(
            "release decision",
            service=service.name,
            action=decision.action,
            phase=decision.phase,
            step=decision.step,
            share=None if share is None else float(share),
            to=release.to if release else None,
            stable=service.stable,
            traffic=None
            if decision.traffic is None
            else {v: float(s) for v, s in decision.traffic.items()},
            reason=decision.reason,
            at=round(now, 3),
            **_verdict_json(decision.verdict, decision.window),
            **extra,
        )


def _share(service: Service, decision: Decision) -> Decimal | None:
    release = service.incremental
    if release is None or decision.phase in ("pending", "dark"):
        return None
    if decision.window is not None and decision.window.kind == "dark":
        return None
    if 0 <= decision.step < len(release.steps):
        return release.steps[decision.step]
    return None


def _span(seconds: float) -> str:
    """A length for people: 42s, 5m10s, 2h05m."""
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.0f}s"
    if seconds < 3600:
        return f"{int(seconds // 60)}m{int(seconds % 60):02d}s"
    return f"{int(seconds // 3600)}h{int(seconds % 3600 // 60):02d}m"
