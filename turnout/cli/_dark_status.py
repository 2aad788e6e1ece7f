"""`turnout status`'s dark traffic section: each mirror target's continuous judgement
against the versions that answered the originals, with both sides' figures."""

from __future__ import annotations

from datetime import datetime

from turnout._proto.v1 import release_pb2 as pb
from turnout.cli._render import FIGURES_HEADERS, figures_row, seconds, table

__all__ = ["render_dark"]


def _lines(service: str, dark: pb.DarkAnalysis) -> list[str]:
    light = "+".join(dark.light) or "-"
    segments = ", ".join(s if s == "default" else f"rule {s}" for s in dark.segments)
    outcome = dark.outcome or "not judged"
    confidence = f" (confidence {dark.confidence:g})" if dark.outcome else ""
    lines = [
        f"{service}: {dark.to} (dark) against {light} (light), mirrored from {segments}: "
        f"{outcome}{confidence} over the last {seconds(dark.window_seconds)}"
    ]
    if dark.reasons:
        lines.append(f"  why: {'; '.join(dark.reasons)}")
    if dark.error:
        lines.append(f"  error: {dark.error}")
    if dark.window_note:
        lines.append(f"  {dark.window_note}")
    if dark.note:
        lines.append(f"  note: {dark.note}")
    if dark.HasField("dark") or dark.HasField("light_figures"):
        rows = [figures_row("dark", dark.dark), figures_row("light", dark.light_figures)]
        lines += [f"    {row}" for row in table(FIGURES_HEADERS, rows)]
    return lines


def render_dark(status: pb.Status, now: datetime | None = None) -> list[str]:
    """The dark traffic section's lines (empty when no service mirrors)."""
    del now  # the window is relative to the judgement, not to the reader's clock
    judged = [(s.name, d) for s in status.services for d in s.dark]
    if not judged:
        return []
    lines = ["DARK TRAFFIC (mirrored copies, judged against the versions answering the originals)"]
    for service, dark in judged:
        lines += _lines(service, dark)
    return lines
