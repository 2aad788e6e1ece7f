"""The second round's release fields as the loader reads them: approve gates, release
windows (and when they are open), analysis.queries, state.approvals and pinHeader
{name, when}; every mistake reported at its line and field."""

from __future__ import annotations

from datetime import UTC, datetime, time

import pytest

from turnout.policy import (
    AnalysisQuery,
    Match,
    PolicySetError,
    ReleaseWindow,
    StringMatch,
    parse_policies,
)

GATEWAY = "kind: Gateway\nname: public\nport: 10000\n"
SERVICE = """\
kind: Service
name: shop
versions: {{v1: {{endpoints: ["127.0.0.1:1"]}}, v2: {{endpoints: ["127.0.0.1:2"]}}}}
stable: v1
traffic: {{v1: 100}}
incremental:
  to: v2
  steps: {steps}
  interval: 1m
{extra}"""


def _release(steps: str = "[5, 25, approve, 50, 100]", extra: str = "") -> object:
    text = SERVICE.format(steps=steps, extra=extra)
    return parse_policies({"g.yaml": GATEWAY, "s.yaml": text}).service("shop").incremental


def _problems(steps: str = "[5, 100]", extra: str = "", tail: str = "") -> list[str]:
    text = SERVICE.format(steps=steps, extra=extra) + tail
    with pytest.raises(PolicySetError) as info:
        parse_policies({"g.yaml": GATEWAY, "s.yaml": text})
    return [str(p) for p in info.value.problems]


def test_approve_gates_the_step_after_it() -> None:
    """`approve` is not a share: it gates the step after it (indexes into the shares)."""
    release = _release("[5, 25, approve, 50, approve, 100]")
    assert release.steps == (5, 25, 50, 100)  # type: ignore[attr-defined]
    assert release.gates == (2, 3)  # type: ignore[attr-defined]
    assert release.gated(2)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("steps", "problem"),
    [
        ("[approve, 5, 100]", "s.yaml:8: incremental.steps[0]: approve must follow a step"),
        ("[5, approve, approve, 100]", "incremental.steps[2]: approve is given twice in a row"),
        ("[5, 100, approve]", "incremental.steps[2]: approve must come before a step"),
        ("[5, aprove, 100]", 'incremental.steps[1]: expected a share or "approve", got "aprove"'),
    ],
)
def test_approve_mistakes(steps: str, problem: str) -> None:
    """A misplaced or misspelt `approve` is reported at its item."""
    [found] = _problems(steps)
    assert problem in found


def test_window_and_queries_and_approvals_are_read() -> None:
    """window, analysis.queries and state.approvals become the model's values."""
    release = _release(
        extra='  window: {days: "Fri-Mon", hours: "22:00-06:00", timezone: America/New_York}\n'
        "  analysis:\n    queries:\n"
        "      - {name: fails, query: 'sum(x{v=\"$version\"})', maxIncrease: 0.1}\n"
        "  state:\n    phase: waiting\n    step: 1\n"
        '    approvals: [{step: 2, by: alice, at: "2026-11-28T08:30:00Z"}]\n'
    )
    window = release.window  # type: ignore[attr-defined]
    assert window == ReleaseWindow((0, 4, 5, 6), time(22), time(6), "America/New_York")
    assert release.analysis.queries == (  # type: ignore[attr-defined]
        AnalysisQuery("fails", 'sum(x{v="$version"})', max_increase=0.1),
    )
    [approval] = release.state.approvals  # type: ignore[attr-defined]
    assert (approval.step, approval.by) == (2, "alice")
    assert approval.at == datetime(2026, 11, 28, 8, 30, tzinfo=UTC)
    assert not release.gated(2)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("extra", "problem"),
    [
        ("  window: {days: Mon-Fry}\n", 'incremental.window.days: invalid days "Mon-Fry"'),
        ('  window: {hours: "9-17"}\n', 'incremental.window.hours: invalid hours "9-17"'),
        ('  window: {hours: "09:00-09:00"}\n', 'is empty: write "00:00-24:00" for the whole day'),
        ("  window: {days: Mon, timezone: Mars/Base}\n", 'unknown time zone "Mars/Base"'),
        ("  window: {timezone: UTC}\n", "incremental.window: give days, hours or both"),
        (
            "  analysis: {queries: [{name: q, query: x, max: 1, maxIncrease: 1}]}\n",
            "incremental.analysis.queries[0]: give exactly one of max or maxIncrease",
        ),
        (
            "  analysis: {queries: [{name: q, query: x, maxIncrease: 1}]}\n",
            "incremental.analysis.queries[0].query: maxIncrease compares",
        ),
        (
            "  analysis: {queries: [{name: q, query: x, max: 1}, {name: q, query: y, max: 1}]}\n",
            'incremental.analysis.queries[1].name: query "q" is given twice',
        ),
        (
            "  state: {phase: waiting, approvals: [{step: 1}]}\n",
            "incremental.state.approvals[0].by: required field is missing",
        ),
    ],
)
def test_window_queries_approvals_mistakes(extra: str, problem: str) -> None:
    """Each mistake in window, queries or approvals names its field."""
    found = _problems(extra=extra)
    assert any(problem in line for line in found), found


def test_pin_header_forms() -> None:
    """pinHeader: a name, false, or {name, when} (name defaults to x-turnout-version)."""

    def pin(text: str) -> tuple[str | None, Match | None]:
        body = SERVICE.format(steps="[5, 100]", extra="") + text
        service = parse_policies({"g.yaml": GATEWAY, "s.yaml": body}).service("shop")
        return service.pin_header, service.pin_when

    employee = Match(headers=(("x-employee", StringMatch("exact", "true")),))
    assert pin("pinHeader: X-Pin\n") == ("x-pin", None)
    assert pin("pinHeader: false\n") == (None, None)
    assert pin('pinHeader: {when: {headers: {x-employee: "true"}}}\n') == (
        "x-turnout-version",
        employee,
    )
    assert pin('pinHeader: {name: x-pin, when: {headers: {x-employee: "true"}}}\n') == (
        "x-pin",
        employee,
    )
    [problem] = _problems(tail="pinHeader: {name: x-pin, when: {}}\n")
    assert "pinHeader.when: give at least one condition" in problem
    [problem] = _problems(tail="pinHeader: [x]\n")
    assert "pinHeader: expected a header name, false, or {name: ..., when:" in problem


@pytest.mark.parametrize(
    ("when", "is_open"),
    [
        (datetime(2027, 1, 15, 7, 59, tzinfo=UTC), False),  # Fri 08:59 Berlin
        (datetime(2027, 1, 15, 8, 0, tzinfo=UTC), True),  # Fri 09:00
        (datetime(2027, 1, 15, 15, 59, tzinfo=UTC), True),  # Fri 16:59
        (datetime(2027, 1, 15, 16, 0, tzinfo=UTC), False),  # Fri 17:00: closed
        (datetime(2027, 1, 16, 10, 0, tzinfo=UTC), False),  # Saturday
        (datetime(2027, 7, 16, 7, 0, tzinfo=UTC), True),  # Fri 09:00 CEST (summer time)
    ],
)
def test_window_follows_the_zone(when: datetime, is_open: bool) -> None:
    """Open and closed by the zone's wall-clock time, daylight saving included."""
    window = ReleaseWindow((0, 1, 2, 3, 4), time(9), time(17), "Europe/Berlin")
    assert window.is_open(when) is is_open


def test_next_open_and_overnight_windows() -> None:
    """A closed window says when it opens next; one running past midnight belongs to
    the day it opens on."""
    window = ReleaseWindow((0, 1, 2, 3, 4), time(9), time(17), "Europe/Berlin")
    friday_evening = datetime(2027, 1, 15, 17, 0, tzinfo=UTC)
    assert window.next_open(friday_evening) == datetime(2027, 1, 18, 8, 0, tzinfo=UTC)
    nights = ReleaseWindow((4,), time(22), time(6), "UTC")  # Friday 22:00 to Saturday 06:00
    assert nights.is_open(datetime(2027, 1, 16, 5, 59, tzinfo=UTC))
    assert not nights.is_open(datetime(2027, 1, 16, 22, 30, tzinfo=UTC))
    assert nights.describe() == "Fri 22:00-06:00 UTC"
    assert ReleaseWindow().describe() == "Mon-Sun 00:00-24:00 UTC"
    assert ReleaseWindow().is_open(friday_evening)
