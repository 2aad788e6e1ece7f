"""`turnout status`'s release section: each incremental release with its phase, step,
share, time in step, both versions' figures, the verdict and why."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from turnout._proto.v1 import release_pb2 as pb
from turnout.cli._render import FIGURES_HEADERS, figures_row, seconds, table

__all__ = ["render_releases"]


def _at(timestamp: Any) -> datetime:
    return timestamp.ToDatetime(tzinfo=UTC)  # type: ignore[no-any-return]


def _headline(service: pb.ServiceStatus, now: datetime) -> str:
    inc = service.incremental
    text = f"{service.name}: {service.stable} -> {inc.to}"
    if not inc.HasField("state"):
        return f"{text}: not started"
    state = inc.state
    text += f": {state.phase}"
    if state.phase not in ("pending", "dark") and state.step < len(inc.steps):
        text += f", step {state.step + 1}/{len(inc.steps)} ({inc.to} at {inc.steps[state.step]}%)"
    if state.HasField("since"):
        text += f", {seconds((now - _at(state.since)).total_seconds())} in "
        text += "phase" if state.phase not in ("running", "dark") else "step"
        if state.phase == "running":
            text += f" of {seconds(inc.interval_seconds)}"
    return text


def _analysis_lines(analysis: pb.ReleaseAnalysis, now: datetime) -> list[str]:
    lines: list[str] = []
    timing: list[str] = []
    if analysis.HasField("step_ends"):
        left = (_at(analysis.step_ends) - now).total_seconds()
        if left > 0:
            timing.append(f"judged at the end in {seconds(left)}")
    if analysis.HasField("deadline") and analysis.action == "await-data":
        timing.append(
            f"fails at the deadline in {seconds((_at(analysis.deadline) - now).total_seconds())}"
        )
    verdict = analysis.outcome or "none"
    kind = f"{analysis.kind}, " if analysis.kind else ""
    confidence = f"confidence {analysis.confidence:g}" if analysis.confidence else ""
    detail = f" ({kind}{confidence})" if kind or confidence else ""
    lines.append(f"  verdict: {verdict}{detail}" + (f"; {'; '.join(timing)}" if timing else ""))
    lines.append(
        f"  why: {analysis.action}: {analysis.reason}"
        if analysis.reason
        else f"  why: {analysis.action}"
    )
    if analysis.error:
        lines.append(f"  error: {analysis.error}")
    if analysis.HasField("canary") or analysis.HasField("baseline"):
        window = ""
        if analysis.HasField("window_start"):
            judged = (_at(analysis.at) - _at(analysis.window_start)).total_seconds()
            window = f" over the last {seconds(judged)}"
        role = "dark" if analysis.kind == "dark" else "to"
        base = "light" if analysis.kind == "dark" else "stable"
        rows = [
            figures_row(name, f) for name, f in ((role, analysis.canary), (base, analysis.baseline))
        ]
        if analysis.window_note:
            window += f" ({analysis.window_note})"
        lines.append(f"  figures{window}:")
        lines += [f"    {row}" for row in table(FIGURES_HEADERS, rows)]
    return lines


def _gate_lines(service: pb.ServiceStatus) -> list[str]:
    """The release window and the approve gates, with who approved which and when."""
    inc = service.incremental
    lines: list[str] = []
    if inc.window:
        lines.append(f"  window: {inc.window} (steps advance only inside it)")
    approved = {a.step: a for a in inc.state.approvals} if inc.HasField("state") else {}
    for gate in inc.gates:
        where = f"step {gate + 1}/{len(inc.steps)} ({inc.steps[gate]}%)"
        record = approved.get(gate)
        if record is None:
            lines.append(f"  approve before {where}: not yet (turnout approve {service.name})")
            continue
        when = f" at {_at(record.at):%Y-%m-%dT%H:%M:%SZ}" if record.HasField("at") else ""
        lines.append(f"  approve before {where}: approved by {record.by}{when}")
    return lines


def render_releases(status: pb.Status, now: datetime | None = None) -> list[str]:
    """The release section's lines (empty when no service has a release)."""
    now = now or datetime.now(UTC)
    services = [s for s in status.services if s.HasField("incremental")]
    if not services:
        return []
    driver = status.release_driver or "unknown"
    lines = [f"RELEASES (this turnout's release driver: {driver})"]
    for service in services:
        inc = service.incremental
        lines.append(_headline(service, now))
        lines += _gate_lines(service)
        if inc.HasField("analysis"):
            lines += _analysis_lines(inc.analysis, now)
        if inc.HasField("state") and inc.state.reason:
            lines.append(f"  last change: {inc.state.reason}")
    return lines
