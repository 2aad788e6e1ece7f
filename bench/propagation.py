"""Time from a policy file write to every real Envoy having ACKed the new version.

turnout serve runs as its own process (default 100 ms debounce) with N real Envoys
connected over ADS; each change rewrites one service's traffic split. The clock stops
when /status shows the new policy version served and every Envoy synced to it.
"""

from __future__ import annotations

import contextlib
import statistics
import tempfile
import time
from pathlib import Path

from turnout.testing.control import TurnoutProcess
from turnout.testing.envoy import EnvoyProcess

GATEWAY = "kind: Gateway\nname: public\nport: {port}\naddress: 127.0.0.1\n"
SERVICE = """kind: Service
name: checkout
hosts: ["*"]
versions:
  v1: {{endpoints: ["127.0.0.1:9"]}}
  v2: {{endpoints: ["127.0.0.1:9"]}}
stable: v1
traffic: {{v1: {v1}, v2: {v2}}}
"""


def _all_synced(status: dict[str, object], envoys: int) -> bool:
    version = status.get("served_version")
    if not version:
        return False
    proxies = status.get("proxies") or []
    assert isinstance(proxies, list)
    synced = {p["node_id"] for p in proxies if p.get("synced_version") == version}
    return len(synced) >= envoys


def run(envoys: int = 3, changes: int = 10) -> None:
    from turnout.testing.net import free_port

    print(f"\n== propagation: file write -> {envoys} real Envoys ACKed ({changes} changes) ==")
    with contextlib.ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="turnout-bench-")))
        policies = workdir / "policies"
        policies.mkdir()
        (policies / "gateway.yaml").write_text(GATEWAY.format(port=free_port()))
        service = policies / "checkout.yaml"
        service.write_text(SERVICE.format(v1=100, v2=0))
        turnout = TurnoutProcess(policies, log_path=workdir / "turnout.log").start()
        stack.callback(turnout.stop)
        for i in range(envoys):
            envoy = EnvoyProcess(turnout.xds_port, node_id=f"bench-{i}", workdir=workdir)
            stack.enter_context(envoy)
        turnout.wait_settled([f"bench-{i}" for i in range(envoys)], timeout=30)

        timings = []
        for change in range(1, changes + 1):
            before = turnout.status()["served_version"]
            service.write_text(SERVICE.format(v1=100 - change, v2=change))
            started = time.perf_counter()
            while True:
                status = turnout.status()
                if status["served_version"] != before and _all_synced(status, envoys):
                    break
                if time.perf_counter() - started > 10:
                    raise TimeoutError(f"change {change} did not converge: {status}")
                time.sleep(0.005)
            timings.append((time.perf_counter() - started) * 1000)
        print(
            f"{'':>4}turnout's default debounce (a lone write is picked up once 20 ms pass"
            " without another); /status polled every 5 ms"
        )
        print(
            f"{'':>4}ms  min {min(timings):.0f}  p50 {statistics.median(timings):.0f}"
            f"  max {max(timings):.0f}"
        )
