"""The config rollout in `turnout status`: its state, and which set each proxy runs."""

from __future__ import annotations

from datetime import UTC, datetime

from turnout._proto.v1 import release_pb2 as pb
from turnout.cli._render import seconds, table

__all__ = ["render_rollout"]


def _short(version: str) -> str:
    return version[:10] if version else "-"


def render_rollout(status: pb.Status, now: datetime | None = None) -> list[str]:
    """Lines for the config rollout (nothing when no gateway has a `rollout:`)."""
    if not status.HasField("rollout"):
        return []
    rollout = status.rollout
    now = now or datetime.now(UTC)
    if not rollout.phase:
        return [f"config rollout: idle; every proxy runs {_short(rollout.last_good_version)}"]
    if rollout.phase == "baking":
        state = f"baking {seconds(rollout.baked_seconds)} of {seconds(rollout.bake_seconds)}"
    else:
        state = f"{rollout.phase}: {rollout.reason}" if rollout.reason else rollout.phase
    lines = [
        f"config rollout on {', '.join(rollout.gateways)}: {state}",
        f"  change {_short(rollout.version)} (canary) over last good "
        f"{_short(rollout.last_good_version)} (the rest): {rollout.summary or '-'}",
    ]
    if rollout.HasField("started_at"):
        started = rollout.started_at.ToDatetime(tzinfo=UTC)
        lines[-1] += f"; started {seconds((now - started).total_seconds())} ago"
    if rollout.HasField("canary_figures"):
        c, r = rollout.canary_figures, rollout.rest_figures
        lines.append(
            f"  5xx: canary {c.errors}/{c.requests}, the rest {r.errors}/{r.requests} "
            f"(maxErrorRateIncrease {rollout.max_error_rate_increase:g})"
        )
    rows = [
        [
            proxy.node_id or "(no id)",
            proxy.rollout_role or "-",
            _short(proxy.config_version),
            "yes"
            if proxy.config_version and proxy.synced_version == proxy.config_version
            else "no",
        ]
        for proxy in status.proxies
        if proxy.rollout_role
    ]
    if rows:
        lines += ["  " + line for line in table(["PROXY", "ROLE", "RUNS", "ACKED"], rows)]
    return lines
