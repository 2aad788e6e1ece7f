"""`turnout rollback` against real Envoys under traffic: from the command returning to
every connected Envoy having ACKed the rolled-back config in under a second, then
every request served by the stable version."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections import Counter
from contextlib import ExitStack
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from turnout.policy import load_policies
from turnout.testing.control import TurnoutProcess

from ._harness import (
    assert_split,
    count_versions,
    endpoints_yaml,
    free_port,
    gateway_yaml,
    launch_stack,
    served_by,
    start_backends,
    wait_until,
)

pytestmark = pytest.mark.e2e

HOST = "shop.test"


def all_synced(status: dict[str, object], node_ids: list[str], before: str) -> bool:
    """A new policy version is served and every named Envoy has ACKed all of it."""
    version = status["served_version"]
    if not version or version == before:
        return False
    proxies = status.get("proxies")
    assert isinstance(proxies, list)
    synced = {p["node_id"] for p in proxies if p.get("synced_version") == version}
    return set(node_ids) <= synced


def traffic(client: httpx.Client, stop: threading.Event, answers: list[tuple[float, str]]) -> None:
    """Requests at a steady pace until `stop`, recording (time, who answered)."""
    while not stop.is_set():
        answer = served_by(client.get("/", headers={"Host": HOST}))
        answers.append((time.monotonic(), answer))
        time.sleep(0.005)  # pacing the load generator: steady traffic, not a flood


def test_rollback_reaches_every_envoy_within_a_second(tmp_path: Path) -> None:
    """With shop at v1=50/v2=50 under traffic through two Envoys, `turnout rollback shop`
    (a subprocess) is ACKed by both Envoys within 1 s of returning; the release is marked
    rolled-back; afterwards 300 requests through each Envoy are all answered by v1, and
    no request failed during the switch."""
    with ExitStack() as exits:
        v1 = start_backends(exits, "v1")
        v2 = start_backends(exits, "v2")
        ports = [free_port(), free_port()]
        shop = f"""\
# shop: v2 is being released
kind: Service
name: shop
hosts: [{HOST}]
versions:
  v1: {{endpoints: {endpoints_yaml(v1)}}}
  v2: {{endpoints: {endpoints_yaml(v2)}}}
stable: v1
traffic: {{v1: 50, v2: 50}}   # half way
incremental:
  to: v2
  steps: [5, 25, 50, 100]
  interval: 10m
  state: {{phase: running, step: 2, since: "2020-01-01T00:00:00Z"}}
"""
        files = {
            "gateways.yaml": gateway_yaml(ports[0], "gw-a")
            + 'proxies: ["edge-a"]\n---\n'
            + gateway_yaml(ports[1], "gw-b")
            + 'proxies: ["edge-b"]\n',
            "shop.yaml": shop,
        }
        stack = launch_stack(
            exits,
            tmp_path,
            files,
            ports[0],
            envoys=[("edge-a", ports[0]), ("edge-b", ports[1])],
            # the release is a fixture half way through: no driver may judge it
            turnout_args=["--no-drive-releases"],
        )
        turnout: TurnoutProcess = stack.turnout
        before = turnout.wait_settled(stack.node_ids)["served_version"]
        clients = [stack.client(port) for port in ports]
        for client in clients:
            assert_split(count_versions(client, HOST, 200), {"v1": 50, "v2": 50})

        stop = threading.Event()
        answers: list[list[tuple[float, str]]] = [[] for _ in clients]
        senders = [
            threading.Thread(target=traffic, args=(c, stop, a), daemon=True)
            for c, a in zip(clients, answers, strict=True)
        ]
        for sender in senders:
            sender.start()
        exits.callback(stop.set)
        wait_until(lambda: all(len(a) >= 20 for a in answers), 10, what="traffic to flow")

        started = time.monotonic()
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "turnout",
                "rollback",
                "shop",
                "--policies",
                str(stack.policy_dir),
            ],
            capture_output=True,
            text=True,
            check=False,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        returned = time.monotonic()
        assert proc.returncode == 0, proc.stderr

        def synced() -> tuple[float, dict[str, Any]] | None:
            status = turnout.status()
            seen = time.monotonic()  # after the answer: an upper bound on the ACK time
            return (seen, status) if all_synced(status, stack.node_ids, before) else None

        acked, status = wait_until(
            synced, 5, what="both Envoys to ACK the rollback", interval=0.005
        )
        elapsed = acked - returned
        written = (stack.policy_dir / "shop.yaml").stat().st_mtime
        after_write = [
            datetime.fromisoformat(p["synced_at"]).timestamp() - written
            for p in status["proxies"]
            if p["node_id"] in stack.node_ids
        ]
        print(
            f"\nturnout rollback shop (2 Envoys): command returned -> both ACKed (seen in "
            f"/status): {elapsed * 1000:.0f} ms; file written -> each Envoy's ACK: "
            + ", ".join(f"{t * 1000:.0f} ms" for t in sorted(after_write))
            + f"; the command ran {(returned - started) * 1000:.0f} ms"
        )
        wait_until(
            lambda: all(sum(at > acked + 0.05 for at, _ in list(a)) >= 10 for a in answers),
            5,
            what="traffic through both Envoys after the rollback",
        )
        stop.set()
        for sender in senders:
            sender.join(5)

        assert elapsed < 1.0, f"rollback took {elapsed:.3f} s to reach every Envoy"
        assert proc.stdout.splitlines()[0] == (
            "roll back shop to v1: traffic v1=100 (was v1=50 v2=50), "
            "incremental release to v2 rolled back"
        )
        release = load_policies(stack.policy_dir).service("shop").incremental
        assert release is not None
        assert release.state is not None
        assert (release.state.phase, release.state.step) == ("rolled-back", 2)
        for client in clients:
            assert count_versions(client, HOST, 300) == Counter({"v1": 300})
        for index, recorded in enumerate(answers):
            counts = Counter(answer for _, answer in recorded)
            assert set(counts) <= {"v1", "v2"}, f"Envoy {index + 1} failed requests: {counts}"
            late = [answer for at, answer in recorded if at > acked + 0.05]
            assert late, "no traffic was recorded after the rollback was ACKed"
            assert set(late) == {"v1"}, f"Envoy {index + 1} served v2 after its ACK"
