"""Release policies: load a directory of policy files into a validated `PolicySet`.

load_policies("policies")        -> PolicySet, or PolicySetError listing every problem
parse_policies({name: yaml_text}) -> the same, from text in memory
"""

from __future__ import annotations

from ._errors import PolicyError, PolicySetError, Problem
from ._loader import load_policies, parse_policies
from ._model import (
    DEFAULT_DEADLINE_FACTOR,
    INSTANCES,
    PHASES,
    Analysis,
    DarkRun,
    Endpoint,
    Gateway,
    HealthCheck,
    Incremental,
    IncrementalState,
    Location,
    Match,
    Mirror,
    PathMatch,
    Phase,
    PolicySet,
    Rule,
    Service,
    Split,
    Sticky,
    StringMatch,
    Traffic,
    Version,
)

__all__ = [
    "DEFAULT_DEADLINE_FACTOR",
    "INSTANCES",
    "PHASES",
    "Analysis",
    "DarkRun",
    "Endpoint",
    "Gateway",
    "HealthCheck",
    "Incremental",
    "IncrementalState",
    "Location",
    "Match",
    "Mirror",
    "PathMatch",
    "Phase",
    "PolicyError",
    "PolicySet",
    "PolicySetError",
    "Problem",
    "Rule",
    "Service",
    "Split",
    "Sticky",
    "StringMatch",
    "Traffic",
    "Version",
    "load_policies",
    "parse_policies",
]
