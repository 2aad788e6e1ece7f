"""Release policies: load a directory of policy files into a validated `PolicySet`.

load_policies("policies")        -> PolicySet, or PolicySetError listing every problem
parse_policies({name: yaml_text}) -> the same, from text in memory
traffic_text / shares_text / traffic_change / summarize -> the one wording for people
parse_duration("1m30s")           -> 90.0 (policy fields and the command line alike)
"""

from __future__ import annotations

from ._compare import Compare, field_under, json_path, path_key
from ._durations import DURATION_HELP, duration_text, parse_duration
from ._errors import PolicyError, PolicySetError, Problem
from ._loader import load_policies, loaded_sources, parse_policies
from ._model import (
    DEFAULT_DEADLINE_FACTOR,
    INSTANCES,
    PHASES,
    Analysis,
    AnalysisQuery,
    Approval,
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
    ReleaseWindow,
    Rollout,
    Rule,
    Service,
    Split,
    Sticky,
    StringMatch,
    Traffic,
    Version,
)
from ._schema import policy_schema
from ._text import (
    INSTANCES_TEXT,
    percent,
    shares_text,
    summarize,
    traffic_change,
    traffic_text,
)
from ._warnings import policy_warnings

__all__ = [
    "DEFAULT_DEADLINE_FACTOR",
    "DURATION_HELP",
    "INSTANCES",
    "INSTANCES_TEXT",
    "PHASES",
    "Analysis",
    "AnalysisQuery",
    "Approval",
    "Compare",
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
    "ReleaseWindow",
    "Rollout",
    "Rule",
    "Service",
    "Split",
    "Sticky",
    "StringMatch",
    "Traffic",
    "Version",
    "duration_text",
    "field_under",
    "json_path",
    "load_policies",
    "loaded_sources",
    "parse_duration",
    "parse_policies",
    "path_key",
    "percent",
    "policy_schema",
    "policy_warnings",
    "shares_text",
    "summarize",
    "traffic_change",
    "traffic_text",
]
