"""The release state machine: pure functions of what the files say, the figures and
the time. No I/O, no clock: the driver (`_driver`) reads, judges and writes.

    pending ──► [dark] ──► running (step 0 ─► 1 ─► ... ) ──► promoted
                  │            │
                  ▼            ▼
          failed | holding   rolled-back | holding | failed (progress deadline)
    paused: a person's pause, or the driver's when traffic was edited by hand
    waiting: step k passed and step k+1 is behind an `approve` gate (turnout approve)

- **pending** (or no `state` at all): the driver starts the release: the dark run when
  `requireDark` is set, else step 0 (traffic `{stable: 100 - s0, to: s0}`).
- **dark**: the mirror target `to` is judged on the mirrored copies against `stable`
  (which served the originals) from `since`; it needs `requireDark.for` and
  `requireDark.minRequests`. Clean: step 0. A significant breach: `failed` (onFailure
  rollback: there is no traffic to move back) or `holding` (onFailure hold).
- **running** at step k: `to` is judged against `stable` over [since, now], every tick.
  A significant breach fails the step at once (before the interval ends the judge
  must be surer: confidence 0.999 instead of 0.99, since it looks many times); once
  the interval is over, a pass advances (the step whose share is 100 is the
  promotion: `stable: to`, traffic `{to: 100}`, phase `promoted`), a hold (fewer than
  minRequests) waits for data until the progress deadline, which fails the release
  (phase `failed`, traffic back to stable when onFailure is rollback).
- **waiting** at step k: step k passed and `steps` has `approve` before step k+1; the
  phase is written (with the step's own `since`, so the step keeps its window) and
  the release waits for `turnout approve`, which records the approval in
  `state.approvals`. It is still judged every tick: a failure rolls back (or holds) at
  once, approval or not. Once approved, a pass advances. No progress deadline runs
  while it waits for a person.
- **window** (`incremental.window`): a move forward (start, advance, promote, the
  first step after a clean dark run) happens only while the window is open; outside
  it a passing step holds (nothing is written: "outside the release window, next
  opens at ..."). Rollbacks, failures and holds are never delayed by it, and a step
  held by the window does not fail at its progress deadline.
- On failure, onFailure `rollback`: traffic `{stable: 100}`, phase `rolled-back`;
  `hold`: traffic stays, phase `holding`, until a person acts.
- **holding / paused / promoted / rolled-back / failed**: the driver does nothing
  (it keeps showing the figures of a holding release).

People's edits (`reconcile`), against what the driver last saw (its `Mark`):

1. The state changed (pause, resume, rollback, promote, a step or phase written by
   hand): the driver follows it. A running release whose traffic is not its step's
   (after a resume, or a step changed by hand) gets its step's traffic, observed
   afresh from now.
2. Only the traffic (or stable) changed while the release is running or in its dark
   run: the edit stands and the release is paused, saying why. `turnout resume`
   restores the step's traffic; `turnout rollback`/`promote` end the release.
3. Seen for the first time (turnout started) running with traffic that is not its
   step's: paused the same way, since a person changed it while nobody watched.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Literal

from turnout.analysis import (
    Comparison,
    Figures,
    QueryResult,
    Thresholds,
    Verdict,
    judge,
    judge_dark,
)
from turnout.policy import (
    INSTANCES,
    Analysis,
    AnalysisQuery,
    Incremental,
    IncrementalState,
    Phase,
    Service,
    Traffic,
    duration_text,
    percent,
    traffic_text,
)

__all__ = [
    "DEFAULT_ANALYSIS",
    "EARLY_CONFIDENCE",
    "FINAL_CONFIDENCE",
    "HOLDS",
    "Action",
    "Decision",
    "Mark",
    "Window",
    "closed_window",
    "decide",
    "describe_figures",
    "judge_window",
    "longest_window",
    "reconcile",
    "step_traffic",
    "window",
]

#: Confidence needed to fail a step before its interval ends (it is judged every tick).
EARLY_CONFIDENCE = 0.999
#: Confidence needed once the interval is over (the judge's usual one).
FINAL_CONFIDENCE = 0.99

#: What is judged when `analysis` sets no threshold at all: the error rate may not rise
#: by more than a point over stable's. Latency is judged only when asked for (and a
#: ratio then needs `minLatencyIncrease` too: with Envoy's coarse buckets 4 ms -> 6 ms
#: crosses the 5 ms bound and doubles the estimate), so no ratio is assumed.
DEFAULT_ANALYSIS = Thresholds(max_error_rate_increase=0.01)

Action = Literal[
    "start",  # pending -> running at step 0
    "dark",  # pending -> dark (a dark run is required)
    "advance",  # step k passed -> step k+1
    "promote",  # the last step: stable becomes `to`
    "rollback",  # a failed step: all traffic to stable
    "hold",  # a failed step or dark run with onFailure hold: stay and report
    "fail",  # a failed dark run, or no verdict by the progress deadline
    "pause",  # traffic edited by hand: the edit stands
    "restore",  # a person changed the state: the step's traffic, observed afresh
    "observe",  # nothing to change yet (the verdict so far is shown)
    "await-data",  # the interval is over but there is too little data: held
    "wait",  # step k passed, step k+1 is behind an approve gate: phase waiting
    "await-approval",  # waiting, and no approval yet (nothing written)
    "await-window",  # a move forward outside the release window: held (nothing written)
    "idle",  # paused, finished, or nothing to judge
]

#: Actions that change the files.
WRITES: frozenset[Action] = frozenset(
    {
        "start",
        "dark",
        "advance",
        "promote",
        "rollback",
        "hold",
        "fail",
        "pause",
        "restore",
        "wait",
    }
)

#: Actions that say a release is held where it is (announced once, not every tick).
HOLDS: frozenset[Action] = frozenset({"await-data", "await-approval", "await-window"})

_ACTIVE: tuple[Phase, ...] = ("running", "dark", "waiting")


@dataclass(frozen=True, slots=True)
class Mark:
    """What the files said of one release when the driver last looked or wrote: the
    basis of its next decision (the compare in its compare-and-swap)."""

    traffic: dict[str, Decimal] | None  # None: `traffic: instances`
    stable: str
    state: IncrementalState | None

    @classmethod
    def of(cls, service: Service) -> Mark:
        release = service.incremental
        return cls(_split(service.traffic), service.stable, release.state if release else None)


@dataclass(frozen=True, slots=True)
class Window:
    """What to judge now: `canary` against `baseline` over [since, until)."""

    kind: Literal["canary", "dark"]
    canary: str
    baseline: str
    since: float
    until: float
    ends: float  # when the step (or dark run) has lasted its length
    deadline: float  # when it fails without a passing verdict
    thresholds: Thresholds
    queries: tuple[AnalysisQuery, ...] = ()  # custom checks to measure (a canary window)


@dataclass(frozen=True, slots=True)
class Decision:
    """What the driver does about one release, and why (with the figures)."""

    action: Action
    phase: Phase
    step: int
    reason: str
    traffic: dict[str, Decimal] | None = None  # the new default traffic, if it changes
    stable: str | None = None  # the new stable version, if it changes
    verdict: Verdict | None = None
    window: Window | None = None
    keep_since: bool = False  # written with the step's own since (waiting), not now

    @property
    def writes(self) -> bool:
        return self.action in WRITES


# -- helpers ---------------------------------------------------------------------------


def _split(traffic: Traffic) -> dict[str, Decimal] | None:
    return None if traffic == INSTANCES else dict(traffic)


def _show(traffic: dict[str, Decimal] | None) -> str:
    """A mark's traffic (None: an instances pool) as the policy layer writes it."""
    return traffic_text(INSTANCES if traffic is None else traffic)


def step_traffic(service: Service, step: int) -> dict[str, Decimal]:
    """The default traffic of step `step`: `to` at the step's share, stable the rest."""
    release = _release(service)
    share = release.steps[step]
    traffic = {service.stable: Decimal(100) - share, release.to: share}
    return {v: s for v, s in traffic.items() if s != 0}


def _release(service: Service) -> Incremental:
    if service.incremental is None:
        raise ValueError(f"{service.name} has no incremental release")
    return service.incremental


def _where(release: Incremental, step: int) -> str:
    return f"step {step + 1}/{len(release.steps)} ({percent(release.steps[step])}%)"


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.0f}ms"


def describe_figures(figures: Figures) -> str:
    """`v2 212 requests, 44 errors (0.208), p99 12ms`."""
    rate = f" ({figures.error_rate:.3g})" if figures.error_rate is not None else ""
    return (
        f"{figures.version or figures.name} {figures.requests} requests, "
        f"{figures.errors} errors{rate}, p99 {_ms(figures.p99)}"
    )


def _with_figures(verdict: Verdict) -> str:
    return (
        f"{verdict.reason} [{describe_figures(verdict.canary)}; "
        f"{describe_figures(verdict.baseline)}]"
    )


# -- what to judge ---------------------------------------------------------------------


def _thresholds(analysis: Analysis, min_requests: int, confidence: float) -> Thresholds:
    thresholds = Thresholds.from_analysis(analysis, confidence)
    judged = (
        thresholds.max_error_rate,
        thresholds.max_error_rate_increase,
        thresholds.max_latency_p99,
        thresholds.max_latency_p99_increase,
    )
    if all(limit is None for limit in judged):
        thresholds = replace(
            thresholds,
            max_error_rate_increase=DEFAULT_ANALYSIS.max_error_rate_increase,
            max_latency_p99_increase=DEFAULT_ANALYSIS.max_latency_p99_increase,
        )
    return replace(thresholds, min_requests=min_requests)


def window(service: Service, now: float) -> Window | None:
    """What the driver must judge now for this service's release; None when nothing
    (not started, paused, finished, or no `since` to count from)."""
    release = _release(service)
    state = release.state
    if state is None or state.since is None:
        return None
    since = state.since.timestamp()
    dark = release.require_dark
    if state.phase == "dark" and dark is not None:
        kind: Literal["canary", "dark"] = "dark"
        length, min_requests = dark.for_seconds, dark.min_requests
    elif state.phase in ("running", "holding", "waiting"):
        kind = "canary"
        length, min_requests = release.interval_seconds, release.analysis.min_requests
    else:
        return None
    ends = since + length
    confidence = FINAL_CONFIDENCE if now >= ends else EARLY_CONFIDENCE
    return Window(
        kind=kind,
        canary=release.to,
        baseline=service.stable,
        since=since,
        until=max(now, since),
        ends=ends,
        deadline=since + release.deadline_seconds(length),
        thresholds=_dark_compare(
            service, kind, _thresholds(release.analysis, min_requests, confidence)
        ),
        queries=release.analysis.queries if kind == "canary" else (),
    )


def _dark_compare(service: Service, kind: str, thresholds: Thresholds) -> Thresholds:
    """A dark run whose mirror has `compare:` must also pass `maxDiffRate`."""
    compare = service.mirror.compare if service.mirror is not None else None
    if kind != "dark" or compare is None:
        return thresholds
    return replace(thresholds, max_diff_rate=compare.max_diff_rate)


def longest_window(services: Iterable[Service]) -> float:
    """The longest window any release may judge, in seconds: a step or dark run is
    judged over [since, now] until its progress deadline, so a metrics store must keep
    at least this much (0 without releases)."""
    longest = 0.0
    for service in services:
        release = service.incremental
        if release is None:
            continue
        lengths = [release.interval_seconds]
        if release.require_dark is not None:
            lengths.append(release.require_dark.for_seconds)
        longest = max(longest, *(release.deadline_seconds(length) for length in lengths))
    return longest


def judge_window(
    window: Window,
    canary: Figures,
    baseline: Figures,
    queries: Sequence[QueryResult] = (),
    comparison: Comparison | None = None,
) -> Verdict:
    """The judge's verdict on a window's figures (`judge_dark` for a dark run, with the
    comparators' `comparison` when its mirror has `compare:`), with the custom checks
    measured for it (`window.queries`)."""
    if window.kind == "dark":
        return judge_dark(canary, baseline, window.thresholds, comparison)
    return judge(canary, baseline, window.thresholds, queries)


# -- deciding --------------------------------------------------------------------------


def _enter_step(service: Service, step: int, action: Action, why: str) -> Decision:
    release = _release(service)
    if release.steps[step] == 100:
        return Decision(
            "promote",
            "promoted",
            step,
            f"promoted {release.to} ({_where(release, step)}): {why}",
            traffic={release.to: Decimal(100)},
            stable=release.to,
        )
    traffic = step_traffic(service, step)
    return Decision(
        action,
        "running",
        step,
        f"{_where(release, step)}, traffic {_show(traffic)}: {why}",
        traffic=traffic,
    )


def _failure(service: Service, step: int, verdict: Verdict, win: Window) -> Decision:
    release = _release(service)
    figures = _with_figures(verdict)
    if win.kind == "dark":
        what = f"dark run of {release.to} failed: {figures}"
        if release.on_failure == "hold":
            return Decision("hold", "holding", step, f"{what}; holding", verdict=verdict)
        return Decision("fail", "failed", step, f"{what}; release blocked", verdict=verdict)
    where = _where(release, step)
    if release.on_failure == "hold":
        return Decision(
            "hold", "holding", step, f"{where} failed: {figures}; holding", verdict=verdict
        )
    return Decision(
        "rollback",
        "rolled-back",
        step,
        f"{where} failed: {figures}; traffic back to {service.stable}",
        traffic={service.stable: Decimal(100)},
        verdict=verdict,
    )


def _deadline(service: Service, step: int, why: str, win: Window) -> Decision:
    release = _release(service)
    length = win.deadline - win.since
    what = "dark run" if win.kind == "dark" else _where(release, step)
    reason = f"{what}: no verdict within the progress deadline ({duration_text(length)}): {why}"
    if win.kind == "canary" and release.on_failure == "rollback":
        return Decision(
            "fail",
            "failed",
            step,
            f"{reason}; traffic back to {service.stable}",
            traffic={service.stable: Decimal(100)},
        )
    return Decision("fail", "failed", step, reason)


def closed_window(release: Incremental, now: float) -> str | None:
    """Why a move forward must wait for the release window, or None when it is open."""
    window = release.window
    if window is None:
        return None
    when = datetime.fromtimestamp(now, UTC)
    if window.is_open(when):
        return None
    opens = window.next_open(when)
    return (
        f"outside the release window ({window.describe()}), next opens at "
        f"{opens.strftime('%Y-%m-%d %H:%M %Z')} ({_utc(opens)})"
    )


def _utc(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _forward(
    service: Service, decision: Decision, now: float, verdict: Verdict | None, win: Window | None
) -> Decision:
    """A move forward, unless the release window is closed: then held where it is."""
    release = _release(service)
    state = release.state
    closed = closed_window(release, now)
    if closed is None:
        return replace(decision, verdict=verdict, window=win)
    phase: Phase = state.phase if state is not None else "pending"
    step = state.step if state is not None else 0
    why = decision.reason.split(": ", 1)[-1]
    return Decision("await-window", phase, step, f"{closed}: {why}", verdict=verdict, window=win)


def decide(service: Service, verdict: Verdict | None, now: float, *, error: str = "") -> Decision:
    """The next move for a release whose files the driver has adopted (`reconcile`
    returned None). `verdict` judges `window(service, now)` (None when there is no
    window, or when the figures could not be read: `error` says why)."""
    release = _release(service)
    state = release.state
    if state is None or state.phase == "pending":
        dark = release.require_dark
        if dark is not None:
            return Decision(
                "dark",
                "dark",
                0,
                f"dark run of {release.to}: {duration_text(dark.for_seconds)} on mirrored "
                f"requests (at least {dark.min_requests}), judged against {service.stable}",
            )
        return _forward(
            service, _enter_step(service, 0, "start", "release started"), now, None, None
        )
    step, phase = state.step, state.phase
    if phase == "dark" and release.require_dark is None:
        skipped = _enter_step(service, 0, "start", "requireDark was removed: dark run skipped")
        return _forward(service, skipped, now, None, None)
    win = window(service, now)
    if phase not in _ACTIVE or win is None:
        reason = state.reason or ""
        if phase == "holding" and verdict is not None:
            return Decision("idle", phase, step, reason, verdict=verdict, window=win)
        return Decision("idle", phase, step, reason)
    if verdict is None:
        why = error or "no figures"
        outcome = "hold"
    else:
        why, outcome = verdict.reason, verdict.outcome
        if outcome == "fail":
            return replace(_failure(service, step, verdict, win), window=win)
    if now < win.ends:
        return Decision("observe", phase, step, f"observing: {why}", verdict=verdict, window=win)
    following = step + 1 if win.kind == "canary" and step + 1 < len(release.steps) else None
    if following is not None and release.gated(following):
        gate = _gate(release, following)
        if phase == "waiting":
            return Decision(
                "await-approval",
                phase,
                step,
                f"{gate}; meanwhile: {why}",
                verdict=verdict,
                window=win,
            )
        if outcome == "pass" and verdict is not None:
            passed = f"{_where(release, step)} passed: {why}"
            return Decision(
                "wait",
                "waiting",
                step,
                f"{gate}; {passed}",
                verdict=verdict,
                window=win,
                keep_since=True,
            )
    if outcome == "pass" and verdict is not None:
        if win.kind == "dark":
            decision = _enter_step(service, 0, "start", f"dark run clean: {_with_figures(verdict)}")
        elif following is not None:
            approved = " (approved)" if following in release.gates else ""
            decision = _enter_step(
                service, following, "advance", f"{_where(release, step)} passed{approved}: {why}"
            )
        else:  # the last step is 100 and is entered by promoting: only by hand here
            decision = _enter_step(service, step, "promote", f"{_where(release, step)} passed")
        return _forward(service, decision, now, verdict, win)
    if phase == "waiting":  # approved, but no pass yet: a person is not timed out
        return Decision(
            "await-data",
            phase,
            step,
            f"approved; holding for data: {why}",
            verdict=verdict,
            window=win,
        )
    if now >= win.deadline:
        return replace(_deadline(service, step, why, win), verdict=verdict, window=win)
    left = win.deadline - now
    return Decision(
        "await-data",
        phase,
        step,
        f"holding for data: {why}; fails at the progress deadline in {left:.0f}s",
        verdict=verdict,
        window=win,
    )


def _gate(release: Incremental, step: int) -> str:
    """`waiting for approval to go on to step 3/4 (50%): turnout approve SERVICE`."""
    return f"waiting for approval to go on to {_where(release, step)}: turnout approve records it"


# -- people's edits --------------------------------------------------------------------


def reconcile(service: Service, mark: Mark | None) -> Decision | None:
    """What to do about changes made to the files since the driver last looked
    (`mark`; None: it never looked). None: adopt the files as they are."""
    release = _release(service)
    current = Mark.of(service)
    if mark is not None and current == mark:
        return None
    state = release.state
    if state is None:
        return None
    step, phase = state.step, state.phase
    where = _where(release, step)
    if mark is None or mark.state != state:
        if phase != "running":
            return None
        matches = current.traffic == step_traffic(service, step)
        if matches and state.since is not None:
            return None
        if mark is None and not matches:
            return _pause(service, current, "found on start")
        why = "following the release state written by a person"
        if mark is None:
            why = "the state gives no since"
        traffic = step_traffic(service, step)
        return Decision(
            "restore",
            "running",
            step,
            f"{where}, traffic {_show(traffic)}: {why}; the step is observed from now",
            traffic=traffic,
        )
    if phase in _ACTIVE:
        return _pause(service, current, f"the driver last saw {_show(mark.traffic)}")
    return None


def _pause(service: Service, current: Mark, seen: str) -> Decision:
    release = _release(service)
    state = release.state
    assert state is not None
    step = state.step
    if state.phase == "dark":
        expected = "the dark run leaves traffic alone"
    else:
        expected = f"{_where(release, step)} is {_show(step_traffic(service, step))}"
    return Decision(
        "pause",
        "paused",
        step,
        f"traffic was edited by hand to {_show(current.traffic)} "
        f"({expected}; {seen}): paused so the edit stands; turnout resume "
        f"{service.name} restores the step's traffic, rollback or promote ends the release",
    )
