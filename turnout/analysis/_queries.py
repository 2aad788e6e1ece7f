"""Custom checks: Prometheus queries judged beside Envoy's figures (`analysis.queries`).

Each query names the version with `$version`. It is run as an instant query at the end
of the window for the version being released (and, for `maxIncrease`, for `stable`
too); the value is the sum of the returned vector (or the scalar). The judge compares
it with its limit: `max` for the released version's value, `maxIncrease` for its
excess over stable's. A query that returns nothing (or NaN), or a Prometheus that
cannot answer, is **no data**: the verdict holds (never passes) and says which query
had none, so a misspelt metric cannot wave a release through.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

__all__ = ["QueryLike", "QueryResult", "QuerySource", "measure_queries"]


class QueryLike(Protocol):
    """The policy's `analysis.queries[]` (turnout.policy.AnalysisQuery has these)."""

    @property
    def name(self) -> str: ...
    @property
    def query(self) -> str: ...
    @property
    def max(self) -> float | None: ...
    @property
    def max_increase(self) -> float | None: ...


class QuerySource(Protocol):
    """Something that runs an instant PromQL query (`PrometheusSource`)."""

    async def value(self, promql: str, at: float) -> float | None:
        """The query's value at `at` (a vector's sum, or a scalar); None: no data."""
        ...


@dataclass(frozen=True, slots=True)
class QueryResult:
    """A custom check measured: the released version's value, and stable's when the
    limit is `max_increase`. None: no data (`error` says why when it was an error)."""

    name: str
    query: str
    max: float | None
    max_increase: float | None
    value: float | None
    baseline: float | None = None
    error: str = ""

    @property
    def measured(self) -> bool:
        """Whether there is what the check needs (else the verdict holds)."""
        if self.value is None:
            return False
        return self.max_increase is None or self.baseline is not None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "query": self.query,
            "max": self.max,
            "max_increase": self.max_increase,
            "value": self.value,
            "baseline": self.baseline,
            **({"error": self.error} if self.error else {}),
        }


def expand(query: str, version: str) -> str:
    """The query for one version (version names are letters, digits and `-`: safe
    inside a PromQL string)."""
    return query.replace("$version", version)


async def measure_queries(
    source: QuerySource | None,
    queries: Sequence[QueryLike],
    canary: str,
    baseline: str,
    at: float,
) -> tuple[QueryResult, ...]:
    """Run every query for `canary` (and `baseline` where it compares), concurrently."""

    async def one(query: QueryLike) -> QueryResult:
        def result(value: float | None, base: float | None, error: str = "") -> QueryResult:
            return QueryResult(
                query.name, query.query, query.max, query.max_increase, value, base, error
            )

        if source is None:
            return result(None, None, "no Prometheus to query (turnout serve --prometheus-url)")
        try:
            if query.max_increase is None:
                return result(await source.value(expand(query.query, canary), at), None)
            value, base = await asyncio.gather(
                source.value(expand(query.query, canary), at),
                source.value(expand(query.query, baseline), at),
            )
            return result(value, base)
        except Exception as exc:  # a Prometheus down is no data, never a pass
            return result(None, None, str(exc))

    return tuple(await asyncio.gather(*(one(query) for query in queries)))


def vector_value(data: Any) -> float | None:
    """The value of an instant query's `data`: a scalar's, or a vector's sum; None for
    an empty vector or NaN."""
    kind, result = data.get("resultType"), data.get("result")
    if kind == "scalar" and isinstance(result, list) and len(result) == 2:
        values = [float(result[1])]
    elif kind == "vector" and isinstance(result, list):
        values = [float(item["value"][1]) for item in result]
    else:
        return None
    values = [v for v in values if not math.isnan(v)]
    return math.fsum(values) if values else None
