"""Reading one Gateway or Service document into the model.

Each reader is table-driven: a mapping of field name to `Field(reader, required)`,
read in table order, so that `versions` is known before `stable`, `traffic`, rules,
`mirror` and `incremental` refer to it. What a set-wide check needs beyond the model
(the lines of names, hosts and gateway references) travels in the drafts.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, time
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ruamel.yaml.nodes import MappingNode, ScalarNode, SequenceNode

from ._compare_read import read_compare
from ._durations import duration_text
from ._model import (
    DEFAULT_BAKE_SECONDS,
    DEFAULT_ROLLOUT_MAX_ERROR_RATE_INCREASE,
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
from ._read import (
    BOOL,
    STR,
    At,
    Ctx,
    Field,
    Fields,
    Invalid,
    Reader,
    Schema,
    Scope,
    boolean,
    describe,
    described,
    duration,
    each,
    entries,
    fraction,
    hint,
    integer,
    integers,
    items,
    line_of,
    nonempty_string,
    number,
    one_of,
    percent,
    read_mapping,
    schema_of,
    show,
    string,
    tag_of,
    valid,
    word,
    words,
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
from ._window import DAY_NAMES

DEFAULT_PIN_HEADER = "x-turnout-version"


@dataclass(frozen=True, slots=True)
class Named:
    """A name as written: its text, line and field path (for set-wide checks)."""

    value: str
    line: int
    path: str


@functools.cache
def _named(read: Callable[[Ctx, At], str]) -> Callable[[Ctx, At], Named]:
    """`read`, giving a `Named`: one reader per `read` (each is registered with its schema
    for good: made per document, they piled up, 2,000 per 2,000-file load)."""

    @described(schema_of(read) or {})
    def read_named(ctx: Ctx, at: At) -> Named:
        return Named(read(ctx, at), at.line, at.path)

    return read_named


def _ignore(ctx: Ctx, at: At) -> None:
    """`kind` was checked before the document's reader was chosen."""


def _list(item: object, *, nonempty: bool = False) -> Schema:
    """The schema of a list of what `item` reads."""
    return {"type": "array", "items": item, **({"minItems": 1} if nonempty else {})}


def _map_of(value: object, key: object = None) -> Schema:
    """The schema of a mapping of names (read by `key`) to what `value` reads."""
    keys = {"propertyNames": key} if key is not None else {}
    return {"type": "object", "additionalProperties": value, **keys}


# -- Gateway ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GatewayDraft:
    name: Named | None
    gateway: Gateway | None  # None when the document has problems
    port_line: int


@described(_list(nonempty_string, nonempty=True))
def _proxies(ctx: Ctx, at: At) -> tuple[str, ...]:
    need = 'needs at least one glob (leave "proxies" out for every Envoy)'
    return tuple(each(ctx, items(ctx, at, nonempty=need), nonempty_string))


@described(_list(nonempty_string, nonempty=True))
def _canary(ctx: Ctx, at: At) -> tuple[str, ...]:
    need = "needs at least one glob over node.cluster or node.id"
    return tuple(each(ctx, items(ctx, at, nonempty=need), nonempty_string))


_ROLLOUT = {
    "canary": Field(_canary, required=True),
    "bake": Field(duration),
    "maxErrorRateIncrease": Field(fraction),
}


@described(_ROLLOUT)
def _rollout(ctx: Ctx, at: At) -> Rollout:
    values = valid(read_mapping(ctx, at, _ROLLOUT))
    return Rollout(
        canary=values["canary"],
        bake_seconds=values.get("bake", DEFAULT_BAKE_SECONDS),
        max_error_rate_increase=values.get(
            "maxErrorRateIncrease", DEFAULT_ROLLOUT_MAX_ERROR_RATE_INCREASE
        ),
    )


_GATEWAY = {
    "kind": Field(_ignore, schema={"const": "Gateway"}),
    "name": Field(_named(dns_label), required=True),
    "port": Field(port, required=True),
    "address": Field(ip_address),
    "proxies": Field(_proxies),
    "rollout": Field(_rollout),
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
        rollout=values.get("rollout"),
        location=Location(ctx.file, at.line),
    )
    return replace(draft, gateway=gateway)


# -- Service: versions and traffic ------------------------------------------------------


@described(_list(endpoint))
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


@described(_map_of(_VERSION, version_name))
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


@described({"type": "string"})
def _stable(ctx: Ctx, at: At) -> str:
    ctx.scope.stable = version_ref(ctx, at)
    return ctx.scope.stable


@described({"oneOf": [{"const": INSTANCES}, _map_of(percent, version_ref)]})
def _traffic(ctx: Ctx, at: At) -> Traffic:
    node = at.node
    if isinstance(node, ScalarNode) and tag_of(node) == STR and node.value == INSTANCES:
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


@described(
    {
        "oneOf": [
            {"type": "string"},
            *(
                {
                    "type": "object",
                    "properties": {kind: {"const": True} if kind == "present" else string},
                    "required": [kind],
                    "additionalProperties": False,
                }
                for kind in _STRING_MATCH_KINDS
            ),
        ]
    }
)
def _string_match(ctx: Ctx, at: At) -> StringMatch:
    """`"value"` (exact) or one of {exact|prefix|suffix|regex: str} or {present: true}."""
    node = at.node
    if isinstance(node, ScalarNode):
        if tag_of(node) == STR:
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
    @described(_map_of(_string_match, name_reader))
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


@described(
    {
        "oneOf": [
            {
                "type": "object",
                "properties": {kind: string if kind == "regex" else http_path},
                "required": [kind],
                "additionalProperties": False,
            }
            for kind in ("prefix", "exact", "regex")
        ]
    }
)
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


@described(_MATCH)
def _match(ctx: Ctx, at: At) -> Match:
    match = Match(**_snake(valid(read_mapping(ctx, at, _MATCH))))
    if not (match.headers or match.cookies or match.query or match.path):
        ctx.fail(at, "give at least one condition: headers, cookies, query or path")
    return match


_MIRROR = {
    "to": Field(version_ref, required=True),
    "percent": Field(percent, required=True),
    "compare": Field(read_compare),
}


@described(_MIRROR)
def _mirror(ctx: Ctx, at: At) -> Mirror:
    return Mirror(**valid(read_mapping(ctx, at, _MIRROR)))


_RULE = {
    "name": Field(_named(dns_label), required=True),
    "match": Field(_match, required=True),
    "traffic": Field(_traffic, required=True),
    "mirror": Field(_mirror),
}


@described(_list(_RULE))
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


@described(integers(1))
def _positive(ctx: Ctx, at: At) -> int:
    return integer(ctx, at, 1)


_HEALTH_CHECK = {
    "path": Field(http_path),
    "interval": Field(duration),
    "timeout": Field(duration),
    "unhealthyThreshold": Field(_positive),
    "healthyThreshold": Field(_positive),
}


@described(_HEALTH_CHECK)
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


@described(_STICKY)
def _sticky(ctx: Ctx, at: At) -> Sticky:
    values = valid(read_mapping(ctx, at, _STICKY))
    if ("header" in values) == ("cookie" in values):
        ctx.fail(at, "give exactly one of header or cookie")
    if "header" in values and "ttl" in values:
        ctx.fail(at, "ttl applies to a cookie only")
    return Sticky(values.get("header"), values.get("cookie"), values.get("ttl"))


_PIN_HEADER = {"name": Field(header_name), "when": Field(_match)}


@described({"oneOf": [header_name, {"const": False}, _PIN_HEADER]})
def _pin_header(ctx: Ctx, at: At) -> tuple[str | None, Match | None]:
    """`x-name`, `false` (no pinning), or `{name, when}`: pin only requests that also
    match `when` (e.g. a header an auth filter sets for employees)."""
    node = at.node
    if isinstance(node, ScalarNode) and tag_of(node) == BOOL:
        if not boolean(ctx, at):
            return None, None
        ctx.fail(at, "expected a header name, or false to turn pinning off")
    if isinstance(node, MappingNode):
        values = valid(read_mapping(ctx, at, _PIN_HEADER))
        return values.get("name", DEFAULT_PIN_HEADER), values.get("when")
    if not (isinstance(node, ScalarNode) and tag_of(node) == STR):
        ctx.fail(
            at,
            "expected a header name, false, or {name: ..., when: {headers: ...}}, "
            f"got {describe(node)}",
        )
    return header_name(ctx, at), None


#: The word in `steps` that gates the next step on a person's approval.
APPROVE = "approve"


@dataclass(frozen=True, slots=True)
class _Steps:
    shares: tuple[Decimal, ...]
    gates: tuple[int, ...]  # indexes into shares of the steps an `approve` precedes


@described(_list({"oneOf": [percent, {"const": APPROVE}]}, nonempty=True))
def _steps(ctx: Ctx, at: At) -> _Steps:
    written = items(ctx, at, nonempty="give at least one step, ending at 100")
    ats: list[At] = []
    gates: list[int] = []
    for item in written:
        node = item.node
        if not (isinstance(node, ScalarNode) and tag_of(node) == STR):
            ats.append(item)
            continue
        if node.value != APPROVE:
            ctx.fail(
                item,
                f'expected a share or "{APPROVE}", got "{node.value}"{hint(node.value, [APPROVE])}',
            )
        if not ats:
            ctx.fail(item, f"{APPROVE} must follow a step: a release starts at its first share")
        if gates and gates[-1] == len(ats):
            ctx.fail(item, f"{APPROVE} is given twice in a row")
        gates.append(len(ats))
    if not ats:
        ctx.fail(at, "give at least one step, ending at 100")
    steps = each(ctx, ats, percent)
    for index, (step_at, step) in enumerate(zip(ats, steps, strict=True)):
        if step == 0:
            ctx.fail(step_at, "a step must be more than 0")
        if index and step <= steps[index - 1]:
            ctx.fail(step_at, f"steps must increase: {show(step)} follows {show(steps[index - 1])}")
    if steps[-1] != 100:
        ctx.fail(ats[-1], f"the last step must be 100, got {show(steps[-1])}")
    if gates and gates[-1] == len(steps):
        ctx.fail(written[-1], f"{APPROVE} must come before a step (the last step must be 100)")
    return _Steps(tuple(steps), tuple(gates))


@described({"type": "number", "minimum": 1})
def _increase(ctx: Ctx, at: At) -> float:
    value = number(ctx, at)
    if value < 1:
        ctx.fail(at, f"a ratio to stable's p99, at least 1, got {show(value)}")
    return float(value)


_QUERY = {
    "name": Field(dns_label, required=True),
    "query": Field(nonempty_string, required=True),
    "max": Field(number),
    "maxIncrease": Field(number),
}


@described(_list(_QUERY))
def _queries(ctx: Ctx, at: At) -> tuple[AnalysisQuery, ...]:
    found: list[AnalysisQuery] = []
    seen: set[str] = set()
    failed = False
    for item in items(ctx, at):
        try:
            found.append(_query(ctx, item, seen))
        except Invalid:
            failed = True
    if failed:
        raise Invalid
    return tuple(found)


def _query(ctx: Ctx, at: At, seen: set[str]) -> AnalysisQuery:
    fields = read_mapping(ctx, at, _QUERY)
    values = valid(fields)
    name = values["name"]
    if name in seen:
        ctx.fail(fields.where["name"], f'query "{name}" is given twice')
    seen.add(name)
    if ("max" in values) == ("maxIncrease" in values):
        ctx.fail(at, "give exactly one of max or maxIncrease")
    if "maxIncrease" in values and "$version" not in values["query"]:
        ctx.fail(
            fields.where["query"],
            "maxIncrease compares the query for the released version with the same query "
            'for stable: write $version where the version goes, e.g. {version="$version"}',
        )
    limit = float(values["max"] if "max" in values else values["maxIncrease"])
    return AnalysisQuery(
        name=name,
        query=values["query"],
        max=limit if "max" in values else None,
        max_increase=limit if "maxIncrease" in values else None,
    )


_ANALYSIS = {
    "minRequests": Field(lambda ctx, at: integer(ctx, at, 0), schema=integers(0)),
    "maxErrorRate": Field(fraction),
    "maxErrorRateIncrease": Field(fraction),
    "maxLatencyP99": Field(duration),
    "maxLatencyP99Increase": Field(_increase),
    "minLatencyIncrease": Field(duration),
    "queries": Field(_queries),
}

_ANALYSIS_NAMES = {
    "maxLatencyP99": "max_latency_p99_seconds",
    "minLatencyIncrease": "min_latency_increase_seconds",
}


@described(_ANALYSIS)
def _analysis(ctx: Ctx, at: At) -> Analysis:
    values = valid(read_mapping(ctx, at, _ANALYSIS))
    values = {_ANALYSIS_NAMES.get(k, k): v for k, v in values.items()}
    return Analysis(**_snake(values))


_TIMESTAMP = "tag:yaml.org,2002:timestamp"
_RFC3339 = re.compile(r"\d{4}-\d\d-\d\d[Tt ]\d\d:\d\d:\d\d(\.\d+)?([Zz]|[+-]\d\d:\d\d)")
_SINCE_HELP = 'expected an RFC 3339 time in UTC, e.g. "2026-11-28T08:00:00Z"'


@described({"type": "string", "pattern": f"^{_RFC3339.pattern}$"})
def _since(ctx: Ctx, at: At) -> datetime:
    """An RFC 3339 time with a zone, quoted or not (YAML reads it unquoted as a timestamp)."""
    node = at.node
    if not (isinstance(node, ScalarNode) and tag_of(node) in (STR, _TIMESTAMP)):
        ctx.fail(at, f"{_SINCE_HELP}, got {describe(node)}")
    text = str(node.value)
    if not _RFC3339.fullmatch(text):
        ctx.fail(at, f'invalid time "{text}": {_SINCE_HELP}')
    try:
        when = datetime.fromisoformat(text.upper().replace("Z", "+00:00"))
    except ValueError:
        ctx.fail(at, f'invalid time "{text}": {_SINCE_HELP}')
    return when.astimezone(UTC)


_APPROVAL = {
    "step": Field(lambda ctx, at: integer(ctx, at, 0), required=True, schema=integers(0)),
    "by": Field(nonempty_string, required=True),
    "at": Field(_since),
}


@described(_list(_APPROVAL))
def _approvals(ctx: Ctx, at: At) -> tuple[Approval, ...]:
    return tuple(Approval(**valid(read_mapping(ctx, item, _APPROVAL))) for item in items(ctx, at))


_STATE = {
    "phase": Field(lambda ctx, at: word(ctx, at, PHASES), required=True, schema=words(PHASES)),
    "step": Field(lambda ctx, at: integer(ctx, at, 0), schema=integers(0)),
    "since": Field(_since),
    "reason": Field(string),
    "approvals": Field(_approvals),
}


@described(_STATE)
def _state(ctx: Ctx, at: At) -> IncrementalState:
    return IncrementalState(**valid(read_mapping(ctx, at, _STATE)))


_HOURS = re.compile(r"([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]|24):([0-5]\d)")
_DAY_RANGE = r"[A-Za-z]{3}(?:-[A-Za-z]{3})?"


@described({"oneOf": [{"type": "string"}, _list({"type": "string"}, nonempty=True)]})
def _days(ctx: Ctx, at: At) -> tuple[int, ...]:
    """`Mon-Fri`, `Mon,Wed,Fri`, `Fri-Mon` (wrapping), or a list of such."""
    node = at.node
    parts: list[tuple[At, str]] = []
    if isinstance(node, SequenceNode):
        ats = items(ctx, at, nonempty="list at least one day")
        parts = [(item, text) for item in ats for text in string(ctx, item).split(",")]
    else:
        parts = [(at, text) for text in string(ctx, at).split(",")]
    days: set[int] = set()
    lowered = [name.lower() for name in DAY_NAMES]
    for where, text in parts:
        text = text.strip()
        names = text.split("-")
        if not re.fullmatch(_DAY_RANGE, text) or any(n.lower() not in lowered for n in names):
            ctx.fail(
                where,
                f'invalid days "{text}": use {", ".join(DAY_NAMES)} and ranges like Mon-Fri',
            )
        first, last = (lowered.index(n.lower()) for n in (names[0], names[-1]))
        days.update((first + n) % 7 for n in range((last - first) % 7 + 1))
    return tuple(sorted(days))


@described({"type": "string", "pattern": f"^{_HOURS.pattern}$"})
def _hours(ctx: Ctx, at: At) -> tuple[time, time]:
    text = string(ctx, at)
    found = _HOURS.fullmatch(text)
    if found is None:
        ctx.fail(at, f'invalid hours "{text}": expected "HH:MM-HH:MM", e.g. "09:00-17:00"')
    start_h, start_m, end_h, end_m = (int(g) for g in found.groups())
    if end_h == 24 and end_m:
        ctx.fail(at, f'invalid hours "{text}": 24:00 is the latest end')
    start, end = time(start_h, start_m), time(end_h % 24, end_m)
    if start == end and end_h != 24:
        ctx.fail(at, f'"{text}" is empty: write "00:00-24:00" for the whole day')
    return start, end


@described({"type": "string", "minLength": 1})
def _timezone(ctx: Ctx, at: At) -> str:
    name = nonempty_string(ctx, at)
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        ctx.fail(at, f'unknown time zone "{name}": use an IANA name like "Europe/Berlin" or "UTC"')
    return name


_WINDOW = {"days": Field(_days), "hours": Field(_hours), "timezone": Field(_timezone)}


@described(_WINDOW)
def _window(ctx: Ctx, at: At) -> ReleaseWindow:
    values = valid(read_mapping(ctx, at, _WINDOW))
    if not values.keys() & {"days", "hours"}:
        ctx.fail(at, "give days, hours or both (leave window out to release at any time)")
    start, end = values.get("hours", (time(0), time(0)))
    return ReleaseWindow(
        days=values.get("days", tuple(range(7))),
        start=start,
        end=end,
        timezone=values.get("timezone", "UTC"),
    )


_DARK = {
    "for": Field(duration, required=True),
    "minRequests": Field(lambda ctx, at: integer(ctx, at, 1), schema=integers(1)),
}


@described(_DARK)
def _require_dark(ctx: Ctx, at: At) -> DarkRun:
    values = valid(read_mapping(ctx, at, _DARK))
    return DarkRun(for_seconds=values["for"], min_requests=values.get("minRequests", 100))


_INCREMENTAL = {
    "to": Field(version_ref, required=True),
    "steps": Field(_steps, required=True),
    "interval": Field(duration, required=True),
    "analysis": Field(_analysis),
    "onFailure": Field(
        lambda ctx, at: word(ctx, at, ("rollback", "hold")), schema=words(("rollback", "hold"))
    ),
    "requireDark": Field(_require_dark),
    "progressDeadline": Field(duration),
    "window": Field(_window),
    "state": Field(_state),
}

#: Phases in which a dark run is still to come or under way (it needs the mirror).
_BEFORE_STEPS = ("pending", "dark")


@described(_INCREMENTAL)
def _incremental(ctx: Ctx, at: At) -> Incremental:
    fields = read_mapping(ctx, at, _INCREMENTAL)
    values = fields.values
    to, state = values.get("to"), values.get("state")
    written: _Steps | None = values.get("steps")
    steps = written.shares if written is not None else None
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
                f"must be at least the {what} ({duration_text(longest)}), "
                f"got {duration_text(deadline)}",
            )
            raise Invalid
    values = valid(fields)
    assert written is not None
    return Incremental(
        to=values["to"],
        steps=written.shares,
        gates=written.gates,
        window=values.get("window"),
        interval_seconds=values["interval"],
        analysis=values.get("analysis", Analysis()),
        on_failure=values.get("onFailure", "rollback"),
        state=state,
        require_dark=dark,
        progress_deadline_seconds=deadline,
    )


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


@described(_list(dns_label, nonempty=True))
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


@described(_list(host, nonempty=True))
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
    "kind": Field(_ignore, schema={"const": "Service"}),
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


#: The tables `turnout schema` is generated from (`_schema`).
GATEWAY_FIELDS = _GATEWAY
SERVICE_FIELDS = _SERVICE


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
    pin_header, pin_when = values.get("pinHeader", (DEFAULT_PIN_HEADER, None))
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
        pin_header=pin_header,
        pin_when=pin_when,
        incremental=values.get("incremental"),
        location=Location(ctx.file, at.line),
    )
    return replace(draft, service=service)
