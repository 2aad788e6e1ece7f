"""Staged config rollout with real Envoys: two canary Envoys and two others under steady
traffic, one `turnout serve`, real backends (v3 answers 500 to everything).

Each Envoy has its own gateway (one machine cannot give four Envoys one port), all four
with the same `rollout:` (canary: edge-canary-*, bake 3s), and the `web` service on
every gateway: a change to `web` rolls out on all four, and whether an Envoy is canary
is decided by its node.cluster, as with one shared gateway. The tests run in order on
one stack, each starting from what the one before left fully rolled out.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest
from e2e._harness import endpoints_yaml, start_backends, write_atomically
from e2e._load import Traffic
from google.protobuf.timestamp_pb2 import Timestamp

from turnout._proto.v1 import release_pb2 as pb
from turnout._proto.v1 import release_pb2_grpc
from turnout.compile import compile_policies
from turnout.policy import load_policies
from turnout.testing import wait_until
from turnout.testing.backend import Backend
from turnout.testing.control import TurnoutProcess
from turnout.testing.envoy import EnvoyProcess
from turnout.testing.net import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(120)]

HOST = "web.test"
BAKE = 3.0
CANARY = ("edge-canary-1", "edge-canary-2")
REST = ("edge-1", "edge-2")
FIGURES: dict[str, list[float]] = {}
"""What the tests measured, printed at the end of the module (-s shows it)."""


def _gateways(ports: dict[str, int]) -> str:
    return "---\n".join(
        f"""\
kind: Gateway
name: gw-{node}
port: {ports[node]}
address: 127.0.0.1
proxies: [{node}]
rollout:
  canary: ["edge-canary-*"]
  bake: {BAKE:g}s
  maxErrorRateIncrease: 0.01
"""
        for node in (*CANARY, *REST)
    )


@dataclass
class RolloutStack:
    policy_dir: Path
    turnout: TurnoutProcess
    backends: dict[str, list[Backend]]
    envoys: dict[str, EnvoyProcess] = field(default_factory=dict)
    traffic: dict[str, Traffic] = field(default_factory=dict)

    def write(self, traffic: str, *, rule_regex: str | None = None) -> str:
        """Write `web` with this `traffic:` (and a path-regex rule); the version it compiles to."""
        text = f"""\
kind: Service
name: web
hosts: [{HOST}]
versions:
  v1: {{endpoints: {endpoints_yaml(self.backends["v1"])}}}
  v2: {{endpoints: {endpoints_yaml(self.backends["v2"])}}}
  v3: {{endpoints: {endpoints_yaml(self.backends["v3"])}}}
stable: v1
traffic: {traffic}
"""
        if rule_regex is not None:
            text += f"""\
rules:
  - name: odd
    match: {{path: {{regex: {json.dumps(rule_regex)}}}}}
    traffic: {{v1: 100}}
"""
        path = self.policy_dir / "web.yaml"
        write_atomically(path, text)
        return compile_policies(load_policies(self.policy_dir)).policy_version

    def status(self) -> pb.Status:
        with grpc.insecure_channel(f"127.0.0.1:{self.turnout.xds_port}") as channel:
            stub = release_pb2_grpc.ReleaseServiceStub(channel)
            status: pb.Status = stub.GetStatus(pb.GetStatusRequest(), timeout=2.0)
            return status

    def proxies(self) -> dict[str, pb.ProxyStatus]:
        return {p.node_id: p for p in self.status().proxies}

    def synced(self, nodes: tuple[str, ...], version: str) -> dict[str, pb.ProxyStatus] | None:
        """The proxies' status once every one of `nodes` has synced `version`."""
        proxies = self.proxies()
        if all(n in proxies and proxies[n].synced_version == version for n in nodes):
            return proxies
        return None

    def wait_synced(
        self, nodes: tuple[str, ...], version: str, timeout: float = 20.0
    ) -> dict[str, pb.ProxyStatus]:
        return wait_until(
            lambda: self.synced(nodes, version),
            timeout,
            what=f"{', '.join(nodes)} synced {version}",
            retry_on=(grpc.RpcError,),
        )

    def phase(self, phase: str, timeout: float = 20.0) -> pb.ConfigRollout:
        def reached() -> pb.ConfigRollout | None:
            rollout = self.status().rollout
            return rollout if rollout.phase == phase else None

        return wait_until(
            reached, timeout, what=f"rollout phase {phase!r}", retry_on=(grpc.RpcError,)
        )

    def v3_requests(self, node: str) -> int:
        """Requests Envoy `node` sent to v3 (its own counter)."""
        return self.envoys[node].stat("cluster.web_v3.upstream_rq_total")

    def more_traffic(self, nodes: tuple[str, ...], answers: int = 100) -> None:
        for node in nodes:
            self.traffic[node].wait_flowing(answers, timeout=15.0)


def _at(ts: Timestamp) -> float:
    return ts.seconds + ts.nanos / 1e9


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RolloutStack]:
    """Backends, turnout and four Envoys (two canary) under steady traffic; all on
    `traffic: {v1: 100}` when the tests start."""
    workdir = tmp_path_factory.mktemp("rollout")
    with ExitStack() as exits:
        backends = {
            "v1": start_backends(exits, "v1", 2),
            "v2": start_backends(exits, "v2", 1),
            "v3": start_backends(exits, "v3", 1, fail=1.0),
        }
        policy_dir = workdir / "policies"
        policy_dir.mkdir()
        ports = {node: free_port() for node in (*CANARY, *REST)}
        (policy_dir / "gateways.yaml").write_text(_gateways(ports))
        turnout = TurnoutProcess(policy_dir, log_path=workdir / "turnout.log")
        exits.callback(turnout.kill)
        rollout = RolloutStack(policy_dir, turnout, backends)
        version = rollout.write("{v1: 100}")
        turnout.start()
        for node in (*CANARY, *REST):
            envoy = EnvoyProcess(
                turnout.xds_port,
                node_id=node,
                node_cluster=node,
                workdir=workdir / node,
                stats_flush_interval="1s",
            )
            exits.callback(envoy.stop)
            envoy.start()
            envoy.wait_for_listener(ports[node])
            rollout.envoys[node] = envoy
        for node in (*CANARY, *REST):
            traffic = Traffic(ports[node], HOST, threads=1).start()
            exits.callback(traffic.stop)
            rollout.traffic[node] = traffic
        rollout.wait_synced((*CANARY, *REST), version)
        rollout.more_traffic((*CANARY, *REST), 50)
        yield rollout
        for name, values in FIGURES.items():
            print(f"{name}: " + ", ".join(f"{v:.3f}" for v in values))


def test_a_change_reaches_the_canary_at_once_and_the_rest_after_the_bake(
    stack: RolloutStack,
) -> None:
    """A good change is ACKed by both canary Envoys within a second while the others
    stay on the last good set (no request of theirs reaches v2) until the bake is over;
    then they get it."""
    before = stack.status().served_version
    v2_before = {n: stack.envoys[n].stat("cluster.web_v2.upstream_rq_total") for n in REST}
    changed = time.time()
    version = stack.write("{v1: 50, v2: 50}")
    proxies = stack.wait_synced(CANARY, version)
    canary_ack = [_at(proxies[n].synced_at) - changed for n in CANARY]
    assert all(proxies[n].synced_version == before for n in REST)
    assert all(proxies[n].rollout_role == "rest" for n in REST)
    assert all(proxies[n].rollout_role == "canary" for n in CANARY)
    rollout = stack.phase("baking")
    bake_end = _at(rollout.bake_started_at) + rollout.bake_seconds
    stack.more_traffic(CANARY, 50)
    assert all(
        stack.envoys[n].stat("cluster.web_v2.upstream_rq_total") == v2_before[n] for n in REST
    )
    proxies = stack.wait_synced(REST, version, timeout=BAKE + 15)
    last = max(_at(proxies[n].synced_at) for n in REST)
    assert last >= bake_end
    assert stack.status().rollout.phase == ""
    FIGURES["change -> canary ACK (s)"] = canary_ack
    FIGURES["bake end -> last proxy ACK (s)"] = [last - bake_end]
    assert max(canary_ack) < 1.5


def test_a_rollback_reaches_every_proxy_at_once(stack: RolloutStack) -> None:
    """Moving every share toward stable is only safer: all four Envoys get it at once,
    without a bake."""
    changed = time.time()
    version = stack.write("{v1: 100}")
    proxies = stack.wait_synced((*CANARY, *REST), version, timeout=BAKE)
    assert stack.status().rollout.phase == ""
    took = [_at(proxies[n].synced_at) - changed for n in (*CANARY, *REST)]
    FIGURES["rollback -> every proxy ACK (s)"] = took
    assert max(took) < BAKE


def test_a_restart_mid_bake_keeps_the_rest_on_the_last_good_set(stack: RolloutStack) -> None:
    """turnout killed while a change bakes comes back with the last fully rolled-out set
    from its state file: the rest are served that set again, the canary the new one, and
    the change then rolls out after a new bake."""
    good = stack.status().served_version
    version = stack.write("{v1: 80, v2: 20}")
    stack.wait_synced(CANARY, version)
    state = json.loads((stack.policy_dir / ".turnout" / "rollout.json").read_text())
    assert state["version"] == good
    stack.turnout.kill()
    stack.turnout.start()
    stack.wait_synced(CANARY, version)
    proxies = stack.wait_synced(REST, good)
    rollout = stack.status().rollout
    assert (rollout.version, rollout.last_good_version) == (version, good)
    assert rollout.phase in ("waiting", "baking")
    assert all(proxies[n].config_version == good for n in REST)
    stack.wait_synced(REST, version, timeout=BAKE + 15)


def test_a_change_sending_traffic_to_a_failing_version_is_held_at_the_canary(
    stack: RolloutStack,
) -> None:
    """Half of the traffic to v3 (which answers 500): the canary's 5xx rate fails the
    check, the change is held, and not one request through the other Envoys reaches v3."""
    good = stack.status().served_version
    failures_before = {
        n: sum(stack.traffic[n].failures(frozenset({"v1", "v2"})).values()) for n in REST
    }
    version = stack.write("{v1: 50, v3: 50}")
    rollout = stack.phase("held", timeout=BAKE + 20)
    assert "5xx" in rollout.reason
    stack.more_traffic(REST, 100)
    proxies = stack.proxies()
    assert all(proxies[n].synced_version == good for n in REST)
    assert all(proxies[n].synced_version == version for n in CANARY)
    assert all(stack.v3_requests(n) > 0 for n in CANARY)
    through_rest = sum(stack.v3_requests(n) for n in REST)
    failures = {n: sum(stack.traffic[n].failures(frozenset({"v1", "v2"})).values()) for n in REST}
    FIGURES["requests to the bad version through non-canary proxies"] = [float(through_rest)]
    assert through_rest == 0
    assert failures == failures_before


def test_rollout_abort_puts_the_canary_back_and_new_files_start_a_new_rollout(
    stack: RolloutStack,
) -> None:
    """`turnout rollout abort` (a process, over the ReleaseService) puts the canary back
    on the last good set at once, v3 gets no more requests; the next change of the files
    rolls out anew."""
    good = stack.status().rollout.last_good_version
    done = subprocess.run(
        [
            sys.executable, "-m", "turnout", "rollout", "abort", "gw-edge-canary-1",
            "--address", f"127.0.0.1:{stack.turnout.xds_port}",
        ],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "aborted" in done.stdout
    stack.wait_synced((*CANARY, *REST), good)
    assert stack.status().rollout.phase == "aborted"
    v3 = {n: stack.v3_requests(n) for n in CANARY}
    stack.more_traffic(CANARY, 100)
    assert {n: stack.v3_requests(n) for n in CANARY} == v3
    again = subprocess.run(
        [
            sys.executable, "-m", "turnout", "rollout", "abort", "gw-edge-canary-1",
            "--address", f"127.0.0.1:{stack.turnout.xds_port}",
        ],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert again.returncode == 1
    assert "no config rollout is under way" in again.stderr
    version = stack.write("{v1: 70, v2: 30}")
    stack.wait_synced(CANARY, version)
    assert stack.status().rollout.phase in ("waiting", "baking")
    stack.wait_synced(REST, version, timeout=BAKE + 15)


def test_a_change_the_canary_nacks_is_held(stack: RolloutStack) -> None:
    """A route regex Envoy refuses (RE2 program larger than Envoy allows) passes
    turnout's checks; the canary NACKs it, the change is held saying so, and the rest
    never get it."""
    good = stack.status().served_version
    regex = "^/(" + "|".join(f"page{i}x{i * 7}" for i in range(80)) + ")$"
    version = stack.write("{v1: 70, v2: 30}", rule_regex=regex)
    rollout = stack.phase("held", timeout=20)
    assert "NACKed" in rollout.reason
    proxies = stack.proxies()
    assert all(proxies[n].synced_version == good for n in REST)
    assert all(proxies[n].synced_version != version for n in CANARY)
    version = stack.write("{v1: 70, v2: 30}")
    assert version == good
    assert stack.phase("", timeout=10).last_good_version == good
