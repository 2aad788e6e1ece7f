"""What a real Envoy receives from turnout for a one-service traffic change, by its own
count: ``cluster.turnout_xds.upstream_cx_rx_bytes_total`` (every byte read from the
xDS cluster's connections) before the policy file write and after the Envoy ACKed it.

One `turnout serve` process serves a gateway of N services x 3 versions with exact
host names (one file each, ``bench.fleet``'s), so the gateway routes by scoped RDS
(a scope and a route configuration per host name); one Envoy on state-of-the-world
ADS and one on Delta ADS. ``--wildcard`` adds a catch-all service (``hosts: ["*"]``),
which keeps the gateway on one route configuration for every service: what every
gateway cost before scoped routes.

    python -m bench envoy-bytes                  # 500 services, scoped (make bench)
    python -m bench envoy-bytes --wildcard       # the same with one route configuration
"""

from __future__ import annotations

import contextlib
import functools
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.fleet import CHANGED, write_policies, write_service
from turnout.testing.control import TurnoutProcess
from turnout.testing.envoy import EnvoyProcess
from turnout.testing.net import free_port, wait_until

RX = "cluster.turnout_xds.upstream_cx_rx_bytes_total"
PROTOCOLS = {"sotw": "GRPC", "delta": "DELTA_GRPC"}
CATCH_ALL = """kind: Service
name: zzz-catch-all
hosts: ["*"]
versions:
  v1: {endpoints: ["127.0.0.1:9"]}
stable: v1
traffic: {v1: 100}
"""


def _served(status: dict[str, Any]) -> str | None:
    served = status.get("served_version", status.get("version"))
    return None if served is None else str(served)


def _synced(turnout: TurnoutProcess, nodes: list[str], version: str | None) -> bool:
    status = turnout.status()
    served = _served(status)
    if served is None or served == version:
        return False
    proxies = {p["node_id"]: p for p in status.get("proxies") or []}
    return all(proxies.get(n, {}).get("synced_version") == served for n in nodes)


def _quiet(envoy: EnvoyProcess, seconds: float = 0.5) -> int:
    """The Envoy's received-bytes count once it has not moved for ``seconds``."""
    last = envoy.stat(RX)
    still = time.monotonic()
    while time.monotonic() - still < seconds:
        time.sleep(0.05)
        now = envoy.stat(RX)
        if now != last:
            last, still = now, time.monotonic()
    return last


def run(services: int = 500, changes: int = 3, *, wildcard: bool = False) -> dict[str, Any]:
    """Measure; print and return bytes per change per protocol."""
    shape = "one route configuration (a * host)" if wildcard else "scoped, a scope per host"
    print(
        f"\n== envoy-bytes: a real Envoy's bytes received from turnout per one-service "
        f"traffic change, {services} services x 3 versions, {shape} ==",
        flush=True,
    )
    results: dict[str, Any] = {}
    with contextlib.ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="turnout-rx-")))
        policies = workdir / "policies"
        write_policies(policies, services, free_port())
        if wildcard:
            (policies / "zzz-catch-all.yaml").write_text(CATCH_ALL)
        turnout = TurnoutProcess(
            policies, log_path=workdir / "turnout.log", extra_args=["--log-level", "warning"]
        ).start(timeout=120)
        stack.callback(turnout.stop)
        envoys = {}
        for name, api_type in PROTOCOLS.items():
            envoys[name] = stack.enter_context(
                EnvoyProcess(
                    turnout.xds_port,
                    node_id=f"rx-{name}",
                    workdir=workdir,
                    api_type=api_type,
                    stats_flush_interval=None,
                )
            )
        nodes = [f"rx-{name}" for name in PROTOCOLS]
        turnout.wait_settled(nodes, timeout=120)
        for name, envoy in envoys.items():
            scopes = envoy.stats("scoped_rds.*all_scopes")
            print(f"  {name:<6} connected: {_quiet(envoy):,} bytes received; scopes {scopes}")
        per_change: dict[str, list[int]] = {name: [] for name in envoys}
        for change in range(1, changes + 1):
            before = {name: _quiet(envoy) for name, envoy in envoys.items()}
            version = _served(turnout.status())
            write_service(policies, CHANGED, v2=5 + change)
            wait_until(functools.partial(_synced, turnout, nodes, version), timeout=30)
            for name, envoy in envoys.items():
                per_change[name].append(_quiet(envoy) - before[name])
        for name, counts in per_change.items():
            results[name] = counts
            worst = max(counts)
            print(
                f"  {name:<6} per change: {', '.join(f'{c:,}' for c in counts)} bytes "
                f"[bar <= 4 KB: {'met' if worst <= 4096 else 'MISSED'}]",
                flush=True,
            )
    return results
