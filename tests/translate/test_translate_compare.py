"""Mirrors with `compare:` copy to the comparators' cluster, marked with their route."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from envoy.config.cluster.v3 import cluster_pb2

from turnout.policy import Endpoint, PolicySet, parse_policies
from turnout.testing.envoy import find_envoy
from turnout.translate import COMPARE_HEADER, Translator, compare_cluster_name

from ._static import static_bootstrap

POLICIES = {
    "p/gw.yaml": "kind: Gateway\nname: public\nport: 10000\n",
    "p/shop.yaml": """\
kind: Service
name: shop
versions:
  v1: {endpoints: ["127.0.0.1:9101"]}
  v3: {endpoints: ["127.0.0.1:9301"]}
stable: v1
traffic: {v1: 100}
rules:
  - name: beta
    match: {headers: {x-beta: "1"}}
    traffic: {v1: 100}
    mirror: {to: v3, percent: 5}
mirror:
  to: v3
  percent: 12.5
  compare: {ignore: ["header:date"]}
""",
}


def policies() -> PolicySet:
    return parse_policies(POLICIES)


def mirrors(translator: Translator) -> dict[str, object]:
    resources = translator.translate(policies()).all
    (routes,) = resources.routes
    found: dict[str, object] = {}
    for route in routes.virtual_hosts[0].routes:
        for mirror in route.route.request_mirror_policies:
            found[route.name] = mirror
    return found


def test_compare_mirror_goes_to_the_comparators_marked_with_its_route() -> None:
    """With comparators, the default route's compare mirror copies to `shop__compare`
    with `x-turnout-compare: shop/default` (overwriting a client's), at the same
    fraction; a rule mirror without compare still copies to the dark version."""
    translator = Translator([Endpoint("127.0.0.1", 7070), Endpoint("127.0.0.2", 7070)])
    found = mirrors(translator)
    default, rule = found["shop/default"], found["shop/rule/beta"]
    assert default.cluster == compare_cluster_name("shop") == "shop__compare"  # type: ignore[attr-defined]
    (mutation,) = default.request_headers_mutations  # type: ignore[attr-defined]
    assert (mutation.append.header.key, mutation.append.header.value) == (
        COMPARE_HEADER,
        "shop/default",
    )
    assert mutation.append.append_action == mutation.append.OVERWRITE_IF_EXISTS_OR_ADD
    assert default.runtime_fraction.default_value.numerator == 125_000  # type: ignore[attr-defined]
    assert rule.cluster == "shop_v3"  # type: ignore[attr-defined]
    clusters = {c.name: c for c in translator.translate(policies()).all.clusters}
    compare = clusters["shop__compare"]
    assert compare.type == cluster_pb2.Cluster.STATIC
    addresses = [
        e.endpoint.address.socket_address.address
        for e in compare.load_assignment.endpoints[0].lb_endpoints
    ]
    assert addresses == ["127.0.0.1", "127.0.0.2"]


def test_without_comparators_the_mirror_copies_to_the_dark_version() -> None:
    """Without comparators nothing would compare: the copy goes to v3 as before, and
    no comparator cluster is made."""
    translator = Translator()
    assert mirrors(translator)["shop/default"].cluster == "shop_v3"  # type: ignore[attr-defined]
    names = {c.name for c in translator.translate(policies()).all.clusters}
    assert "shop__compare" not in names


def test_a_named_comparator_is_resolved_by_envoy() -> None:
    """A comparator given by name (a Kubernetes Service) makes a STRICT_DNS cluster."""
    translator = Translator([Endpoint("turnout-compare.turnout.svc", 8080)])
    clusters = {c.name: c for c in translator.translate(policies()).all.clusters}
    assert clusters["shop__compare"].type == cluster_pb2.Cluster.STRICT_DNS


@pytest.mark.e2e
def test_envoy_validates_compare_mirrors(tmp_path: Path) -> None:
    """Envoy 1.40 accepts the comparator cluster and the marked mirror policy."""
    translator = Translator([Endpoint("127.0.0.1", 7070)])
    config = tmp_path / "bootstrap.json"
    config.write_text(json.dumps(static_bootstrap(translator.translate(policies()).all)))
    result = subprocess.run(
        [
            find_envoy(),
            "--mode",
            "validate",
            "-c",
            str(config),
            "--log-level",
            "error",
            "--base-id",
            str(40_000 + (os.getpid() + 7) % 20_000),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
