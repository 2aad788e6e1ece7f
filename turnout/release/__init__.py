"""The release driver: incremental releases stepped by turnout itself, through the
policy files.

    Driver(directory, policies, source).run(stop)    # inside `turnout serve`

It reads figures from a `turnout.analysis.MetricsSource`, judges them, and changes
traffic with `turnout.edit.set_release` (the path of `turnout set-traffic`), so the
files stay the one truth. The state machine (`decide`, `reconcile`) is pure; the
Kubernetes `Lease` makes one replica of several the driver.
"""

from __future__ import annotations

from turnout.release._dark import (
    DEFAULT_DARK_WINDOW,
    DarkJudgement,
    DarkTarget,
    DarkWatch,
    compare_light,
    dark_targets,
)
from turnout.release._driver import Driver, ReleaseEvent, Report
from turnout.release._lease import Lease, LeaseConfig, LeaseError
from turnout.release._machine import (
    DEFAULT_ANALYSIS,
    EARLY_CONFIDENCE,
    FINAL_CONFIDENCE,
    HOLDS,
    Action,
    Decision,
    Mark,
    Window,
    closed_window,
    decide,
    describe_figures,
    judge_window,
    longest_window,
    reconcile,
    step_traffic,
    window,
)

__all__ = [
    "DEFAULT_ANALYSIS",
    "DEFAULT_DARK_WINDOW",
    "EARLY_CONFIDENCE",
    "FINAL_CONFIDENCE",
    "HOLDS",
    "Action",
    "DarkJudgement",
    "DarkTarget",
    "DarkWatch",
    "Decision",
    "Driver",
    "Lease",
    "LeaseConfig",
    "LeaseError",
    "Mark",
    "ReleaseEvent",
    "Report",
    "Window",
    "closed_window",
    "compare_light",
    "dark_targets",
    "decide",
    "describe_figures",
    "judge_window",
    "longest_window",
    "reconcile",
    "step_traffic",
    "window",
]
