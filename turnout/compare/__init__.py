"""Dark response diffing: the comparator (`turnout compare`) and what it compares.

    Envoy ─copies─► Comparator ─► light (primary), light (secondary), dark
                        │ differences(primary, dark), differences(primary, secondary)
                        └─figures─► turnout (CompareService) ─► dark judgement

The comparator learns its mirror targets from turnout over gRPC and streams its
figures back on the same connection; it imports no serving code.
"""

from __future__ import annotations

from turnout.compare._comparator import (
    COMPARE_HEADER,
    REPLAY_HEADER,
    Comparator,
    ComparatorOptions,
    shadow_host,
)
from turnout.compare._diff import ABSENT, MORE_FIELDS, Answer, Settings, differences, show
from turnout.compare._tally import Call, Example, Tally, TargetKey

__all__ = [
    "ABSENT",
    "COMPARE_HEADER",
    "MORE_FIELDS",
    "REPLAY_HEADER",
    "Answer",
    "Call",
    "Comparator",
    "ComparatorOptions",
    "Example",
    "Settings",
    "Tally",
    "TargetKey",
    "differences",
    "shadow_host",
    "show",
]
