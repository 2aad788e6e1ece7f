"""Continuous dark judgement: every mirror target, judged all the time on the mirrored
copies it answered against the versions that answered the originals.

A service with `mirror:` (on its default route or on rules) copies requests to the
mirror target; Envoy discards the copies' answers but counts them in the target's
cluster. So over a sliding window (the last `window` seconds) the target's cluster
figures are the **dark** side and the figures of the versions that serve the
mirrored segments (their shares, less the target itself) the **light** side, judged by
`judge_dark` with the service's `incremental.analysis` (or the default analysis),
at the confidence of a check made every tick (0.999). This runs whether or not a
release is under way: `requireDark` is the release driver's own, stepwise use of the
same judgement.

Per-version figures mix every segment that reaches a version (README: "Per version,
not per segment"): a light version also serving segments that are not mirrored, or a
target also taking live traffic, is compared as it is, and the latter is noted.
`traffic: instances` pools have no per-version figures and are not judged.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import structlog

from turnout.analysis import (
    CompareStore,
    Comparison,
    Figures,
    MetricsSource,
    Thresholds,
    Verdict,
    judge_dark,
)
from turnout.policy import INSTANCES, Analysis, Mirror, PolicySet, Service, Traffic

from ._machine import EARLY_CONFIDENCE, _thresholds

__all__ = [
    "DEFAULT_DARK_WINDOW",
    "DarkJudgement",
    "DarkTarget",
    "DarkWatch",
    "compare_light",
    "dark_targets",
]

log = structlog.get_logger("turnout.release")

#: How far back the continuous dark judgement looks by default (`--dark-window`).
DEFAULT_DARK_WINDOW = 300.0

#: Mirrored requests the dark version needs before it is judged, when the service has
#: no `incremental.analysis` to say (and no `requireDark.minRequests`).
DEFAULT_DARK_MIN_REQUESTS = 100


@dataclass(frozen=True, slots=True)
class DarkTarget:
    """One mirror target of a service and what it is judged against."""

    service: str
    to: str
    light: tuple[str, ...]  # versions answering the mirrored segments' originals
    segments: tuple[str, ...]  # "default" and/or rule names mirroring to `to`
    thresholds: Thresholds  # with max_diff_rate when a mirror to `to` has `compare:`
    note: str = ""
    compared_with: str = ""  # with `compare:`: the light version the comparators call


@dataclass(frozen=True, slots=True)
class DarkJudgement:
    """The latest judgement of one target over [since, until)."""

    target: DarkTarget
    at: float
    since: float
    until: float
    window: float  # the window asked for (until - since unless cut by coverage)
    verdict: Verdict | None = None
    error: str = ""  # the figures could not be read
    window_note: str = ""  # the figures cover less than the window

    @property
    def outcome(self) -> str:
        """ "pass", "fail", "hold", or "" when nothing could be judged."""
        return self.verdict.outcome if self.verdict is not None else ""


def _live(traffic: Traffic) -> tuple[str, ...]:
    return () if traffic == INSTANCES else tuple(v for v, share in traffic if share > 0)


def _segments(service: Service) -> list[tuple[str, Traffic, Mirror | None]]:
    return [("default", service.traffic, service.mirror)] + [
        (rule.name, rule.traffic, rule.mirror) for rule in service.rules
    ]


def compare_light(service: Service, traffic: Traffic, to: str) -> str | None:
    """The light version a comparator compares `to` with for a segment: stable when it
    answers the segment (or the segment is an instances pool), else the version with
    the largest share; None when only `to` answers it."""
    if traffic == INSTANCES:
        return service.stable if service.stable != to else None
    live = [(version, share) for version, share in traffic if version != to and share > 0]
    if any(version == service.stable for version, _ in live):
        return service.stable
    return max(live, key=lambda pair: pair[1])[0] if live else None


def dark_targets(service: Service) -> list[DarkTarget]:
    """The mirror targets of `service` with their light versions, in target order of
    first appearance (default route first, then rules in match order)."""
    segments = _segments(service)
    found: dict[str, tuple[list[str], list[str], list[str]]] = {}
    for name, traffic, mirror in segments:
        if mirror is None or mirror.percent <= 0:
            continue
        light, names, notes = found.setdefault(mirror.to, ([], [], []))
        names.append(name)
        if traffic == INSTANCES:
            notes.append(f"{name} is a traffic: instances pool (no per-version figures)")
            continue
        light += [v for v in _live(traffic) if v != mirror.to and v not in light]
    release = service.incremental
    if release is not None:
        dark = release.require_dark
        minimum = dark.min_requests if dark is not None else release.analysis.min_requests
        thresholds = _thresholds(release.analysis, minimum, EARLY_CONFIDENCE)
    else:
        thresholds = _thresholds(Analysis(), DEFAULT_DARK_MIN_REQUESTS, EARLY_CONFIDENCE)
    targets = []
    for to, (light, names, notes) in found.items():
        compared = [
            (mirror.compare, compare_light(service, traffic, to))
            for _name, traffic, mirror in segments
            if mirror is not None and mirror.to == to and mirror.percent > 0
            if mirror.compare is not None
        ]
        live = [name for name, traffic, _m in segments if to in _live(traffic)]
        if live and not compared:
            notes.append(
                f"{to} also answers live requests ({', '.join(live)}): its figures mix "
                "them with the mirrored copies"
            )
        judged, compared_with = thresholds, ""
        if compared:  # the strictest maxDiffRate of the segments comparing
            rate = min(compare.max_diff_rate for compare, _light in compared)
            judged = replace(thresholds, max_diff_rate=rate)
            compared_with = next((light for _c, light in compared if light), "")
        targets.append(
            DarkTarget(
                service.name,
                to,
                tuple(light),
                tuple(names),
                judged,
                "; ".join(notes),
                compared_with,
            )
        )
    return targets


def combine(figures: Sequence[Figures], service: str, label: str) -> Figures:
    """Several versions' figures over the same window as one (the light side)."""
    first = figures[0]
    latency = first.latency
    for other in figures[1:]:
        latency = latency.merge(other.latency)
    return Figures(
        first.since,
        first.until,
        sum(f.requests for f in figures),
        sum(f.errors for f in figures),
        sum(f.resets for f in figures),
        latency,
        max(f.proxies for f in figures),
        service,
        label,
        tuple(c for f in figures for c in f.clusters),
    )


class DarkWatch:
    """Judges every mirror target of the served policies every `tick` seconds over the
    last `window` seconds; `judgements()` for status, `on_change(service)` when a
    target's outcome changes (appears, goes, or passes/fails/holds anew)."""

    def __init__(
        self,
        policies: Callable[[], PolicySet | None],
        source: MetricsSource,
        *,
        window: float = DEFAULT_DARK_WINDOW,
        clock: Callable[[], float] = time.time,
        tick: float = 1.0,
        coverage: Callable[[float], tuple[float, str]] | None = None,
        on_change: Callable[[str], object] | None = None,
        compare: CompareStore | None = None,
    ) -> None:
        """``compare``: the comparators' figures, when comparators are configured
        (mirrors with `compare:` then copy to them, not to the dark version)."""
        if window <= 0:
            raise ValueError("the dark window must be longer than 0")
        self.window = window
        self._policies = policies
        self._source = source
        self._clock = clock
        self._tick = tick
        self._coverage = coverage
        self._on_change = on_change
        self._compare = compare
        self._judgements: dict[str, tuple[DarkJudgement, ...]] = {}

    def judgements(self) -> dict[str, tuple[DarkJudgement, ...]]:
        """The latest judgements per service that mirrors (services without: absent)."""
        return dict(self._judgements)

    async def run(self, stop: asyncio.Event) -> None:
        """Tick until `stop` is set."""
        while not stop.is_set():
            try:
                await self.tick()
            except Exception:
                log.exception("dark judgement tick failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self._tick)

    async def tick(self) -> list[str]:
        """Judge every target once; returns the services whose outcome changed."""
        policies = self._policies()
        if policies is None:
            return []  # rejected files: keep showing the last judgements
        now = self._clock()
        fresh: dict[str, tuple[DarkJudgement, ...]] = {}
        for service in policies.services:
            targets = dark_targets(service)
            if targets:
                fresh[service.name] = tuple(
                    await asyncio.gather(*(self._judge(t, now) for t in targets))
                )
        changed = sorted(
            name
            for name in fresh.keys() | self._judgements.keys()
            if _outcomes(fresh.get(name, ())) != _outcomes(self._judgements.get(name, ()))
        )
        self._judgements = fresh
        for name in changed:
            for judgement in fresh.get(name, ()):
                log.info(
                    "dark verdict",
                    service=name,
                    to=judgement.target.to,
                    light=list(judgement.target.light),
                    outcome=judgement.outcome,
                    reason=judgement.verdict.reason if judgement.verdict else judgement.error,
                )
            if self._on_change is not None:
                self._on_change(name)
        return changed

    async def _judge(self, target: DarkTarget, now: float) -> DarkJudgement:
        since = now - self.window
        note = ""
        if self._coverage is not None:
            covered, why = self._coverage(now)
            if covered > since:
                note = f"window {why}: figures cover the last {now - covered:.0f}s"
        judgement = DarkJudgement(target, now, since, now, self.window, window_note=note)
        if not target.light:
            why = f"no light version: the mirrored segments' traffic goes to {target.to} itself"
            return replace(judgement, error=f"{why} or to a traffic: instances pool")
        source: MetricsSource = self._source
        versions = target.light
        comparison: Comparison | None = None
        if target.thresholds.max_diff_rate is not None:
            if self._compare is None:
                target = replace(target, note=_join(target.note, _NO_COMPARATOR))
            else:  # the comparators' own calls to both sides, and what they found
                source, versions = self._compare, (target.compared_with or target.light[0],)
                comparison = self._compare.comparison(target.service, target.to, since, now)
            judgement = replace(judgement, target=target)
        try:
            dark, *light = await asyncio.gather(
                source.figures(target.service, target.to, since, now),
                *(source.figures(target.service, v, since, now) for v in versions),
            )
        except Exception as exc:  # a source down must not stop the watch
            return replace(judgement, error=f"metrics source: {exc}")
        lights = combine(light, target.service, "+".join(versions))
        verdict = judge_dark(dark, lights, target.thresholds, comparison)
        return replace(judgement, verdict=verdict)


_NO_COMPARATOR = (
    "no comparator is configured (turnout serve --comparator): the copies go to the dark "
    "version and its answers are not compared"
)


def _join(*notes: str) -> str:
    return "; ".join(n for n in notes if n)


def _outcomes(judgements: Sequence[DarkJudgement]) -> tuple[tuple[str, str], ...]:
    return tuple((j.target.to, j.outcome) for j in judgements)
