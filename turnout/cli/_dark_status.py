"""`turnout status`'s dark traffic section: each mirror target's continuous judgement
against the versions that answered the originals, with both sides' figures."""

from __future__ import annotations

from datetime import datetime

from turnout._proto.v1 import release_pb2 as pb
from turnout.cli._render import FIGURES_HEADERS, figures_row, seconds, table

__all__ = ["render_dark", "render_dark_detail"]


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
    if dark.HasField("comparison"):
        lines += _comparison(dark.comparison)
    if dark.HasField("dark") or dark.HasField("light_figures"):
        rows = [figures_row("dark", dark.dark), figures_row("light", dark.light_figures)]
        lines += [f"    {row}" for row in table(FIGURES_HEADERS, rows)]
    return lines


_TOP_FIELDS = 3  # fields beyond noise shown per target in `turnout status`


def _counts(comparison: pb.Comparison) -> str:
    rate = f" ({comparison.differing_rate:.3g})" if comparison.HasField("differing_rate") else ""
    skipped = ", ".join(f"{n} {why}" for why, n in sorted(comparison.skipped.items()))
    return (
        f"compared {comparison.compared} against {comparison.light or '-'}: "
        f"{comparison.differing} differing beyond noise{rate}, noise {comparison.noise}, "
        f"maxDiffRate {comparison.max_diff_rate:g}" + (f"; skipped {skipped}" if skipped else "")
    )


def _example(example: pb.DiffExample) -> str:
    query = f"?{example.query}" if example.query else ""
    other = "dark" if example.kind == "dark" else "light (secondary)"
    return (
        f"{example.method} {example.path}{query}: light {example.light} / {other} {example.other}"
    )


def _comparison(comparison: pb.Comparison) -> list[str]:
    lines = [f"  responses {_counts(comparison)}"]
    if comparison.error:
        lines.append(f"  compare: {comparison.error}")
    beyond = [f for f in comparison.fields if f.beyond_noise]
    for found in beyond[:_TOP_FIELDS]:
        example = next((e for e in found.examples if e.kind == "dark"), None)
        shown = f"; e.g. {_example(example)}" if example is not None else ""
        lines.append(f"  differs: {found.field} in {found.differing}{shown}")
    if len(beyond) > _TOP_FIELDS:
        lines.append(f"  ... {len(beyond) - _TOP_FIELDS} more field(s): turnout status --dark")
    noise = [f.field for f in comparison.fields if not f.beyond_noise]
    if noise:
        lines.append(f"  noise (learned): {', '.join(noise)}")
    return lines


def render_dark_detail(status: pb.Status, service: str) -> list[str]:
    """`turnout status --dark SERVICE`: every compared field of each of the service's
    mirror targets, with its counts and examples (empty when nothing is judged)."""
    lines: list[str] = []
    for found in status.services:
        if found.name != service:
            continue
        for dark in found.dark:
            lines += _lines(found.name, dark)[:1]
            if not dark.HasField("comparison"):
                lines.append("  (no compare: on this mirror: only its figures are judged)")
                continue
            comparison = dark.comparison
            lines.append(f"  responses {_counts(comparison)}")
            if comparison.error:
                lines.append(f"  compare: {comparison.error}")
            rows = [
                [
                    f.field,
                    "beyond noise" if f.beyond_noise else "noise",
                    str(f.differing),
                    str(f.noise),
                ]
                for f in comparison.fields
            ]
            if rows:
                shown = table(["FIELD", "COUNTED AS", "DARK DIFFERS", "LIGHT DIFFERS"], rows)
                lines += [f"    {row}" for row in shown]
            for f in comparison.fields:
                for example in f.examples:
                    lines.append(f"  {f.field}: {_example(example)}")
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
