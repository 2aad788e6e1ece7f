"""The chaos tests' stack: demo backends, `turnout serve` and one real Envoy, with
helpers to edit the policy, time how long Envoy takes to ACK it, and read the Envoy
counters that say whether its config really changed."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from e2e._harness import (
    Stack,
    endpoints_yaml,
    free_port,
    gateway_yaml,
    launch_stack,
    start_backends,
    write_atomically,
)

from turnout.compile import compile_policies
from turnout.policy import load_policies
from turnout.testing import wait_until
from turnout.testing.backend import Backend

HOST = "web.test"
CHURN = (
    "cluster_manager.cluster_added",
    "cluster_manager.cluster_modified",
    "listener_manager.listener_added",
    "listener_manager.listener_modified",
)
"""Envoy's counters of real cluster/listener changes (a resend of the same config
moves `*.update_success` only)."""


def service_yaml(
    v1: Sequence[Backend],
    v2: Sequence[Backend],
    shares: tuple[float, float],
    *,
    rule: tuple[float, float] | None = None,
) -> str:
    """The `web` service split `shares` between v1 and v2, optionally with a
    `dogfood` rule (header x-employee) split `rule`."""
    text = f"""\
kind: Service
name: web
hosts: [{HOST}]
versions:
  v1: {{endpoints: {endpoints_yaml(v1)}}}
  v2: {{endpoints: {endpoints_yaml(v2)}}}
stable: v1
traffic: {{v1: {shares[0]:g}, v2: {shares[1]:g}}}
"""
    if rule is not None:
        text += f"""\
rules:
  - name: dogfood
    match: {{headers: {{x-employee: "true"}}}}
    traffic: {{v1: {rule[0]:g}, v2: {rule[1]:g}}}
"""
    return text


@dataclass
class ChaosStack:
    """Two backends per version, turnout on a policy directory, one Envoy."""

    stack: Stack
    v1: list[Backend]
    v2: list[Backend]

    @property
    def port(self) -> int:
        return self.stack.gateway_port

    @property
    def node(self) -> str:
        return self.stack.envoy.node_id

    def write(self, name: str, text: str) -> str:
        """Replace one policy file atomically; returns the version it will be served as."""
        write_atomically(self.stack.policy_dir / name, text)
        return compile_policies(load_policies(self.stack.policy_dir)).policy_version

    def edit_service(
        self, shares: tuple[float, float], *, rule: tuple[float, float] | None = None
    ) -> str:
        return self.write("web.yaml", service_yaml(self.v1, self.v2, shares, rule=rule))

    def wait_synced(self, version: str, timeout: float = 10.0) -> float:
        """Seconds until turnout reports the Envoy has ACKed `version` of everything."""
        started = time.monotonic()

        def acked() -> bool:
            status = self.stack.turnout.status()
            synced = [p for p in status["proxies"] if p["node_id"] == self.node]
            return status["served_version"] == version and any(
                p["synced_version"] == version for p in synced
            )

        try:
            wait_until(acked, timeout, what=f"Envoy {self.node} to ACK {version}")
        except TimeoutError as exc:
            status = self.stack.turnout.status()
            synced = [p.get("synced_version") for p in status["proxies"]]
            raise AssertionError(f"{exc}; status: {status['served_version']} {synced}") from None
        return time.monotonic() - started

    def churn(self) -> dict[str, int]:
        envoy = self.stack.envoy
        return {name: envoy.stat(name) for name in CHURN}

    def backend_requests(self) -> dict[str, int]:
        return {
            "v1": sum(b.counts().requests for b in self.v1),
            "v2": sum(b.counts().requests for b in self.v2),
        }

    def wait_flowing(self, requests: int = 500, version: str | None = None) -> None:
        """Wait until the backends (of ``version``, or all) have answered ``requests``
        more requests than now: the load is flowing through Envoy (~0.5 s at 1,000/s)."""

        def answered() -> int:
            counts = self.backend_requests()
            return counts[version] if version else sum(counts.values())

        start = answered()
        wait_until(
            lambda: answered() >= start + requests,
            10,
            what=f"{requests} more requests to reach {version or 'the backends'}",
        )


def launch(
    exits: ExitStack,
    workdir: Path,
    shares: tuple[float, float] = (90, 10),
    extra_files: Mapping[str, str] | None = None,
) -> ChaosStack:
    """Start everything (stopped when `exits` closes) and wait until Envoy is in step."""
    v1 = start_backends(exits, "v1", 2)
    v2 = start_backends(exits, "v2", 2)
    port = free_port()
    files = {
        "gateway.yaml": gateway_yaml(port),
        "web.yaml": service_yaml(v1, v2, shares),
        **(extra_files or {}),
    }
    stack = launch_stack(exits, workdir, files, port)
    stack.turnout.wait_settled(stack.node_ids)
    return ChaosStack(stack, v1, v2)


def report(name: str, **figures: object) -> None:
    """Print one line of figures (pytest -s shows it; CI logs keep it)."""
    print(f"\n[chaos] {name}: " + ", ".join(f"{k}={v}" for k, v in figures.items()))
