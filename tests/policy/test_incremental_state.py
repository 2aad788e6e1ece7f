"""`incremental.state`: where an incremental release stands, written by turnout and people."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from turnout.policy import PHASES, IncrementalState, PolicySetError, parse_policies

GATEWAY = "kind: Gateway\nname: public\nport: 10000\n"

# The state block starts at line 15.
SERVICE = """\
kind: Service
name: checkout
versions:
  v1:
    endpoints: ["127.0.0.1:9101"]
  v2:
    endpoints: ["127.0.0.1:9201"]
stable: v1
traffic: {v1: 95, v2: 5}
incremental:
  to: v2
  steps: [5, 25, 100]
  interval: 1m
  onFailure: rollback
"""


def state_of(text: str, *, stable: str = "v1") -> IncrementalState | None:
    body = SERVICE.replace("stable: v1", f"stable: {stable}") + text
    service = parse_policies({"p/gw.yaml": GATEWAY, "p/svc.yaml": body}).service("checkout")
    assert service.incremental is not None
    return service.incremental.state


def problems(text: str, *, stable: str = "v1") -> list[str]:
    body = SERVICE.replace("stable: v1", f"stable: {stable}") + text
    with pytest.raises(PolicySetError) as caught:
        parse_policies({"p/gw.yaml": GATEWAY, "p/svc.yaml": body})
    return [str(p) for p in caught.value.problems]


def test_absent_state_means_not_started() -> None:
    """An incremental release without `state` has a None state (not started)."""
    assert state_of("") is None


def test_full_state_is_read() -> None:
    """Every field of the state is read: phase, step, since (as UTC) and reason."""
    state = state_of(
        "  state:\n"
        "    phase: running\n"
        "    step: 1\n"
        '    since: "2026-11-28T09:00:00+01:00"\n'
        '    reason: "error rate 0.2 > 0.01"\n'
    )
    assert state == IncrementalState(
        "running", 1, datetime(2026, 11, 28, 8, 0, tzinfo=UTC), "error rate 0.2 > 0.01"
    )


def test_unquoted_timestamp_is_accepted() -> None:
    """An unquoted RFC 3339 time (a YAML timestamp) reads the same as a quoted one."""
    state = state_of("  state: {phase: paused, since: 2026-11-28T08:00:00Z}\n")
    assert state is not None
    assert state.since == datetime(2026, 11, 28, 8, 0, tzinfo=UTC)
    assert state.step == 0


@pytest.mark.parametrize("phase", PHASES)
def test_every_phase_is_accepted(phase: str) -> None:
    """Each phase of the contract is a valid `state.phase`."""
    state = state_of(f"  state: {{phase: {phase}}}\n")
    assert state is not None
    assert state.phase == phase


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            "  state: {phase: runing}\n",
            "p/svc.yaml:15: incremental.state.phase: expected pending or dark or running or "
            "waiting or holding or "
            'paused or failed or rolled-back or promoted, got "runing"; did you mean "running"?',
            id="unknown-phase",
        ),
        pytest.param(
            "  state: {step: 1}\n",
            "p/svc.yaml:15: incremental.state.phase: required field is missing",
            id="phase-missing",
        ),
        pytest.param(
            "  state:\n    phase: running\n    step: 3\n",
            "p/svc.yaml:17: incremental.state.step: must be a step index from 0 to 2 (3 steps), "
            "got 3",
            id="step-past-the-end",
        ),
        pytest.param(
            "  state: {phase: running, step: -1}\n",
            "p/svc.yaml:15: incremental.state.step: must be at least 0, got -1",
            id="negative-step",
        ),
        pytest.param(
            '  state: {phase: running, since: "2026-11-28 08:00"}\n',
            'p/svc.yaml:15: incremental.state.since: invalid time "2026-11-28 08:00": expected '
            'an RFC 3339 time in UTC, e.g. "2026-11-28T08:00:00Z"',
            id="since-not-rfc3339",
        ),
        pytest.param(
            '  state: {phase: running, since: "2026-11-28T08:00:00"}\n',
            'p/svc.yaml:15: incremental.state.since: invalid time "2026-11-28T08:00:00": expected '
            'an RFC 3339 time in UTC, e.g. "2026-11-28T08:00:00Z"',
            id="since-without-zone",
        ),
        pytest.param(
            "  state: {phase: running, since: 5}\n",
            "p/svc.yaml:15: incremental.state.since: expected an RFC 3339 time in UTC, e.g. "
            '"2026-11-28T08:00:00Z", got the number 5',
            id="since-a-number",
        ),
        pytest.param(
            "  state: {phase: running, reason: 5}\n",
            "p/svc.yaml:15: incremental.state.reason: expected a string, got the number 5; "
            'quote it: "5"',
            id="reason-not-a-string",
        ),
        pytest.param(
            "  state: {phase: running, stepp: 1}\n",
            'p/svc.yaml:15: incremental.state.stepp: unknown field "stepp"; did you mean "step"?',
            id="misspelt-field",
        ),
    ],
)
def test_state_problems(text: str, expected: str) -> None:
    """Each mistake in `state` is reported at its own line and path."""
    assert problems(text) == [expected]


def test_promoted_release_may_name_the_stable_version() -> None:
    """Once promoted, `to` equal to `stable` is the finished release, not a mistake."""
    state = state_of("  state: {phase: promoted, step: 2}\n", stable="v2")
    assert state is not None
    assert state.phase == "promoted"


def test_unpromoted_release_of_the_stable_version_is_rejected() -> None:
    """A release whose `to` is the stable version is rejected unless it is promoted."""
    assert problems("  state: {phase: running}\n", stable="v2") == [
        'p/svc.yaml:11: incremental.to: "v2" is the stable version; name the version being released'
    ]
