"""What turnout tells the comparators (mirror targets) and how it judges them."""

from __future__ import annotations

from turnout.policy import PolicySet, parse_policies
from turnout.release import compare_light, dark_targets
from turnout.server import compare_targets

POLICIES = {
    "p/gw.yaml": "kind: Gateway\nname: public\nport: 10000\n",
    "p/shop.yaml": """\
kind: Service
name: shop
versions:
  v1: {endpoints: ["10.0.0.1:80", "10.0.0.2:80"]}
  v2: {endpoints: ["10.0.0.3:80"]}
  v3: {endpoints: ["10.0.0.4:80"]}
stable: v1
traffic: {v1: 90, v2: 10}
rules:
  - name: beta
    match: {headers: {x-beta: "1"}}
    traffic: {v2: 100}
    mirror: {to: v3, percent: 50, compare: {maxDiffRate: 0.005, methods: [GET, POST]}}
  - name: plain
    match: {headers: {x-plain: "1"}}
    traffic: {v1: 100}
    mirror: {to: v3, percent: 50}
mirror:
  to: v3
  percent: 20
  compare: {ignore: ["header:date"], redact: [x-api-key]}
""",
}


def policies() -> PolicySet:
    return parse_policies(POLICIES)


def test_every_compare_mirror_is_a_target_with_its_light_version() -> None:
    """Each mirror with `compare:` is one target, named by its route, compared with
    stable where stable answers the segment, else the largest share; a mirror without
    `compare:` is not a target."""
    targets = {t.route: t for t in compare_targets(policies())}
    assert set(targets) == {"shop/default", "shop/rule/beta"}
    default, beta = targets["shop/default"], targets["shop/rule/beta"]
    assert (default.service, default.to, default.light) == ("shop", "v3", "v1")
    assert list(default.light_endpoints) == ["10.0.0.1:80", "10.0.0.2:80"]
    assert list(default.dark_endpoints) == ["10.0.0.4:80"]
    assert list(default.methods) == ["GET", "HEAD"]
    assert list(default.ignore) == ["header:date"]
    assert "x-api-key" in default.redact
    assert "content-type" in default.headers
    assert beta.light == "v2"
    assert list(beta.methods) == ["GET", "POST"]


def test_compare_light() -> None:
    """The light version: stable if it has a share, else the largest; none when only
    the dark version answers the segment."""
    shop = policies().service("shop")
    assert compare_light(shop, shop.traffic, "v3") == "v1"
    assert compare_light(shop, shop.rules[0].traffic, "v3") == "v2"
    assert compare_light(shop, shop.rules[0].traffic, "v2") is None


def test_the_dark_judgement_of_a_compared_target_needs_the_comparison() -> None:
    """A target with compare: is judged with the strictest maxDiffRate of its segments,
    against the light version the comparators call."""
    (target,) = dark_targets(policies().service("shop"))
    assert target.to == "v3"
    assert target.segments == ("default", "beta", "plain")
    assert target.thresholds.max_diff_rate == 0.005
    assert target.compared_with == "v1"
