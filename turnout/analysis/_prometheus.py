"""The same figures read from a Prometheus that scrapes Envoy's `/stats/prometheus`.

For teams that already run one. Each figure is one instant query at `until`, summed
by Prometheus across every scraped proxy, of how much each series grew since `since`:

    sum((X - X offset W) >= 0 or X * 1)

for X = envoy_cluster_upstream_rq_completed{C} (requests),
envoy_cluster_upstream_rq_xx{C, envoy_response_code_class="5"} (errors), the reset
counters (connect failures, remote resets, timeouts), and `sum by (le)` of
envoy_cluster_upstream_rq_time_bucket{C} (latency, milliseconds). C selects the
clusters mapped to the version (`envoy_cluster_name=~"..."`, found among that label's
values) plus any `selector` given; W = until - since.

Why not `increase()`: it extrapolates to the window's edges (a 10 s window with 1 s
scrapes comes out ~10% high) and misses what a series counted before its first scrape
(Envoy creates `upstream_rq_5xx` on the first 5xx). The difference of two samples is
exact at scrape resolution, and the `or X * 1` arm gives the same semantics as the
sink's per-proxy deltas: a series new in the window (a new proxy, a first 5xx) or
reset in it (a proxy restart) counts its whole current value. A proxy that stopped
being scraped before `until` drops out of the sums.

The latency buckets come back raw, so quantiles are estimated by the same code as the
sink's (not `histogram_quantile`), and the judge sees the same kind of figures from
both sources.
"""

from __future__ import annotations

import asyncio
import math
import re
import time
from collections.abc import Callable, Iterable
from typing import Any

import aiohttp

from turnout.analysis._clusters import ClusterMap, clusters_of, resolver
from turnout.analysis._figures import Figures, Histogram
from turnout.analysis._queries import vector_value

__all__ = ["PrometheusError", "PrometheusSource"]

_RESETS = (
    "envoy_cluster_upstream_cx_connect_fail",
    "envoy_cluster_upstream_cx_destroy_remote_with_active_rq",
    "envoy_cluster_upstream_rq_rx_reset",
    "envoy_cluster_upstream_rq_timeout",
)


class PrometheusError(RuntimeError):
    """Prometheus could not be reached or refused a query."""


def _quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


class PrometheusSource:
    """Figures from Prometheus' HTTP API (`url` like http://127.0.0.1:9090), with the
    interface of `WindowStore.figures`. `selector` adds label matchers to every
    query (e.g. `job="envoy"`). Close it (or use `async with`) to release its session.
    """

    def __init__(
        self,
        url: str,
        clusters: ClusterMap,
        *,
        selector: str = "",
        timeout: float = 10.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.url = url.rstrip("/")
        self._resolve = resolver(clusters)
        self._selector = selector.strip().strip(",")
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None
        self.clock = clock

    async def __aenter__(self) -> PrometheusSource:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _get(self, path: str, params: dict[str, str]) -> Any:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout, trust_env=False)
        try:
            async with self._session.get(f"{self.url}{path}", params=params) as response:
                body = await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise PrometheusError(f"Prometheus at {self.url}: {exc}") from exc
        if not isinstance(body, dict) or body.get("status") != "success":
            error = body.get("error") if isinstance(body, dict) else body
            raise PrometheusError(f"Prometheus at {self.url} refused {params}: {error}")
        return body["data"]

    async def cluster_names(self) -> list[str]:
        """Every `envoy_cluster_name` Prometheus knows."""
        data = await self._get("/api/v1/label/envoy_cluster_name/values", {})
        return sorted(str(name) for name in data)

    async def query(self, promql: str, at: float) -> list[dict[str, Any]]:
        """An instant query's result vector."""
        data = await self._get("/api/v1/query", {"query": promql, "time": f"{at:.3f}"})
        result: list[dict[str, Any]] = data.get("result", [])
        return result

    async def value(self, promql: str, at: float) -> float | None:
        """An instant query's value (a vector's sum, or a scalar); None: no data. For
        `analysis.queries` (`measure_queries`)."""
        data = await self._get("/api/v1/query", {"query": promql, "time": f"{at:.3f}"})
        return vector_value(data)

    async def figures(
        self, service: str, version: str, since: float, until: float | None = None
    ) -> Figures:
        """`service`'s `version` over [since, until) (until: now)."""
        clusters = clusters_of(self._resolve, await self.cluster_names(), service, version)
        figures = await self.figures_for_clusters(clusters, since, until)
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

    async def figures_for_clusters(
        self, clusters: Iterable[str], since: float, until: float | None = None
    ) -> Figures:
        """The named clusters' figures over [since, until) (until: now)."""
        end = self.clock() if until is None else until
        names = tuple(sorted(set(clusters)))
        if not names or end <= since:
            return Figures(since, end, clusters=names)
        matchers = [f'envoy_cluster_name=~"{_quote("|".join(re.escape(n) for n in names))}"']
        if self._selector:
            matchers.append(self._selector)
        c = ",".join(matchers)
        window = f"{max(1, math.ceil((end - since) * 1000))}ms"

        def grown(series: str) -> str:
            return f"(({series} - {series} offset {window}) >= 0 or {series} * 1)"

        async def total(series: str) -> int:
            vector = await self.query(f"sum({grown(series)})", end)
            return round(sum(float(item["value"][1]) for item in vector))

        counts = await asyncio.gather(
            total(f"envoy_cluster_upstream_rq_completed{{{c}}}"),
            total(f'envoy_cluster_upstream_rq_xx{{{c},envoy_response_code_class="5"}}'),
            *(total(f"{name}{{{c}}}") for name in _RESETS),
        )
        requests, errors, resets = counts[0], counts[1], sum(counts[2:])
        reporting, buckets = await asyncio.gather(
            self.query(
                "count by (instance) "
                f"(last_over_time(envoy_cluster_upstream_rq_completed{{{c}}}[{window}]))",
                end,
            ),
            self.query(
                f"sum by (le) ({grown(f'envoy_cluster_upstream_rq_time_bucket{{{c}}}')})", end
            ),
        )
        proxies = len(reporting)
        return Figures(
            since,
            end,
            requests,
            errors,
            resets,
            _latency(buckets),
            proxies,
            clusters=names,
        )


def _latency(vector: list[dict[str, Any]]) -> Histogram:
    """Per-`le` increases (milliseconds, cumulative) as a histogram in seconds."""
    finite: list[tuple[float, float]] = []
    total = 0.0
    for item in vector:
        le = float(item["metric"]["le"])
        value = float(item["value"][1])
        if math.isnan(value):
            continue
        if math.isinf(le):
            total = value
        else:
            finite.append((le / 1000.0, value))
    if not finite:
        return Histogram()
    finite.sort()
    return Histogram.from_cumulative(
        [b for b, _ in finite], [v for _, v in finite], max(total, finite[-1][1])
    )
