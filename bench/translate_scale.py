"""Translate and snapshot N services x 3 versions; print time and size.

- full: policy model -> Envoy resources -> snapshot (every resource packed, serialized
  and hashed once, the consistency check), as on turnout's first load;
- one-service change: the same set with one service's traffic share changed (and,
  separately, one version's endpoint moved), compiled incrementally after the full
  set, as every reload after the first is;
- the policy files: loading the same set from one YAML file per service, cold (every
  file parsed) and after a one-file change (the loader re-parses that file only).

Compiles run with the cyclic collector paused, as `turnout serve` runs them
(``HeapKeeper.compiling``): the compile layer itself leaves the collector alone, so
the figures ask for the pause here.
"""

from __future__ import annotations

import dataclasses
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import TypeVar

from turnout.cache import ORDER
from turnout.compile import Compiled, Compiler
from turnout.policy import Endpoint, Gateway, PolicySet, Rule, Service, Version, load_policies
from turnout.policy._model import Match, Mirror, StringMatch
from turnout.server import collector_paused

T = TypeVar("T")

CHANGED = 7


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


def _change(policies: PolicySet, step: int, *, endpoint: bool = False) -> PolicySet:
    services = list(policies.services)
    service = services[CHANGED]
    if endpoint:
        moved = Version("v1", (Endpoint("10.9.9.9", 9000 + step),))
        services[CHANGED] = dataclasses.replace(service, versions=(moved, *service.versions[1:]))
    else:
        share = Decimal(5 + step)
        services[CHANGED] = dataclasses.replace(
            service, traffic=(("v1", Decimal(100) - share), ("v2", share))
        )
    return dataclasses.replace(policies, services=tuple(services))


def _best(fn: Callable[[], T], repeat: int = 3) -> tuple[float, float, T]:
    """The least wall and the least CPU time of ``repeat`` runs, and a result. On a
    shared machine the wall time carries other processes' load; the CPU time
    (time.process_time) is this process's own."""
    best, best_cpu, result = float("inf"), float("inf"), None
    for _ in range(repeat):
        started, cpu = time.perf_counter(), time.process_time()
        result = fn()
        best = min(best, time.perf_counter() - started)
        best_cpu = min(best_cpu, time.process_time() - cpu)
    assert result is not None
    return best, best_cpu, result


def _changes(compiler: Compiler, policies: PolicySet, *, endpoint: bool) -> tuple[float, float]:
    """The median wall and CPU time of seven one-service changes."""
    times, cpu_times = [], []
    for step in range(1, 8):
        changed = _change(policies, step, endpoint=endpoint)
        started, cpu = time.perf_counter(), time.process_time()
        _compile(compiler, changed)
        times.append(time.perf_counter() - started)
        cpu_times.append(time.process_time() - cpu)
    return statistics.median(times), statistics.median(cpu_times)


def _compile(compiler: Compiler, policies: PolicySet) -> Compiled:
    """One compile as `turnout serve` runs it: the cyclic collector paused."""
    with collector_paused():
        return compiler.compile(policies)


def run(sizes: tuple[int, ...] = (100, 1000, 5000), files: int = 2000) -> None:
    print("\n== translate: services x 3 versions -> checked snapshot ==")
    print(
        f"{'services':>9} {'full s':>8} {'(CPU s)':>8} {'1 traffic ms':>13} {'(CPU)':>6}"
        f" {'1 endpoint ms':>14} {'(CPU)':>6} {'bytes':>11}"
        "  (full: best of 3; changes: median of 7, incremental)"
    )
    for n in sizes:
        policies = policy_set(n)
        t_full, cpu_full, compiled = _best(lambda p=policies: _compile(Compiler(), p))
        snapshot = compiled.snapshot
        size = sum(len(r.serialized) for t in ORDER for r in snapshot.resources(t).values())
        compiler = Compiler()
        _compile(compiler, policies)
        t_traffic, cpu_traffic = _changes(compiler, policies, endpoint=False)
        t_endpoint, cpu_endpoint = _changes(compiler, policies, endpoint=True)
        bar = ""
        if n == 5000:
            bar = (
                f"  [bar full <= 0.5 s: {'met' if t_full <= 0.5 else 'MISSED'}; "
                f"change <= 20 ms: {'met' if max(t_traffic, t_endpoint) <= 0.02 else 'MISSED'}]"
            )
        print(
            f"{n:>9} {t_full:>8.3f} {cpu_full:>8.3f} {t_traffic * 1000:>13.1f}"
            f" {cpu_traffic * 1000:>6.1f} {t_endpoint * 1000:>14.1f} {cpu_endpoint * 1000:>6.1f}"
            f" {size:>11,}{bar}"
        )
    if files:
        _files(files)


def _files(services: int) -> None:
    """The loader (libyaml through ruamel.yaml.clib) on one file per service: cold, then
    after one file is rewritten (best of 5). The files are dated an hour back, as in a
    checkout: a file modified within 2 s of being read is read again on every load
    (turnout/policy/_loader.py's racy rule), which would make every file of a
    just-written directory look edited."""
    from bench.fleet import write_policies, write_service

    with tempfile.TemporaryDirectory(prefix="turnout-bench-") as tmp:
        directory = Path(tmp) / "policies"
        write_policies(directory, services, 10000)
        then = time.time() - 3600
        for path in directory.rglob("*.yaml"):
            os.utime(path, (then, then))
        started, cpu = time.perf_counter(), time.process_time()
        load_policies(directory)
        cold, cold_cpu = time.perf_counter() - started, time.process_time() - cpu
        warm, warm_cpu = [], []
        for step in range(5):
            write_service(directory, CHANGED, v2=20 + step)
            started, cpu = time.perf_counter(), time.process_time()
            load_policies(directory)
            warm.append(time.perf_counter() - started)
            warm_cpu.append(time.process_time() - cpu)
    print(
        f"  loading {services:,} policy files: cold {cold:.2f} s ({cold_cpu:.2f} s CPU; every "
        f"file parsed), after a one-file change {min(warm) * 1000:.0f} ms "
        f"({min(warm_cpu) * 1000:.0f} ms CPU; that file "
        f"re-read and re-parsed, the set validated) [bar cold <= 1 s: "
        f"{'met' if cold <= 1 else 'MISSED'}; change <= 20 ms: "
        f"{'met' if min(warm) <= 0.02 else 'MISSED'}]"
    )
