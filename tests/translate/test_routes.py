"""Route configurations: route order, splits, matches, cookies, mirrors and stickiness."""

from __future__ import annotations

from decimal import Decimal

import pytest
import re2
from envoy.config.route.v3 import route_components_pb2
from envoy.type.v3 import percent_pb2

from turnout.policy import (
    INSTANCES,
    Match,
    Mirror,
    PathMatch,
    Rule,
    Service,
    Sticky,
    StringMatch,
)
from turnout.translate._routes import cookie_regex, route_configuration, share_weight, virtual_host

from ._policies import split, version


def _service(**changes: object) -> Service:
    base: dict[str, object] = {
        "name": "checkout",
        "gateways": ("public",),
        "hosts": ("*",),
        "versions": (version("v1", "127.0.0.1:9101"), version("v2", "127.0.0.1:9201")),
        "stable": "v1",
        "traffic": split(("v1", "95"), ("v2", "5")),
    }
    base.update(changes)
    return Service(**base)  # type: ignore[arg-type]


def _route(service: Service, name: str) -> route_components_pb2.Route:
    (route,) = [r for r in virtual_host(service).routes if r.name == name]
    return route


def _rule(name: str = "r", **changes: object) -> Rule:
    base: dict[str, object] = {"name": name, "match": Match(), "traffic": split(("v2", "100"))}
    base.update(changes)
    return Rule(**base)  # type: ignore[arg-type]


def _cookie_matches(name: str, value: StringMatch, header: str) -> bool:
    # Envoy full-matches a header regex against the whole header value (RE2 FullMatch).
    return re2.fullmatch(cookie_regex(name, value), header) is not None


# --- weights ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("share", "weight"),
    [("33.33", 3333), ("66.67", 6667), ("0.01", 1), ("99.99", 9999), ("5", 500), ("100", 10000)],
)
def test_share_weight_is_exact(share: str, weight: int) -> None:
    """A percentage with up to two decimals becomes exactly share x 100 as an integer."""
    assert share_weight(Decimal(share)) == weight


def test_share_weight_rejects_three_decimals() -> None:
    """A share finer than 0.01% cannot be represented and is refused, not rounded."""
    with pytest.raises(ValueError, match=r"0\.005"):
        share_weight(Decimal("0.005"))


def test_split_weights_sum_to_ten_thousand_without_total_weight() -> None:
    """A 33.33/66.67 split gives weights 3333/6667 and leaves the deprecated total_weight unset."""
    action = _route(
        _service(traffic=split(("v1", "33.33"), ("v2", "66.67"))), "checkout/default"
    ).route
    weights = [(c.name, c.weight.value) for c in action.weighted_clusters.clusters]
    assert weights == [("checkout_v1", 3333), ("checkout_v2", 6667)]
    assert not action.weighted_clusters.HasField("total_weight")


def test_single_version_routes_to_its_cluster() -> None:
    """A version at 100% is a plain `cluster`, not a one-entry weighted_clusters."""
    action = _route(_service(traffic=split(("v2", "100"))), "checkout/default").route
    assert action.WhichOneof("cluster_specifier") == "cluster"
    assert action.cluster == "checkout_v2"


def test_instances_routes_to_pool_cluster() -> None:
    """`traffic: instances` routes the default route to the service's pool cluster."""
    action = _route(_service(traffic=INSTANCES), "checkout/default").route
    assert action.cluster == "checkout_instances"


# --- route order -----------------------------------------------------------------------


def test_routes_are_pin_then_rules_in_order_then_default() -> None:
    """Routes are one pin route per version, then the rules in file order, then the default."""
    service = _service(rules=(_rule("zeta"), _rule("alpha")))
    names = [r.name for r in virtual_host(service).routes]
    assert names == [
        "checkout/pin/v1",
        "checkout/pin/v2",
        "checkout/rule/zeta",
        "checkout/rule/alpha",
        "checkout/default",
    ]


def test_pin_route_matches_exact_header_and_targets_version() -> None:
    """A pin route matches `pinHeader: <version>` exactly on any path and goes to that version."""
    route = _route(_service(pin_header="x-pin"), "checkout/pin/v2")
    assert route.match.prefix == "/"
    (header,) = route.match.headers
    assert (header.name, header.string_match.exact) == ("x-pin", "v2")
    assert route.route.cluster == "checkout_v2"


def test_pin_route_with_when_also_requires_its_conditions() -> None:
    """`pinHeader.when` adds its conditions to every pin route: the pin header AND the
    `when` headers, cookies, query and path must all match."""
    when = Match(
        headers=(("x-employee", StringMatch("exact", "true")),),
        cookies=(("team", StringMatch("exact", "ops")),),
        path=PathMatch("prefix", "/api"),
    )
    route = _route(_service(pin_header="x-pin", pin_when=when), "checkout/pin/v2")
    assert route.match.prefix == "/api"
    names = [(h.name, h.WhichOneof("header_match_specifier")) for h in route.match.headers]
    assert names == [
        ("x-pin", "string_match"),
        ("x-employee", "string_match"),
        ("cookie", "string_match"),
    ]
    assert route.match.headers[0].string_match.exact == "v2"
    assert route.match.headers[1].string_match.exact == "true"
    assert route.route.cluster == "checkout_v2"


def test_no_pin_routes_when_pin_header_is_off() -> None:
    """`pinHeader: false` leaves no pin routes."""
    names = [r.name for r in virtual_host(_service(pin_header=None)).routes]
    assert names == ["checkout/default"]


def test_virtual_hosts_sorted_by_service_name() -> None:
    """A route configuration holds one virtual host per service, sorted by name, with its hosts."""
    services = [_service(name="zoo", hosts=("zoo.example.com",)), _service(name="app")]
    config = route_configuration("public", services)
    assert config.name == "public"
    assert [(v.name, list(v.domains)) for v in config.virtual_hosts] == [
        ("app", ["*"]),
        ("zoo", ["zoo.example.com"]),
    ]


# --- matches --------------------------------------------------------------------------


def test_rule_without_path_matches_every_path() -> None:
    """A rule with no path condition matches prefix `/`."""
    assert _route(_service(rules=(_rule(),)), "checkout/rule/r").match.prefix == "/"


@pytest.mark.parametrize(
    ("path", "field", "expected"),
    [
        (PathMatch("prefix", "/api"), "prefix", "/api"),
        (PathMatch("exact", "/cart"), "path", "/cart"),
        (PathMatch("regex", "/items/[0-9]+"), "safe_regex", "/items/[0-9]+"),
    ],
)
def test_path_match_kinds(path: PathMatch, field: str, expected: str) -> None:
    """Each path kind maps to its RouteMatch path specifier."""
    match = _route(_service(rules=(_rule(match=Match(path=path)),)), "checkout/rule/r").match
    assert match.WhichOneof("path_specifier") == field
    value = match.safe_regex.regex if field == "safe_regex" else getattr(match, field)
    assert value == expected
    assert not match.safe_regex.HasField("google_re2")  # deprecated; RE2 is the default


def test_header_and_query_match_kinds() -> None:
    """Header and query conditions use string_match per kind and present_match for `present`."""
    match = Match(
        headers=(
            ("x-a", StringMatch("exact", "1")),
            ("x-b", StringMatch("prefix", "p")),
            ("x-c", StringMatch("suffix", "s")),
            ("x-d", StringMatch("regex", "r+")),
            ("x-e", StringMatch("present")),
        ),
        query=(("q", StringMatch("exact", "1")), ("flag", StringMatch("present"))),
    )
    route_match = _route(_service(rules=(_rule(match=match),)), "checkout/rule/r").match
    headers = [
        (h.name, h.WhichOneof("header_match_specifier"), h.string_match.WhichOneof("match_pattern"))
        for h in route_match.headers
    ]
    assert headers == [
        ("x-a", "string_match", "exact"),
        ("x-b", "string_match", "prefix"),
        ("x-c", "string_match", "suffix"),
        ("x-d", "string_match", "safe_regex"),
        ("x-e", "present_match", None),
    ]
    assert route_match.headers[3].string_match.safe_regex.regex == "r+"
    query = [
        (q.name, q.WhichOneof("query_parameter_match_specifier"))
        for q in route_match.query_parameters
    ]
    assert query == [("q", "string_match"), ("flag", "present_match")]
    assert route_match.query_parameters[0].string_match.exact == "1"


def test_cookie_condition_is_regex_on_cookie_header() -> None:
    """A cookie condition becomes a safe_regex HeaderMatcher on the `cookie` header."""
    match = Match(cookies=(("beta", StringMatch("exact", "on")),))
    (header,) = _route(_service(rules=(_rule(match=match),)), "checkout/rule/r").match.headers
    assert header.name == "cookie"
    assert header.string_match.safe_regex.regex == cookie_regex("beta", StringMatch("exact", "on"))


@pytest.mark.parametrize("header", ["beta=on", "a=1; beta=on", "beta=on; x=2", "a=1;beta=on;b=2"])
def test_exact_cookie_matches(header: str) -> None:
    """`beta: on` matches the cookie wherever it sits in the cookie header."""
    assert _cookie_matches("beta", StringMatch("exact", "on"), header)


@pytest.mark.parametrize(
    "header", ["xbeta=on", "beta=onx", "a=1; xbeta=on", "beta=off", "a=beta=on", "", "beta=o"]
)
def test_exact_cookie_does_not_match(header: str) -> None:
    """`beta: on` does not match another cookie's name or a longer value."""
    assert not _cookie_matches("beta", StringMatch("exact", "on"), header)


def test_cookie_name_and_value_are_escaped() -> None:
    """Regex metacharacters in a cookie name or value match only themselves."""
    value = StringMatch("exact", "1.0+ (x)")
    assert _cookie_matches("a.b", value, "a.b=1.0+ (x)")
    assert not _cookie_matches("a.b", value, "axb=1.0+ (x)")
    assert not _cookie_matches("a.b", value, "a.b=1x0+ (x)")
    re2.compile(cookie_regex("n[", StringMatch("prefix", "v$^|\\")))


@pytest.mark.parametrize(
    ("value", "header", "matches"),
    [
        (StringMatch("prefix", "qa-"), "team=qa-berlin", True),
        (StringMatch("prefix", "qa-"), "x=1; team=qa-; y=2", True),
        (StringMatch("prefix", "qa-"), "team=dev-qa-", False),
        (StringMatch("prefix", "qa-"), "steam=qa-1", False),
        (StringMatch("suffix", ".gold"), "team=tier.gold", True),
        (StringMatch("suffix", ".gold"), "team=tier.gold; x=1", True),
        (StringMatch("suffix", ".gold"), "team=tier.golden", False),
        (StringMatch("suffix", ".gold"), "team=tierxgold", False),
        (StringMatch("suffix", ".gold"), "team=a; x=.gold", False),
        (StringMatch("present"), "team=", True),
        (StringMatch("present"), "a=1; team=x", True),
        (StringMatch("present"), "steam=x", False),
        (StringMatch("present"), "a=team", False),
        (StringMatch("regex", "^(a|b)$"), "team=a", True),
        (StringMatch("regex", "^(a|b)$"), "x=1; team=b; y=2", True),
        (StringMatch("regex", "^(a|b)$"), "team=ab", False),
        (StringMatch("regex", "^(a|b)$"), "team=c; x=a", False),
        (StringMatch("regex", "[0-9]+"), "team=42", True),
        (StringMatch("regex", "[0-9]+"), "team=4x2", False),
        (StringMatch("regex", "price\\$"), "team=price$", True),
    ],
)
def test_cookie_value_kinds(value: StringMatch, header: str, matches: bool) -> None:
    """prefix/suffix/present/regex cookie conditions hold exactly for the named cookie's value."""
    assert _cookie_matches("team", value, header) is matches


# --- mirror -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("percent", "numerator"), [("10", 100_000), ("0.5", 5_000), ("100", 10**6)]
)
def test_mirror_fraction_per_million(percent: str, numerator: int) -> None:
    """A mirror of P percent is a runtime_fraction of P x 10000 per million, with no runtime key."""
    service = _service(mirror=Mirror("v2", Decimal(percent)))
    (policy,) = _route(service, "checkout/default").route.request_mirror_policies
    assert policy.cluster == "checkout_v2"
    fraction = policy.runtime_fraction
    assert fraction.default_value.numerator == numerator
    assert fraction.default_value.denominator == percent_pb2.FractionalPercent.MILLION
    assert fraction.runtime_key == ""


def test_zero_percent_mirror_is_no_mirror() -> None:
    """A 0% mirror leaves no mirror policy on the route."""
    service = _service(mirror=Mirror("v2", Decimal(0)))
    assert not _route(service, "checkout/default").route.request_mirror_policies


def test_rule_mirror_is_on_the_rule_route_only() -> None:
    """A rule's mirror applies to that rule's route, not to the default route."""
    service = _service(rules=(_rule(mirror=Mirror("v1", Decimal(100))),))
    (policy,) = _route(service, "checkout/rule/r").route.request_mirror_policies
    assert policy.cluster == "checkout_v1"
    assert not _route(service, "checkout/default").route.request_mirror_policies


# --- sticky -------------------------------------------------------------------------


def test_sticky_header_hashes_weighted_pick() -> None:
    """A sticky header becomes a header hash_policy and weighted_clusters.use_hash_policy."""
    action = _route(_service(sticky=Sticky(header="x-user-id")), "checkout/default").route
    (policy,) = action.hash_policy
    assert policy.header.header_name == "x-user-id"
    assert action.weighted_clusters.use_hash_policy.value is True


def test_sticky_cookie_with_ttl_lets_envoy_set_it() -> None:
    """A sticky cookie is a cookie hash_policy with its ttl and path `/`, so Envoy sets it."""
    sticky = Sticky(cookie="turnout-cohort", ttl_seconds=86400.0)
    (policy,) = _route(_service(sticky=sticky), "checkout/default").route.hash_policy
    assert (policy.cookie.name, policy.cookie.path) == ("turnout-cohort", "/")
    assert policy.cookie.ttl.seconds == 86400


def test_not_sticky_means_random_weighted_pick() -> None:
    """Without sticky there is no hash policy and use_hash_policy stays unset."""
    action = _route(_service(), "checkout/default").route
    assert not action.hash_policy
    assert not action.weighted_clusters.HasField("use_hash_policy")


def test_pin_routes_carry_no_hash_policy() -> None:
    """Pin routes go to one version directly, whatever the sticky setting."""
    route = _route(_service(sticky=Sticky(header="x-user-id")), "checkout/pin/v1")
    assert not route.route.hash_policy
