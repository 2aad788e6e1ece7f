"""Real Envoy reaching `turnout serve` over mutual TLS: the right certificate gets its
gateway and routes traffic; a certificate claiming another node.cluster gets nothing.
Also the example bootstrap users start from (envoy/bootstrap-mtls.yaml)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from turnout.testing.backend import Backend
from turnout.testing.control import TurnoutProcess
from turnout.testing.envoy import EnvoyProcess, EnvoyTls, render_bootstrap, validate_config
from turnout.testing.net import free_port, wait_until

from ._certs import Authority, KeyPair

pytestmark = pytest.mark.e2e

EXAMPLE = Path(__file__).resolve().parents[2] / "envoy" / "bootstrap-mtls.yaml"
EXAMPLE_TLS = EnvoyTls(
    ca="/etc/envoy/tls/ca.crt",
    cert="/etc/envoy/tls/envoy.crt",
    key="/etc/envoy/tls/envoy.key",
    server_name="turnout.turnout.svc",
)
EXAMPLE_HOST = "turnout.turnout.svc"

SPIFFE_EDGE = "spiffe://example.org/ns/edge/sa/envoy"
SPIFFE_PAYMENTS = "spiffe://example.org/ns/payments/sa/envoy"
IDENTITIES = f"""\
proxies:
  "{SPIFFE_EDGE}": [edge, edge-*]
  "{SPIFFE_PAYMENTS}": [payments]
"""


@dataclass
class MtlsStack:
    """turnout serving two gateways over mTLS, and what Envoys need to reach it."""

    workdir: Path
    turnout: TurnoutProcess
    ca: Path
    edge_port: int
    payments_port: int
    backend: Backend
    authority: Authority

    def tls(self, identity: KeyPair, name: str) -> EnvoyTls:
        cert, key = identity.write(self.workdir, name)
        return EnvoyTls(ca=str(self.ca), cert=str(cert), key=str(key), server_name="localhost")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MtlsStack]:
    """One backend, and turnout serving gateway `edge` to node.cluster edge and
    `payments` to payments, over mutual TLS with an identity map (module scope)."""
    workdir = tmp_path_factory.mktemp("mtls-e2e")
    authority = Authority()
    ca = authority.write(workdir)
    server_cert, server_key = authority.server().write(workdir, "turnout")
    (workdir / "identities.yaml").write_text(IDENTITIES)
    edge_port, payments_port = free_port(), free_port()
    with ExitStack() as exits:
        backend = Backend("v1").start()
        exits.callback(backend.stop)
        policies = workdir / "policies"
        policies.mkdir()
        for name, port in (("edge", edge_port), ("payments", payments_port)):
            (policies / f"{name}.yaml").write_text(
                f"kind: Gateway\nname: {name}\nport: {port}\naddress: 127.0.0.1\n"
                f"proxies: [{name}]\n"
            )
        (policies / "web.yaml").write_text(
            f"kind: Service\nname: web\ngateways: [edge, payments]\nhosts: [web.example]\n"
            f"versions:\n  v1: {{endpoints: ['{backend.address}']}}\n"
            "stable: v1\ntraffic: {v1: 100}\n"
        )
        turnout = TurnoutProcess(
            policies,
            log_path=workdir / "turnout.log",
            extra_args=[
                *("--tls-cert", str(server_cert), "--tls-key", str(server_key)),
                *("--tls-client-ca", str(ca), "--identity-map", str(workdir / "identities.yaml")),
            ],
        )
        exits.callback(turnout.kill)
        turnout.start()
        yield MtlsStack(workdir, turnout, ca, edge_port, payments_port, backend, authority)


def test_envoy_with_the_right_certificate_gets_config_and_routes(stack: MtlsStack) -> None:
    """An Envoy whose SPIFFE ID may claim `edge` connects over mTLS, gets the edge
    gateway, and routes requests to the backend."""
    identity = stack.authority.client(spiffe=SPIFFE_EDGE)
    envoy = EnvoyProcess(
        stack.turnout.xds_port,
        node_id="edge-1",
        node_cluster="edge",
        workdir=stack.workdir / "envoy-edge",
        tls=stack.tls(identity, "edge-envoy"),
        stats_flush_interval=None,
    )
    envoy.start()
    try:
        envoy.wait_for_listener(stack.edge_port)
        with httpx.Client(base_url=f"http://127.0.0.1:{stack.edge_port}", timeout=5) as http:
            answers = [http.get("/", headers={"Host": "web.example"}) for _ in range(20)]
        assert [r.status_code for r in answers] == [200] * 20
        assert {r.headers["x-served-by"] for r in answers} == {"v1"}
        assert envoy.stat("cluster.turnout_xds.ssl.handshake") >= 1
        proxies = stack.turnout.status()["proxies"]
        assert [(p["node_id"], p["node_cluster"]) for p in proxies] == [("edge-1", "edge")]
    finally:
        envoy.stop()


def test_envoy_claiming_another_cluster_gets_nothing(stack: MtlsStack) -> None:
    """An Envoy with the edge identity claiming `payments` is refused on every attempt:
    it never gets a listener (its payments gateway port never opens), turnout lists no
    such proxy and logs the refusals."""
    assert stack.turnout.status()["served_version"]  # payments has a gateway to give
    identity = stack.authority.client(spiffe=SPIFFE_EDGE)
    envoy = EnvoyProcess(
        stack.turnout.xds_port,
        node_id="impostor-1",
        node_cluster="payments",
        workdir=stack.workdir / "envoy-impostor",
        tls=stack.tls(identity, "impostor-envoy"),
        stats_flush_interval=None,
    )
    envoy.start(wait_ready=False)
    try:

        def refused_thrice() -> bool:  # no listener at any moment meanwhile
            assert envoy.listener_ports() == set()
            refusals = stack.turnout.log_path.read_text().count("xds.stream_rejected")
            # and, after its third refusal, Envoy between attempts (its stream refused)
            return refusals >= 3 and envoy.stat("control_plane.connected_state") == 0

        # several retries (Envoy backs off 0.25 s to 2 s); a listener fails at once
        wait_until(refused_thrice, 10, interval=0.1, what="3 refusals", retry_on=(OSError,))
        assert envoy.config_dump("dynamic_active_clusters").get("configs", []) == []
        assert envoy.stat("control_plane.connected_state") == 0
        assert all(p["node_id"] != "impostor-1" for p in stack.turnout.status()["proxies"])
        log = stack.turnout.log_path.read_text()
        assert "xds.stream_rejected" in log
        assert "node.cluster 'payments' refused" in log
    finally:
        envoy.stop()


def test_envoy_without_a_trusted_certificate_gets_nothing(stack: MtlsStack) -> None:
    """An Envoy whose certificate another CA signed fails the TLS handshake: no
    listener, no proxy in turnout's status."""
    identity = Authority("not turnout's CA").client(spiffe=SPIFFE_PAYMENTS)
    envoy = EnvoyProcess(
        stack.turnout.xds_port,
        node_id="stranger-1",
        node_cluster="payments",
        workdir=stack.workdir / "envoy-stranger",
        tls=stack.tls(identity, "stranger-envoy"),
        stats_flush_interval=None,
    )
    envoy.start(wait_ready=False)
    try:
        wait_until(  # several attempts, each failing its handshake
            lambda: envoy.stat("cluster.turnout_xds.upstream_cx_connect_fail") >= 3,
            10,
            what="3 failed TLS handshakes",
        )
        assert envoy.listener_ports() == set()
        # Not control_plane.connected_state: under TLS 1.3 the client's handshake ends
        # before the server checks its certificate, so Envoy counts itself connected
        # for a moment on each retry until the server's alert arrives. What it never
        # gets is a config update.
        assert envoy.stat("cluster_manager.cds.update_success") == 0
        assert envoy.stat("listener_manager.lds.update_success") == 0
        assert all(p["node_id"] != "stranger-1" for p in stack.turnout.status()["proxies"])
    finally:
        envoy.stop()


def test_example_mtls_bootstrap_is_the_rendered_one_and_valid(tmp_path: Path) -> None:
    """envoy/bootstrap-mtls.yaml is render_bootstrap(tls=...)'s output, and Envoy
    validates it once its certificate paths point at real files."""
    text = render_bootstrap(EXAMPLE_HOST, tls=EXAMPLE_TLS)
    assert EXAMPLE.read_text() == text
    authority = Authority()
    ca = authority.write(tmp_path)
    cert, key = authority.client(spiffe=SPIFFE_EDGE).write(tmp_path, "envoy")
    local = (
        text.replace(EXAMPLE_TLS.ca, str(ca))
        .replace(EXAMPLE_TLS.cert, str(cert))
        .replace(EXAMPLE_TLS.key, str(key))
    )
    config = tmp_path / "bootstrap-mtls.yaml"
    config.write_text(local)
    validate_config(config)
