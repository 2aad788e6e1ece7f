"""Prometheus metrics for `GET /metrics` on the admin address.

xds stays free of Prometheus: stream events arrive through an :class:`XdsCallbacks`
subclass, and whatever can be read off current state (connected proxies, config size,
reloads, the served version) is computed when scraped, from the controller and the
xDS server, so it can never drift from what `/status` says.

Latencies are measured from a publish (the cache wakes us synchronously in
``publish``) and only for streams that were open at that publish: a proxy connecting
later is a first sync, not a push.
"""

from __future__ import annotations

import itertools
import time
from bisect import bisect_left
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TypeVar

from prometheus_client import (
    CollectorRegistry,
    GCCollector,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
)
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from turnout.cache import ORDER, Snapshot, SnapshotCache, short_name
from turnout.server._controller import Controller
from turnout.xds import SERVICES, ProxyStatus, StreamInfo, XdsCallbacks

__all__ = ["Metrics"]

_T = TypeVar("_T")

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
_BOUNDS = (*(floatToGoString(b) for b in LATENCY_BUCKETS), "+Inf")  # type: ignore[no-untyped-call]
"""The ``le`` labels, formatted as prometheus_client formats them."""


class _Histogram:
    """A Prometheus histogram as plain numbers: observing is a bisect and two adds
    (``prometheus_client``'s per-call lock and label look-up cost more than the rest of
    a stream's ACK handling); exported by :class:`_EventCollector` when scraped."""

    __slots__ = ("counts", "sum")

    def __init__(self) -> None:
        self.counts = [0] * (len(LATENCY_BUCKETS) + 1)
        """Per bucket, not cumulative; the last is +Inf."""
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(LATENCY_BUCKETS, value)] += 1
        self.sum += value

    def buckets(self) -> list[tuple[str, float]]:
        cumulative = list(itertools.accumulate(self.counts))
        return list(zip(_BOUNDS, cumulative, strict=True))


class _Hooks(XdsCallbacks):
    """Counts stream events in plain ints and lists, by type URL (labelled at scrape
    time): these run per response and per ACK on every stream."""

    def __init__(self, metrics: Metrics) -> None:
        self._m = metrics

    def on_stream_open(self, stream: StreamInfo) -> None:
        self._m._opened[stream.stream_id] = self._m._publishes

    def on_stream_close(self, stream: StreamInfo) -> None:
        self._m._opened.pop(stream.stream_id, None)
        self._m._pushed.pop(stream.stream_id, None)

    def on_response(
        self, stream: StreamInfo, type_url: str, version: str, resource_count: int
    ) -> None:
        m = self._m
        pushes = m.pushes
        pushes[type_url] = pushes.get(type_url, 0) + 1
        opened = m._opened.get(stream.stream_id)
        if opened is None or opened >= m._publishes:
            return  # not open at the last publish: a first sync, not a push
        pushed = m._pushed.get(stream.stream_id)
        if pushed is None:
            pushed = m._pushed[stream.stream_id] = {}
        if pushed.get(type_url) != m._publishes:  # the first push of this publish only
            pushed[type_url] = m._publishes
            latency = m.push_latency.get(type_url)
            if latency is None:
                latency = m.push_latency[type_url] = _Histogram()
            latency.observe(time.monotonic() - m._published_at)

    def on_ack(self, stream: StreamInfo, type_url: str, version: str) -> None:
        acks = self._m.acks
        acks[type_url] = acks.get(type_url, 0) + 1

    def on_nack(self, stream: StreamInfo, type_url: str, version: str, message: str) -> None:
        nacks = self._m.nacks
        nacks[type_url] = nacks.get(type_url, 0) + 1

    def on_synced(self, stream: StreamInfo, version: str) -> None:
        m = self._m
        if version == m._published_version and m._open_at_publish(stream.stream_id):
            m.convergence.observe(time.monotonic() - m._published_at)


class _EventCollector(Collector):
    """The stream-event counters and latency histograms, labelled when scraped."""

    def __init__(self, metrics: Metrics) -> None:
        self._m = metrics

    def collect(self) -> Iterable[Metric]:
        m = self._m
        for name, doc, counts in (
            ("turnout_xds_pushes", "xDS responses sent, by type.", m.pushes),
            ("turnout_xds_acks", "xDS responses ACKed, by type.", m.acks),
            ("turnout_xds_nacks", "xDS responses rejected by a proxy, by type.", m.nacks),
        ):
            family = CounterMetricFamily(name, doc, labels=["type"])
            for type_url, count in _by_type(counts):
                family.add_metric([short_name(type_url)], count)
            yield family
        push = HistogramMetricFamily(
            "turnout_xds_push_latency_seconds",
            "From a publish to the first response of each type carrying it to a proxy "
            "that was connected at the publish.",
            labels=["type"],
        )
        for type_url, histogram in _by_type(m.push_latency):
            push.add_metric([short_name(type_url)], histogram.buckets(), histogram.sum)
        yield push
        convergence = HistogramMetricFamily(
            "turnout_xds_convergence_latency_seconds",
            "From a publish to a proxy connected at the publish having ACKed all of it.",
        )
        convergence.add_metric([], m.convergence.buckets(), m.convergence.sum)
        yield convergence


def _by_type(values: Mapping[str, _T]) -> list[tuple[str, _T]]:
    """xDS types in ORDER first, then any other (never expected) by name."""
    rank = {t: i for i, t in enumerate(ORDER)}
    return sorted(values.items(), key=lambda item: (rank.get(item[0], len(rank)), item[0]))


class _StateCollector(Collector):
    """Metrics read off current state at scrape time."""

    def __init__(self, controller: Controller, proxies: Callable[[], Sequence[ProxyStatus]]):
        self._controller = controller
        self._proxies = proxies
        self._sizes: tuple[Snapshot | None, dict[str, int]] = (None, {})

    def collect(self) -> Iterable[Metric]:
        controller = self._controller
        current = controller.current
        served = current.policy_version if current is not None else None

        connected = GaugeMetricFamily(
            "turnout_proxies_connected",
            "xDS streams open with an identified proxy, by stream kind.",
            labels=["kind"],
        )
        behind = GaugeMetricFamily(
            "turnout_proxies_behind",
            "Connected proxies that have not ACKed every type of the served version.",
        )
        by_kind = dict.fromkeys(SERVICES, 0)
        lagging = 0
        for proxy in self._proxies():
            if not (proxy.node_id or proxy.types):
                continue  # not identified yet (no first request)
            by_kind[proxy.kind] = by_kind.get(proxy.kind, 0) + 1
            if served is not None and proxy.synced_version != served:
                lagging += 1
        for kind, count in sorted(by_kind.items()):
            connected.add_metric([kind], count)
        behind.add_metric([], lagging)
        yield connected
        yield behind

        reloads = CounterMetricFamily(
            "turnout_policy_reloads",
            "Policy sets loaded, by result (an unchanged set counts as neither).",
            labels=["result"],
        )
        for result in ("accepted", "rejected"):
            reloads.add_metric([result], controller.reloads[result])
        yield reloads

        size = GaugeMetricFamily(
            "turnout_config_size_bytes",
            "Serialized size of the served snapshot (every gateway), by resource type.",
            labels=["type"],
        )
        for type_url, total in self._config_sizes(current.snapshot if current else None).items():
            size.add_metric([short_name(type_url)], total)
        yield size

        info = InfoMetricFamily("turnout_served_version", "The policy version being served.")
        if served is not None:
            info.add_metric([], {"version": served})
        yield info

    def _config_sizes(self, snapshot: Snapshot | None) -> dict[str, int]:
        if snapshot is None:
            return {}
        if self._sizes[0] is not snapshot:
            sizes = {
                t: sum(len(r.serialized) for r in snapshot.resources(t).values()) for t in ORDER
            }
            self._sizes = (snapshot, sizes)
        return self._sizes[1]


class Metrics:
    """turnout's metrics, in a registry of their own (nothing global, nothing at import)."""

    def __init__(
        self,
        controller: Controller,
        cache: SnapshotCache,
        proxies: Callable[[], Sequence[ProxyStatus]],
    ) -> None:
        # `*_created` series double the exposition for no use here (process-wide switch:
        # Metrics is only made by `turnout serve`'s App).
        disable_created_metrics()  # type: ignore[no-untyped-call]
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        r = self.registry
        self.pushes: dict[str, int] = dict.fromkeys(ORDER, 0)
        """xDS responses sent, by type URL (``turnout_xds_pushes_total``)."""
        self.acks: dict[str, int] = dict.fromkeys(ORDER, 0)
        self.nacks: dict[str, int] = dict.fromkeys(ORDER, 0)
        self.push_latency: dict[str, _Histogram] = {t: _Histogram() for t in ORDER}
        self.convergence = _Histogram()
        r.register(_EventCollector(self))
        r.register(_StateCollector(controller, proxies))
        self.callbacks: XdsCallbacks = _Hooks(self)
        self._cache = cache
        self._publishes = 0
        self._published_at = time.monotonic()
        self._published_version: str | None = None
        self._opened: dict[int, int] = {}
        """stream id -> how many publishes had happened when it opened."""
        self._pushed: dict[int, dict[str, int]] = {}
        """stream id -> type -> the publish whose first push was observed."""
        self._watch = cache.watch(self._on_publish)

    def _on_publish(self) -> None:
        self._publishes += 1
        self._published_at = time.monotonic()
        self._published_version = self._cache.policy_version

    def _open_at_publish(self, stream_id: int) -> bool:
        opened = self._opened.get(stream_id)
        return opened is not None and opened < self._publishes

    def exposition(self) -> bytes:
        """The text exposition format, for `GET /metrics`."""
        return generate_latest(self.registry)

    def close(self) -> None:
        """Stop watching the cache."""
        self._watch.cancel()
