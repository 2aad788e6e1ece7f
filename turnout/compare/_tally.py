"""What a comparator found since its last report, per mirror target, bounded.

`Tally.record` counts one compared request: the fields in which dark differed from
the primary light answer, and those in which the secondary did (noise); per field
and per set of fields differing together (what turnout needs to count *requests*
differing beyond noise, once it knows which fields are noise). `drain()` hands the
increments over as `TargetFigures` and starts again. Memory is bounded: at most
`max_fields` fields and `max_sets` field sets per target between two reports (the
rest are folded into `(more fields)`), and `examples` examples per field.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

from google.protobuf.timestamp_pb2 import Timestamp

from turnout._proto.v1 import release_pb2 as pb
from turnout.analysis import ENVOY_BUCKETS

from ._diff import MORE_FIELDS

__all__ = ["Call", "Example", "Tally", "TargetKey"]

#: (service, dark version, light version)
TargetKey = tuple[str, str, str]


@dataclass(frozen=True, slots=True)
class Call:
    """One call the comparator made: its status (None: no answer) and how long it took."""

    status: int | None
    seconds: float


@dataclass(frozen=True, slots=True)
class Example:
    method: str
    path: str
    query: str
    light: str
    other: str
    kind: str  # "dark" or "noise"
    at: float = field(default_factory=time.time)


class _Calls:
    __slots__ = ("errors", "latency", "requests", "resets")

    def __init__(self) -> None:
        self.requests = self.errors = self.resets = 0
        self.latency = [0] * (len(ENVOY_BUCKETS) + 1)

    def add(self, call: Call) -> None:
        self.requests += 1
        if call.status is None:
            self.resets += 1
            self.errors += 1
        elif call.status >= 500:
            self.errors += 1
        index = 0
        while index < len(ENVOY_BUCKETS) and call.seconds > ENVOY_BUCKETS[index]:
            index += 1
        self.latency[index] += 1

    def message(self) -> pb.CallFigures:
        return pb.CallFigures(
            requests=self.requests,
            errors=self.errors,
            resets=self.resets,
            latency_counts=self.latency if self.requests else (),
        )


class _Target:
    __slots__ = ("compared", "dark", "differing", "examples", "fields", "light", "noise", "skipped")

    def __init__(self) -> None:
        self.compared = 0
        self.skipped: Counter[str] = Counter()
        self.fields: dict[str, list[int]] = {}  # field -> [differing, noise]
        self.differing: Counter[frozenset[str]] = Counter()
        self.noise: Counter[frozenset[str]] = Counter()
        self.dark = _Calls()
        self.light = _Calls()
        self.examples: dict[str, list[Example]] = {}


class Tally:
    """Per-target increments since the last `drain()` (one event loop: no locks)."""

    def __init__(self, *, examples: int = 3, max_fields: int = 200, max_sets: int = 64) -> None:
        self.examples = examples
        self.max_fields = max_fields
        self.max_sets = max_sets
        self._targets: dict[TargetKey, _Target] = {}

    def _target(self, key: TargetKey) -> _Target:
        target = self._targets.get(key)
        if target is None:
            target = self._targets[key] = _Target()
        return target

    def skip(self, key: TargetKey, reason: str) -> None:
        """A mirrored request that was not compared, and why."""
        self._target(key).skipped[reason] += 1

    def calls(self, key: TargetKey, dark: Call | None, light: Call | None) -> None:
        """The comparator's calls to the dark version and the primary light instance."""
        target = self._target(key)
        if dark is not None:
            target.dark.add(dark)
        if light is not None:
            target.light.add(light)

    def record(
        self,
        key: TargetKey,
        dark: Mapping[str, tuple[str, str]],
        noise: Mapping[str, tuple[str, str]],
        request: tuple[str, str, str],
    ) -> None:
        """One compared request: the fields dark differed in from the primary (with
        both values), those the secondary differed in, and (method, path, query)."""
        target = self._target(key)
        target.compared += 1
        for kind, fields, column, sets in (
            ("dark", dark, 0, target.differing),
            ("noise", noise, 1, target.noise),
        ):
            names: set[str] = set()
            for name, (light, other) in fields.items():
                counted = self._field(target, name)
                if counted in names:
                    continue
                names.add(counted)
                target.fields[counted][column] += 1
                shown = target.examples.setdefault(counted, [])
                limit = self.examples if kind == "dark" else 1
                if counted != MORE_FIELDS and sum(1 for e in shown if e.kind == kind) < limit:
                    shown.append(Example(*request, light, other, kind))
            if names:
                together = frozenset(names)
                if together not in sets and len(sets) >= self.max_sets:
                    target.fields.setdefault(MORE_FIELDS, [0, 0])
                    together = frozenset({MORE_FIELDS})
                sets[together] += 1

    def _field(self, target: _Target, name: str) -> str:
        if name not in target.fields:
            if len(target.fields) >= self.max_fields:
                name = MORE_FIELDS
            target.fields.setdefault(name, [0, 0])
        return name

    def drain(self) -> list[pb.TargetFigures]:
        """The increments since the last drain, per target; then start from zero."""
        targets, self._targets = self._targets, {}
        out = []
        for (service, to, light), target in sorted(targets.items()):
            figures = pb.TargetFigures(
                service=service,
                to=to,
                light=light,
                compared=target.compared,
                skipped=dict(target.skipped),
                dark_calls=target.dark.message(),
                light_calls=target.light.message(),
            )
            figures.fields.extend(
                pb.FieldCount(field=name, differing=d, noise=n)
                for name, (d, n) in sorted(target.fields.items())
            )
            for sets, into in (
                (target.differing, figures.differing),
                (target.noise, figures.noise),
            ):
                into.extend(
                    pb.FieldSet(fields=sorted(fields), count=count)
                    for fields, count in sets.items()
                    if fields and count
                )
            for name, examples in sorted(target.examples.items()):
                for example in examples:
                    at = Timestamp()
                    at.FromNanoseconds(int(example.at * 1e9))
                    figures.examples.append(
                        pb.ExampleDiff(
                            field=name,
                            example=pb.DiffExample(
                                method=example.method,
                                path=example.path,
                                query=example.query,
                                light=example.light,
                                other=example.other,
                                kind=example.kind,
                                at=at,
                            ),
                        )
                    )
            out.append(figures)
        return out
