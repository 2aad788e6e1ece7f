"""What `turnout status` and `turnout wait` print with: durations, tables and figures."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from turnout._proto.v1 import release_pb2 as pb

__all__ = ["FIGURES_HEADERS", "figures_row", "seconds", "table"]

FIGURES_HEADERS = ("VERSION", "ROLE", "REQUESTS", "ERRORS", "ERROR RATE", "P50", "P99", "PROXIES")


def seconds(value: float) -> str:
    """``4.2s``, ``2m10s``, ``1h05m``; negative with a ``-`` (a deadline passed)."""
    sign = "-" if value < 0 else ""
    value = abs(value)
    if value < 60:
        return f"{sign}{value:.1f}s"
    if value < 3600:
        return f"{sign}{int(value // 60)}m{int(value % 60):02d}s"
    return f"{sign}{int(value // 3600)}h{int(value % 3600 // 60):02d}m"


def table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    """Columns padded to their widest cell, two spaces apart, no trailing blanks."""
    lines = [list(headers), *(list(r) for r in rows)]
    widths = [max(len(r[i]) for r in lines) for i in range(len(headers))]
    return ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in lines]


def _ms(figures: pb.VersionFigures, field: str) -> str:
    if not figures.HasField(field):
        return "-"
    return f"{getattr(figures, field) * 1000:.0f}ms"


def figures_row(role: str, figures: pb.VersionFigures) -> list[str]:
    """One version's figures under :data:`FIGURES_HEADERS`."""
    rate = f"{figures.error_rate:.4g}" if figures.HasField("error_rate") else "-"
    return [
        figures.version,
        role,
        str(figures.requests),
        str(figures.errors),
        rate,
        _ms(figures, "p50_seconds"),
        _ms(figures, "p99_seconds"),
        str(figures.proxies),
    ]
