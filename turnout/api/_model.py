"""What the release service needs to know about the policies being served.

The api layer does not read policies (import-linter keeps it that way): the composition
root turns the policy model and the reload controller's state into these plain values
and hands the service a :data:`PolicySource` that returns them. Figures and checks are
the analysis layer's own (`Figures`, `Check`): converted once, to the proto, here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from turnout.analysis import Check, Figures
from turnout.api._compare import CompareView

__all__ = [
    "ApprovalView",
    "DarkView",
    "EndpointsView",
    "IncrementalView",
    "MirrorView",
    "PolicyChangeView",
    "PolicySource",
    "PolicyView",
    "RejectionView",
    "ReleaseAnalysisView",
    "ReleaseStateView",
    "ReleaseTransitionView",
    "RolloutAbortError",
    "RolloutView",
    "SegmentView",
    "ServiceView",
    "ShareView",
]


@dataclass(frozen=True, slots=True)
class ShareView:
    """One version's share of a segment; ``percent`` is an exact decimal string ("12.5")."""

    version: str
    percent: str


@dataclass(frozen=True, slots=True)
class MirrorView:
    """Dark traffic: ``percent`` of a segment's requests copied to ``to``."""

    to: str
    percent: str


@dataclass(frozen=True, slots=True)
class SegmentView:
    """The default split (``name="default"``) or one rule's."""

    name: str
    is_rule: bool
    shares: tuple[ShareView, ...] = ()
    instances: bool = False
    mirror: MirrorView | None = None


@dataclass(frozen=True, slots=True)
class ApprovalView:
    """One ``incremental.state.approvals`` entry: who let the release enter ``step``."""

    step: int
    by: str
    at: datetime | None = None


@dataclass(frozen=True, slots=True)
class ReleaseStateView:
    """``incremental.state``: where an incremental release is."""

    phase: str
    step: int = 0
    since: datetime | None = None
    reason: str = ""
    approvals: tuple[ApprovalView, ...] = ()


@dataclass(frozen=True, slots=True)
class ReleaseAnalysisView:
    """The release driver's latest judgement and decision (see ReleaseAnalysis)."""

    at: datetime
    action: str
    reason: str
    kind: str = ""
    outcome: str = ""
    reasons: tuple[str, ...] = ()
    canary: Figures | None = None
    baseline: Figures | None = None
    window_start: datetime | None = None
    step_ends: datetime | None = None
    deadline: datetime | None = None
    checks: tuple[Check, ...] = ()
    confidence: float = 0.0
    error: str = ""
    window_note: str = ""


@dataclass(frozen=True, slots=True)
class DarkView:
    """The continuous judgement of one mirror target (see DarkAnalysis)."""

    to: str
    light: tuple[str, ...]
    segments: tuple[str, ...]
    at: datetime
    window_start: datetime
    window_seconds: float
    outcome: str = ""
    reasons: tuple[str, ...] = ()
    dark: Figures | None = None
    light_figures: Figures | None = None
    checks: tuple[Check, ...] = ()
    confidence: float = 0.0
    error: str = ""
    window_note: str = ""
    note: str = ""
    comparison: CompareView | None = None  # the mirror has `compare:`


@dataclass(frozen=True, slots=True)
class IncrementalView:
    """A service's ``incremental:`` release; ``state`` None: not started. ``analysis``
    is the release driver's live view (not part of the policy: not compared)."""

    to: str
    steps: tuple[str, ...]
    interval_seconds: float
    on_failure: str
    state: ReleaseStateView | None = None
    window: str = ""  # `incremental.window` in words; "": any time
    gates: tuple[int, ...] = ()  # the steps an `approve` gate comes before
    analysis: ReleaseAnalysisView | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class EndpointsView:
    """One deployed version's endpoints: ``total`` in the policy, ``healthy`` as the
    proxies report them (None: not reported)."""

    version: str
    total: int
    healthy: int | None = None


@dataclass(frozen=True, slots=True)
class ServiceView:
    """One served service: stable version, every segment in match order, its release."""

    name: str
    stable: str
    versions: tuple[str, ...]
    segments: tuple[SegmentView, ...]
    incremental: IncrementalView | None = None
    dark: tuple[DarkView, ...] = field(default=(), compare=False)
    """The live dark judgements (not part of the policy: not compared)."""
    endpoints: tuple[EndpointsView, ...] = field(default=(), compare=False)
    """Per version, its endpoints (the healthy count is live: not compared)."""
    pin_header: str = ""


@dataclass(frozen=True, slots=True)
class RejectionView:
    """A rejected policy set: when, and every problem."""

    at: datetime | None
    errors: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ReleaseTransitionView:
    """An incremental release's state as one accepted change left it."""

    service: str
    phase: str
    step: int
    reason: str = ""
    since: datetime | None = None


@dataclass(frozen=True, slots=True)
class PolicyChangeView:
    """One accepted or rejected reload (see PolicyChange in the proto)."""

    at: datetime
    accepted: bool
    version: str
    summary: str
    commit: str = ""
    releases: tuple[ReleaseTransitionView, ...] = ()


@dataclass(frozen=True, slots=True)
class RolloutView:
    """The config rollout (pb.ConfigRollout): the canary ring runs ``version``, the rest
    ``last_good_version``; ``phase`` empty when nothing is rolling out."""

    phase: str
    gateways: tuple[str, ...] = ()
    version: str = ""
    last_good_version: str = ""
    started_at: datetime | None = None
    bake_started_at: datetime | None = None
    bake_seconds: float = 0.0
    baked_seconds: float = field(default=0.0, compare=False)
    reason: str = ""
    canary: tuple[str, ...] = ()
    canary_figures: Figures | None = field(default=None, compare=False)
    rest_figures: Figures | None = field(default=None, compare=False)
    max_error_rate_increase: float = 0.0
    summary: str = ""


class RolloutAbortError(Exception):
    """An abort the server refused: ``code`` is "not-found" (no such gateway) or
    "not-rolling" (nothing is rolling out there)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class PolicyView:
    """The served policy set and the reload history, as of one moment."""

    policy_version: str | None
    """The served policy version (the cache's); None before the first valid set."""
    accepted_at: datetime | None = None
    policies: str = ""
    rejected: RejectionView | None = None
    """Set while the files on disk are rejected."""
    last_rejected: RejectionView | None = None
    services: tuple[ServiceView, ...] = ()
    reloads_accepted: int = 0
    reloads_rejected: int = 0
    release_driver: str = ""
    """"driving", "standby: ..." or "off": whether this turnout drives releases."""
    history: tuple[PolicyChangeView, ...] = field(default=(), compare=False)
    """The recent accepted and rejected changes, oldest first."""
    rollout: RolloutView | None = None
    """The config rollout; None when no gateway has a ``rollout:``."""
    assignment: Callable[[str, str], tuple[str, str]] | None = field(default=None, compare=False)
    """(node.cluster, node.id) -> (the policy version that proxy is given, its rollout
    role "canary", "rest" or ""); None: everyone is given ``version``."""


PolicySource = Callable[[], PolicyView]
"""Returns the current :class:`PolicyView`; called on the event loop, must not block."""
