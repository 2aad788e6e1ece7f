"""What the release driver reads figures from: the sink's store or Prometheus."""

from __future__ import annotations

from typing import Protocol

from turnout.analysis._figures import Figures

__all__ = ["MetricsSource"]


class MetricsSource(Protocol):
    """A source of per-version figures (`WindowStore`, `PrometheusSource`)."""

    async def figures(
        self, service: str, version: str, since: float, until: float | None = None
    ) -> Figures:
        """`service`'s `version` over [since, until) in Unix seconds (until: now)."""
        ...
