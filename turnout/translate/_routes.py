"""Route configurations: one per gateway, one virtual host per service.

Routes in a service's virtual host, in the order Envoy tries them (first match wins):

1. pin routes, one per deployed version (`checkout/pin/v2`): `pinHeader: v2` reaches v2
   whatever its share, so an unreleased version can be health-checked and tested
   (with `pinHeader.when`, only by requests that also match it: a request carrying the
   pin header but not the `when` conditions matches no pin route and falls through to
   the rules and the default split, as if it had not asked);
2. one route per rule, in file order (`checkout/rule/dogfood`);
3. the default route (`checkout/default`), prefix `/`, with the service's default split.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from decimal import Decimal

from envoy.config.core.v3 import base_pb2
from envoy.config.route.v3 import route_components_pb2, route_pb2
from envoy.type.matcher.v3 import regex_pb2, string_pb2
from envoy.type.v3 import percent_pb2
from google.protobuf import wrappers_pb2

from turnout.policy import (
    INSTANCES,
    Match,
    Mirror,
    PathMatch,
    Service,
    Sticky,
    StringMatch,
    Traffic,
)

from ._common import duration, framed, key
from ._compare import compare_cluster_name, mark_copy
from ._names import cluster_name, pool_cluster_name, route_name

__all__ = [
    "cookie_regex",
    "route_configuration",
    "share_weight",
    "virtual_host",
    "virtual_host_bytes",
]

Route = route_components_pb2.Route
RouteAction = route_components_pb2.RouteAction


def route_configuration(gateway: str, services: Sequence[Service]) -> route_pb2.RouteConfiguration:
    """The route configuration of one gateway: a virtual host per service, by service name."""
    return route_pb2.RouteConfiguration(
        name=gateway,
        virtual_hosts=[virtual_host(s) for s in sorted(services, key=lambda s: s.name)],
    )


def virtual_host(service: Service, *, comparing: bool = False) -> route_components_pb2.VirtualHost:
    """A service's virtual host: pin routes, then rules in order, then the default route.
    ``comparing``: comparators are configured, so mirrors with `compare:` copy to them."""
    routes: list[route_components_pb2.Route] = []
    if service.pin_header is not None:
        routes.extend(
            Route(
                name=route_name(service.name, "pin", version.name),
                match=_pin_match(service.pin_header, version.name, service.pin_when),
                route=RouteAction(cluster=cluster_name(service.name, version.name)),
            )
            for version in service.versions
        )
    routes.extend(
        Route(
            name=route_name(service.name, "rule", rule.name),
            match=_route_match(rule.match),
            route=_action(
                service, rule.traffic, rule.mirror, ("rule", rule.name), comparing=comparing
            ),
        )
        for rule in service.rules
    )
    routes.append(
        Route(
            name=route_name(service.name, "default"),
            match=route_components_pb2.RouteMatch(prefix="/"),
            route=_action(
                service, service.traffic, service.mirror, ("default",), comparing=comparing
            ),
        )
    )
    return route_components_pb2.VirtualHost(
        name=service.name, domains=list(service.hosts), routes=routes
    )


# --- the same virtual host, written as bytes -------------------------------------------
#
# A big gateway's services differ in names, hosts and endpoints, and little else: their
# matches, weights and mirror fractions are the same few values. virtual_host_bytes
# writes a virtual host's deterministic serialization directly: the parts that carry a
# service's names are framed by hand (protobuf's wire format: a message is its fields in
# field-number order, each a key, a length and the bytes; turnout._protowire), and every
# part that does not (a RouteMatch, a weight, a mirror's fraction) is serialized from
# its message once per distinct value and reused. What is rare (sticky services, copies
# to comparators) is serialized from the message virtual_host builds. The result is
# byte for byte virtual_host(...).SerializeToString(deterministic=True)
# (tests/translate/test_written_bytes.py holds them equal).


_VHOST_NAME, _VHOST_DOMAINS, _VHOST_ROUTES = key(1), key(2), key(3)
_ROUTE_MATCH, _ROUTE_ACTION, _ROUTE_NAME = key(1), key(2), key(14)
_ACTION_WEIGHTED, _ACTION_MIRRORS = key(3), key(30)
_CLUSTER = key(1)  # RouteAction.cluster, ClusterWeight.name, RequestMirrorPolicy.cluster
_WEIGHTED_CLUSTERS = key(1)
_WEIGHT_VALUE = key(2)
_MIRROR_FRACTION = key(3)


def virtual_host_bytes(service: Service, *, comparing: bool = False) -> bytes:
    """``virtual_host(service, comparing=comparing)``'s deterministic serialization,
    written without building the message (see above)."""
    name = service.name
    # A version's cluster name as field 1: RouteAction.cluster, ClusterWeight.name and
    # RequestMirrorPolicy.cluster alike, written once per version.
    clusters = {v.name: framed(_CLUSTER, f"{name}_{v.name}".encode()) for v in service.versions}
    routes: list[bytes] = []
    if service.pin_header is not None:
        for version in service.versions:
            routes.append(
                _pin_match_field(service.pin_header, version.name, service.pin_when)
                + framed(_ROUTE_ACTION, clusters[version.name])
                + framed(_ROUTE_NAME, f"{name}/pin/{version.name}".encode())
            )
    for rule in service.rules:
        action = _action_bytes(
            service, clusters, rule.traffic, rule.mirror, ("rule", rule.name), comparing
        )
        routes.append(
            _rule_match_field(rule.match)
            + framed(_ROUTE_ACTION, action)
            + framed(_ROUTE_NAME, f"{name}/rule/{rule.name}".encode())
        )
    action = _action_bytes(
        service, clusters, service.traffic, service.mirror, ("default",), comparing
    )
    routes.append(
        _DEFAULT_MATCH_FIELD
        + framed(_ROUTE_ACTION, action)
        + framed(_ROUTE_NAME, f"{name}/default".encode())
    )
    return b"".join(
        (
            framed(_VHOST_NAME, name.encode()),
            *[framed(_VHOST_DOMAINS, host.encode()) for host in service.hosts],
            *[framed(_VHOST_ROUTES, route) for route in routes],
        )
    )


def _action_bytes(
    service: Service,
    clusters: dict[str, bytes],
    traffic: Traffic,
    mirror: Mirror | None,
    route: tuple[str, ...],
    comparing: bool,
) -> bytes:
    """``_action(...)``'s deterministic serialization: RouteAction's cluster (1) or
    weighted_clusters (3), then request_mirror_policies (30)."""
    if service.sticky is not None or (
        comparing and mirror is not None and mirror.compare is not None
    ):
        rare = _action(service, traffic, mirror, route, comparing=comparing)
        serialized: bytes = rare.SerializeToString(deterministic=True)
        return serialized

    def cluster(version: str) -> bytes:
        # A version the service does not deploy (the test of a traffic change to one
        # still to come, or invalid policy): written all the same, and the consistency
        # check names the missing cluster.
        field = clusters.get(version)
        return framed(_CLUSTER, f"{service.name}_{version}".encode()) if field is None else field

    if traffic == INSTANCES:
        action = framed(_CLUSTER, pool_cluster_name(service.name).encode())
    elif len(traffic) == 1:
        action = cluster(traffic[0][0])
    else:
        action = framed(
            _ACTION_WEIGHTED,
            b"".join(
                [
                    framed(_WEIGHTED_CLUSTERS, cluster(version) + _weight_field(share))
                    for version, share in traffic
                ]
            ),
        )
    if mirror is not None and mirror.percent > 0:
        action += framed(_ACTION_MIRRORS, cluster(mirror.to) + _fraction_field(mirror.percent))
    return action


@functools.lru_cache(maxsize=1024)
def _pin_match_field(header: str, version: str, when: Match | None) -> bytes:
    return framed(
        _ROUTE_MATCH, _pin_match(header, version, when).SerializeToString(deterministic=True)
    )


@functools.lru_cache(maxsize=1024)
def _rule_match_field(match: Match) -> bytes:
    return framed(_ROUTE_MATCH, _route_match(match).SerializeToString(deterministic=True))


_DEFAULT_MATCH_FIELD = framed(
    _ROUTE_MATCH, route_components_pb2.RouteMatch(prefix="/").SerializeToString(deterministic=True)
)


@functools.lru_cache(maxsize=1024)
def _weight_field(share: Decimal) -> bytes:
    weight = wrappers_pb2.UInt32Value(value=share_weight(share))
    return framed(_WEIGHT_VALUE, weight.SerializeToString(deterministic=True))


@functools.lru_cache(maxsize=1024)
def _fraction_field(percent: Decimal) -> bytes:
    return framed(_MIRROR_FRACTION, _fraction(percent).SerializeToString(deterministic=True))


def share_weight(share: Decimal) -> int:
    """A percentage share as an integer weight out of 10000 (33.33 -> 3333), exactly."""
    weight = share * 100
    if weight != weight.to_integral_value():
        raise ValueError(f"share {share} has more than two decimals")
    return int(weight)


def _action(
    service: Service,
    traffic: Traffic,
    mirror: Mirror | None,
    route: tuple[str, ...],
    *,
    comparing: bool = False,
) -> route_components_pb2.RouteAction:
    action = RouteAction()
    if traffic == INSTANCES:
        action.cluster = pool_cluster_name(service.name)
    elif len(traffic) == 1:
        action.cluster = cluster_name(service.name, traffic[0][0])
    else:
        # Weights out of 10000 keep 0.01% exact. `total_weight` is deprecated: Envoy uses
        # the sum of the weights, which is 10000 because the shares sum to 100.
        action.weighted_clusters.clusters.extend(
            route_components_pb2.WeightedCluster.ClusterWeight(
                name=cluster_name(service.name, version),
                weight=wrappers_pb2.UInt32Value(value=share_weight(share)),
            )
            for version, share in traffic
        )
        if service.sticky is not None:
            # Envoy (>= 1.36) then draws the weighted pick from the route's hash_policy
            # instead of a per-request random number: the same header/cookie value lands
            # on the same version for as long as the weights are unchanged (checked with
            # Envoy 1.40: 300 users x 3 requests at 50/50, 145/155 users per version, none
            # saw both). A request with no cookie yet is picked at random (the router only
            # creates the cookie later, when the cluster's hash load balancer asks for the
            # hash), so the cookie may map to another version than that first response.
            action.weighted_clusters.use_hash_policy.value = True
    if service.sticky is not None:
        action.hash_policy.append(_hash_policy(service.sticky))
    if mirror is not None and mirror.percent > 0:
        policy = RouteAction.RequestMirrorPolicy(
            cluster=cluster_name(service.name, mirror.to),
            runtime_fraction=_fraction(mirror.percent),
        )
        if comparing and mirror.compare is not None:  # see _compare: to the comparators
            policy.cluster = compare_cluster_name(service.name)
            policy.request_headers_mutations.append(mark_copy(route_name(service.name, *route)))
        action.request_mirror_policies.append(policy)
    return action


def _fraction(percent: Decimal) -> base_pb2.RuntimeFractionalPercent:
    # Per million keeps two decimals of a percent exact: 10% -> 100000, 0.5% -> 5000.
    numerator = percent * 10_000
    if numerator != numerator.to_integral_value():
        raise ValueError(f"mirror percent {percent} has more than two decimals")
    return base_pb2.RuntimeFractionalPercent(
        default_value=percent_pb2.FractionalPercent(
            numerator=int(numerator), denominator=percent_pb2.FractionalPercent.MILLION
        )
    )


def _hash_policy(sticky: Sticky) -> route_components_pb2.RouteAction.HashPolicy:
    if sticky.header is not None:
        return RouteAction.HashPolicy(
            header=RouteAction.HashPolicy.Header(header_name=sticky.header)
        )
    assert sticky.cookie is not None
    cookie = RouteAction.HashPolicy.Cookie(name=sticky.cookie, path="/")
    if sticky.ttl_seconds is not None:
        # With a ttl Envoy sets the cookie on the response when the request had none.
        cookie.ttl.CopyFrom(duration(sticky.ttl_seconds))
    return RouteAction.HashPolicy(cookie=cookie)


def _pin_match(header: str, version: str, when: Match | None) -> route_components_pb2.RouteMatch:
    """The pin header naming `version`, and every condition of `when` (all must hold:
    Envoy ANDs a RouteMatch's path, headers and query parameters)."""
    route_match = _route_match(when) if when is not None else route_components_pb2.RouteMatch()
    if when is None:
        route_match.prefix = "/"
    route_match.headers.insert(0, _header(header, StringMatch("exact", version)))
    return route_match


def _route_match(match: Match) -> route_components_pb2.RouteMatch:
    route_match = route_components_pb2.RouteMatch()
    _set_path(route_match, match.path)
    route_match.headers.extend(_header(name, value) for name, value in match.headers)
    route_match.headers.extend(
        _header("cookie", StringMatch("regex", cookie_regex(name, value)))
        for name, value in match.cookies
    )
    route_match.query_parameters.extend(
        _query_parameter(name, value) for name, value in match.query
    )
    return route_match


def _set_path(route_match: route_components_pb2.RouteMatch, path: PathMatch | None) -> None:
    if path is None:
        route_match.prefix = "/"
    elif path.kind == "prefix":
        route_match.prefix = path.value
    elif path.kind == "exact":
        route_match.path = path.value
    else:
        route_match.safe_regex.CopyFrom(_regex(path.value))


def _header(name: str, value: StringMatch) -> route_components_pb2.HeaderMatcher:
    if value.kind == "present":
        return route_components_pb2.HeaderMatcher(name=name, present_match=True)
    return route_components_pb2.HeaderMatcher(name=name, string_match=_string_matcher(value))


def _query_parameter(name: str, value: StringMatch) -> route_components_pb2.QueryParameterMatcher:
    if value.kind == "present":
        return route_components_pb2.QueryParameterMatcher(name=name, present_match=True)
    return route_components_pb2.QueryParameterMatcher(
        name=name, string_match=_string_matcher(value)
    )


def _string_matcher(value: StringMatch) -> string_pb2.StringMatcher:
    """Envoy's StringMatcher; a `regex` must match the whole value (RE2 FullMatch)."""
    if value.kind == "exact":
        return string_pb2.StringMatcher(exact=value.value)
    if value.kind == "prefix":
        return string_pb2.StringMatcher(prefix=value.value)
    if value.kind == "suffix":
        return string_pb2.StringMatcher(suffix=value.value)
    if value.kind == "regex":
        return string_pb2.StringMatcher(safe_regex=_regex(value.value))
    raise ValueError(f"no string matcher for {value.kind!r}")


def _regex(pattern: str) -> regex_pb2.RegexMatcher:
    # RE2 is Envoy's default engine; `google_re2: {}` is deprecated and left out.
    return regex_pb2.RegexMatcher(regex=pattern)


# --- cookies -------------------------------------------------------------------------
#
# RouteMatch has no cookie matcher, so a cookie condition is a regex on the `cookie`
# header (Envoy joins several cookie headers with "; " before matching). Envoy full-matches
# a header regex against the whole header value, so the pattern spells out the whole
# header:
#
#     (?:.*;)?\s*NAME=VALUE(?:;.*)?
#
# `(?:.*;)?\s*` puts NAME at the start of the header or right after a `;` (and optional
# spaces), so `xbeta=on` is not the cookie `beta`; `(?:;.*)?` after VALUE ends the value at
# the next `;` or at the end, so `beta=onx` is not `beta=on`. NAME and the literal values
# are escaped. By kind, VALUE is:
#
#   exact  V       the cookie's value is exactly V
#   prefix V[^;]*  the value starts with V
#   suffix [^;]*V  the value ends with V
#   present .*     a cookie of that name exists (any value, even empty)
#   regex  (?:R)   R matches the whole value, like a header regex; one leading `^` and one
#                  trailing `$` of R are dropped (they are implied). R is embedded as
#                  written: a pattern that can match `;` (like `.*`) may run on into the
#                  following cookies, so write `[^;]*` for "anything" in a cookie regex.

_RE2_SPECIAL = frozenset("\\.+*?()|[]{}^$#&-~ \t\n\r\f\v")


def cookie_regex(name: str, value: StringMatch) -> str:
    """The full-match RE2 pattern on the `cookie` header for one cookie condition."""
    if value.kind == "exact":
        pattern = _escape(value.value)
    elif value.kind == "prefix":
        pattern = _escape(value.value) + "[^;]*"
    elif value.kind == "suffix":
        pattern = "[^;]*" + _escape(value.value)
    elif value.kind == "regex":
        pattern = f"(?:{_strip_anchors(value.value)})"
    else:
        return rf"(?:.*;)?\s*{_escape(name)}=.*"
    return rf"(?:.*;)?\s*{_escape(name)}={pattern}(?:;.*)?"


def _escape(text: str) -> str:
    """Escape RE2 metacharacters (RE2 accepts a backslash before any ASCII punctuation)."""
    out: list[str] = []
    for char in text:
        if char in _RE2_SPECIAL:
            out.append(_ESCAPES.get(char, "\\" + char))
        else:
            out.append(char)
    return "".join(out)


# Whitespace is not punctuation: RE2 wants it written as an escape sequence.
_ESCAPES = {" ": "\\x20", "\t": "\\t", "\n": "\\n", "\r": "\\r", "\f": "\\f", "\v": "\\v"}


def _strip_anchors(pattern: str) -> str:
    if pattern.startswith("^"):
        pattern = pattern[1:]
    if pattern.endswith("$"):
        backslashes = len(pattern[:-1]) - len(pattern[:-1].rstrip("\\"))
        if backslashes % 2 == 0:  # an unescaped `$`
            pattern = pattern[:-1]
    return pattern
