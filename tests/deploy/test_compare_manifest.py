"""deploy/turnout-compare.yaml: the comparator's arguments are ones `turnout compare`
accepts, it reaches turnout's Service, and turnout's --comparator names its Service."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from turnout.cli import main as turnout_cli
from turnout.cli._compare_cmd import parse_endpoint

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def _docs(name: str) -> dict[tuple[str, str], Any]:
    docs = YAML(typ="safe", pure=True).load_all((DEPLOY / name).read_text())
    return {(d["kind"], d["metadata"]["name"]): d for d in docs if d}


def _options(container: dict[str, Any], command: str) -> dict[str, Any]:
    args = container["args"]
    assert args[0] == command
    parsed = turnout_cli.commands[command].make_context(f"turnout {command}", list(args[1:]))
    return dict(parsed.params)


def test_the_comparator_reaches_turnout_and_turnout_copies_to_it() -> None:
    """The comparator dials turnout's Service on its gRPC port, listens on the port its
    Service targets, probes its own /readyz and /healthz, and turnout serve's
    --comparator is that Service's name and port."""
    compare = _docs("turnout-compare.yaml")
    base = _docs("base/turnout-service.yaml")
    deployment = compare[("Deployment", "turnout-compare")]
    service = compare[("Service", "turnout-compare")]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    options = _options(container, "compare")
    turnout_port = {p["name"]: p["port"] for p in base[("Service", "turnout")]["spec"]["ports"]}
    assert options["xds_address"] == f"turnout.turnout.svc.cluster.local:{turnout_port['grpc-xds']}"
    listen = parse_endpoint(options["listen"])
    (port,) = container["ports"]
    assert port["containerPort"] == listen.port
    (service_port,) = service["spec"]["ports"]
    assert service_port["targetPort"] == port["name"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert all(labels[k] == v for k, v in service["spec"]["selector"].items())
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": port["name"]}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": port["name"]}
    turnout = _docs("turnout-git-sync.yaml")[("Deployment", "turnout")]
    (serve,) = [
        c for c in turnout["spec"]["template"]["spec"]["containers"] if c["name"] == "turnout"
    ]
    (comparator,) = _options(serve, "serve")["comparators"]
    assert (comparator.host, comparator.port) == (
        "turnout-compare.turnout.svc.cluster.local",
        service_port["port"],
    )
