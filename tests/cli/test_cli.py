"""The `turnout` command's validate and render subcommands, run as a user would."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from turnout.cli import main

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "policies"


def test_validate_accepts_the_examples() -> None:
    """`turnout validate` exits 0 on the shipped examples and names the version."""
    result = CliRunner().invoke(main, ["validate", str(EXAMPLES)])
    assert result.exit_code == 0, result.output
    assert "ok: 1 gateway(s), 3 service(s), version " in result.output


def test_validate_reports_every_error_with_file_and_line(tmp_path: Path) -> None:
    """`turnout validate` exits 1 and prints each problem as FILE:LINE: path: message."""
    (tmp_path / "gw.yaml").write_text("kind: Gateway\nname: public\nport: 10000\n")
    (tmp_path / "svc.yaml").write_text(
        "kind: Service\n"
        "name: checkout\n"
        "versions:\n"
        "  v1: {endpoints: ['127.0.0.1:9101']}\n"
        "stable: v1\n"
        "traffic: {v1: 90}\n"
        "mirorr: {to: v1, percent: 5}\n"
    )
    proc = subprocess.run(
        [sys.executable, "-m", "turnout", "validate", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 1
    assert proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert f"{tmp_path}/svc.yaml:6: traffic: shares sum to 90, not 100" in lines
    assert any(line.startswith(f"{tmp_path}/svc.yaml:7: mirorr: ") for line in lines)
    assert 'did you mean "mirror"?' in proc.stderr


def test_render_prints_every_resource_type_as_json() -> None:
    """`turnout render` prints clusters, endpoints, listeners, routes and scopes with
    readable names."""
    result = CliRunner().invoke(main, ["render", str(EXAMPLES)])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    clusters = {c["name"] for c in out["clusters"]}
    assert {"checkout_v1", "checkout_v2", "checkout_v3", "catalog_instances"} <= clusters
    assert [listener["name"] for listener in out["listeners"]] == ["public"]
    routes = [route["name"] for route in out["routes"]]
    hosts = ("catalog.example.com", "checkout.example.com", "search.example.com")
    assert routes == [f"public/{host}" for host in hosts]
    assert [scope["name"] for scope in out["scoped_routes"]] == routes
    assert len(out["version"]) >= 8


def test_render_for_a_proxy_group_without_gateways_is_empty(tmp_path: Path) -> None:
    """An Envoy whose node.cluster matches no gateway's `proxies` gets no listener."""
    (tmp_path / "gw.yaml").write_text(
        "kind: Gateway\nname: edge\nport: 10000\nproxies: ['edge-*']\n"
    )
    (tmp_path / "svc.yaml").write_text(
        "kind: Service\nname: web\nversions:\n  v1: {endpoints: ['127.0.0.1:9101']}\n"
        "stable: v1\ntraffic: {v1: 100}\n"
    )
    matched = json.loads(
        CliRunner().invoke(main, ["render", str(tmp_path), "--proxy-cluster", "edge-eu"]).output
    )
    other = json.loads(
        CliRunner().invoke(main, ["render", str(tmp_path), "--proxy-cluster", "mesh"]).output
    )
    assert [listener["name"] for listener in matched["listeners"]] == ["edge"]
    assert other["listeners"] == []
    assert other["clusters"] == []
