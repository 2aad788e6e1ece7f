"""Replicas are interchangeable: two `turnout serve` processes on the same policies,
one real Envoy reaching them through a TCP proxy that plays the Kubernetes Service.
Moving the Envoy from one replica to the other (a dropped connection, or a graceful
SIGTERM) fails no request and changes nothing in Envoy: the new replica sends the
very versions Envoy already has."""

from __future__ import annotations

import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from turnout.compile import compile_policies
from turnout.policy import load_policies
from turnout.testing.control import TurnoutProcess
from turnout.testing.envoy import EnvoyProcess
from turnout.testing.net import wait_until

from ._harness import endpoints_yaml, free_port, gateway_yaml, start_backends, write_atomically
from ._load import Traffic
from ._proxy import TcpProxy

pytestmark = pytest.mark.e2e

NODE = "failover-envoy"
CHURN = (
    "cluster_manager.cluster_added",
    "cluster_manager.cluster_modified",
    "listener_manager.listener_added",
    "listener_manager.listener_modified",
)
"""Envoy's counters of real config changes; `*.update_success` may move on a resend."""
UPDATES = ("cluster_manager.cds.update_success", "listener_manager.lds.update_success")


def _service(v1: str, v2: str, shares: tuple[int, int]) -> str:
    return f"""\
kind: Service
name: web
hosts: [web.test]
versions:
  v1: {{endpoints: {v1}}}
  v2: {{endpoints: {v2}}}
stable: v1
traffic: {{v1: {shares[0]}, v2: {shares[1]}}}
"""


def _acked(status: dict[str, Any], node_id: str) -> dict[str, str | None]:
    """Type URL -> version the node ACKed, on its (single) stream to this replica."""
    (proxy,) = [p for p in status["proxies"] if p["node_id"] == node_id]
    return {t["type_url"]: t["acked_version"] for t in proxy["types"]}


def _acked_as(
    turnout: TurnoutProcess, node_id: str, before: dict[str, str | None], timeout: float
) -> dict[str, str | None]:
    """What ``node_id`` ACKed on ``turnout`` once it is settled there with every type it
    had on the other replica. A proxy reconnecting with the current versions is sent
    nothing (``turnout/xds/_stream.py`` ``_holds``), so it is settled on its first types
    before its later requests arrive; the last ACKed versions are returned on timeout."""
    seen: dict[str, str | None] = {}

    def same() -> dict[str, str | None] | None:
        nonlocal seen
        seen = _acked(turnout.wait_settled([node_id], timeout=timeout), node_id)
        return seen if seen.keys() == before.keys() else None

    try:
        return wait_until(same, timeout, what=f"{node_id} settled on every type it had")
    except TimeoutError:
        return seen


def _connected(turnout: TurnoutProcess, node_id: str) -> bool:
    return any(p["node_id"] == node_id for p in turnout.status()["proxies"])


def test_failover_between_replicas_changes_nothing_and_fails_nothing(tmp_path: Path) -> None:
    """Switching the Envoy's connection to the other replica (old connections dropped),
    then SIGTERM of that replica (the Envoy moves back to the first): zero failed
    requests, Envoy's cluster and listener add/modify counters unchanged, and each
    replica reports the very versions ACKed on the other; an edit then reaches Envoy
    through the replica it ended up on."""
    with ExitStack() as exits:
        v1 = start_backends(exits, "v1")
        v2 = start_backends(exits, "v2")
        port = free_port()
        policies = tmp_path / "policies"
        policies.mkdir()
        (policies / "gateway.yaml").write_text(gateway_yaml(port))
        service = lambda shares: _service(endpoints_yaml(v1), endpoints_yaml(v2), shares)  # noqa: E731
        (policies / "web.yaml").write_text(service((80, 20)))
        replicas = []
        for name in ("a", "b"):
            replica = TurnoutProcess(
                policies, log_path=tmp_path / f"turnout-{name}.log", extra_args=["--grace", "5"]
            )
            exits.callback(replica.kill)
            replicas.append(replica.start())
        a, b = replicas
        assert a.status()["served_version"] == b.status()["served_version"] != ""
        proxy = TcpProxy([a.xds_port])
        exits.callback(proxy.stop)
        proxy.start()
        envoy = EnvoyProcess(proxy.port, node_id=NODE, workdir=tmp_path / "envoy")
        exits.callback(envoy.stop)
        envoy.start()
        envoy.wait_for_listener(port)
        on_a = _acked(a.wait_settled([NODE]), NODE)
        churn = {name: envoy.stat(name) for name in CHURN}
        updates = {name: envoy.stat(name) for name in UPDATES}

        traffic = Traffic(port, "web.test").start()
        exits.callback(traffic.stop)
        traffic.wait_flowing()

        # 1. The replica's connection is lost; new connections go to b.
        switched = time.monotonic()
        dropped = proxy.switch([b.xds_port], drop=True)
        on_b = _acked_as(b, NODE, on_a, timeout=15)
        moved_after = time.monotonic() - switched
        assert dropped >= 1
        assert on_b == on_a
        assert not _connected(a, NODE)
        traffic.wait_flowing()  # and traffic goes on, with nothing changed in Envoy
        assert {name: envoy.stat(name) for name in CHURN} == churn
        print(
            f"\nswitch a->b: Envoy ACKed on b after {moved_after * 1000:.0f} ms; "
            f"update_success {updates} -> { {n: envoy.stat(n) for n in UPDATES} }"
        )

        # 2. b is stopped gracefully; the Service (the proxy) has only a to offer then.
        proxy.switch([b.xds_port, a.xds_port], drop=False)
        stopped = time.monotonic()
        exit_code = b.stop(timeout=10)
        stop_seconds = time.monotonic() - stopped
        assert exit_code == 0
        assert stop_seconds < 5.0, f"SIGTERM took {stop_seconds:.1f}s with Envoy in step"
        back_on_a = _acked_as(a, NODE, on_a, timeout=15)
        assert back_on_a == on_a
        traffic.wait_flowing()
        assert {name: envoy.stat(name) for name in CHURN} == churn
        print(f"SIGTERM of b: exited {exit_code} in {stop_seconds * 1000:.0f} ms; Envoy back on a")

        # 3. Configuration still flows, through a.
        write_atomically(policies / "web.yaml", service((50, 50)))
        version = compile_policies(load_policies(policies)).policy_version
        a.wait_settled([NODE], timeout=10, version=version)

        traffic.wait_flowing()
        counts = traffic.stop()
        print(f"requests during the test: {dict(counts)}")
        failed = traffic.failures(frozenset({"v1", "v2"}))
        assert not failed, f"failed requests: {failed}; first errors: {traffic.errors[:5]}"
        assert counts["v1"] > 100
        assert counts["v2"] > 10
