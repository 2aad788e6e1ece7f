"""`turnout render` output is configuration a real Envoy accepts."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from turnout.testing.envoy import EnvoyError, validate_config

pytestmark = pytest.mark.e2e

POLICIES = {
    "gateways.yaml": """\
kind: Gateway
name: public
port: 10000
---
kind: Gateway
name: internal
port: 10001
address: 127.0.0.1
proxies: ["internal-*"]
""",
    "checkout.yaml": """\
kind: Service
name: checkout
gateways: [public, internal]
hosts: [checkout.example.com, "checkout.example.com:*"]
versions:
  v1: {endpoints: ["127.0.0.1:9101", "127.0.0.1:9102"]}
  v2: {endpoints: ["127.0.0.1:9201"]}
  v3: {endpoints: ["localhost:9301"]}
healthCheck: {path: /healthz, interval: 2s, timeout: 1s, unhealthyThreshold: 2, healthyThreshold: 1}
stable: v1
traffic: {v1: 94.5, v2: 5.5}
sticky: {cookie: turnout-cohort, ttl: 24h}
rules:
  - name: dogfood
    match:
      headers: {x-employee: "true", x-team: {prefix: pay}}
      cookies: {beta: "on"}
      query: {preview: {regex: "[0-9]+"}}
      path: {prefix: /api}
    traffic: {v1: 50, v2: 50}
    mirror: {to: v3, percent: 100}
  - name: exact-path
    match: {path: {exact: /health/deep}, headers: {x-debug: {present: true}}}
    traffic: {v2: 100}
mirror: {to: v3, percent: 10.25}
""",
    "search.yaml": """\
kind: Service
name: search
hosts: [search.example.com]
versions:
  blue: {endpoints: ["127.0.0.1:9401"]}
  green: {endpoints: ["127.0.0.1:9402"]}
stable: blue
traffic: instances
sticky: {header: x-user-id}
pinHeader: x-search-version
""",
}


def render(directory: Path, *args: str) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, "-m", "turnout", "render", str(directory), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    rendered: dict[str, Any] = json.loads(result.stdout)
    return rendered


def static_bootstrap(rendered: dict[str, Any]) -> dict[str, Any]:
    """The rendered resources as a static bootstrap: routes inlined in each listener's
    HTTP connection manager instead of RDS (a scoped listener's scopes inlined, each
    with its route configuration), EDS clusters given their assignment."""

    def strip(resource: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in resource.items() if k != "@type"}

    routes = {r["name"]: strip(r) for r in rendered["routes"]}
    assignments = {a["cluster_name"]: strip(a) for a in rendered["endpoints"]}
    listeners = []
    for resource in rendered["listeners"]:
        listener = copy.deepcopy(strip(resource))
        for chain in listener["filter_chains"]:
            for network_filter in chain["filters"]:
                manager = network_filter["typed_config"]
                if "scoped_routes" in manager:
                    scoped = manager["scoped_routes"]
                    del scoped["scoped_rds"]
                    scoped["scoped_route_configurations_list"] = {
                        "scoped_route_configurations": [
                            {
                                "name": scope["name"],
                                "key": scope["key"],
                                "route_configuration": routes[scope["route_configuration_name"]],
                            }
                            for scope in rendered["scoped_routes"]
                            if scope["key"]["fragments"][0]["string_key"] == scoped["name"]
                        ]
                    }
                else:
                    rds = manager.pop("rds")
                    manager["route_config"] = routes[rds["route_config_name"]]
        listeners.append(listener)
    clusters = []
    for resource in rendered["clusters"]:
        cluster = copy.deepcopy(strip(resource))
        if cluster.get("type") == "EDS":
            cluster.pop("eds_cluster_config")
            cluster["type"] = "STRICT_DNS"
            cluster["load_assignment"] = assignments[cluster["name"]]
        clusters.append(cluster)
    return {
        "node": {"id": "render-check", "cluster": "render-check"},
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}}},
        "static_resources": {"listeners": listeners, "clusters": clusters},
    }


def test_rendered_config_is_accepted_by_envoy(tmp_path: Path) -> None:
    """What `turnout render` prints for a policy set using every feature passes
    `envoy --mode validate` once turned into a static bootstrap."""
    policies = tmp_path / "policies"
    policies.mkdir()
    for name, text in POLICIES.items():
        (policies / name).write_text(text)
    rendered = render(policies)
    assert {r["name"] for r in rendered["listeners"]} == {"public", "internal"}
    assert "checkout_v3" in {c["name"] for c in rendered["clusters"]}
    config = tmp_path / "static.json"
    config.write_text(json.dumps(static_bootstrap(rendered)))
    validate_config(config)

    # The check can fail: the same config missing the mirror target is rejected.
    broken = static_bootstrap(rendered)
    clusters = broken["static_resources"]["clusters"]
    broken["static_resources"]["clusters"] = [c for c in clusters if c["name"] != "checkout_v3"]
    config.write_text(json.dumps(broken))
    with pytest.raises(EnvoyError, match="checkout_v3"):
        validate_config(config)


def test_rendered_selection_for_a_proxy_cluster_is_accepted(tmp_path: Path) -> None:
    """`turnout render --proxy-cluster` gives an Envoy only its gateways, and that
    selection is a complete config Envoy accepts on its own."""
    policies = tmp_path / "policies"
    policies.mkdir()
    for name, text in POLICIES.items():
        (policies / name).write_text(text)
    edge = render(policies, "--proxy-cluster", "edge")
    assert {r["name"] for r in edge["listeners"]} == {"public"}
    internal = render(policies, "--proxy-cluster", "internal-1")
    assert {r["name"] for r in internal["listeners"]} == {"public", "internal"}
    for name, rendered in (("edge", edge), ("internal", internal)):
        config = tmp_path / f"{name}.json"
        config.write_text(json.dumps(static_bootstrap(rendered)))
        validate_config(config)
