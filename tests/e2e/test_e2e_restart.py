"""turnout is not in the request path: stopping, killing and restarting it while
requests flow through Envoy fails no request, and a restarted turnout sends nothing
new because versions are content hashes."""

from __future__ import annotations

import threading
import time
from collections import Counter
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest

from ._harness import (
    endpoints_yaml,
    free_port,
    gateway_yaml,
    launch_stack,
    served_by,
    start_backends,
)

pytestmark = pytest.mark.e2e


class Traffic(threading.Thread):
    """Sends requests through the gateway back to back until stopped; counts answers."""

    def __init__(self, port: int, host: str) -> None:
        super().__init__(daemon=True)
        self.port = port
        self.host = host
        self.counts: Counter[str] = Counter()
        self.errors: list[str] = []
        self._stop_event = threading.Event()

    def run(self) -> None:
        with httpx.Client(
            base_url=f"http://127.0.0.1:{self.port}", timeout=5.0, trust_env=False
        ) as client:
            while not self._stop_event.is_set():
                try:
                    answer = served_by(client.get("/", headers={"Host": self.host}))
                except httpx.HTTPError as exc:
                    answer = f"{type(exc).__name__}"
                    self.errors.append(f"{time.monotonic():.3f} {exc!r}")
                self.counts[answer] += 1

    def stop(self) -> None:
        self._stop_event.set()
        self.join(10)


def _versions(status: dict[str, Any]) -> dict[str, dict[str, str | None]]:
    """node id -> type URL -> ACKed version."""
    return {
        p["node_id"]: {t: s["acked_version"] for t, s in p["types"].items()}
        for p in status["proxies"]
    }


def test_restart_while_requests_flow(tmp_path: Path, api_type: str) -> None:
    """SIGTERM and later SIGKILL of turnout, each followed by a restart, fail none of
    the requests flowing through Envoy (SotW or Delta); after each restart the Envoy
    reconnects and ACKs the very versions it had."""
    with ExitStack() as exits:
        v1 = start_backends(exits, "v1")
        v2 = start_backends(exits, "v2")
        port = free_port()
        files = {
            "gateway.yaml": gateway_yaml(port),
            "web.yaml": f"""\
kind: Service
name: web
hosts: [web.test]
versions:
  v1: {{endpoints: {endpoints_yaml(v1)}}}
  v2: {{endpoints: {endpoints_yaml(v2)}}}
stable: v1
traffic: {{v1: 70, v2: 30}}
""",
        }
        stack = launch_stack(exits, tmp_path, files, port, api_type=api_type)
        turnout = stack.turnout
        before = turnout.wait_settled(stack.node_ids)
        changes = ("cluster_manager.cluster_modified", "listener_manager.listener_modified")
        changes_before = {name: stack.envoy.stat(name) for name in changes}
        traffic = Traffic(port, "web.test")
        exits.callback(traffic.stop)
        traffic.start()
        time.sleep(0.5)

        for how in ("SIGTERM", "SIGKILL"):
            exit_code = turnout.stop(timeout=10) if how == "SIGTERM" else turnout.kill()
            down_at = sum(traffic.counts.values())
            time.sleep(1.5)  # Envoy is on its own meanwhile
            assert sum(traffic.counts.values()) > down_at, "no requests while turnout was down"
            assert not turnout.running
            restarted = time.monotonic()
            turnout.start()
            after = turnout.wait_settled(stack.node_ids, timeout=10)
            print(
                f"\n{how} (exit {exit_code}): restarted turnout saw the Envoy ACK again after "
                f"{(time.monotonic() - restarted) * 1000:.0f} ms"
            )
            assert after["version"] == before["version"]
            assert _versions(after) == _versions(before)
            assert stack.envoy.stat("control_plane.connected_state") == 1
            # Envoy changed no cluster or listener: it was given what it had.
            assert {name: stack.envoy.stat(name) for name in changes} == changes_before

        time.sleep(0.5)
        traffic.stop()
        counts = traffic.counts
        print(f"requests during the test: {dict(counts)}")
        failed = {k: v for k, v in counts.items() if k not in ("v1", "v2")}
        assert not failed, f"failed requests: {failed}; first errors: {traffic.errors[:5]}"
        assert counts["v1"] > 0
        assert counts["v2"] > 0
