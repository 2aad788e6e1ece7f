"""Translate and snapshot N services x 3 versions; print time and size."""

from __future__ import annotations

import time
from decimal import Decimal

from turnout.cache import Snapshot
from turnout.cli._controller import resources_by_type
from turnout.policy import Endpoint, Gateway, PolicySet, Rule, Service, Version
from turnout.policy._model import Match, Mirror, StringMatch
from turnout.translate import translate


def policy_set(services: int) -> PolicySet:
    """`services` services with three versions each, a dogfood rule and a mirror."""
    built = []
    for i in range(services):
        versions = tuple(
            Version(f"v{v}", (Endpoint(f"10.{v}.{i // 250}.{i % 250 + 1}", 8080),))
            for v in (1, 2, 3)
        )
        built.append(
            Service(
                name=f"svc{i:05d}",
                gateways=("public",),
                hosts=(f"svc{i:05d}.example.com",),
                versions=versions,
                stable="v1",
                traffic=(("v1", Decimal("95")), ("v2", Decimal("5"))),
                rules=(
                    Rule(
                        name="dogfood",
                        match=Match(headers=(("x-employee", StringMatch("exact", "true")),)),
                        traffic=(("v1", Decimal("50")), ("v2", Decimal("50"))),
                    ),
                ),
                mirror=Mirror("v3", Decimal("10")),
            )
        )
    return PolicySet(gateways=(Gateway("public", 10000),), services=tuple(built))


def _time(fn: object, repeat: int = 3) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()  # type: ignore[operator]
        best = min(best, time.perf_counter() - started)
    return best, result


def run() -> None:
    print("\n== translate: services x 3 versions -> snapshot (best of 3) ==")
    print(f"{'services':>9} {'translate s':>12} {'snapshot s':>11} {'total s':>8} {'bytes':>11}")
    for n in (100, 1000, 5000):
        policies = policy_set(n)
        t_translate, translation = _time(lambda p=policies: translate(p))
        resources = resources_by_type(translation.all)  # type: ignore[attr-defined]
        t_snapshot, snapshot = _time(lambda r=resources: Snapshot.build(r))
        size = sum(
            len(res.serialized)
            for type_url in resources
            for res in snapshot.resources(type_url).values()  # type: ignore[attr-defined]
        )
        print(
            f"{n:>9} {t_translate:>12.3f} {t_snapshot:>11.3f} "
            f"{t_translate + t_snapshot:>8.3f} {size:>11,}"
        )
