"""deploy/: every manifest is valid against the Kubernetes JSON schemas (bundled by
kubernetes-validate: no network), and the pieces fit together: the Service and the
PodDisruptionBudget select turnout's pods, probes hit the admin endpoints, the
arguments are ones `turnout serve` accepts, policies reach the path turnout reads,
and the Envoy gateway's bootstrap points at the turnout Service."""

from __future__ import annotations

import io
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import kubernetes_validate
import pytest
from ruamel.yaml import YAML

from turnout.cli import main as turnout_cli
from turnout.policy import parse_policies
from turnout.testing.envoy import find_envoy

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
KUBERNETES_VERSIONS = ("1.30", kubernetes_validate.utils.latest_version())
"""The oldest Kubernetes the manifests target (preStop `sleep` is on by default from
1.30) and the newest whose schemas the package bundles."""
ENTRY_POINTS = {
    "git-sync": DEPLOY,
    "configmap": DEPLOY / "configmap",
    "driving": DEPLOY / "driving",
    "mtls": DEPLOY / "mtls",
}
"""The kustomizations a user applies (`kubectl apply -k`)."""

Resource = dict[str, Any]


def _load(path: Path) -> list[Resource]:
    docs = YAML(typ="safe", pure=True).load_all(path.read_text())
    return [d for d in docs if d is not None]


def _manifests() -> list[Path]:
    return sorted(p for p in DEPLOY.rglob("*.yaml") if p.name != "kustomization.yaml")


def _resources(kustomization_dir: Path) -> Iterator[tuple[Path, Resource]]:
    """What `kustomize build` starts from: each listed file's documents, bases
    followed recursively (kustomize checks that each listed path exists; so do we)."""
    (kustomization,) = _load(kustomization_dir / "kustomization.yaml")
    assert kustomization["apiVersion"] == "kustomize.config.k8s.io/v1beta1"
    assert kustomization["kind"] == "Kustomization"
    for entry in kustomization["resources"]:
        path = (kustomization_dir / entry).resolve()
        assert path.exists(), f"{kustomization_dir}/kustomization.yaml lists missing {entry}"
        if path.is_dir():
            yield from _resources(path)
        else:
            for doc in _load(path):
                yield path, doc


def _build(name: str) -> dict[tuple[str, str], Resource]:
    built: dict[tuple[str, str], Resource] = {}
    for path, doc in _resources(ENTRY_POINTS[name]):
        key = (doc["kind"], doc["metadata"]["name"])
        assert key not in built, f"{key} defined twice (again in {path})"
        built[key] = doc
    return built


def _matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def _container(deployment: Resource, name: str) -> Resource:
    (container,) = [
        c for c in deployment["spec"]["template"]["spec"]["containers"] if c["name"] == name
    ]
    return container


def _serve_options(container: Resource) -> dict[str, Any]:
    """The arguments parsed by `turnout serve`'s own option parser (typos fail here)."""
    args = container["args"]
    assert args[0] == "serve"
    command = turnout_cli.commands["serve"]
    context = command.make_context("turnout serve", list(args[1:]))
    return dict(context.params)


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("path", _manifests(), ids=lambda p: str(p.relative_to(DEPLOY)))
def test_manifest_is_valid_against_the_kubernetes_schema(path: Path, version: str) -> None:
    """Every document is valid against the Kubernetes schema for its kind, strictly
    (an unknown or misspelt field is an error)."""
    docs = _load(path)
    assert docs
    for doc in docs:
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            location = ".".join(str(p) for p in exc.path)
            pytest.fail(
                f"{path.name}: {doc['kind']}/{doc['metadata']['name']}: {location}: {exc.message}"
            )


def test_an_invalid_manifest_is_caught() -> None:
    """The schema check is not vacuous: a misspelt field and a wrong type are errors."""
    (deployment,) = [
        d for d in _load(DEPLOY / "turnout-git-sync.yaml") if d["kind"] == "Deployment"
    ]
    deployment["spec"]["replica"] = 2
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSIONS[0], strict=True)
    del deployment["spec"]["replica"]
    deployment["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSIONS[0], strict=True)


def test_every_manifest_is_part_of_a_kustomization() -> None:
    """No manifest is left out of both entry points."""
    used = {path for name in ENTRY_POINTS for path, _ in _resources(ENTRY_POINTS[name])}
    assert set(_manifests()) == used


@pytest.mark.parametrize("name", sorted(ENTRY_POINTS))
def test_turnout_runs_as_replicas_behind_a_service(name: str) -> None:
    """At least two replicas, rolled one at a time, spread over nodes, selected by the
    Service and the PodDisruptionBudget, which keeps one up through voluntary disruptions."""
    built = _build(name)
    deployment = built["Deployment", "turnout"]
    spec = deployment["spec"]
    assert spec["replicas"] >= 2
    assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    pod_labels = spec["template"]["metadata"]["labels"]
    assert _matches(spec["selector"]["matchLabels"], pod_labels)
    pod = spec["template"]["spec"]
    assert any(
        c["topologyKey"] == "kubernetes.io/hostname" for c in pod["topologySpreadConstraints"]
    )
    service = built["Service", "turnout"]
    assert _matches(service["spec"]["selector"], pod_labels)
    pdb = built["PodDisruptionBudget", "turnout"]
    assert _matches(pdb["spec"]["selector"]["matchLabels"], pod_labels)
    assert 1 <= pdb["spec"]["minAvailable"] < spec["replicas"]
    assert pod["serviceAccountName"] in {n for k, n in built if k == "ServiceAccount"}

    turnout = _container(deployment, "turnout")
    ports = {p["name"]: p["containerPort"] for p in turnout["ports"]}
    for port in service["spec"]["ports"]:
        assert port["targetPort"] in ports, f"Service port {port['name']} targets no container port"
    options = _serve_options(turnout)
    assert options["xds_address"] == f"0.0.0.0:{ports['grpc-xds']}"
    assert options["admin_address"] == f"0.0.0.0:{ports['http-admin']}"


@pytest.mark.parametrize("name", sorted(ENTRY_POINTS))
def test_probes_resources_and_shutdown_budget(name: str) -> None:
    """Readiness is /readyz and liveness /healthz on the admin port; every container
    has requests and limits; the pod's termination grace covers preStop + --grace."""
    built = _build(name)
    for (kind, _), resource in built.items():
        if kind != "Deployment":
            continue
        pod = resource["spec"]["template"]["spec"]
        for container in [*pod.get("initContainers", []), *pod["containers"]]:
            resources = container.get("resources", {})
            assert {"cpu", "memory"} <= resources.get("requests", {}).keys(), container["name"]
            assert "memory" in resources.get("limits", {}), container["name"]
            assert container["securityContext"]["allowPrivilegeEscalation"] is False
    deployment = built["Deployment", "turnout"]
    turnout = _container(deployment, "turnout")
    assert turnout["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http-admin"}
    assert turnout["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http-admin"}
    options = _serve_options(turnout)
    pre_stop = turnout["lifecycle"]["preStop"]["sleep"]["seconds"]
    budget = deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert pre_stop + options["grace"] + 5 <= budget


def test_git_sync_publishes_where_turnout_reads() -> None:
    """git-sync's root/link and turnout's --policies agree, on a volume both mount,
    and the first sync happens before turnout starts."""
    built = _build("git-sync")
    deployment = built["Deployment", "turnout"]
    pod = deployment["spec"]["template"]["spec"]
    turnout = _container(deployment, "turnout")
    policies = Path(_serve_options(turnout)["policies"])
    syncers = [*pod["initContainers"], _container(deployment, "git-sync")]
    assert any("--one-time" in c["args"] for c in pod["initContainers"])
    for syncer in syncers:
        assert syncer["image"].startswith("registry.k8s.io/git-sync/git-sync:v4.")
        flags = dict(a.removeprefix("--").partition("=")[::2] for a in syncer["args"])
        link = Path(flags["root"]) / flags["link"]
        assert policies.is_relative_to(link), (policies, link)
        (mount,) = [m for m in syncer["volumeMounts"] if m["mountPath"] == flags["root"]]
        (reader,) = [m for m in turnout["volumeMounts"] if m["name"] == mount["name"]]
        assert policies.is_relative_to(reader["mountPath"])
        assert reader.get("readOnly") is True
    (volume,) = [v for v in pod["volumes"] if v["name"] == "git"]
    assert volume == {"name": "git", "emptyDir": {}}


def test_configmap_policies_are_a_valid_policy_set() -> None:
    """The ConfigMap variant mounts `turnout-policies` where turnout reads, and the
    policies it carries are accepted by turnout."""
    built = _build("configmap")
    deployment = built["Deployment", "turnout"]
    turnout = _container(deployment, "turnout")
    policies = _serve_options(turnout)["policies"]
    (mount,) = [m for m in turnout["volumeMounts"] if m["mountPath"] == str(policies)]
    (volume,) = [
        v for v in deployment["spec"]["template"]["spec"]["volumes"] if v["name"] == mount["name"]
    ]
    configmap = built["ConfigMap", volume["configMap"]["name"]]
    policy_set = parse_policies(dict(configmap["data"]))
    assert [g.name for g in policy_set.gateways] == ["public"]
    assert policy_set.gateways_for("edge") == ("public",)


@pytest.mark.parametrize("name", ["configmap", "mtls"])
def test_gateway_bootstrap_points_at_the_turnout_service(name: str) -> None:
    """The example gateway's bootstrap reaches turnout by the Service's DNS name and
    port, names its node after the pod, and listens where the policies' Gateway does."""
    built = _build(name)
    service = built["Service", "turnout"]
    gateway = built["Deployment", "envoy-gateway"]
    envoy = _container(gateway, "envoy")
    (volume,) = [v for v in gateway["spec"]["template"]["spec"]["volumes"] if "configMap" in v]
    bootstrap = _bootstrap(built["ConfigMap", volume["configMap"]["name"]])
    (cluster,) = bootstrap["static_resources"]["clusters"]
    assert cluster["name"] == "turnout_xds"
    assert cluster["type"] == "STRICT_DNS"
    address = cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]
    socket = address["address"]["socket_address"]
    meta = service["metadata"]
    assert socket["address"] == f"{meta['name']}.{meta['namespace']}.svc.cluster.local"
    (xds_port,) = [p["port"] for p in service["spec"]["ports"] if p["name"] == "grpc-xds"]
    assert socket["port_value"] == xds_port
    ads = bootstrap["dynamic_resources"]["ads_config"]
    assert ads["grpc_services"][0]["envoy_grpc"]["cluster_name"] == "turnout_xds"
    args = envoy["args"]
    assert args[args.index("--service-node") + 1] == "$(POD_NAME)"
    assert args[args.index("--service-cluster") + 1] == "edge"
    policies = _build("configmap")["ConfigMap", "turnout-policies"]
    policy_set = parse_policies(dict(policies["data"]))
    assert {p["containerPort"] for p in envoy["ports"]} == {g.port for g in policy_set.gateways}


@pytest.mark.e2e
def test_gateway_bootstrap_passes_envoy_validate(tmp_path: Path) -> None:
    """Envoy itself accepts the example gateway's bootstrap (`envoy --mode validate`)."""
    built = _build("git-sync")
    configmap = built["ConfigMap", "envoy-gateway-bootstrap"]
    path = tmp_path / "bootstrap.yaml"
    path.write_text(configmap["data"]["bootstrap.yaml"])
    # the node comes from the command line, as in the Deployment
    result = subprocess.run(
        [
            *(find_envoy(), "--mode", "validate", "-c", str(path), "--log-level", "error"),
            *("--service-node", "envoy-gateway-0", "--service-cluster", "edge"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _bootstrap(configmap: Resource) -> dict[str, Any]:
    result: dict[str, Any] = YAML(typ="safe", pure=True).load(
        io.StringIO(configmap["data"]["bootstrap.yaml"])
    )
    return result


def test_turnout_rejects_an_unknown_serve_option() -> None:
    """The argument check above is not vacuous: a misspelt option fails to parse."""
    with pytest.raises(click.UsageError):
        _serve_options({"args": ["serve", "--policy=/git/repo/policies"]})
