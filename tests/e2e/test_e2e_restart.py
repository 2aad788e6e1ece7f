"""turnout is not in the request path: stopping, killing and restarting it while
requests flow through Envoy fails no request, and a restarted turnout sends nothing
new because versions are content hashes."""

from __future__ import annotations

import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from turnout.testing.net import wait_until

from ._harness import (
    endpoints_yaml,
    free_port,
    gateway_yaml,
    launch_stack,
    start_backends,
)
from ._load import Traffic

pytestmark = pytest.mark.e2e


def _versions(status: dict[str, Any]) -> dict[str, dict[str, str | None]]:
    """node id -> type URL -> ACKed version."""
    return {
        p["node_id"]: {t["type_url"]: t["acked_version"] for t in p["types"]}
        for p in status["proxies"]
    }


def _settled_as(status: dict[str, Any], before: dict[str, Any]) -> dict[str, Any] | None:
    """``status`` if every proxy has ACKed the very versions of ``before``."""
    return status if _versions(status) == _versions(before) else None


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
        traffic = Traffic(port, "web.test", threads=1).start()
        exits.callback(traffic.stop)
        traffic.wait_flowing(50)

        for how in ("SIGTERM", "SIGKILL"):
            exit_code = turnout.stop(timeout=10) if how == "SIGTERM" else turnout.kill()
            down_at = traffic.total
            time.sleep(1.5)  # the outage under test: Envoy is on its own meanwhile
            assert traffic.total > down_at, "no requests while turnout was down"
            assert not turnout.running
            restarted = time.monotonic()
            turnout.start()
            # Every type it had: a reconnect with what turnout has is not answered, so
            # its first types are settled before its last requests are read.
            after = wait_until(
                lambda: _settled_as(turnout.wait_settled(stack.node_ids, timeout=10), before),
                10,
                what="the Envoy settled on every type it had",
            )
            print(
                f"\n{how} (exit {exit_code}): restarted turnout saw the Envoy ACK again after "
                f"{(time.monotonic() - restarted) * 1000:.0f} ms"
            )
            assert after["served_version"] == before["served_version"]
            assert _versions(after) == _versions(before)
            assert stack.envoy.stat("control_plane.connected_state") == 1
            # Envoy changed no cluster or listener: it was given what it had.
            assert {name: stack.envoy.stat(name) for name in changes} == changes_before

        traffic.wait_flowing(50)
        counts = traffic.stop()
        print(f"requests during the test: {dict(counts)}")
        failed = {k: v for k, v in counts.items() if k not in ("v1", "v2")}
        assert not failed, f"failed requests: {failed}; first errors: {traffic.errors[:5]}"
        assert counts["v1"] > 0
        assert counts["v2"] > 0
