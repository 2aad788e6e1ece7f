"""The composition root's policy source for the ReleaseService: the reload controller's
state and the served policy model, as the api layer's plain values."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, Protocol

from turnout.api import (
    ApprovalView,
    DarkView,
    EndpointsView,
    IncrementalView,
    MirrorView,
    PolicyChangeView,
    PolicyView,
    RejectionView,
    ReleaseAnalysisView,
    ReleaseStateView,
    ReleaseTransitionView,
    RolloutView,
    SegmentView,
    ServiceView,
    ShareView,
)
from turnout.policy import INSTANCES, Mirror, Service, Traffic, percent
from turnout.server._controller import Controller
from turnout.server._history import PolicyChange
from turnout.server._rollout import ConfigRollout, RolloutState
from turnout.translate import cluster_name

__all__ = ["ControllerView", "rollout_view", "service_view"]


def rollout_view(state: RolloutState) -> RolloutView:
    """The config rollout, as the api shows it."""
    return RolloutView(
        phase=state.phase,
        gateways=state.gateways,
        version=state.version,
        last_good_version=state.last_good_version,
        started_at=_at(state.started_at),
        bake_started_at=_at(state.bake_started_at),
        bake_seconds=state.bake_seconds,
        baked_seconds=state.baked_seconds,
        reason=state.reason,
        canary=state.canary,
        canary_figures=state.canary_figures,
        rest_figures=state.rest_figures,
        max_error_rate_increase=state.max_error_rate_increase,
        summary=state.summary,
    )


def _at(seconds: float | None) -> datetime | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC)


def _segment(name: str, is_rule: bool, traffic: Traffic, mirror: Mirror | None) -> SegmentView:
    return SegmentView(
        name=name,
        is_rule=is_rule,
        shares=()
        if traffic == INSTANCES
        else tuple(ShareView(v, percent(share)) for v, share in traffic),
        instances=traffic == INSTANCES,
        mirror=None if mirror is None else MirrorView(mirror.to, percent(mirror.percent)),
    )


def service_view(service: Service) -> ServiceView:
    """One service: the default segment, then its rules in match order, and its release."""
    segments = [_segment("default", False, service.traffic, service.mirror)]
    segments += [_segment(r.name, True, r.traffic, r.mirror) for r in service.rules]
    incremental = None
    if service.incremental is not None:
        inc = service.incremental
        state = None
        if inc.state is not None:
            state = ReleaseStateView(
                phase=inc.state.phase,
                step=inc.state.step,
                since=inc.state.since,
                reason=inc.state.reason or "",
                approvals=tuple(ApprovalView(a.step, a.by, a.at) for a in inc.state.approvals),
            )
        incremental = IncrementalView(
            to=inc.to,
            steps=tuple(percent(s) for s in inc.steps),
            interval_seconds=inc.interval_seconds,
            on_failure=inc.on_failure,
            state=state,
            window=inc.window.describe() if inc.window is not None else "",
            gates=inc.gates,
        )
    return ServiceView(
        name=service.name,
        stable=service.stable,
        versions=tuple(v.name for v in service.versions),
        segments=tuple(segments),
        incremental=incremental,
        endpoints=tuple(EndpointsView(v.name, len(v.endpoints)) for v in service.versions),
        pin_header=service.pin_header or "",
    )


def _time(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def _rejection(at: str, errors: list[str]) -> RejectionView:
    return RejectionView(at=_time(at), errors=tuple(errors))


def _change(change: PolicyChange) -> PolicyChangeView:
    return PolicyChangeView(
        at=change.at,
        accepted=change.accepted,
        version=change.version,
        summary=change.summary,
        commit=change.commit,
        releases=tuple(
            ReleaseTransitionView(r.service, r.phase, r.step, r.reason, r.since)
            for r in change.releases
        ),
    )


class HealthSource(Protocol):
    """Healthy endpoints per Envoy cluster as the proxies report them (the sink's)."""

    health_version: int

    def healthy(self) -> Mapping[str, int]: ...


class ControllerView:
    """A :data:`~turnout.api.PolicySource` over a Controller: called per GetStatus and
    per WatchStatus round, so the services of a served set are converted once."""

    def __init__(
        self,
        controller: Controller,
        *,
        releases: Callable[[], Mapping[str, ReleaseAnalysisView]] | None = None,
        driver: Callable[[], str] | None = None,
        dark: Callable[[], Mapping[str, tuple[DarkView, ...]]] | None = None,
        health: HealthSource | None = None,
        rollout: ConfigRollout | None = None,
    ) -> None:
        """``releases``: the release driver's live view per service; ``driver``: whether
        this turnout drives releases; ``dark``: the dark judgements per service."""
        self._controller = controller
        self._services: tuple[object, tuple[ServiceView, ...]] = (None, ())
        self._history: tuple[object, tuple[PolicyChangeView, ...]] = (None, ())
        self._health = health
        self._healthy: tuple[object, int, tuple[ServiceView, ...]] = (None, -1, ())
        self._releases = releases
        self._driver = driver
        self._dark = dark
        self._rollout = rollout

    def __call__(self) -> PolicyView:
        """What the controller serves and has rejected, now."""
        controller = self._controller
        current = controller.current
        if self._services[0] is not current:
            served = () if current is None else current.policies.services
            services = tuple(service_view(s) for s in served)
            self._services = (current, services)
        return PolicyView(
            policy_version=current.policy_version if current is not None else None,
            accepted_at=_time(controller.accepted_at),
            policies=str(controller.directory),
            rejected=None
            if controller.rejected is None
            else _rejection(controller.rejected.at, controller.rejected.errors),
            last_rejected=None
            if controller.last_rejected is None
            else _rejection(controller.last_rejected.at, controller.last_rejected.errors),
            services=self._with_analyses(self._with_health(self._services[1])),
            reloads_accepted=controller.reloads["accepted"],
            reloads_rejected=controller.reloads["rejected"],
            release_driver=self._driver() if self._driver is not None else "",
            history=self._changes(),
            **self._rollout_fields(),
        )

    def _rollout_fields(self) -> dict[str, Any]:
        """The config rollout's view and who is given which set, when a gateway has
        a ``rollout:``."""
        rollout = self._rollout
        if rollout is None:
            return {}
        state = rollout.state()
        if not state.configured:
            return {}
        fields: dict[str, Any] = {"rollout": rollout_view(state)}
        if state.phase:
            version_for, role = rollout.cache.policy_version_for, rollout.role

            def assignment(cluster: str, node: str) -> tuple[str, str]:
                return version_for(cluster, node) or "", role(cluster, node)

            fields["assignment"] = assignment
        return fields

    def _with_health(self, services: tuple[ServiceView, ...]) -> tuple[ServiceView, ...]:
        """Each version's healthy endpoints, redone only when the set or the gauges moved."""
        health = self._health
        if health is None or not health.health_version:
            return services
        cached, version, result = self._healthy
        if cached is services and version == health.health_version:
            return result
        healthy = health.healthy()
        result = tuple(
            replace(
                s,
                endpoints=tuple(
                    replace(e, healthy=healthy.get(cluster_name(s.name, e.version)))
                    for e in s.endpoints
                ),
            )
            for s in services
        )
        self._healthy = (services, health.health_version, result)
        return result

    def _changes(self) -> tuple[PolicyChangeView, ...]:
        """The controller's history, converted once per new entry."""
        history = self._controller.history
        entries = history.entries if history is not None else ()
        newest = entries[-1] if entries else None
        if self._history[0] is not newest:
            self._history = (newest, tuple(_change(c) for c in entries))
        return self._history[1]

    def _with_analyses(self, services: tuple[ServiceView, ...]) -> tuple[ServiceView, ...]:
        analyses = self._releases() if self._releases is not None else {}
        if analyses:
            services = tuple(
                replace(s, incremental=replace(s.incremental, analysis=analyses[s.name]))
                if s.incremental is not None and s.name in analyses
                else s
                for s in services
            )
        dark = self._dark() if self._dark is not None else {}
        if dark:
            services = tuple(
                replace(s, dark=dark[s.name]) if s.name in dark else s for s in services
            )
        return services
