"""The policy layer's one wording: traffic, shares, changes, summaries and durations."""

from __future__ import annotations

from decimal import Decimal

import pytest

from turnout.policy import (
    INSTANCES,
    PolicySet,
    duration_text,
    parse_duration,
    parse_policies,
    percent,
    shares_text,
    summarize,
    traffic_change,
    traffic_text,
)

SPLIT = (("v1", Decimal("95")), ("v2", Decimal("5.00")))


def test_traffic_as_set_traffic_takes_it() -> None:
    """Traffic reads as `turnout set-traffic` takes it, shares as plain decimals."""
    assert traffic_text(SPLIT) == "v1=95 v2=5"
    assert traffic_text({"v1": Decimal("87.50"), "v2": Decimal("12.5")}) == "v1=87.5 v2=12.5"
    assert traffic_text(INSTANCES) == "instances"


def test_shares_for_reading() -> None:
    """Shares read as percentages; an instances pool says what weighs it."""
    assert shares_text(SPLIT) == "v1 95%, v2 5%"
    assert shares_text([("v1", "12.5"), ("v2", "87.5")]) == "v1 12.5%, v2 87.5%"
    assert shares_text(INSTANCES) == "instances (by healthy instances)"
    assert shares_text([], instances=True) == "instances (by healthy instances)"
    assert shares_text([]) == "-"


def test_traffic_change_names_what_moved() -> None:
    """A change lists every version whose share moved, old order first, and only those."""
    new = (("v1", Decimal(75)), ("v3", Decimal(25)))
    assert traffic_change(SPLIT, new) == "v1 95% -> 75%, v2 5% -> 0%, v3 0% -> 25%"
    assert traffic_change(SPLIT, INSTANCES) == "v1 95%, v2 5% -> instances (by healthy instances)"


def test_percent_is_exact_and_plain() -> None:
    """Decimals, floats and strings print exactly, without exponent or trailing zeros."""
    assert [percent(Decimal("100")), percent(Decimal("12.50")), percent(0.01)] == [
        "100",
        "12.5",
        "0.01",
    ]
    assert percent(Decimal("1E+2")) == "100"


_GATEWAY = """
kind: Gateway
name: public
port: 10000
"""

_SERVICE = """
kind: Service
name: {name}
hosts: [{name}.example.com]
versions:
  v1: {{endpoints: ["127.0.0.1:9101"]}}
  v2: {{endpoints: ["127.0.0.1:9201"]}}
stable: v1
traffic: {traffic}
"""


def _set(**services: str) -> PolicySet:
    files = {f"{n}.yaml": _SERVICE.format(name=n, traffic=t) for n, t in services.items()}
    return parse_policies({"gateway.yaml": _GATEWAY, **files})


def test_summary_says_what_changed_in_the_traffic_wording() -> None:
    """The reload summary writes traffic the same way as the edit commands do."""
    old = _set(web="{v1: 95, v2: 5}", api="{v1: 100}")
    new = _set(web="{v1: 90, v2: 10}", shop="{v1: 100}")
    assert (
        summarize(old, new) == "+service shop; -service api; web traffic v1=95 v2=5 -> v1=90 v2=10"
    )
    assert summarize(None, new) == "1 gateways, 2 services"
    assert summarize(new, new) == "no change in policies"


@pytest.mark.parametrize(
    ("text", "seconds"), [("500ms", 0.5), ("2s", 2.0), ("1m30s", 90.0), ("1.5h", 5400.0)]
)
def test_durations(text: str, seconds: float) -> None:
    """Durations add up their parts in ms, s, m and h."""
    assert parse_duration(text) == seconds


def test_bare_seconds_only_where_asked() -> None:
    """A bare number is seconds on the command line, and needs a unit in a policy."""
    assert parse_duration(" 45 ", bare_seconds=True) == 45.0
    with pytest.raises(ValueError, match='invalid duration "45"'):
        parse_duration("45")
    with pytest.raises(ValueError, match='must be longer than 0, got "0ms"'):
        parse_duration("0ms")


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0.5, "500ms"), (8, "8s"), (1.5, "1.5s"), (90, "1m30s"), (900, "15m"), (5400, "1h30m")],
)
def test_durations_are_written_as_a_policy_writes_them(seconds: float, text: str) -> None:
    """Messages name a duration in the policy syntax, which reads back to the same value."""
    assert duration_text(seconds) == text
    assert parse_duration(text) == seconds
