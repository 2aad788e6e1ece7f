"""deploy/driving/ and deploy/mtls/: the pieces of the driver in the cluster and of
mutual TLS fit together (offline; the schema check of every file is in
test_manifests.py), and the Python rendering the tests use agrees with kustomize
itself where kubectl is installed."""

from __future__ import annotations

import importlib.util
import io
import subprocess
import sys
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
from ruamel.yaml import YAML
from system_tools import require_tool  # tests/ (rootdir)
from test_manifests import DEPLOY, ENTRY_POINTS, Resource, _bootstrap, _build, _container
from test_manifests import _serve_options as serve_options

from turnout.server import load_identity_map
from turnout.xds import PeerIdentity


def _certs() -> Any:
    """tests/security/_certs.py (the test CA), loaded by path: tests/deploy is no package."""
    path = Path(__file__).resolve().parents[1] / "security" / "_certs.py"
    spec = importlib.util.spec_from_file_location("_deploy_certs", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(spec.name, module)  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def _pod(deployment: Resource) -> dict[str, Any]:
    pod: dict[str, Any] = deployment["spec"]["template"]["spec"]
    return pod


def _mount_for(container: Resource, path: str) -> Resource:
    """The volume mount that holds `path` (the longest mount path containing it)."""
    mounts = [
        m for m in container["volumeMounts"] if PurePosixPath(path).is_relative_to(m["mountPath"])
    ]
    assert mounts, f"{path} is on no volume of {container['name']}"
    return max(mounts, key=lambda m: len(m["mountPath"]))


def _volume(deployment: Resource, name: str) -> Resource:
    (volume,) = [v for v in _pod(deployment)["volumes"] if v["name"] == name]
    return volume


def test_driver_may_hold_the_lease_and_nothing_more() -> None:
    """The driving pods run as a ServiceAccount whose token is mounted, bound to a Role
    that allows create, and get/update on the Lease --lease-name names: all
    --leader-election kubernetes needs; the pod name is its identity."""
    built = _build("driving")
    deployment = built["Deployment", "turnout"]
    pod = _pod(deployment)
    turnout = _container(deployment, "turnout")
    options = serve_options(turnout)
    assert options["leader_election"] == "kubernetes"
    assert options["drive_releases"] is True
    account = pod["serviceAccountName"]
    assert ("ServiceAccount", account) in built
    assert pod["automountServiceAccountToken"] is True
    env = {e["name"]: e for e in turnout["env"]}
    assert env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    bindings = [
        b
        for (kind, _), b in built.items()
        if kind == "RoleBinding"
        and {"kind": "ServiceAccount", "name": account, "namespace": "turnout"} in b["subjects"]
    ]
    verbs: dict[str, set[str | None]] = {}
    for binding in bindings:
        role = built["Role", binding["roleRef"]["name"]]
        for rule in role["rules"]:
            assert rule["apiGroups"] == ["coordination.k8s.io"]
            assert rule["resources"] == ["leases"]
            for verb in rule["verbs"]:
                names = rule.get("resourceNames", [None])
                verbs.setdefault(verb, set()).update(names)
    assert verbs == {
        "create": {None},
        "get": {options["lease_name"]},
        "update": {"turnout-release-driver"},
    }
    # the serving-only replicas keep a ServiceAccount with no token and no Role
    for name in ("git-sync", "configmap", "mtls"):
        serving = _pod(_build(name)["Deployment", "turnout"])
        assert serving["automountServiceAccountToken"] is False
        assert not any(kind in ("Role", "RoleBinding") for kind, _ in _build(name))


def test_driver_works_in_a_writable_clone_that_a_sidecar_pushes() -> None:
    """The driver's --policies lie in a writable emptyDir that an init container clones
    into and the git-push sidecar pushes from; it commits each step, and git has a
    writable HOME on the read-only root."""
    built = _build("driving")
    deployment = built["Deployment", "turnout"]
    pod = _pod(deployment)
    turnout = _container(deployment, "turnout")
    options = serve_options(turnout)
    assert options["commit_releases"] is True
    policies = str(options["policies"])
    mount = _mount_for(turnout, policies)
    assert mount.get("readOnly") is not True
    assert _volume(deployment, mount["name"]) == {"name": mount["name"], "emptyDir": {}}
    (clone,) = pod["initContainers"]
    pusher = _container(deployment, "git-push")
    for container in (clone, pusher):
        shared = _mount_for(container, policies)
        assert shared["name"] == mount["name"]
        assert shared["mountPath"] == mount["mountPath"]
    script = clone["args"][0]
    checkout = PurePosixPath(policies).parent
    assert f" {checkout}\n" in script  # git clone ... /checkout/repo
    assert "git push" in pusher["args"][0]
    assert "git rebase --abort" in pusher["args"][0]
    home = {e["name"]: e.get("value") for e in turnout["env"]}["HOME"]
    assert _mount_for(turnout, home)["name"] == "turnout-tmp"
    secret = _volume(deployment, "git-credentials")["secret"]["secretName"]
    assert secret == "turnout-git-credentials"


def test_turnout_serves_mutual_tls_from_its_secret_and_identity_map(tmp_path: Path) -> None:
    """The --tls-* files are the keys of the `turnout-tls` Secret where it is mounted,
    and the identity map is the ConfigMap's file, which turnout's own loader accepts:
    it lets the gateway's SPIFFE ID claim the gateway's node cluster and no other."""
    built = _build("mtls")
    deployment = built["Deployment", "turnout"]
    turnout = _container(deployment, "turnout")
    options = serve_options(turnout)
    for option, key in (
        ("tls_cert", "tls.crt"),
        ("tls_key", "tls.key"),
        ("tls_client_ca", "ca.crt"),
    ):
        path = PurePosixPath(str(options[option]))
        mount = _mount_for(turnout, str(path))
        assert mount.get("readOnly") is True
        assert path == PurePosixPath(mount["mountPath"]) / key
        assert _volume(deployment, mount["name"])["secret"]["secretName"] == "turnout-tls"
    identity_file = PurePosixPath(str(options["identity_map"]))
    mount = _mount_for(turnout, str(identity_file))
    configmap = built["ConfigMap", _volume(deployment, mount["name"])["configMap"]["name"]]
    text = configmap["data"][identity_file.name]
    gateway = _container(built["Deployment", "envoy-gateway"], "envoy")
    cluster = gateway["args"][gateway["args"].index("--service-cluster") + 1]
    account = _pod(built["Deployment", "envoy-gateway"])["serviceAccountName"]
    assert ("ServiceAccount", account) in built
    spiffe = f"spiffe://cluster.local/ns/turnout/sa/{account}"
    assert spiffe in (DEPLOY / "mtls" / "kustomization.yaml").read_text()  # documented
    identities = _identity_map(text, tmp_path)
    assert identities.allows(PeerIdentity("10.0.0.1", "ssl", spiffe), cluster)


def _identity_map(text: str, tmp_path: Path) -> Any:
    path = tmp_path / "identities.yaml"
    path.write_text(text)
    return load_identity_map(path)


def test_the_identity_map_allows_the_gateway_only_its_cluster(tmp_path: Path) -> None:
    """The mtls identity map, read by turnout, lets the gateway's identity claim `edge`
    and nothing else, and no other identity claim `edge`."""
    built = _build("mtls")
    identities = _identity_map(
        built["ConfigMap", "turnout-identities"]["data"]["identities.yaml"], tmp_path
    )
    gateway = PeerIdentity("10.0.0.1", "ssl", "spiffe://cluster.local/ns/turnout/sa/envoy-gateway")
    other = PeerIdentity("10.0.0.2", "ssl", "spiffe://cluster.local/ns/shop/sa/envoy-gateway")
    assert identities.allows(gateway, "edge")
    assert not identities.allows(gateway, "payments")
    assert not identities.allows(other, "edge")


def test_gateway_reaches_turnout_over_mutual_tls() -> None:
    """The mtls gateway's bootstrap puts a TLS transport socket on the turnout_xds
    cluster: ALPN h2, its certificate, key and CA from the `envoy-gateway-tls` Secret's
    mount, and turnout's DNS SAN (the Service's name) checked."""
    built = _build("mtls")
    deployment = built["Deployment", "envoy-gateway"]
    envoy = _container(deployment, "envoy")
    bootstrap = _bootstrap(built["ConfigMap", "envoy-gateway-bootstrap"])
    (cluster,) = bootstrap["static_resources"]["clusters"]
    tls = cluster["transport_socket"]["typed_config"]
    assert tls["@type"].endswith("UpstreamTlsContext")
    context = tls["common_tls_context"]
    assert context["alpn_protocols"] == ["h2"]
    (pair,) = context["tls_certificates"]
    files = {
        "tls.crt": pair["certificate_chain"]["filename"],
        "tls.key": pair["private_key"]["filename"],
        "ca.crt": context["validation_context"]["trusted_ca"]["filename"],
    }
    for key, path in files.items():
        mount = _mount_for(envoy, path)
        assert PurePosixPath(path) == PurePosixPath(mount["mountPath"]) / key
        assert _volume(deployment, mount["name"])["secret"]["secretName"] == "envoy-gateway-tls"
    service = built["Service", "turnout"]["metadata"]
    (san,) = context["validation_context"]["match_typed_subject_alt_names"]
    assert san == {
        "san_type": "DNS",
        "matcher": {"exact": f"{service['name']}.{service['namespace']}.svc"},
    }
    assert tls["sni"] == san["matcher"]["exact"]


@pytest.mark.parametrize("name", sorted(ENTRY_POINTS))
def test_kustomize_renders_what_the_tests_check(name: str) -> None:
    """`kubectl kustomize` (kubectl from the test extras) builds the same resources
    (kind, name) from each entry point as the tests' own rendering, with the image set."""
    kubectl = require_tool("kubectl")
    done = subprocess.run(
        [kubectl, "kustomize", str(ENTRY_POINTS[name])],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    rendered = [d for d in YAML(typ="safe", pure=True).load_all(io.StringIO(done.stdout)) if d]
    assert {(d["kind"], d["metadata"]["name"]) for d in rendered} == set(_build(name))
    (deployment,) = [
        d for d in rendered if (d["kind"], d["metadata"]["name"]) == ("Deployment", "turnout")
    ]
    assert _container(deployment, "turnout")["image"] == "turnout:0.1.0"


@pytest.mark.e2e
def test_mtls_gateway_bootstrap_passes_envoy_validate(tmp_path: Path) -> None:
    """Envoy itself accepts the mtls gateway's bootstrap (`envoy --mode validate`),
    with a certificate for its SPIFFE ID and a CA where the Secret is mounted."""
    from turnout.testing.envoy import find_envoy

    built = _build("mtls")
    text = built["ConfigMap", "envoy-gateway-bootstrap"]["data"]["bootstrap.yaml"]
    authority = _certs().Authority()
    secret = tmp_path / "tls"
    secret.mkdir()
    authority.write(secret, "ca")
    pair = authority.client(spiffe="spiffe://cluster.local/ns/turnout/sa/envoy-gateway")
    pair.write(secret, "tls")
    assert "/etc/envoy/tls/" in text
    path = tmp_path / "bootstrap.yaml"
    path.write_text(text.replace("/etc/envoy/tls/", f"{secret}/"))
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
