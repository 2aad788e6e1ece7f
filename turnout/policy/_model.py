"""The validated release policy model.

Everything here is immutable and already checked: a `PolicySet` only exists when the
whole set of files passed validation. Field names follow POLICY.md (the contract),
spelled in snake_case.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Literal

from ._compare import Compare
from ._window import ReleaseWindow

__all__ = [
    "DEFAULT_DEADLINE_FACTOR",
    "INSTANCES",
    "PHASES",
    "Analysis",
    "AnalysisQuery",
    "Approval",
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
    "PolicySet",
    "ReleaseWindow",
    "Rule",
    "Service",
    "Split",
    "Sticky",
    "StringMatch",
    "Traffic",
    "Version",
]

#: The `traffic: instances` keyword: one pool over all versions' endpoints.
INSTANCES: Literal["instances"] = "instances"

#: version name -> share in percent (0 < share <= 100, two decimals at most),
#: in the order the versions are declared under `versions:`. Versions with a 0 share
#: are left out. The shares sum to exactly 100.
Split = tuple[tuple[str, Decimal], ...]

Traffic = Split | Literal["instances"]


@dataclass(frozen=True, slots=True)
class Location:
    """Where something was written: the file as given to the loader, 1-based line."""

    file: str
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass(frozen=True, slots=True)
class StringMatch:
    """How a header, cookie or query value is matched.

    `kind` is one of exact/prefix/suffix/regex/present; `value` is "" for present.
    A `regex` value is known to compile in RE2.
    """

    kind: Literal["exact", "prefix", "suffix", "regex", "present"]
    value: str = ""


@dataclass(frozen=True, slots=True)
class PathMatch:
    kind: Literal["prefix", "exact", "regex"]
    value: str


@dataclass(frozen=True, slots=True)
class Match:
    """Conditions of a rule; every condition given must hold. Pairs keep file order."""

    headers: tuple[tuple[str, StringMatch], ...] = ()
    cookies: tuple[tuple[str, StringMatch], ...] = ()
    query: tuple[tuple[str, StringMatch], ...] = ()
    path: PathMatch | None = None


@dataclass(frozen=True, slots=True)
class Mirror:
    """Dark traffic: a copy of `percent` (0..100, two decimals at most) of requests to `to`."""

    to: str
    percent: Decimal
    #: `compare:`: the copies go to comparators, which judge the dark version's answers
    compare: Compare | None = None


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    match: Match
    traffic: Traffic
    mirror: Mirror | None = None
    location: Location | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class Sticky:
    """Exactly one of `header` / `cookie` is set; `ttl_seconds` only with `cookie`."""

    header: str | None = None
    cookie: str | None = None
    ttl_seconds: float | None = None


@dataclass(frozen=True, slots=True)
class HealthCheck:
    path: str = "/healthz"
    interval_seconds: float = 2.0
    timeout_seconds: float = 1.0
    unhealthy_threshold: int = 2
    healthy_threshold: int = 1


@dataclass(frozen=True, slots=True)
class Endpoint:
    """`host` is a DNS name, an IPv4 address or an IPv6 address (without brackets)."""

    host: str
    port: int

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


@dataclass(frozen=True, slots=True)
class Version:
    name: str
    endpoints: tuple[Endpoint, ...]


@dataclass(frozen=True, slots=True)
class AnalysisQuery:
    """`analysis.queries[]`: a Prometheus query judged beside Envoy's figures. `$version`
    in `query` is replaced by the version judged (and by `stable` for `max_increase`);
    exactly one of `max` (the released version's value may not exceed it) or
    `max_increase` (nor exceed stable's value by more than it) is set."""

    name: str
    query: str
    max: float | None = None
    max_increase: float | None = None


@dataclass(frozen=True, slots=True)
class Analysis:
    min_requests: int = 100
    max_error_rate: float | None = None
    max_error_rate_increase: float | None = None
    max_latency_p99_seconds: float | None = None
    max_latency_p99_increase: float | None = None
    #: The least rise of the p99 over stable's that `max_latency_p99_increase` counts
    #: as a breach (`minLatencyIncrease`): a ratio of few-millisecond p99s estimated
    #: from Envoy's buckets is noise below it.
    min_latency_increase_seconds: float = 0.010
    #: Extra checks read from Prometheus (`queries`): no data holds, never passes.
    queries: tuple[AnalysisQuery, ...] = ()


#: Where an incremental release stands (`incremental.state.phase`). `dark`: the clean
#: dark run `requireDark` asks for is under way (before the first step). `waiting`: a
#: step passed and the next is behind an `approve` gate (still judged: a failure
#: still rolls back), until `turnout approve` records the approval.
Phase = Literal[
    "pending",
    "dark",
    "running",
    "waiting",
    "paused",
    "rolled-back",
    "promoted",
    "failed",
    "holding",
]

#: Every phase, in the order a release usually passes through them.
PHASES: tuple[Phase, ...] = (
    "pending",
    "dark",
    "running",
    "waiting",
    "holding",
    "paused",
    "failed",
    "rolled-back",
    "promoted",
)


@dataclass(frozen=True, slots=True)
class Approval:
    """`incremental.state.approvals[]`: a person let the release enter step `step` (the
    0-based index into `steps` of the step after an `approve` gate)."""

    step: int
    by: str
    at: datetime | None = None


@dataclass(frozen=True, slots=True)
class IncrementalState:
    """`incremental.state`: written by turnout (the release driver and the CLI) and by
    people. An incremental release without a state has not started.

    `step` is the 0-based index into `steps` of the step being observed; `since` is
    when the current step (or phase) started, in UTC; `reason` says why the last
    transition happened.
    """

    phase: Phase
    step: int = 0
    since: datetime | None = None
    reason: str | None = None
    approvals: tuple[Approval, ...] = ()

    def approval(self, step: int) -> Approval | None:
        """The approval recorded for entering `step`, if any."""
        return next((a for a in self.approvals if a.step == step), None)


@dataclass(frozen=True, slots=True)
class DarkRun:
    """`incremental.requireDark`: before the first step, the mirror target (`to`) must
    run clean on mirrored requests for `for_seconds`, judged on at least `min_requests`
    of them against the version that served the originals."""

    for_seconds: float
    min_requests: int = 100


#: A step (or the dark run) may last this many times its own length by default
#: before a release that cannot get a verdict fails (`incremental.progressDeadline`).
DEFAULT_DEADLINE_FACTOR = 3


@dataclass(frozen=True, slots=True)
class Incremental:
    to: str
    steps: tuple[Decimal, ...]
    interval_seconds: float
    analysis: Analysis
    on_failure: Literal["rollback", "hold"] = "rollback"
    state: IncrementalState | None = None
    require_dark: DarkRun | None = None
    #: The longest a step or the dark run may last without a passing verdict (None:
    #: DEFAULT_DEADLINE_FACTOR times its length: `interval`, or `requireDark.for`).
    progress_deadline_seconds: float | None = None
    #: Indexes into `steps` of the steps an `approve` gate comes before: entering one
    #: needs a recorded approval (`turnout approve`). Never the first step.
    gates: tuple[int, ...] = ()
    #: When steps may advance (`window`); None: any time.
    window: ReleaseWindow | None = None

    def gated(self, step: int) -> bool:
        """Whether entering `step` waits for an approval not recorded yet."""
        if step not in self.gates:
            return False
        return self.state is None or self.state.approval(step) is None

    def deadline_seconds(self, length: float) -> float:
        """The progress deadline of a step or dark run lasting `length` seconds."""
        if self.progress_deadline_seconds is not None:
            return max(self.progress_deadline_seconds, length)
        return DEFAULT_DEADLINE_FACTOR * length


DEFAULT_BAKE_SECONDS = 120.0
DEFAULT_ROLLOUT_MAX_ERROR_RATE_INCREASE = 0.01


@dataclass(frozen=True, slots=True)
class Rollout:
    """A gateway's `rollout:`: every policy change reaches the `canary` proxies first,
    and the rest once the canary ACKed it, `bake` passed and its 5xx rate is not
    significantly above the rest's by more than `max_error_rate_increase`."""

    canary: tuple[str, ...]
    bake_seconds: float = DEFAULT_BAKE_SECONDS
    max_error_rate_increase: float = DEFAULT_ROLLOUT_MAX_ERROR_RATE_INCREASE

    def is_canary(self, node_cluster: str, node_id: str) -> bool:
        """True when a proxy's node.cluster or node.id matches a `canary` glob."""
        return any(
            fnmatch.fnmatchcase(node_cluster, glob) or fnmatch.fnmatchcase(node_id, glob)
            for glob in self.canary
        )


@dataclass(frozen=True, slots=True)
class Gateway:
    name: str
    port: int
    address: str = "0.0.0.0"
    proxies: tuple[str, ...] = ("*",)
    rollout: Rollout | None = None
    location: Location | None = field(default=None, compare=False)

    def serves(self, node_cluster: str) -> bool:
        """True when an Envoy whose node.cluster is `node_cluster` gets this gateway."""
        return any(fnmatch.fnmatchcase(node_cluster, glob) for glob in self.proxies)


@dataclass(frozen=True, slots=True)
class Service:
    name: str
    gateways: tuple[str, ...]  # resolved: never empty when any gateway exists
    hosts: tuple[str, ...]
    versions: tuple[Version, ...]  # declaration order
    stable: str
    traffic: Traffic
    health_check: HealthCheck | None = None
    sticky: Sticky | None = None
    rules: tuple[Rule, ...] = ()
    mirror: Mirror | None = None
    pin_header: str | None = "x-turnout-version"  # None: turned off
    #: `pinHeader.when`: a pin routes only requests that also match this (None: any).
    pin_when: Match | None = None
    incremental: Incremental | None = None
    location: Location | None = field(default=None, compare=False)

    def version(self, name: str) -> Version:
        for version in self.versions:
            if version.name == name:
                return version
        raise KeyError(name)


@dataclass(frozen=True, slots=True)
class PolicySet:
    """A whole, valid set of policies. Gateways and services are sorted by name."""

    gateways: tuple[Gateway, ...]
    services: tuple[Service, ...]

    def gateways_for(self, node_cluster: str) -> tuple[str, ...]:
        """Names of the gateways an Envoy with this node.cluster gets, sorted."""
        return tuple(g.name for g in self.gateways if g.serves(node_cluster))

    def service(self, name: str) -> Service:
        for service in self.services:
            if service.name == name:
                return service
        raise KeyError(name)
