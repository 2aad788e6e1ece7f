"""`turnout status`'s config rollout section: the state line and which set each proxy runs."""

from __future__ import annotations

from datetime import UTC, datetime

from turnout._proto.v1 import release_pb2 as pb
from turnout.cli._rollout_status import render_rollout

NOW = datetime(2026, 12, 6, 0, 15, tzinfo=UTC)


def _status(phase: str, reason: str = "") -> pb.Status:
    status = pb.Status(
        rollout=pb.ConfigRollout(
            phase=phase,
            gateways=["public"],
            version="22c1f9e8b123e5a5",
            last_good_version="bfc453561e181727",
            bake_seconds=120,
            baked_seconds=40,
            reason=reason,
            summary="web traffic v1=100 -> v1=90 v2=10",
            canary_figures=pb.VersionFigures(requests=1583, errors=0),
            rest_figures=pb.VersionFigures(requests=1695, errors=1),
            max_error_rate_increase=0.01,
        )
    )
    status.rollout.started_at.FromDatetime(datetime(2026, 12, 6, 0, 14, 10, tzinfo=UTC))
    for node, role, version in (
        ("edge-canary-1", "canary", "22c1f9e8b123e5a5"),
        ("edge-1", "rest", "bfc453561e181727"),
    ):
        status.proxies.add(
            node_id=node, rollout_role=role, config_version=version, synced_version=version
        )
    status.proxies.add(node_id="other", synced_version="bfc453561e181727")
    return status


def test_a_baking_rollout_shows_its_progress_and_who_runs_what() -> None:
    """Baking: "baking 40s of 2m", the change over the last good set, both sides' 5xx,
    and per concerned proxy its role and the set it runs (others are not listed)."""
    lines = render_rollout(_status("baking"), NOW)
    assert lines[0] == "config rollout on public: baking 40.0s of 2m00s"
    assert lines[1] == (
        "  change 22c1f9e8b1 (canary) over last good bfc453561e (the rest): "
        "web traffic v1=100 -> v1=90 v2=10; started 50.0s ago"
    )
    assert lines[2] == "  5xx: canary 0/1583, the rest 1/1695 (maxErrorRateIncrease 0.01)"
    assert lines[3].split() == ["PROXY", "ROLE", "RUNS", "ACKED"]
    assert lines[4].split() == ["edge-canary-1", "canary", "22c1f9e8b1", "yes"]
    assert lines[5].split() == ["edge-1", "rest", "bfc453561e", "yes"]
    assert len(lines) == 6


def test_a_held_rollout_says_why_and_an_idle_one_what_everyone_runs() -> None:
    """Held: the reason on the first line; idle: one line; no rollout block: nothing."""
    held = render_rollout(_status("held", "canary edge-canary-1 NACKed RDS: bad regex"), NOW)
    assert held[0] == "config rollout on public: held: canary edge-canary-1 NACKed RDS: bad regex"
    idle = render_rollout(pb.Status(rollout=pb.ConfigRollout(last_good_version="bfc453561e18")))
    assert idle == ["config rollout: idle; every proxy runs bfc453561e"]
    assert render_rollout(pb.Status()) == []
