"""`turnout diff` names approval gates, release windows and who may pin."""

from __future__ import annotations

from .test_diff_policy import CHECKOUT, lines

RELEASE = "incremental:\n  to: v2\n  steps: [5, 25, 100]\n  interval: 1m\n"


def test_gate_and_window_added() -> None:
    """An approve gate and a window show in the release's steps, old and new."""
    gated = RELEASE.replace("[5, 25, 100]", "[5, approve, 25, 100]")
    windowed = gated + '  window: {days: Mon-Fri, hours: "09:00-17:00", timezone: Europe/Berlin}\n'
    assert lines(CHECKOUT + windowed, CHECKOUT + RELEASE) == [
        "checkout incremental: to v2, steps 5%, 25%, 100%, every 1m -> to v2, steps 5%, "
        "approve, 25%, 100%, every 1m, inside Mon-Fri 09:00-17:00 Europe/Berlin"
    ]


def test_pin_when_added() -> None:
    """Limiting who may pin is a pin header change, naming what must also match."""
    limited = CHECKOUT + 'pinHeader: {when: {headers: {x-employee: "true"}}}\n'
    assert lines(limited) == [
        "checkout pin header: x-turnout-version -> x-turnout-version when matching x-employee"
    ]
