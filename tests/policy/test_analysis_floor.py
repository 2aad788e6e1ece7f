"""`incremental.analysis.minLatencyIncrease`: read as seconds (10 ms when absent),
rejected with FILE:LINE like every other field."""

from __future__ import annotations

import pytest

from turnout.analysis import Thresholds
from turnout.policy import PolicySetError, parse_policies

GATEWAY = "kind: Gateway\nname: public\nport: 10000\n"

# `analysis:` is line 12, its fields from line 13.
SERVICE = """\
kind: Service
name: checkout
versions:
  v1: {{endpoints: ["127.0.0.1:9101"]}}
  v2: {{endpoints: ["127.0.0.1:9201"]}}
stable: v1
traffic: {{v1: 100}}
incremental:
  to: v2
  steps: [10, 100]
  interval: 1m
  analysis:
    maxLatencyP99Increase: 1.5
{extra}"""


def _parse(extra: str) -> float:
    files = {"p/gw.yaml": GATEWAY, "p/svc.yaml": SERVICE.format(extra=extra)}
    release = parse_policies(files).service("checkout").incremental
    assert release is not None
    return release.analysis.min_latency_increase_seconds


def _problems(extra: str) -> list[str]:
    files = {"p/gw.yaml": GATEWAY, "p/svc.yaml": SERVICE.format(extra=extra)}
    with pytest.raises(PolicySetError) as caught:
        parse_policies(files)
    return [str(p) for p in caught.value.problems]


def test_min_latency_increase_is_read_in_seconds() -> None:
    """`minLatencyIncrease: 25ms` is 0.025 s; absent, the floor is 10 ms."""
    assert _parse("    minLatencyIncrease: 25ms\n") == pytest.approx(0.025)
    assert _parse("") == pytest.approx(0.010)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("5", 'a duration needs a unit, e.g. "5s"'),
        ("0ms", 'must be longer than 0, got "0ms"'),
        ("soon", 'invalid duration "soon"'),
    ],
)
def test_a_bad_min_latency_increase_is_a_located_problem(value: str, message: str) -> None:
    """A bad value is one problem at its own line and field path."""
    (problem,) = _problems(f"    minLatencyIncrease: {value}\n")
    assert problem.startswith("p/svc.yaml:14: incremental.analysis.minLatencyIncrease: ")
    assert message in problem


def test_the_floor_reaches_the_judge() -> None:
    """Thresholds.from_analysis carries the policy's floor to the judge."""
    files = {
        "p/gw.yaml": GATEWAY,
        "p/svc.yaml": SERVICE.format(extra="    minLatencyIncrease: 2ms\n"),
    }
    release = parse_policies(files).service("checkout").incremental
    assert release is not None
    assert Thresholds.from_analysis(release.analysis).min_latency_increase == pytest.approx(0.002)
