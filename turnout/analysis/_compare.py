"""Dark response diffing, judged: what the comparators found, over a window.

The comparators (`turnout compare`) send, every second, per mirror target, how many
requests they compared, in which fields dark differed from the primary light answer
and in which the secondary light answer did (noise), per field and per set of fields
differing together, with a few examples, and their own calls' figures. `CompareStore`
keeps them in one-second slots like the metrics sink's `WindowStore` (the calls'
figures in one: `figures()` is a `MetricsSource`) and answers `comparison(service,
to, since, until)`.

**Noise is learned, per field** (`classify`): a field is *noise* when the two light
answers differ in it at least half as often as light and dark do (timestamps, ids,
ordering: it differs between two copies of the same version), or when dark differs in
it not significantly more often than light does (Fisher's exact test at the judge's
confidence). A field the light answers never differed in is never noise. `ignore`
fields are never counted at all (the comparator leaves them out).

**The check** (`maxDiffRate`): the share of compared requests whose dark answer
differs from the primary's in a field beyond noise, less the share whose secondary
answer does, against `maxDiffRate`: breached when above it, significant when Fisher's
exact test says dark differs more often than light (as `maxErrorRateIncrease`).
"""

from __future__ import annotations

import math
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace

from turnout._proto.v1 import release_pb2 as pb
from turnout.analysis._figures import ENVOY_BUCKETS, Figures, Histogram
from turnout.analysis._stats import fisher_exact_sf, two_proportions
from turnout.analysis._windows import WindowStore

__all__ = [
    "CompareStore",
    "Comparison",
    "DiffExample",
    "FieldFigures",
    "classify",
]

_EXAMPLES_KEPT = 5  # per target and field, the newest


@dataclass(frozen=True, slots=True)
class DiffExample:
    method: str
    path: str
    query: str
    light: str
    other: str
    kind: str  # "dark" or "noise"
    at: float


@dataclass(frozen=True, slots=True)
class FieldFigures:
    """One field over the window: requests where dark differed from the primary in it,
    where the secondary did, and (once classified) whether it counts."""

    field: str
    differing: int
    noise: int
    beyond_noise: bool = False
    examples: tuple[DiffExample, ...] = ()


@dataclass(frozen=True, slots=True)
class Comparison:
    """What the comparators found for one mirror target over [since, until)."""

    service: str
    to: str
    light: str
    since: float
    until: float
    compared: int = 0
    fields: tuple[FieldFigures, ...] = ()
    differing_sets: tuple[tuple[frozenset[str], int], ...] = ()
    noise_sets: tuple[tuple[frozenset[str], int], ...] = ()
    skipped: dict[str, int] = field(default_factory=dict)
    comparators: int = 0
    #: After `classify`: requests differing beyond noise, and light-vs-light requests
    #: differing in those same fields.
    differing: int = 0
    light_differing: int = 0

    @property
    def noise(self) -> int:
        """Requests whose two light answers differed in any field."""
        return sum(count for _fields, count in self.noise_sets)

    @property
    def differing_rate(self) -> float | None:
        return self.differing / self.compared if self.compared else None


def classify(comparison: Comparison, alpha: float) -> Comparison:
    """Mark each field noise or beyond noise (see the module docstring), count the
    requests differing beyond noise, fields beyond noise first, most differing first."""
    total = comparison.compared
    beyond: set[str] = set()
    for figures in comparison.fields:
        d, n = figures.differing, figures.noise
        if d == 0:
            continue
        if n == 0 or (2 * n < d and fisher_exact_sf(d, total, n, total) < alpha):
            beyond.add(figures.field)
    fields = sorted(
        (replace(f, beyond_noise=f.field in beyond) for f in comparison.fields),
        key=lambda f: (not f.beyond_noise, -f.differing, -f.noise, f.field),
    )
    return replace(
        comparison,
        fields=tuple(fields),
        differing=sum(c for s, c in comparison.differing_sets if s & beyond),
        light_differing=sum(c for s, c in comparison.noise_sets if s & beyond),
    )


def diff_check_values(comparison: Comparison) -> tuple[float, float, float]:
    """(dark-vs-light rate above light-vs-light, Fisher's p, the rate itself) of a
    classified comparison."""
    n = comparison.compared
    test = two_proportions(comparison.differing, n, comparison.light_differing, n)
    return test.difference, test.p_value, test.rate1


@dataclass(slots=True)
class _Slot:
    index: int
    compared: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    fields: dict[str, list[int]] = field(default_factory=dict)
    differing: Counter[frozenset[str]] = field(default_factory=Counter)
    noise: Counter[frozenset[str]] = field(default_factory=Counter)


@dataclass(slots=True)
class _Series:
    light: str
    slots: deque[_Slot] = field(default_factory=deque)
    examples: dict[str, deque[DiffExample]] = field(default_factory=dict)


def _version_of(cluster: str) -> tuple[str, str] | None:
    # The calls are filed under `{service}_{version}`, as Envoy names clusters.
    service, sep, version = cluster.partition("_")
    return (service, version) if sep else None


class CompareStore:
    """The comparators' figures per mirror target, in one-second slots, thread-safe."""

    def __init__(
        self,
        *,
        resolution: float = 1.0,
        retention: float = 1800.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.resolution = resolution
        self.retention = retention
        self.clock = clock
        self._keep = math.ceil(retention / resolution)
        self._series: dict[tuple[str, str], _Series] = {}
        self._lock = threading.Lock()
        self.calls = WindowStore(
            _version_of, resolution=resolution, retention=retention, clock=clock
        )
        self.comparators: dict[str, float] = {}  # connected: name -> last report
        self.reports = 0

    def ensure_retention(self, seconds: float, *, minimum: float = 0.0) -> float:
        """As `WindowStore.ensure_retention`, for both stores."""
        retention = self.calls.ensure_retention(seconds, minimum=minimum)
        with self._lock:
            self.retention = retention
            self._keep = math.ceil(retention / self.resolution)
        return retention

    def add(self, comparator: str, figures: pb.TargetFigures, at: float | None = None) -> None:
        """One comparator's increments for one target."""
        at = self.clock() if at is None else at
        for calls, version in (
            (figures.dark_calls, figures.to),
            (figures.light_calls, figures.light),
        ):
            if calls.requests:
                counts = tuple(calls.latency_counts)
                self.calls.add(
                    f"{figures.service}_{version}",
                    comparator,
                    at,
                    requests=calls.requests,
                    errors=calls.errors,
                    resets=calls.resets,
                    latency=Histogram(ENVOY_BUCKETS, counts)
                    if len(counts) == len(ENVOY_BUCKETS) + 1
                    else None,
                )
        index = math.floor(at / self.resolution)
        with self._lock:
            key = (figures.service, figures.to)
            series = self._series.get(key)
            if series is None:
                series = self._series[key] = _Series(figures.light)
            series.light = figures.light
            if not series.slots or series.slots[-1].index < index:
                series.slots.append(_Slot(index))
            slot = series.slots[-1]
            slot.compared += figures.compared
            slot.skipped.update(dict(figures.skipped))
            for count in figures.fields:
                both = slot.fields.setdefault(count.field, [0, 0])
                both[0] += count.differing
                both[1] += count.noise
            for sets, into in ((figures.differing, slot.differing), (figures.noise, slot.noise)):
                for fields in sets:
                    into[frozenset(fields.fields)] += fields.count
            for example in figures.examples:
                kept = series.examples.setdefault(example.field, deque(maxlen=_EXAMPLES_KEPT))
                e = example.example
                kept.append(
                    DiffExample(
                        e.method,
                        e.path,
                        e.query,
                        e.light,
                        e.other,
                        e.kind,
                        e.at.ToNanoseconds() / 1e9,
                    )
                )
            while series.slots and series.slots[0].index <= index - self._keep:
                series.slots.popleft()

    def targets(self) -> list[tuple[str, str]]:
        with self._lock:
            return sorted(self._series)

    def comparison(
        self, service: str, to: str, since: float, until: float | None = None
    ) -> Comparison:
        """The target's figures over [since, until) (until: now), not yet classified."""
        end = self.clock() if until is None else until
        compared = 0
        skipped: Counter[str] = Counter()
        fields: dict[str, list[int]] = {}
        differing: Counter[frozenset[str]] = Counter()
        noise: Counter[frozenset[str]] = Counter()
        with self._lock:
            series = self._series.get((service, to))
            light = series.light if series is not None else ""
            examples = dict(series.examples) if series is not None else {}
            for slot in series.slots if series is not None else ():
                start = slot.index * self.resolution
                if start >= end or start + self.resolution <= since:
                    continue
                compared += slot.compared
                skipped.update(slot.skipped)
                for name, (d, n) in slot.fields.items():
                    both = fields.setdefault(name, [0, 0])
                    both[0] += d
                    both[1] += n
                differing.update(slot.differing)
                noise.update(slot.noise)
            comparators = len(self.comparators)
        return Comparison(
            service,
            to,
            light,
            since,
            end,
            compared,
            tuple(
                FieldFigures(
                    name,
                    d,
                    n,
                    examples=tuple(e for e in examples.get(name, ()) if since <= e.at < end + 1),
                )
                for name, (d, n) in sorted(fields.items())
            ),
            tuple(differing.items()),
            tuple(noise.items()),
            dict(skipped),
            comparators,
        )

    async def figures(
        self, service: str, version: str, since: float, until: float | None = None
    ) -> Figures:
        """The comparators' calls to `version` (a `MetricsSource`)."""
        return await self.calls.figures(service, version, since, until)

    def connected(self, comparator: str) -> None:
        with self._lock:
            self.comparators[comparator] = self.clock()

    def disconnected(self, comparator: str) -> None:
        with self._lock:
            self.comparators.pop(comparator, None)

    def reported(self, comparator: str, targets: Iterable[pb.TargetFigures]) -> None:
        """One report of one comparator (every target in it)."""
        now = self.clock()
        with self._lock:
            self.comparators[comparator] = now
            self.reports += 1
        for figures in targets:
            self.add(comparator, figures, now)
