"""Plain values (the policy view, xds's ProxyStatus, analysis' Figures and Check) to
turnout.v1 messages: the one place they are converted to the API's model."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime

from google.protobuf.timestamp_pb2 import Timestamp

from turnout._proto.v1 import release_pb2 as pb
from turnout.analysis import Check, Figures
from turnout.api._compare import comparison_message
from turnout.api._model import (
    DarkView,
    PolicyChangeView,
    PolicyView,
    RejectionView,
    ReleaseAnalysisView,
    RolloutView,
    ServiceView,
)
from turnout.cache import ORDER, short_name
from turnout.xds import NackRecord, ProxyStatus

__all__ = [
    "analysis_message",
    "check_message",
    "dark_message",
    "figures_message",
    "is_proxy",
    "proxy_message",
    "service_message",
    "status_message",
    "timestamp",
]


def timestamp(at: datetime) -> Timestamp:
    """A protobuf Timestamp; naive datetimes are taken as UTC."""
    result = Timestamp()
    result.FromDatetime(at if at.tzinfo is not None else at.replace(tzinfo=UTC))
    return result


def is_proxy(status: ProxyStatus) -> bool:
    """Whether a stream has identified itself (sent its first request): only those count."""
    return bool(status.node_id or status.types)


def _nack(type_url: str, record: NackRecord) -> pb.Nack:
    return pb.Nack(
        type_url=type_url, version=record.version, message=record.message, at=timestamp(record.at)
    )


def proxy_message(
    status: ProxyStatus,
    served_version: str | None,
    accepted_at: datetime | None = None,
    assignment: Callable[[str, str], tuple[str, str]] | None = None,
) -> pb.ProxyStatus:
    """One proxy stream; ``behind`` is judged against the version it is given:
    ``served_version``, or during a config rollout what ``assignment`` says."""
    config_version, role = served_version or "", ""
    if assignment is not None:
        config_version, role = assignment(status.node_cluster, status.node_id)
    message = pb.ProxyStatus(
        stream_id=status.stream_id,
        node_id=status.node_id,
        node_cluster=status.node_cluster,
        stream_kind=status.kind,
        connected_at=timestamp(status.connected_at),
        synced_version=status.synced_version or "",
        config_version=config_version,
        rollout_role=role,
    )
    served_version = config_version or served_version
    if status.synced_at is not None:
        message.synced_at.CopyFrom(timestamp(status.synced_at))
    last_nack: tuple[datetime, pb.Nack] | None = None
    behind_since: datetime | None = None
    order = {t: i for i, t in enumerate(ORDER)}
    for type_url in sorted(status.types, key=lambda t: (order.get(t, len(order)), t)):
        state = status.types[type_url]
        entry = message.types.add(
            type_url=type_url,
            type=short_name(type_url),
            sent_version=state.sent_version or "",
            acked_version=state.acked_version or "",
        )
        if state.behind_since is not None:
            entry.behind_since.CopyFrom(timestamp(state.behind_since))
            if behind_since is None or state.behind_since < behind_since:
                behind_since = state.behind_since
        if state.last_nack is not None:
            nack = _nack(type_url, state.last_nack)
            entry.last_nack.CopyFrom(nack)
            if last_nack is None or state.last_nack.at > last_nack[0]:
                last_nack = (state.last_nack.at, nack)
    if last_nack is not None:
        message.last_nack.CopyFrom(last_nack[1])
    message.behind = bool(served_version) and status.synced_version != served_version
    if message.behind:
        # Right after a publish, before the stream's writer looked at it, no type has
        # noticed yet: the proxy has been behind since the version was accepted.
        since = behind_since or accepted_at
        if since is not None:
            message.behind_since.CopyFrom(timestamp(since))
    return message


def _rejection(rejection: RejectionView) -> pb.Rejection:
    message = pb.Rejection(errors=rejection.errors)
    if rejection.at is not None:
        message.at.CopyFrom(timestamp(rejection.at))
    return message


def _change(change: PolicyChangeView) -> pb.PolicyChange:
    message = pb.PolicyChange(
        at=timestamp(change.at),
        accepted=change.accepted,
        version=change.version,
        summary=change.summary,
        commit=change.commit,
    )
    for release in change.releases:
        entry = message.releases.add(
            service=release.service, phase=release.phase, step=release.step, reason=release.reason
        )
        if release.since is not None:
            entry.since.CopyFrom(timestamp(release.since))
    return message


def service_message(service: ServiceView) -> pb.ServiceStatus:
    """One service's release state."""
    message = pb.ServiceStatus(name=service.name, stable=service.stable, versions=service.versions)
    for segment in service.segments:
        entry = message.segments.add(
            name=segment.name, is_rule=segment.is_rule, instances=segment.instances
        )
        for share in segment.shares:
            entry.shares.add(version=share.version, percent=share.percent)
        if segment.mirror is not None:
            entry.mirror.CopyFrom(pb.Mirror(to=segment.mirror.to, percent=segment.mirror.percent))
    incremental = service.incremental
    if incremental is not None:
        message.incremental.CopyFrom(
            pb.IncrementalRelease(
                to=incremental.to,
                steps=incremental.steps,
                interval_seconds=incremental.interval_seconds,
                on_failure=incremental.on_failure,
                window=incremental.window,
                gates=incremental.gates,
            )
        )
        state = incremental.state
        if state is not None:
            message.incremental.state.CopyFrom(
                pb.ReleaseState(phase=state.phase, step=state.step, reason=state.reason)
            )
            if state.since is not None:
                message.incremental.state.since.CopyFrom(timestamp(state.since))
            for approval in state.approvals:
                record = message.incremental.state.approvals.add(step=approval.step, by=approval.by)
                if approval.at is not None:
                    record.at.CopyFrom(timestamp(approval.at))
        if incremental.analysis is not None:
            message.incremental.analysis.CopyFrom(analysis_message(incremental.analysis))
    message.dark.extend(dark_message(d) for d in service.dark)
    for endpoints in service.endpoints:
        counts = message.endpoints.add(version=endpoints.version, total=endpoints.total)
        if endpoints.healthy is not None:
            counts.healthy = endpoints.healthy
    message.pin_header = service.pin_header
    return message


def figures_message(figures: Figures) -> pb.VersionFigures:
    """One version's figures (analysis.Figures) as the API carries them: counts, the
    error rate and p50/p99 in seconds, unset where there were no requests."""
    message = pb.VersionFigures(
        version=figures.version,
        requests=figures.requests,
        errors=figures.errors,
        resets=figures.resets,
        proxies=figures.proxies,
    )
    for name, value in (
        ("error_rate", figures.error_rate),
        ("p50_seconds", figures.p50),
        ("p99_seconds", figures.p99),
    ):
        if value is not None:
            setattr(message, name, value)
    return message


def check_message(check: Check) -> pb.Check:
    """One threshold judged (analysis.Check) as the API carries it."""
    return pb.Check(
        name=check.name,
        value=check.value,
        limit=check.limit,
        breached=check.breached,
        p_value=check.p_value,
        significant=check.significant,
    )


def analysis_message(analysis: ReleaseAnalysisView) -> pb.ReleaseAnalysis:
    """The release driver's view of one release."""
    message = pb.ReleaseAnalysis(
        at=timestamp(analysis.at),
        kind=analysis.kind,
        outcome=analysis.outcome,
        action=analysis.action,
        reason=analysis.reason,
        reasons=analysis.reasons,
        confidence=analysis.confidence,
        error=analysis.error,
        window_note=analysis.window_note,
    )
    if analysis.canary is not None:
        message.canary.CopyFrom(figures_message(analysis.canary))
    if analysis.baseline is not None:
        message.baseline.CopyFrom(figures_message(analysis.baseline))
    for name, at in (
        ("window_start", analysis.window_start),
        ("step_ends", analysis.step_ends),
        ("deadline", analysis.deadline),
    ):
        if at is not None:
            getattr(message, name).CopyFrom(timestamp(at))
    message.checks.extend(check_message(c) for c in analysis.checks)
    return message


def dark_message(dark: DarkView) -> pb.DarkAnalysis:
    """One mirror target's continuous judgement."""
    message = pb.DarkAnalysis(
        to=dark.to,
        light=dark.light,
        segments=dark.segments,
        at=timestamp(dark.at),
        window_start=timestamp(dark.window_start),
        window_seconds=dark.window_seconds,
        outcome=dark.outcome,
        reasons=dark.reasons,
        confidence=dark.confidence,
        error=dark.error,
        window_note=dark.window_note,
        note=dark.note,
    )
    if dark.dark is not None:
        message.dark.CopyFrom(figures_message(dark.dark))
    if dark.light_figures is not None:
        message.light_figures.CopyFrom(figures_message(dark.light_figures))
    message.checks.extend(check_message(c) for c in dark.checks)
    if dark.comparison is not None:
        message.comparison.CopyFrom(comparison_message(dark.comparison))
    return message


def status_message(
    policy: PolicyView, proxies: Iterable[ProxyStatus], now: datetime | None = None
) -> pb.Status:
    """The whole status: the served set, its services and every identified proxy."""
    message = pb.Status(
        served_version=policy.policy_version or "",
        policies=policy.policies,
        reloads_accepted=policy.reloads_accepted,
        reloads_rejected=policy.reloads_rejected,
        generated_at=timestamp(now or datetime.now(UTC)),
        release_driver=policy.release_driver,
    )
    if policy.accepted_at is not None:
        message.accepted_at.CopyFrom(timestamp(policy.accepted_at))
    if policy.rejected is not None:
        message.rejected.CopyFrom(_rejection(policy.rejected))
    if policy.last_rejected is not None:
        message.last_rejected.CopyFrom(_rejection(policy.last_rejected))
    message.services.extend(service_message(s) for s in policy.services)
    message.history.extend(_change(c) for c in policy.history)
    message.proxies.extend(
        proxy_message(p, policy.policy_version, policy.accepted_at, policy.assignment)
        for p in sorted(proxies, key=lambda p: p.stream_id)
        if is_proxy(p)
    )
    if policy.rollout is not None:
        message.rollout.CopyFrom(rollout_message(policy.rollout))
    return message


def rollout_message(rollout: RolloutView) -> pb.ConfigRollout:
    """The config rollout."""
    message = pb.ConfigRollout(
        phase=rollout.phase,
        gateways=rollout.gateways,
        version=rollout.version,
        last_good_version=rollout.last_good_version,
        bake_seconds=rollout.bake_seconds,
        baked_seconds=rollout.baked_seconds,
        reason=rollout.reason,
        canary=rollout.canary,
        max_error_rate_increase=rollout.max_error_rate_increase,
        summary=rollout.summary,
    )
    if rollout.started_at is not None:
        message.started_at.CopyFrom(timestamp(rollout.started_at))
    if rollout.bake_started_at is not None:
        message.bake_started_at.CopyFrom(timestamp(rollout.bake_started_at))
    if rollout.canary_figures is not None:
        message.canary_figures.CopyFrom(figures_message(rollout.canary_figures))
    if rollout.rest_figures is not None:
        message.rest_figures.CopyFrom(figures_message(rollout.rest_figures))
    return message
