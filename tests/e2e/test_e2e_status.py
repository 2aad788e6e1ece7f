"""`turnout wait` and `turnout status` against a real Envoy: wait returns once the
Envoy has ACKed a policy edit, and the Envoy then routes by the new shares."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from turnout.cache import ORDER
from turnout.compile import compile_policies
from turnout.policy import load_policies
from turnout.testing.backend import Backend
from turnout.testing.net import http_get

from ._harness import (
    Stack,
    assert_split,
    count_versions,
    endpoints_yaml,
    free_port,
    gateway_yaml,
    launch_stack,
    start_backends,
)

pytestmark = pytest.mark.e2e

HOST = "status.test"


def service_yaml(v1: list[Backend], v2: list[Backend], traffic: str) -> str:
    return f"""\
kind: Service
name: shop
hosts: [{HOST}]
versions:
  v1: {{endpoints: {endpoints_yaml(v1)}}}
  v2: {{endpoints: {endpoints_yaml(v2)}}}
stable: v1
traffic: {traffic}
"""


@dataclass
class Shop:
    stack: Stack
    v1: list[Backend]
    v2: list[Backend]

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.stack.turnout.xds_port}"


def turnout_cli(*args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "turnout", *args], capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture
def shop(tmp_path: Path, api_type: str) -> Iterator[Shop]:
    """One Envoy serving `shop` at 100% v1 from turnout, over SotW or Delta ADS."""
    with ExitStack() as exits:
        v1 = start_backends(exits, "v1")
        v2 = start_backends(exits, "v2")
        port = free_port()
        files = {"gw.yaml": gateway_yaml(port), "shop.yaml": service_yaml(v1, v2, "{v1: 100}")}
        stack = launch_stack(exits, tmp_path, files, port, api_type=api_type)
        stack.turnout.wait_settled(stack.node_ids)
        yield Shop(stack, v1, v2)


def test_wait_returns_once_envoy_acked_the_edit(shop: Shop) -> None:
    """Right after a policy edit, `turnout wait --policies` blocks until the real Envoy
    has ACKed it: when it returns, status shows the Envoy synced, and the Envoy
    already routes by the new shares. Every type is listed ACKed, scoped routes too."""
    stack = shop.stack
    stack.write("shop.yaml", service_yaml(shop.v1, shop.v2, "{v1: 50, v2: 50}"))
    version = compile_policies(load_policies(stack.policy_dir)).policy_version
    started = time.monotonic()
    waited = turnout_cli(
        "wait", "--address", shop.address, "--policies", str(stack.policy_dir), "--timeout", "30s"
    )
    elapsed = time.monotonic() - started
    assert waited.returncode == 0, waited.stderr
    assert f"all 1 connected proxies have synced policy version {version}" in waited.stdout
    print(f"\npolicy write -> turnout wait returned: {elapsed * 1000:.0f} ms")

    shown = turnout_cli("status", "--address", shop.address, "--json")
    assert shown.returncode == 0, shown.stderr
    status = json.loads(shown.stdout)
    assert status["served_version"] == version
    [envoy] = status["proxies"]
    assert envoy["node_id"] == stack.node_ids[0]
    assert envoy["synced_version"] == version
    assert not envoy["behind"]
    # status.test is an exact host: the gateway routes by scoped RDS, and the Envoy's
    # scopes (SRDS) are listed and ACKed like every other type.
    acked = {t["type_url"]: t["acked_version"] for t in envoy["types"]}
    assert set(acked) == set(ORDER)
    assert all(acked.values())
    assert_split(count_versions(stack.client(), HOST, 400), {"v1": 50, "v2": 50})

    table = turnout_cli("status", "--address", shop.address)
    [row] = [line for line in table.stdout.splitlines() if line.startswith(stack.node_ids[0])]
    assert version[:10] in row
    assert row.split()[1] == "edge"

    code, body = http_get(stack.turnout.admin_url("/metrics"))
    assert code == 200
    samples = {
        s.name: s.value
        for family in text_string_to_metric_families(body)
        for s in family.samples
        if not s.labels
    }
    assert samples["turnout_xds_convergence_latency_seconds_count"] >= 1
    assert samples["turnout_proxies_behind"] == 0


def test_wait_with_nothing_to_change_returns_at_once(shop: Shop) -> None:
    """With the Envoy already on the served version, `turnout wait` exits 0 at once."""
    started = time.monotonic()
    waited = turnout_cli("wait", "--address", shop.address, "--timeout", "10s")
    assert waited.returncode == 0, waited.stderr
    assert time.monotonic() - started < 5
    assert Counter(count_versions(shop.stack.client(), HOST, 20)) == Counter({"v1": 20})
