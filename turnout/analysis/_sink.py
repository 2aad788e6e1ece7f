"""Envoy's MetricsService, served by turnout: every Envoy streams its stats here.

Envoy (`envoy.stat_sinks.metrics_service`, see envoy/bootstrap.yaml) opens one
client stream, `envoy.service.metrics.v3.MetricsService/StreamMetrics`, and sends one
`StreamMetricsMessage` per `stats_flush_interval`: Prometheus-model metric families
named by the full stat name (`cluster.checkout_v2.upstream_rq_5xx`), the node
identifier on the first message only. What Envoy 1.40 sends, as checked:

- counters are cumulative (we keep per-proxy deltas, `CounterDeltas`), and only
  counters that have been used;
- histograms (`cluster.<name>.upstream_rq_time`, milliseconds, Envoy's default
  bounds) are per flush interval: each message's buckets count only the requests
  since the previous flush, so they are added as they are. A flush sent while the
  stream is down is lost (the counters catch up, the histogram does not);
- `upstream_rq_total` leaves out requests that never got a connection;
  `upstream_rq_completed` counts them, so it is the request count here, and
  `upstream_rq_5xx` includes the 503 Envoy answers itself on connect failure or reset.

Per cluster we read: `upstream_rq_completed` (requests), `upstream_rq_5xx` (errors),
`upstream_cx_connect_fail`, `upstream_cx_destroy_remote_with_active_rq`,
`upstream_rq_rx_reset`, `upstream_rq_timeout` (resets: no answer), and
`upstream_rq_time` (latency); and the gauge `membership_healthy` (the endpoints Envoy's
health checks pass, as each proxy sees them: the dashboard's healthy/total). Everything
else is skipped unparsed beyond the name.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from typing import Any

import grpc
import grpc.aio
import structlog
from envoy.config.core.v3.base_pb2 import Node

from turnout.analysis import _wire
from turnout.analysis._figures import Histogram
from turnout.analysis._windows import CounterDeltas, WindowStore

__all__ = ["MetricsSink"]

log = structlog.get_logger("turnout.analysis")

_PREFIX = "cluster."
_COUNTERS: dict[str, str] = {
    "upstream_rq_completed": "requests",
    "upstream_rq_5xx": "errors",
    "upstream_cx_connect_fail": "resets",
    "upstream_cx_destroy_remote_with_active_rq": "resets",
    "upstream_rq_rx_reset": "resets",
    "upstream_rq_timeout": "resets",
}
_LATENCY = "upstream_rq_time"
_HEALTHY = "membership_healthy"
_UPTIME = "server.uptime"


def _split(name: str) -> tuple[str, str]:
    """`cluster.<cluster>.<stat>` -> (cluster, stat); the stat is the last part."""
    cluster, _, stat = name[len(_PREFIX) :].rpartition(".")
    return cluster, stat


class MetricsSink:
    """Receives every Envoy's metrics stream and adds the per-cluster increments to a
    `WindowStore`. Serve `handler()` on a grpc server (turnout's xDS port)."""

    def __init__(self, store: WindowStore, deltas: CounterDeltas | None = None) -> None:
        self.store = store
        self._deltas = deltas if deltas is not None else CounterDeltas(store.retention)
        self._streams: dict[int, str] = {}
        self._next_stream = 0
        self.messages = 0
        self._healthy: dict[str, dict[str, int]] = {}  # cluster -> node -> healthy endpoints
        self.health_version = 0
        """Counts changes of :meth:`healthy`'s answer (a cheap "anything new?")."""

    def healthy(self) -> dict[str, int]:
        """Per cluster, its healthy endpoints as the proxies streaming now report them
        (`membership_healthy`): the lowest over the proxies, the worst view."""
        return {cluster: min(nodes.values()) for cluster, nodes in self._healthy.items() if nodes}

    def _set_healthy(self, cluster: str, node: str, value: int) -> None:
        nodes = self._healthy.setdefault(cluster, {})
        if nodes.get(node) != value:
            nodes[node] = value
            self.health_version += 1

    def _forget_health(self, node: str) -> None:
        for nodes in self._healthy.values():
            if nodes.pop(node, None) is not None:
                self.health_version += 1

    def handler(self) -> grpc.GenericRpcHandler:
        """The grpc handler for MetricsService/StreamMetrics."""
        method = grpc.stream_unary_rpc_method_handler(
            self._stream_metrics,
            request_deserializer=_wire.StreamMetricsMessage.FromString,
            response_serializer=lambda response: response.SerializeToString(),
        )
        return grpc.method_handlers_generic_handler(_wire.SERVICE, {_wire.METHOD: method})

    @property
    def streams(self) -> list[str]:
        """Node ids of the proxies streaming metrics now, one entry per stream."""
        return sorted(self._streams.values())

    async def _stream_metrics(
        self, requests: AsyncIterator[Any], context: grpc.aio.ServicerContext[Any, Any]
    ) -> Any:
        stream = self._next_stream
        self._next_stream += 1
        node = ""
        try:
            async for message in requests:
                if not node:
                    node = self._node_id(message, context)
                    self._streams[stream] = node
                    log.info("analysis.metrics_stream_open", node=node)
                self.ingest(node, message)
        except asyncio.CancelledError:
            # The proxy went away or the server is stopping: a normal end.
            return _wire.StreamMetricsResponse()
        finally:
            if self._streams.pop(stream, None) is not None:
                log.info("analysis.metrics_stream_closed", node=node)
                if node not in self._streams.values():
                    self._forget_health(node)
        return _wire.StreamMetricsResponse()

    @staticmethod
    def _node_id(message: Any, context: grpc.aio.ServicerContext[Any, Any]) -> str:
        if message.HasField("identifier"):
            node = Node.FromString(message.identifier.node)
            if node.id:
                return str(node.id)
        return f"peer:{context.peer()}"

    def ingest(self, node: str, message: Any, at: float | None = None) -> None:
        """Add one StreamMetricsMessage from proxy `node` received at `at` (now)."""
        when = self.store.clock() if at is None else at
        self.messages += 1
        counters: dict[str, float] = {}
        latencies: dict[str, Histogram] = {}
        uptime: float | None = None
        for family in message.envoy_metrics:
            name: str = family.name
            if not name.endswith(_WANTED):
                continue  # most of a message: one C call on the name decides
            if not name.startswith(_PREFIX):
                if name == _UPTIME and family.metric:
                    uptime = float(family.metric[0].gauge.value)
                continue
            stat = name[name.rfind(".") + 1 :]
            kind = family.type
            if kind == _wire.COUNTER and stat in _COUNTERS:
                counters[name] = sum(float(m.counter.value) for m in family.metric)
            elif kind == _wire.GAUGE and stat == _HEALTHY and family.metric:
                self._set_healthy(_split(name)[0], node, int(family.metric[0].gauge.value))
            elif kind == _wire.HISTOGRAM and stat == _LATENCY:
                histogram = _histogram(family)
                if histogram is not None:
                    latencies[_split(name)[0]] = histogram
        deltas = self._deltas.update(node, counters, uptime, when) or {}
        per_cluster: dict[str, dict[str, int]] = {}
        for name in counters:
            cluster, stat = _split(name)
            figures = per_cluster.get(cluster)
            if figures is None:
                figures = per_cluster[cluster] = {"requests": 0, "errors": 0, "resets": 0}
            delta = deltas.get(name)
            if delta:
                figures[_COUNTERS[stat]] += round(delta)
        for cluster in per_cluster.keys() | latencies.keys():
            figures = per_cluster.get(cluster, {})
            self.store.add(cluster, node, when, latency=latencies.get(cluster), **figures)


_WANTED = (*(f".{stat}" for stat in _COUNTERS), f".{_LATENCY}", f".{_HEALTHY}", _UPTIME)
_SECONDS: dict[tuple[float, ...], tuple[float, ...]] = {}  # Envoy's ms bounds, converted once


def _seconds(bounds_ms: tuple[float, ...]) -> tuple[float, ...]:
    seconds = _SECONDS.get(bounds_ms)
    if seconds is None:
        seconds = tuple(bound / 1000.0 for bound in bounds_ms)
        if len(_SECONDS) < 64:  # Envoy uses one set of bounds unless configured per stat
            _SECONDS[bounds_ms] = seconds
    return seconds


def _histogram(family: Any) -> Histogram | None:
    """A histogram family (milliseconds, cumulative buckets) in seconds; None if it
    counted nothing this interval (most clusters, most of the time)."""
    result: Histogram | None = None
    for metric in family.metric:
        histogram = metric.histogram
        total = int(histogram.sample_count)
        if not total:
            continue
        buckets = histogram.bucket
        bounds = tuple([b.upper_bound for b in buckets])
        cumulative = [int(b.cumulative_count) for b in buckets]
        if bounds and bounds[-1] == _INF:  # an explicit +Inf bucket: the total says it
            bounds, cumulative = bounds[:-1], cumulative[:-1]
        cumulative.append(max(total, cumulative[-1] if cumulative else 0))
        counts = [cumulative[0], *(b - a for a, b in itertools.pairwise(cumulative))]
        if min(counts) < 0:  # not monotonic: clamp, as Histogram.from_cumulative does
            converted = Histogram.from_cumulative(
                _seconds(bounds), [float(c) for c in cumulative[:-1]], float(total)
            )
        else:
            converted = Histogram(_seconds(bounds), tuple(counts))
        result = converted if result is None else result.merge(converted)
    return result


_INF = float("inf")
