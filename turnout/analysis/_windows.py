"""Sliding windows of per-cluster figures, summed across the fleet, in memory.

Time is cut into slots of `resolution` seconds (by arrival at turnout); each slot of a
cluster holds what every proxy reported for it then: requests, errors, resets and the
latency histogram. Slots older than `retention` are dropped; the composition root
raises `retention` to the longest window the policies may ask for (`ensure_retention`),
and `coverage` says when a window reaches back before what is kept (a restart, or the
retention). A window [since, until)
sums every slot that overlaps it, so its edges are rounded outwards to the resolution
(and, since a proxy's report covers its last flush interval, blurred by that much).

`CounterDeltas` turns each proxy's cumulative counters into increments.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from turnout.analysis._clusters import ClusterMap, clusters_of, resolver
from turnout.analysis._figures import Figures, Histogram

__all__ = ["CounterDeltas", "WindowStore"]


@dataclass(slots=True)
class _Reported:
    values: dict[str, float]
    uptime: float | None
    seen: float


class CounterDeltas:
    """Per-proxy increments of cumulative counters (Envoy sends totals since it started).

    - The first report of a proxy only sets its baseline: what it counted before
      turnout heard from it is not attributed to any window.
    - A proxy is known by its node id across streams, so a reconnect (turnout or
      the network restarting the stream) loses nothing: the next report's increments
      cover the gap. Node ids must be unique in the fleet (xDS needs that too).
    - A counter lower than before was reset (the proxy restarted, or the cluster was
      removed and added again): its increment is its whole new value. The proxy's
      `server.uptime` going down marks a restart, so every counter counts from zero.
    - A counter seen for the first time from a known proxy counts whole: Envoy only
      reports counters once they are used, so it was zero in the previous report.
    - A proxy not heard from for `forget_after` seconds is forgotten.
    """

    def __init__(self, forget_after: float = 3600.0) -> None:
        self._forget_after = forget_after
        self._last: dict[str, _Reported] = {}

    def update(
        self, node: str, values: Mapping[str, float], uptime: float | None, at: float
    ) -> dict[str, float] | None:
        """Increments since the node's previous report (None for its first report)."""
        previous = self._last.get(node)
        self._last[node] = _Reported(dict(values), uptime, at)
        if previous is None:
            self._forget(at)
            return None
        restarted = uptime is not None and previous.uptime is not None and uptime < previous.uptime
        deltas: dict[str, float] = {}
        for name, value in values.items():
            before = previous.values.get(name)
            reset = restarted or before is None or value < before
            delta = value if reset or before is None else value - before
            if delta:
                deltas[name] = delta
        return deltas

    def forget(self, node: str) -> None:
        """Drop a node's baseline (its next report is a first report again)."""
        self._last.pop(node, None)

    @property
    def nodes(self) -> int:
        return len(self._last)

    def _forget(self, now: float) -> None:
        stale = [n for n, r in self._last.items() if now - r.seen > self._forget_after]
        for node in stale:
            del self._last[node]


@dataclass(slots=True)
class _Slot:
    index: int
    requests: int = 0
    errors: int = 0
    resets: int = 0
    latency: list[int] | None = None  # bucket counts over `bounds`, added in place
    bounds: tuple[float, ...] = ()


@dataclass(slots=True)
class _Series:
    slots: deque[_Slot]
    reporters: dict[str, float]  # node id -> when it last reported this cluster


class WindowStore:
    """Per-cluster sliding windows fed by the metrics sink (or by `add`), read with
    `figures` (the interface `PrometheusSource` offers too).

    Only clusters that `clusters` maps to a (service, version) are kept. Thread-safe:
    the sink writes from the event loop, anyone may read.
    """

    def __init__(
        self,
        clusters: ClusterMap,
        *,
        resolution: float = 1.0,
        retention: float = 1800.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if resolution <= 0 or retention < resolution:
            raise ValueError("need 0 < resolution <= retention")
        self._resolve = resolver(clusters)
        self.resolution = resolution
        self.retention = retention
        self.clock = clock
        self._keep = math.ceil(retention / resolution)
        self._series: dict[str, _Series] = {}
        self._nodes: dict[str, deque[_Slot]] = {}
        """Per proxy (node id), its requests, errors and resets over every known
        cluster: what a config rollout compares its canary proxies with the rest on."""
        self._lock = threading.Lock()
        self.started_at = clock()

    def ensure_retention(self, seconds: float, *, minimum: float = 0.0) -> float:
        """Keep at least `seconds` (and `minimum`) of history from now on, or shrink to
        that when it is less than kept now and `minimum` allows; returns the retention.
        Slots already dropped are not recovered: a window reaching before them is
        reported by `coverage`."""
        retention = max(seconds, minimum, self.resolution)
        with self._lock:
            self.retention = retention
            self._keep = math.ceil(retention / self.resolution)
        return retention

    def coverage(self, now: float | None = None) -> tuple[float, str]:
        """(the earliest moment windows are complete from, why): the store's start
        ("since restart") or its retention ("retention 30m") whichever is later."""
        end = self.clock() if now is None else now
        kept_from = end - self.retention
        if self.started_at >= kept_from:
            return self.started_at, "since restart"
        return kept_from, f"retention {_seconds(self.retention)}"

    def add(
        self,
        cluster: str,
        node: str,
        at: float,
        *,
        requests: int = 0,
        errors: int = 0,
        resets: int = 0,
        latency: Histogram | None = None,
    ) -> bool:
        """Record one proxy's increments for `cluster` at `at` (Unix seconds); False
        when the cluster carries no known version (nothing is kept)."""
        if self._resolve(cluster) is None:
            return False
        index = math.floor(at / self.resolution)
        with self._lock:
            series = self._series.get(cluster)
            if series is None:
                series = self._series[cluster] = _Series(deque(), {})
            series.reporters[node] = max(at, series.reporters.get(node, at))
            if not (requests or errors or resets or (latency is not None and latency.total)):
                return True
            if requests or errors or resets:
                self._add_node(node, index, requests, errors, resets)
            slots = series.slots
            if not slots or slots[-1].index < index:
                slots.append(_Slot(index))
            slot = slots[-1]  # a late report (clock step back) joins the newest slot
            slot.requests += requests
            slot.errors += errors
            slot.resets += resets
            if latency is not None and latency.total:
                if slot.latency is None:
                    slot.latency, slot.bounds = list(latency.counts), latency.bounds
                elif slot.bounds == latency.bounds:
                    for i, count in enumerate(latency.counts):
                        slot.latency[i] += count
                else:  # bounds changed (a proxy configured otherwise): merge on the union
                    merged = Histogram(slot.bounds, tuple(slot.latency)).merge(latency)
                    slot.latency, slot.bounds = list(merged.counts), merged.bounds
            while slots and slots[0].index <= index - self._keep:
                slots.popleft()
        return True

    def _add_node(self, node: str, index: int, requests: int, errors: int, resets: int) -> None:
        slots = self._nodes.get(node)
        if slots is None:
            slots = self._nodes[node] = deque()
        if not slots or slots[-1].index < index:
            slots.append(_Slot(index))
        slot = slots[-1]
        slot.requests += requests
        slot.errors += errors
        slot.resets += resets
        while slots and slots[0].index <= index - self._keep:
            slots.popleft()

    def node_figures(
        self, nodes: Iterable[str], since: float, until: float | None = None, *, name: str = ""
    ) -> Figures:
        """The named proxies' (node ids) requests, errors and resets over every known
        cluster in [since, until) (until: now), labelled `name`; `proxies` counts those
        that reported anything. No latency (it is kept per cluster only)."""
        end = self.clock() if until is None else until
        requests = errors = resets = reported = 0
        with self._lock:
            for node in set(nodes):
                slots = self._nodes.get(node)
                if not slots:
                    continue
                seen = False
                for slot in slots:
                    start = slot.index * self.resolution
                    if start >= end or start + self.resolution <= since:
                        continue
                    seen = True
                    requests += slot.requests
                    errors += slot.errors
                    resets += slot.resets
                reported += seen
        return Figures(
            since, end, requests, errors, resets, Histogram(), reported, clusters=(name,)
        )

    def clusters(self) -> list[str]:
        """Every cluster with data, sorted."""
        with self._lock:
            return sorted(self._series)

    def reporters(self) -> dict[str, float]:
        """Every proxy that reported a known cluster, with when it last did."""
        seen: dict[str, float] = {}
        with self._lock:
            for series in self._series.values():
                for node, at in series.reporters.items():
                    seen[node] = max(at, seen.get(node, at))
        return seen

    async def figures(
        self, service: str, version: str, since: float, until: float | None = None
    ) -> Figures:
        """`service`'s `version` over [since, until) (until: now), summed over every
        cluster mapped to it and every proxy."""
        return self.figures_now(service, version, since, until)

    def figures_now(
        self, service: str, version: str, since: float, until: float | None = None
    ) -> Figures:
        """`figures` without awaiting (the store is in memory)."""
        clusters = clusters_of(self._resolve, self.clusters(), service, version)
        figures = self.figures_for_clusters(clusters, since, until)
        return Figures(
            figures.since,
            figures.until,
            figures.requests,
            figures.errors,
            figures.resets,
            figures.latency,
            figures.proxies,
            service,
            version,
            figures.clusters,
        )

    def figures_for_clusters(
        self, clusters: Iterable[str], since: float, until: float | None = None
    ) -> Figures:
        """The named clusters' figures over [since, until) (until: now)."""
        end = self.clock() if until is None else until
        names = tuple(sorted(set(clusters)))
        requests = errors = resets = 0
        latency: Histogram | None = None
        reporters: set[str] = set()
        with self._lock:
            for name in names:
                series = self._series.get(name)
                if series is None:
                    continue
                reporters.update(n for n, at in series.reporters.items() if at >= since)
                for slot in series.slots:
                    start = slot.index * self.resolution
                    if start >= end or start + self.resolution <= since:
                        continue
                    requests += slot.requests
                    errors += slot.errors
                    resets += slot.resets
                    if slot.latency is not None:
                        histogram = Histogram(slot.bounds, tuple(slot.latency))
                        latency = histogram if latency is None else latency.merge(histogram)
        return Figures(
            since,
            end,
            requests,
            errors,
            resets,
            latency if latency is not None else Histogram(),
            len(reporters),
            clusters=names,
        )


def _seconds(value: float) -> str:
    """1800.0 -> "30m", 90.0 -> "1m30s"."""
    minutes, seconds = divmod(round(value), 60)
    if not minutes:
        return f"{seconds}s"
    return f"{minutes}m" if not seconds else f"{minutes}m{seconds}s"
