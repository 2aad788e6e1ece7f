"""What a policy change does, in human terms: per gateway, service and segment.

`policy_changes(old, new)` compares two valid sets and returns one `Change` per thing a
reviewer cares about: a segment's traffic (`checkout default: v2 5% -> 25%`), a rule
added or removed, a mirror, the stable version, versions deployed or removed, hosts,
gateways, the pin header, sticky sessions, health checks and incremental releases.
Changes come in a stable order: gateways, then services by name, each service's
fields in the order POLICY.md lists them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from turnout.policy import (
    INSTANCES,
    Compare,
    Gateway,
    HealthCheck,
    Incremental,
    IncrementalState,
    Match,
    Mirror,
    PolicySet,
    Rule,
    Service,
    Sticky,
    StringMatch,
    Traffic,
    duration_text,
    percent,
    shares_text,
    traffic_change,
)

__all__ = ["Change", "policy_changes"]

DEFAULT = "default"


@dataclass(frozen=True, slots=True)
class Change:
    """One change. `kind` names what changed (traffic, mirror, rule, stable, version,
    hosts, gateways, pinHeader, sticky, healthCheck, incremental, service, gateway);
    `old`/`new` are JSON values (None: absent); `text` is the line a person reads."""

    kind: str
    text: str
    service: str | None = None
    gateway: str | None = None
    segment: str | None = None  # "default" or "rule NAME", for traffic and mirrors
    version: str | None = None
    old: Any = None
    new: Any = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind}
        for key in ("service", "gateway", "segment", "version"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        out.update(old=self.old, new=self.new, text=self.text)
        return out


def policy_changes(old: PolicySet, new: PolicySet) -> list[Change]:
    changes = _gateways(old.gateways, new.gateways)
    before = {s.name: s for s in old.services}
    after = {s.name: s for s in new.services}
    for name in sorted(before.keys() | after.keys()):
        if name not in after:
            changes.append(
                Change("service", f"{name}: removed", service=name, old=_service(before[name]))
            )
        elif name not in before:
            added = after[name]
            text = f"{name}: added ({DEFAULT}: {shares_text(added.traffic)})"
            changes.append(Change("service", text, service=name, new=_service(added)))
        else:
            changes.extend(_service_changes(before[name], after[name]))
    return changes


# -- numbers and shares ---------------------------------------------------------------------


def _json_num(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)


def _traffic_json(traffic: Traffic) -> Any:
    if traffic == INSTANCES:
        return INSTANCES
    return {name: _json_num(share) for name, share in traffic}


# -- gateways -------------------------------------------------------------------------------


def _listen(gateway: Gateway) -> str:
    address = f"[{gateway.address}]" if ":" in gateway.address else gateway.address
    return f"{address}:{gateway.port}"


def _gateway_json(gateway: Gateway) -> dict[str, Any]:
    return {"address": gateway.address, "port": gateway.port, "proxies": list(gateway.proxies)}


def _gateways(old: Sequence[Gateway], new: Sequence[Gateway]) -> list[Change]:
    changes: list[Change] = []
    before, after = {g.name: g for g in old}, {g.name: g for g in new}
    for name in sorted(before.keys() | after.keys()):
        was, now = before.get(name), after.get(name)
        if now is None and was is not None:
            text = f"gateway {name}: removed (was on {_listen(was)})"
            changes.append(Change("gateway", text, gateway=name, old=_gateway_json(was)))
        elif was is None and now is not None:
            text = f"gateway {name}: added (on {_listen(now)}, proxies {', '.join(now.proxies)})"
            changes.append(Change("gateway", text, gateway=name, new=_gateway_json(now)))
        elif was is not None and now is not None and was != now:
            parts = []
            if _listen(was) != _listen(now):
                parts.append(f"listens on {_listen(was)} -> {_listen(now)}")
            if was.proxies != now.proxies:
                parts.append(f"proxies {', '.join(was.proxies)} -> {', '.join(now.proxies)}")
            text = f"gateway {name}: " + "; ".join(parts)
            changes.append(
                Change(
                    "gateway", text, gateway=name, old=_gateway_json(was), new=_gateway_json(now)
                )
            )
    return changes


# -- services -------------------------------------------------------------------------------


def _service(service: Service) -> dict[str, Any]:
    return {
        "stable": service.stable,
        "traffic": _traffic_json(service.traffic),
        "versions": [v.name for v in service.versions],
    }


def _service_changes(old: Service, new: Service) -> list[Change]:
    name = new.name
    changes: list[Change] = []

    def add(kind: str, text: str, was: Any, now: Any, **where: str | None) -> None:
        changes.append(Change(kind, f"{name} {text}", service=name, old=was, new=now, **where))

    if old.gateways != new.gateways:
        add(
            "gateways",
            f"gateways: {_set_change(old.gateways, new.gateways)}",
            list(old.gateways),
            list(new.gateways),
        )
    if old.hosts != new.hosts:
        add(
            "hosts", f"hosts: {_set_change(old.hosts, new.hosts)}", list(old.hosts), list(new.hosts)
        )
    changes.extend(_versions(old, new))
    if old.stable != new.stable:
        add("stable", f"stable: {old.stable} -> {new.stable}", old.stable, new.stable)
    if old.traffic != new.traffic:
        add(
            "traffic",
            f"{DEFAULT}: {traffic_change(old.traffic, new.traffic)}",
            _traffic_json(old.traffic),
            _traffic_json(new.traffic),
            segment=DEFAULT,
        )
    changes.extend(_mirror_changes(name, DEFAULT, old.mirror, new.mirror))
    changes.extend(_rules(old, new))
    if (old.pin_header, old.pin_when) != (new.pin_header, new.pin_when):
        add(
            "pinHeader",
            f"pin header: {_pin(old)} -> {_pin(new)}",
            old.pin_header,
            new.pin_header,
        )
    if old.sticky != new.sticky:
        add(
            "sticky",
            f"sticky: {_sticky(old.sticky)} -> {_sticky(new.sticky)}",
            _sticky_json(old.sticky),
            _sticky_json(new.sticky),
        )
    if old.health_check != new.health_check:
        add(
            "healthCheck",
            f"health check: {_health(old.health_check)} -> {_health(new.health_check)}",
            _health_json(old.health_check),
            _health_json(new.health_check),
        )
    changes.extend(_incremental(name, old.incremental, new.incremental))
    if not changes and old != new:  # a field without its own line: still say so
        changes.append(Change("service", f"{name}: changed", service=name))
    return changes


def _set_change(old: Sequence[str], new: Sequence[str]) -> str:
    """`+a, -b`, or `a, b -> b, a` when only the order changed."""
    added = [f"+{x}" for x in new if x not in old]
    removed = [f"-{x}" for x in old if x not in new]
    if added or removed:
        return ", ".join(added + removed)
    return f"{', '.join(old)} -> {', '.join(new)}"


def _versions(old: Service, new: Service) -> list[Change]:
    name = new.name
    changes: list[Change] = []
    before = {v.name: v for v in old.versions}
    after = {v.name: v for v in new.versions}
    for version in new.versions:
        if version.name not in before:
            endpoints = [str(e) for e in version.endpoints]
            listed = ", ".join(endpoints) or "no endpoints"
            text = f"{name} version {version.name}: deployed ({listed})"
            changes.append(
                Change("version", text, service=name, version=version.name, new=endpoints)
            )
    for version in old.versions:
        if version.name not in after:
            endpoints = [str(e) for e in version.endpoints]
            text = f"{name} version {version.name}: removed"
            changes.append(
                Change("version", text, service=name, version=version.name, old=endpoints)
            )
    for version in new.versions:
        was = before.get(version.name)
        if was is not None and was.endpoints != version.endpoints:
            olds, news = [str(e) for e in was.endpoints], [str(e) for e in version.endpoints]
            text = f"{name} version {version.name} endpoints: {_set_change(olds, news)}"
            changes.append(
                Change("version", text, service=name, version=version.name, old=olds, new=news)
            )
    return changes


def _mirror_json(mirror: Mirror | None) -> dict[str, Any] | None:
    if mirror is None:
        return None
    found: dict[str, Any] = {"to": mirror.to, "percent": _json_num(mirror.percent)}
    if mirror.compare is not None:
        compare = mirror.compare
        found["compare"] = {
            "methods": list(compare.methods),
            "ignore": list(compare.ignore),
            "maxDiffRate": compare.max_diff_rate,
            "headers": list(compare.headers),
            "redact": list(compare.redact),
        }
    return found


def _compare_text(compare: Compare | None) -> str:
    """`off`, or `maxDiffRate 0.01, methods GET HEAD, ignore header:date`."""
    if compare is None:
        return "off"
    ignore = f", ignore {' '.join(compare.ignore)}" if compare.ignore else ""
    return f"maxDiffRate {compare.max_diff_rate:g}, methods {' '.join(compare.methods)}{ignore}"


def _mirror_changes(
    service: str, segment: str, old: Mirror | None, new: Mirror | None
) -> list[Change]:
    """`checkout mirror to v3: 10% -> 0%`, one line per mirror target that moved."""
    if old == new:
        return []
    label = "" if segment == DEFAULT else f" {segment}"
    percents: dict[str, tuple[Decimal, Decimal]] = {}
    if old is not None:
        percents[old.to] = (old.percent, Decimal(0))
    if new is not None:
        was = percents.get(new.to, (Decimal(0), Decimal(0)))[0]
        percents[new.to] = (was, new.percent)
    return [
        Change(
            "mirror",
            f"{service}{label} mirror to {to}: {percent(was)}% -> {percent(now)}%",
            service=service,
            segment=segment,
            version=to,
            old=_mirror_json(old),
            new=_mirror_json(new),
        )
        for to, (was, now) in percents.items()
        if was != now
    ] + _compare_changes(service, segment, old, new)


def _compare_changes(
    service: str, segment: str, old: Mirror | None, new: Mirror | None
) -> list[Change]:
    """`checkout mirror to v3: compare off -> maxDiffRate 0.01, methods GET HEAD`."""
    if old is None or new is None or old.to != new.to or old.compare == new.compare:
        return []  # a mirror added, removed or moved: its percent line says so
    before, after, to = old.compare, new.compare, new.to
    label = "" if segment == DEFAULT else f" {segment}"
    text = f"{service}{label} mirror to {to}: compare {_compare_text(before)} -> "
    return [
        Change(
            "mirror",
            text + _compare_text(after),
            service=service,
            segment=segment,
            version=to,
            old=_mirror_json(old),
            new=_mirror_json(new),
        )
    ]


def _string_match(match: StringMatch) -> str:
    if match.kind == "present":
        return " present"
    if match.kind == "exact":
        return f'="{match.value}"'
    return f' {match.kind} "{match.value}"'


def _match(match: Match) -> str:
    parts = [f"header {n}{_string_match(m)}" for n, m in match.headers]
    parts += [f"cookie {n}{_string_match(m)}" for n, m in match.cookies]
    parts += [f"query {n}{_string_match(m)}" for n, m in match.query]
    if match.path is not None:
        parts.append(f'path {match.path.kind} "{match.path.value}"')
    return " and ".join(parts)


def _rule_json(rule: Rule) -> dict[str, Any]:
    return {
        "match": _match(rule.match),
        "traffic": _traffic_json(rule.traffic),
        "mirror": _mirror_json(rule.mirror),
    }


def _rules(old: Service, new: Service) -> list[Change]:
    name = new.name
    changes: list[Change] = []
    before = {r.name: r for r in old.rules}
    after = {r.name: r for r in new.rules}
    for rule in new.rules:
        segment = f"rule {rule.name}"
        was = before.get(rule.name)
        if was is None:
            text = f"{name} {segment}: added ({_match(rule.match)}: {shares_text(rule.traffic)})"
            changes.append(
                Change("rule", text, service=name, segment=segment, new=_rule_json(rule))
            )
            continue
        if was.match != rule.match:
            text = f"{name} {segment} match: {_match(was.match)} -> {_match(rule.match)}"
            changes.append(
                Change(
                    "match",
                    text,
                    service=name,
                    segment=segment,
                    old=_match(was.match),
                    new=_match(rule.match),
                )
            )
        if was.traffic != rule.traffic:
            text = f"{name} {segment}: {traffic_change(was.traffic, rule.traffic)}"
            changes.append(
                Change(
                    "traffic",
                    text,
                    service=name,
                    segment=segment,
                    old=_traffic_json(was.traffic),
                    new=_traffic_json(rule.traffic),
                )
            )
        changes.extend(_mirror_changes(name, segment, was.mirror, rule.mirror))
    for rule in old.rules:
        if rule.name not in after:
            segment = f"rule {rule.name}"
            text = f"{name} {segment}: removed (its requests take the next rule or {DEFAULT})"
            changes.append(
                Change("rule", text, service=name, segment=segment, old=_rule_json(rule))
            )
    kept_before = [r.name for r in old.rules if r.name in after]
    kept_after = [r.name for r in new.rules if r.name in before]
    if kept_before != kept_after:  # first match wins: the order decides
        text = f"{name} rules order: {', '.join(kept_before)} -> {', '.join(kept_after)}"
        changes.append(Change("rules", text, service=name, old=kept_before, new=kept_after))
    return changes


def _sticky(sticky: Sticky | None) -> str:
    if sticky is None:
        return "off"
    if sticky.header is not None:
        return f"header {sticky.header}"
    ttl = f" (ttl {duration_text(sticky.ttl_seconds)})" if sticky.ttl_seconds else ""
    return f"cookie {sticky.cookie}{ttl}"


def _sticky_json(sticky: Sticky | None) -> dict[str, Any] | None:
    if sticky is None:
        return None
    return {"header": sticky.header, "cookie": sticky.cookie, "ttl_seconds": sticky.ttl_seconds}


def _health(check: HealthCheck | None) -> str:
    if check is None:
        return "off"
    return (
        f"{check.path} every {duration_text(check.interval_seconds)} "
        f"(timeout {duration_text(check.timeout_seconds)}, "
        f"unhealthy after {check.unhealthy_threshold}, healthy after {check.healthy_threshold})"
    )


def _health_json(check: HealthCheck | None) -> dict[str, Any] | None:
    if check is None:
        return None
    return {
        "path": check.path,
        "interval_seconds": check.interval_seconds,
        "timeout_seconds": check.timeout_seconds,
        "unhealthy_threshold": check.unhealthy_threshold,
        "healthy_threshold": check.healthy_threshold,
    }


def _state(release: Incremental) -> str:
    state = release.state
    if state is None:
        return "not started"
    step = min(state.step, len(release.steps) - 1)
    share = percent(release.steps[step])
    text = f"{state.phase} at step {step + 1} of {len(release.steps)} ({share}%)"
    return f'{text}: "{state.reason}"' if state.reason else text


def _state_json(state: IncrementalState | None) -> dict[str, Any] | None:
    if state is None:
        return None
    return {
        "phase": state.phase,
        "step": state.step,
        "since": state.since.isoformat().replace("+00:00", "Z") if state.since else None,
        "reason": state.reason,
    }


def _pin(service: Service) -> str:
    """`x-turnout-version`, `x-turnout-version when matching x-employee`, or `off`."""
    if service.pin_header is None:
        return "off"
    when = service.pin_when
    if when is None:
        return service.pin_header
    names = [*(h for h, _ in when.headers), *(f"cookie {c}" for c, _ in when.cookies)]
    names += [f"query {q}" for q, _ in when.query] + (["path"] if when.path else [])
    return f"{service.pin_header} when matching {', '.join(names)}"


def _release(release: Incremental) -> str:
    steps = ", ".join(
        ("approve, " if index in release.gates else "") + f"{percent(s)}%"
        for index, s in enumerate(release.steps)
    )
    window = f", inside {release.window.describe()}" if release.window is not None else ""
    return (
        f"to {release.to}, steps {steps}, every {duration_text(release.interval_seconds)}{window}"
    )


def _release_json(release: Incremental | None) -> dict[str, Any] | None:
    if release is None:
        return None
    return {
        "to": release.to,
        "steps": [_json_num(s) for s in release.steps],
        "interval_seconds": release.interval_seconds,
        "on_failure": release.on_failure,
        "state": _state_json(release.state),
    }


def _incremental(service: str, old: Incremental | None, new: Incremental | None) -> list[Change]:
    if old == new:
        return []
    was, now = _release_json(old), _release_json(new)
    if old is None and new is not None:
        text = f"{service} incremental: added ({_release(new)}; {_state(new)})"
        return [Change("incremental", text, service=service, new=now)]
    if new is None or old is None:
        return [Change("incremental", f"{service} incremental: removed", service=service, old=was)]
    lines: list[str] = []
    if (old.to, old.steps, old.gates, old.interval_seconds, old.window) != (
        new.to,
        new.steps,
        new.gates,
        new.interval_seconds,
        new.window,
    ):
        lines.append(f"{_release(old)} -> {_release(new)}")
    if old.analysis != new.analysis or old.on_failure != new.on_failure:
        lines.append("analysis or onFailure changed")
    if old.state != new.state:
        lines.append(f"{_state(old)} -> {_state(new)}")
    return [
        Change("incremental", f"{service} incremental: {line}", service=service, old=was, new=now)
        for line in lines
    ]
