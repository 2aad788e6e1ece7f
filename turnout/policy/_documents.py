"""Reading one Gateway or Service document into the model.

Each reader is table-driven: a mapping of field name to `Field(reader, required)`,
read in table order, so that `versions` is known before `stable`, `traffic`, rules,
`mirror` and `incremental` refer to it. What a set-wide check needs beyond the model
(the lines of names, hosts and gateway references) travels in the drafts.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from ruamel.yaml.nodes import MappingNode, ScalarNode, SequenceNode

from ._model import (
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
    Rule,
    Service,
    Split,
    Sticky,
    StringMatch,
    Traffic,
    Version,
)
from ._read import (
    BOOL,
    STR,
    At,
    Ctx,
    Field,
    Fields,
    Invalid,
    Reader,
    Scope,
    boolean,
    describe,
    duration,
    each,
    entries,
    fraction,
    integer,
    items,
    line_of,
    nonempty_string,
    number,
    one_of,
    percent,
    read_mapping,
    show,
    string,
    valid,
    word,
)
from ._values import (
    cookie_name,
    dns_label,
    endpoint,
    header_name,
    host,
    http_path,
    ip_address,
    port,
    query_name,
    regex,
    version_name,
    version_ref,
)

DEFAULT_PIN_HEADER = "x-turnout-version"


@dataclass(frozen=True, slots=True)
class Named:
    """A name as written: its text, line and field path (for set-wide checks)."""

    value: str
    line: int
    path: str


def _named(read: Callable[[Ctx, At], str]) -> Callable[[Ctx, At], Named]:
    def read_named(ctx: Ctx, at: At) -> Named:
        return Named(read(ctx, at), at.line, at.path)

    return read_named


def _ignore(ctx: Ctx, at: At) -> None:
    """`kind` was checked before the document's reader was chosen."""


# -- Gateway ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GatewayDraft:
    name: Named | None
    gateway: Gateway | None  # None when the document has problems
    port_line: int


def _proxies(ctx: Ctx, at: At) -> tuple[str, ...]:
    need = 'needs at least one glob (leave "proxies" out for every Envoy)'
    return tuple(each(ctx, items(ctx, at, nonempty=need), nonempty_string))


_GATEWAY = {
    "kind": Field(_ignore),
    "name": Field(_named(dns_label), required=True),
    "port": Field(port, required=True),
    "address": Field(ip_address),
    "proxies": Field(_proxies),
}


def read_gateway(ctx: Ctx, at: At) -> GatewayDraft:
    fields = read_mapping(ctx, at, _GATEWAY)
    name: Named | None = fields.values.get("name")
    port_at = fields.where.get("port")
    draft = GatewayDraft(name, None, port_at.line if port_at else at.line)
    if not fields.ok or name is None:
        return draft
    values = fields.values
    gateway = Gateway(
        name=name.value,
        port=values["port"],
        address=values.get("address", "0.0.0.0"),
        proxies=values.get("proxies", ("*",)),
        location=Location(ctx.file, at.line),
    )
    return replace(draft, gateway=gateway)


# -- Service: versions and traffic ------------------------------------------------------


def _endpoints(ctx: Ctx, at: At) -> tuple[Endpoint, ...]:
    ats = items(ctx, at)
    found = tuple(each(ctx, ats, endpoint))
    seen: set[Endpoint] = set()
    for item_at, found_endpoint in zip(ats, found, strict=True):
        if found_endpoint in seen:
            ctx.fail(item_at, f'duplicate endpoint "{found_endpoint}"')
        seen.add(found_endpoint)
    return found


_VERSION = {"endpoints": Field(_endpoints)}


def _versions(ctx: Ctx, at: At) -> tuple[Version, ...]:
    """Versions in declaration order; sets the scope's versions even when some fail."""
    found = entries(ctx, at)
    declared: dict[str, int] = {}
    failed = False
    for entry in found:
        declared[entry.name] = _endpoint_count(entry.value)  # even if badly named: one report
        try:
            version_name(ctx, entry.key)
        except Invalid:
            failed = True
    ctx.scope.versions = declared or None
    if not found:
        ctx.fail(at, "declare at least one version")
    versions: list[Version] = []
    for entry in found:
        fields = read_mapping(ctx, entry.value, _VERSION)
        if fields.ok:
            versions.append(Version(entry.name, fields.values.get("endpoints", ())))
        failed = failed or not fields.ok
    if failed:
        raise Invalid
    return tuple(versions)


def _endpoint_count(at: At) -> int:
    """How many endpoints a version lists, before they are checked."""
    if not isinstance(at.node, MappingNode):
        return 0
    for key, value in at.node.value:
        if key.value == "endpoints" and isinstance(value, SequenceNode):
            return len(value.value)
    return 0


def _stable(ctx: Ctx, at: At) -> str:
    ctx.scope.stable = version_ref(ctx, at)
    return ctx.scope.stable


def _traffic(ctx: Ctx, at: At) -> Traffic:
    node = at.node
    if isinstance(node, ScalarNode) and str(node.tag) == STR and node.value == INSTANCES:
        declared = ctx.scope.versions
        if declared is not None and not any(declared.values()):
            ctx.fail(at, f'"{INSTANCES}" needs at least one version with endpoints')
        return INSTANCES
    if not isinstance(node, MappingNode):
        ctx.fail(
            at, f'expected "{INSTANCES}" or a mapping of version to share, got {describe(node)}'
        )
    return _split(ctx, at)


def _split(ctx: Ctx, at: At) -> Split:
    found = entries(ctx, at)
    if not found:
        ctx.fail(at, "give at least one version a share")
    shares: dict[str, Decimal] = {}
    failed = False
    for entry in found:
        try:
            name = version_ref(ctx, entry.key)
            shares[name] = percent(ctx, entry.value)
        except Invalid:
            failed = True
    if failed:
        raise Invalid
    total = sum(shares.values(), Decimal(0))
    if total != 100:
        ctx.fail(at, f"shares sum to {show(total)}, not 100")
    order = list(ctx.scope.versions or shares)
    return tuple(
        (name, shares[name]) for name in sorted(shares, key=order.index) if shares[name] != 0
    )


# -- Service: rules and matches ---------------------------------------------------------

_STRING_MATCH_KINDS = ("exact", "prefix", "suffix", "regex", "present")


def _string_match(ctx: Ctx, at: At) -> StringMatch:
    """`"value"` (exact) or one of {exact|prefix|suffix|regex: str} or {present: true}."""
    node = at.node
    if isinstance(node, ScalarNode):
        if str(node.tag) == STR:
            return StringMatch("exact", str(node.value))
        quote = f'; quote it: "{node.value}"' if node.value else ""
        ctx.fail(
            at, f"expected a string or a mapping like {{prefix: ...}}, got {describe(node)}{quote}"
        )
    entry = one_of(ctx, at, _STRING_MATCH_KINDS)
    if entry.name == "present":
        if not boolean(ctx, entry.value):
            ctx.fail(entry.value, "present can only be true (leave the condition out instead)")
        return StringMatch("present")
    if entry.name == "regex":
        return StringMatch("regex", regex(ctx, entry.value))
    if entry.name == "exact":
        return StringMatch("exact", string(ctx, entry.value))
    if entry.name == "prefix":
        return StringMatch("prefix", nonempty_string(ctx, entry.value))
    return StringMatch("suffix", nonempty_string(ctx, entry.value))


def _named_matches(name_reader: Callable[[Ctx, At], str], what: str) -> Reader:
    def read(ctx: Ctx, at: At) -> tuple[tuple[str, StringMatch], ...]:
        pairs: list[tuple[str, StringMatch]] = []
        seen: set[str] = set()
        failed = False
        for entry in entries(ctx, at):
            try:
                name = name_reader(ctx, entry.key)
                if name in seen:
                    ctx.fail(entry.key, f'{what} "{name}" is given twice')
                seen.add(name)
                pairs.append((name, _string_match(ctx, entry.value)))
            except Invalid:
                failed = True
        if failed:
            raise Invalid
        return tuple(pairs)

    return read


def _path_match(ctx: Ctx, at: At) -> PathMatch:
    entry = one_of(ctx, at, ("prefix", "exact", "regex"))
    if entry.name == "regex":
        return PathMatch("regex", regex(ctx, entry.value))
    if entry.name == "prefix":
        return PathMatch("prefix", http_path(ctx, entry.value))
    return PathMatch("exact", http_path(ctx, entry.value))


_MATCH = {
    "headers": Field(_named_matches(header_name, "header")),
    "cookies": Field(_named_matches(cookie_name, "cookie")),
    "query": Field(_named_matches(query_name, "query parameter")),
    "path": Field(_path_match),
}


def _match(ctx: Ctx, at: At) -> Match:
    match = Match(**_snake(valid(read_mapping(ctx, at, _MATCH))))
    if not (match.headers or match.cookies or match.query or match.path):
        ctx.fail(at, "give at least one condition: headers, cookies, query or path")
    return match


_MIRROR = {"to": Field(version_ref, required=True), "percent": Field(percent, required=True)}


def _mirror(ctx: Ctx, at: At) -> Mirror:
    return Mirror(**valid(read_mapping(ctx, at, _MIRROR)))


_RULE = {
    "name": Field(_named(dns_label), required=True),
    "match": Field(_match, required=True),
    "traffic": Field(_traffic, required=True),
    "mirror": Field(_mirror),
}


def _rules(ctx: Ctx, at: At) -> tuple[Rule, ...]:
    rules: list[Rule] = []
    first: dict[str, int] = {}
    failed = False
    for item in items(ctx, at):
        try:
            fields = read_mapping(ctx, item, _RULE)
        except Invalid:
            failed = True
            continue
        name: Named | None = fields.values.get("name")
        if name is not None and name.value in first:
            ctx.report(
                name.line,
                name.path,
                f'rule "{name.value}" is already defined at line {first[name.value]}',
            )
            failed = True
        elif name is not None:
            first[name.value] = name.line
        if fields.ok and not failed:
            rules.append(_rule(ctx, fields))
        failed = failed or not fields.ok
    if failed:
        raise Invalid
    return tuple(rules)


def _rule(ctx: Ctx, fields: Fields) -> Rule:
    values = fields.values
    return Rule(
        name=values["name"].value,
        match=values["match"],
        traffic=values["traffic"],
        mirror=values.get("mirror"),
        location=Location(ctx.file, fields.at.line),
    )


# -- Service: the other optional parts --------------------------------------------------


def _positive(ctx: Ctx, at: At) -> int:
    return integer(ctx, at, 1)


_HEALTH_CHECK = {
    "path": Field(http_path),
    "interval": Field(duration),
    "timeout": Field(duration),
    "unhealthyThreshold": Field(_positive),
    "healthyThreshold": Field(_positive),
}


def _health_check(ctx: Ctx, at: At) -> HealthCheck:
    values = valid(read_mapping(ctx, at, _HEALTH_CHECK))
    renamed = {
        "path": "path",
        "interval": "interval_seconds",
        "timeout": "timeout_seconds",
        "unhealthyThreshold": "unhealthy_threshold",
        "healthyThreshold": "healthy_threshold",
    }
    return HealthCheck(**{renamed[k]: v for k, v in values.items()})


_STICKY = {"header": Field(header_name), "cookie": Field(cookie_name), "ttl": Field(duration)}


def _sticky(ctx: Ctx, at: At) -> Sticky:
    values = valid(read_mapping(ctx, at, _STICKY))
    if ("header" in values) == ("cookie" in values):
        ctx.fail(at, "give exactly one of header or cookie")
    if "header" in values and "ttl" in values:
        ctx.fail(at, "ttl applies to a cookie only")
    return Sticky(values.get("header"), values.get("cookie"), values.get("ttl"))


def _pin_header(ctx: Ctx, at: At) -> str | None:
    node = at.node
    if isinstance(node, ScalarNode) and str(node.tag) == BOOL:
        if not boolean(ctx, at):
            return None
        ctx.fail(at, "expected a header name, or false to turn pinning off")
    return header_name(ctx, at)


def _steps(ctx: Ctx, at: At) -> tuple[Decimal, ...]:
    ats = items(ctx, at, nonempty="give at least one step, ending at 100")
    steps = each(ctx, ats, percent)
    for index, (step_at, step) in enumerate(zip(ats, steps, strict=True)):
        if step == 0:
            ctx.fail(step_at, "a step must be more than 0")
        if index and step <= steps[index - 1]:
            ctx.fail(step_at, f"steps must increase: {show(step)} follows {show(steps[index - 1])}")
    if steps[-1] != 100:
        ctx.fail(ats[-1], f"the last step must be 100, got {show(steps[-1])}")
    return tuple(steps)


def _increase(ctx: Ctx, at: At) -> float:
    value = number(ctx, at)
    if value < 1:
        ctx.fail(at, f"a ratio to stable's p99, at least 1, got {show(value)}")
    return float(value)


_ANALYSIS = {
    "minRequests": Field(lambda ctx, at: integer(ctx, at, 0)),
    "maxErrorRate": Field(fraction),
    "maxErrorRateIncrease": Field(fraction),
    "maxLatencyP99": Field(duration),
    "maxLatencyP99Increase": Field(_increase),
    "minLatencyIncrease": Field(duration),
}

_ANALYSIS_NAMES = {
    "maxLatencyP99": "max_latency_p99_seconds",
    "minLatencyIncrease": "min_latency_increase_seconds",
}


def _analysis(ctx: Ctx, at: At) -> Analysis:
    values = valid(read_mapping(ctx, at, _ANALYSIS))
    values = {_ANALYSIS_NAMES.get(k, k): v for k, v in values.items()}
    return Analysis(**_snake(values))


_TIMESTAMP = "tag:yaml.org,2002:timestamp"
_RFC3339 = re.compile(r"\d{4}-\d\d-\d\d[Tt ]\d\d:\d\d:\d\d(\.\d+)?([Zz]|[+-]\d\d:\d\d)")
_SINCE_HELP = 'expected an RFC 3339 time in UTC, e.g. "2026-11-28T08:00:00Z"'


def _since(ctx: Ctx, at: At) -> datetime:
    """An RFC 3339 time with a zone, quoted or not (YAML reads it unquoted as a timestamp)."""
    node = at.node
    if not (isinstance(node, ScalarNode) and str(node.tag) in (STR, _TIMESTAMP)):
        ctx.fail(at, f"{_SINCE_HELP}, got {describe(node)}")
    text = str(node.value)
    if not _RFC3339.fullmatch(text):
        ctx.fail(at, f'invalid time "{text}": {_SINCE_HELP}')
    try:
        when = datetime.fromisoformat(text.upper().replace("Z", "+00:00"))
    except ValueError:
        ctx.fail(at, f'invalid time "{text}": {_SINCE_HELP}')
    return when.astimezone(UTC)


_STATE = {
    "phase": Field(lambda ctx, at: word(ctx, at, PHASES), required=True),
    "step": Field(lambda ctx, at: integer(ctx, at, 0)),
    "since": Field(_since),
    "reason": Field(string),
}


def _state(ctx: Ctx, at: At) -> IncrementalState:
    return IncrementalState(**valid(read_mapping(ctx, at, _STATE)))


_DARK = {
    "for": Field(duration, required=True),
    "minRequests": Field(lambda ctx, at: integer(ctx, at, 1)),
}


def _require_dark(ctx: Ctx, at: At) -> DarkRun:
    values = valid(read_mapping(ctx, at, _DARK))
    return DarkRun(for_seconds=values["for"], min_requests=values.get("minRequests", 100))


_INCREMENTAL = {
    "to": Field(version_ref, required=True),
    "steps": Field(_steps, required=True),
    "interval": Field(duration, required=True),
    "analysis": Field(_analysis),
    "onFailure": Field(lambda ctx, at: word(ctx, at, ("rollback", "hold"))),
    "requireDark": Field(_require_dark),
    "progressDeadline": Field(duration),
    "state": Field(_state),
}

#: Phases in which a dark run is still to come or under way (it needs the mirror).
_BEFORE_STEPS = ("pending", "dark")


def _incremental(ctx: Ctx, at: At) -> Incremental:
    fields = read_mapping(ctx, at, _INCREMENTAL)
    values = fields.values
    to, steps, state = values.get("to"), values.get("steps"), values.get("state")
    if to is not None and to == ctx.scope.stable and not (state and state.phase == "promoted"):
        # Once promoted, `to` is the stable version: the release is over, not invalid.
        message = f'"{to}" is the stable version; name the version being released'
        ctx.report(fields.where["to"].line, fields.where["to"].path, message)
        raise Invalid
    if steps is not None and state is not None and state.step >= len(steps):
        step_at = _key_value(fields.where["state"], "step")
        last = len(steps) - 1
        ctx.fail(
            step_at, f"must be a step index from 0 to {last} ({len(steps)} steps), got {state.step}"
        )
    interval, deadline = values.get("interval"), values.get("progressDeadline")
    dark: DarkRun | None = values.get("requireDark")
    if deadline is not None and interval is not None:
        longest = max(interval, dark.for_seconds if dark else 0.0)
        if deadline < longest:
            what = "requireDark.for" if dark and dark.for_seconds > interval else "interval"
            ctx.report(
                fields.where["progressDeadline"].line,
                fields.where["progressDeadline"].path,
                f"must be at least the {what} ({show_seconds(longest)}), "
                f"got {show_seconds(deadline)}",
            )
            raise Invalid
    values = valid(fields)
    return Incremental(
        to=values["to"],
        steps=values["steps"],
        interval_seconds=values["interval"],
        analysis=values.get("analysis", Analysis()),
        on_failure=values.get("onFailure", "rollback"),
        state=state,
        require_dark=dark,
        progress_deadline_seconds=deadline,
    )


def show_seconds(seconds: float) -> str:
    """120.0 -> "2m", 90.0 -> "1m30s", 1.5 -> "1.5s" (for messages)."""
    whole, rest = divmod(seconds, 60)
    if whole and not rest:
        return f"{int(whole)}m"
    if whole:
        return f"{int(whole)}m{rest:g}s"
    return f"{seconds:g}s"


def _check_dark_mirror(ctx: Ctx, fields: Fields) -> None:
    """`requireDark` judges the mirror of the default route: it must copy to `to`
    while the dark run is to come or under way."""
    release: Incremental | None = fields.values.get("incremental")
    if release is None or release.require_dark is None:
        return
    if release.state is not None and release.state.phase not in _BEFORE_STEPS:
        return  # the dark run is over: the mirror may go
    mirror: Mirror | None = fields.values.get("mirror")
    if mirror is not None and mirror.to == release.to and mirror.percent > 0:
        return
    at = _key_value(fields.where["incremental"], "requireDark")
    have = f"the mirror copies to {mirror.to}" if mirror is not None else "there is no mirror"
    if mirror is not None and mirror.to == release.to:
        have = "the mirror copies 0%"
    ctx.report(
        at.line,
        at.path,
        f"a dark run of {release.to} needs the default route's mirror to copy to it "
        f"(mirror: {{to: {release.to}, percent: 100}}), but {have}",
    )


def _key_value(at: At, key: str) -> At:
    """The `key` entry's value under a mapping that was read without problems."""
    assert isinstance(at.node, MappingNode)
    for key_node, value_node in at.node.value:
        if key_node.value == key:
            return At(value_node, f"{at.path}.{key}", line_of(value_node))
    return at


def _snake(values: dict[str, Any]) -> dict[str, Any]:
    """`maxErrorRate` -> `max_error_rate`, for model keyword arguments."""
    return {"".join(f"_{c.lower()}" if c.isupper() else c for c in k): v for k, v in values.items()}


# -- Service ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ServiceDraft:
    line: int  # where the document starts
    name: Named | None
    service: Service | None  # None when the document has problems; gateways unresolved
    gateways: tuple[Named, ...] | None  # None: every gateway
    hosts: tuple[Named, ...]


def _gateway_refs(ctx: Ctx, at: At) -> tuple[Named, ...]:
    need = 'name at least one gateway (leave "gateways" out for every gateway)'
    refs = each(ctx, items(ctx, at, nonempty=need), _named(dns_label))
    seen: set[str] = set()
    for ref in refs:
        if ref.value in seen:
            ctx.report(ref.line, ref.path, f'gateway "{ref.value}" is listed twice')
            raise Invalid
        seen.add(ref.value)
    return tuple(refs)


def _hosts(ctx: Ctx, at: At) -> tuple[Named, ...]:
    need = 'give at least one host (leave "hosts" out for "*")'
    hosts = each(ctx, items(ctx, at, nonempty=need), _named(host))
    seen: dict[str, Named] = {}
    for found in hosts:
        folded = found.value.lower()
        if folded in seen:
            ctx.report(found.line, found.path, f'host "{found.value}" is listed twice')
            raise Invalid
        seen[folded] = found
    return tuple(hosts)


_SERVICE = {
    "kind": Field(_ignore),
    "name": Field(_named(dns_label), required=True),
    "gateways": Field(_gateway_refs),
    "hosts": Field(_hosts),
    "versions": Field(_versions, required=True),
    "stable": Field(_stable, required=True),
    "traffic": Field(_traffic, required=True),
    "healthCheck": Field(_health_check),
    "sticky": Field(_sticky),
    "pinHeader": Field(_pin_header),
    "rules": Field(_rules),
    "mirror": Field(_mirror),
    "incremental": Field(_incremental),
}


def read_service(ctx: Ctx, at: At) -> ServiceDraft:
    ctx.scope = Scope()
    problems_before = len(ctx.problems)
    fields = read_mapping(ctx, at, _SERVICE)
    values = fields.values
    hosts: tuple[Named, ...] = values.get("hosts", (Named("*", at.line, "hosts"),))
    draft = ServiceDraft(at.line, values.get("name"), None, values.get("gateways"), hosts)
    if fields.ok:
        _check_dark_mirror(ctx, fields)
    if not fields.ok or draft.name is None or len(ctx.problems) > problems_before:
        return draft
    service = Service(
        name=draft.name.value,
        gateways=(),
        hosts=tuple(h.value for h in hosts),
        versions=values["versions"],
        stable=values["stable"],
        traffic=values["traffic"],
        health_check=values.get("healthCheck"),
        sticky=values.get("sticky"),
        rules=values.get("rules", ()),
        mirror=values.get("mirror"),
        pin_header=values.get("pinHeader", DEFAULT_PIN_HEADER),
        incremental=values.get("incremental"),
        location=Location(ctx.file, at.line),
    )
    return replace(draft, service=service)
