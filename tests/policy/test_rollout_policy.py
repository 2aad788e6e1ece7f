"""A Gateway's `rollout:` block: read into the model, defaults, and its errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from turnout.policy import PolicySetError, Rollout, load_policies, loaded_sources, parse_policies

_GATEWAY = """\
kind: Gateway
name: public
port: 10000
{rollout}
"""


def _load(rollout: str) -> object:
    return parse_policies({"gw.yaml": _GATEWAY.format(rollout=rollout)})


def test_rollout_is_read_with_its_values() -> None:
    """canary, bake and maxErrorRateIncrease land on Gateway.rollout as written."""
    policies = parse_policies(
        {
            "gw.yaml": _GATEWAY.format(
                rollout='rollout: {canary: ["edge-canary-*", "edge-7"], bake: 2m, '
                "maxErrorRateIncrease: 0.02}"
            )
        }
    )
    assert policies.gateways[0].rollout == Rollout(("edge-canary-*", "edge-7"), 120.0, 0.02)


def test_rollout_defaults() -> None:
    """Only canary is required: bake defaults to 2m, maxErrorRateIncrease to 0.01, and a
    gateway without rollout has none."""
    policies = parse_policies({"gw.yaml": _GATEWAY.format(rollout="rollout: {canary: [c]}")})
    assert policies.gateways[0].rollout == Rollout(("c",), 120.0, 0.01)
    assert parse_policies({"gw.yaml": _GATEWAY.format(rollout="")}).gateways[0].rollout is None


def test_canary_globs_match_node_cluster_or_node_id() -> None:
    """A proxy is canary when its node.cluster or its node.id matches a glob."""
    rollout = Rollout(("edge-canary-*",))
    assert rollout.is_canary("edge-canary-eu", "edge-1")
    assert rollout.is_canary("edge", "edge-canary-1")
    assert not rollout.is_canary("edge", "edge-1")


def test_rollout_errors_name_line_and_field() -> None:
    """An empty canary, a bare number for bake and a misspelt field are each reported
    with their line and path, all at once."""
    with pytest.raises(PolicySetError) as caught:
        _load("rollout:\n  canary: []\n  bake: 3\n  maxErrorRateIncrese: 2\n")
    text = "\n".join(str(p) for p in caught.value.problems)
    assert "gw.yaml:5: rollout.canary: needs at least one glob" in text
    assert 'gw.yaml:6: rollout.bake: a duration needs a unit, e.g. "3s"' in text
    assert 'gw.yaml:7: rollout.maxErrorRateIncrese: unknown field "maxErrorRateIncrese"' in text


def test_loaded_sources_are_the_texts_of_the_last_load(tmp_path: Path) -> None:
    """loaded_sources gives the very texts the last load read, so parsing them again
    gives the same set (what a config rollout keeps across a restart)."""
    (tmp_path / "gw.yaml").write_text(_GATEWAY.format(rollout="rollout: {canary: [c]}"))
    (tmp_path / ".hidden.yaml").write_text("not: read")
    loaded = load_policies(tmp_path)
    sources = loaded_sources(tmp_path)
    assert list(sources) == [str(tmp_path / "gw.yaml")]
    assert parse_policies(sources) == loaded
