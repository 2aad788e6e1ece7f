"""`incremental.requireDark` and `incremental.progressDeadline`: a clean dark run before
the first step, and how long a step may go without a verdict."""

from __future__ import annotations

import pytest

from turnout.policy import DarkRun, Incremental, PolicySetError, parse_policies

GATEWAY = "kind: Gateway\nname: public\nport: 10000\n"

# `incremental:` starts at line 10 when MIRROR is one line.
SERVICE = """\
kind: Service
name: checkout
versions:
  v1: {{endpoints: ["127.0.0.1:9101"]}}
  v2: {{endpoints: ["127.0.0.1:9201"]}}
  v3: {{endpoints: ["127.0.0.1:9301"]}}
stable: v1
traffic: {{v1: 100}}
{mirror}
incremental:
  to: v2
  steps: [10, 50, 100]
  interval: 1m
{extra}"""

MIRROR = "mirror: {to: v2, percent: 100}"


def release(extra: str, mirror: str = MIRROR) -> Incremental:
    text = SERVICE.format(mirror=mirror, extra=extra)
    service = parse_policies({"p/gw.yaml": GATEWAY, "p/svc.yaml": text}).service("checkout")
    assert service.incremental is not None
    return service.incremental


def problems(extra: str, mirror: str = MIRROR) -> list[str]:
    text = SERVICE.format(mirror=mirror, extra=extra)
    with pytest.raises(PolicySetError) as caught:
        parse_policies({"p/gw.yaml": GATEWAY, "p/svc.yaml": text})
    return [str(p) for p in caught.value.problems]


def test_require_dark_is_read() -> None:
    """requireDark's `for` and `minRequests` are read into a DarkRun."""
    got = release("  requireDark: {for: 10m, minRequests: 500}\n")
    assert got.require_dark == DarkRun(for_seconds=600.0, min_requests=500)


def test_require_dark_min_requests_defaults_to_100() -> None:
    """Without minRequests a dark run needs 100 mirrored requests."""
    assert release("  requireDark: {for: 30s}\n").require_dark == DarkRun(30.0, 100)


def test_no_require_dark_and_default_deadline() -> None:
    """Without the new fields: no dark run, and a step may last 3 intervals."""
    got = release("")
    assert got.require_dark is None
    assert got.progress_deadline_seconds is None
    assert got.deadline_seconds(got.interval_seconds) == 180.0


def test_progress_deadline_is_read() -> None:
    """progressDeadline is a duration bounding every step and the dark run."""
    got = release("  requireDark: {for: 2m}\n  progressDeadline: 5m\n")
    assert got.progress_deadline_seconds == 300.0
    assert got.deadline_seconds(60.0) == 300.0
    assert got.deadline_seconds(120.0) == 300.0


def test_finished_dark_run_lets_the_mirror_go() -> None:
    """Once the release is past its dark run, requireDark no longer needs the mirror."""
    got = release("  requireDark: {for: 10m}\n  state: {phase: running, step: 1}\n", mirror="")
    assert got.require_dark is not None


def test_dark_phase_is_accepted() -> None:
    """`dark` is a phase: the dark run is under way."""
    got = release("  requireDark: {for: 10m}\n  state: {phase: dark}\n")
    assert got.state is not None
    assert got.state.phase == "dark"


@pytest.mark.parametrize(
    ("extra", "mirror", "expected"),
    [
        pytest.param(
            "  requireDark: {for: 10m}\n",
            "",
            "p/svc.yaml:14: incremental.requireDark: a dark run of v2 needs the default "
            "route's mirror to copy to it (mirror: {to: v2, percent: 100}), but there is no mirror",
            id="no-mirror",
        ),
        pytest.param(
            "  requireDark: {for: 10m}\n  state: {phase: dark}\n",
            "mirror: {to: v3, percent: 100}",
            "p/svc.yaml:14: incremental.requireDark: a dark run of v2 needs the default "
            "route's mirror to copy to it (mirror: {to: v2, percent: 100}), but the mirror "
            "copies to v3",
            id="mirror-to-another-version",
        ),
        pytest.param(
            "  requireDark: {for: 10m}\n",
            "mirror: {to: v2, percent: 0}",
            "p/svc.yaml:14: incremental.requireDark: a dark run of v2 needs the default "
            "route's mirror to copy to it (mirror: {to: v2, percent: 100}), but the mirror "
            "copies 0%",
            id="mirror-at-zero",
        ),
        pytest.param(
            "  requireDark: {minRequests: 10}\n",
            MIRROR,
            "p/svc.yaml:14: incremental.requireDark.for: required field is missing",
            id="for-missing",
        ),
        pytest.param(
            "  requireDark: {for: 10}\n",
            MIRROR,
            'p/svc.yaml:14: incremental.requireDark.for: a duration needs a unit, e.g. "10s" '
            "(units: ms, s, m, h)",
            id="for-without-unit",
        ),
        pytest.param(
            "  requireDark: {for: 1m, minRequests: 0}\n",
            MIRROR,
            "p/svc.yaml:14: incremental.requireDark.minRequests: must be a positive integer, got 0",
            id="min-requests-zero",
        ),
        pytest.param(
            "  requireDark: {for: 1m, minRequest: 5}\n",
            MIRROR,
            'p/svc.yaml:14: incremental.requireDark.minRequest: unknown field "minRequest"; '
            'did you mean "minRequests"?',
            id="misspelt",
        ),
        pytest.param(
            "  progressDeadline: 30s\n",
            MIRROR,
            "p/svc.yaml:14: incremental.progressDeadline: must be at least the interval (1m), "
            "got 30s",
            id="deadline-shorter-than-interval",
        ),
        pytest.param(
            "  requireDark: {for: 10m}\n  progressDeadline: 5m\n",
            MIRROR,
            "p/svc.yaml:15: incremental.progressDeadline: must be at least the requireDark.for "
            "(10m), got 5m",
            id="deadline-shorter-than-dark-run",
        ),
        pytest.param(
            "  progressDeadline: soon\n",
            MIRROR,
            'p/svc.yaml:14: incremental.progressDeadline: invalid duration "soon": e.g. '
            '"500ms", "2s", "1m30s" (units: ms, s, m, h)',
            id="deadline-not-a-duration",
        ),
    ],
)
def test_problems_are_reported_exactly(extra: str, mirror: str, expected: str) -> None:
    """Each mistake in requireDark / progressDeadline is one FILE:LINE: path: message."""
    assert problems(extra, mirror) == [expected]
