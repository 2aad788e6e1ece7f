"""A real Envoy meeting a restarted turnout (SIGKILL, then `turnout serve` again on the
same policies) reconnects with the versions it has, which are the restarted server's
own (content hashes): over state of the world and over Delta it is sent nothing at
all; it serves throughout, is reported synced, and a later change reaches it as any
change does."""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from turnout.testing.net import wait_until

from ._harness import (
    assert_split,
    count_versions,
    endpoints_yaml,
    free_port,
    gateway_yaml,
    launch_stack,
    start_backends,
)
from ._load import Traffic

pytestmark = pytest.mark.e2e

_SERVICE = """\
kind: Service
name: {name}
hosts: [{name}.test]
versions:
  v1: {{endpoints: {v1}}}
  v2: {{endpoints: {v2}}}
stable: v1
traffic: {{v1: {share1}, v2: {share2}}}
"""


def _types(status: dict[str, Any], node_id: str) -> dict[str, tuple[str, str]]:
    """type URL -> (sent, ACKed) version of the Envoy's streams ({} if it has none)."""
    return {
        t["type_url"]: (t["sent_version"], t["acked_version"])
        for p in status["proxies"]
        if p["node_id"] == node_id
        for t in p["types"]
    }


def _synced(status: dict[str, Any], node_id: str) -> bool:
    """Whether the Envoy's stream is synced to the served version."""
    proxies = [p for p in status["proxies"] if p["node_id"] == node_id]
    return bool(proxies) and proxies[0]["synced_version"] == status["served_version"]


def test_killed_and_restarted_turnout_resends_nothing(tmp_path: Path, api_type: str) -> None:
    """After SIGKILL and restart, the Envoy (SotW or Delta) keeps serving, reconnects,
    is reported synced at the very versions it had without receiving a response (no
    update applied), and a traffic change written afterwards still reaches it."""
    with ExitStack() as exits:
        v1 = start_backends(exits, "v1")
        v2 = start_backends(exits, "v2")
        port = free_port()
        files = {"gateway.yaml": gateway_yaml(port)}
        for name in ("web", "api"):
            files[f"{name}.yaml"] = _SERVICE.format(
                name=name, v1=endpoints_yaml(v1), v2=endpoints_yaml(v2), share1=100, share2=0
            )
        stack = launch_stack(exits, tmp_path, files, port, api_type=api_type)
        turnout, envoy = stack.turnout, stack.envoy
        (node_id,) = stack.node_ids
        before = turnout.wait_settled(stack.node_ids)
        assert _synced(before, node_id)
        traffic = Traffic(port, "web.test", threads=1).start()
        exits.callback(traffic.stop)
        traffic.wait_flowing(50)
        # Every update Envoy applied, per subscription (CDS, LDS, each route
        # configuration, scopes...), and the bytes it received from turnout.
        updates = envoy.stats(r"update_success$")
        received = envoy.stat("cluster.turnout_xds.upstream_cx_rx_bytes_total")

        turnout.kill()
        down_at = traffic.total
        wait_until(lambda: traffic.total > down_at + 50, 10, what="requests while turnout is down")
        turnout.start()

        # Synced on every type it had: it asks type by type, unanswered, so the first
        # types are in sync before the last requests are read.
        def resynced() -> dict[str, Any] | None:
            status = turnout.status()
            whole = _types(status, node_id) == _types(before, node_id)
            return status if whole and _synced(status, node_id) else None

        after = wait_until(resynced, 15, what="the Envoy synced again on every type")
        assert after["served_version"] == before["served_version"]
        assert _types(after, node_id) == _types(before, node_id)
        assert envoy.stat("control_plane.connected_state") == 1
        # Envoy applied no update: it was sent nothing.
        assert envoy.stats(r"update_success$") == updates
        resent = envoy.stat("cluster.turnout_xds.upstream_cx_rx_bytes_total") - received
        print(f"\n{api_type}: bytes Envoy received from the restarted turnout: {resent}")

        traffic.wait_flowing(50)
        counts = traffic.stop()
        assert set(counts) == {"v1"}, f"failed or misrouted requests: {dict(counts)}"

        stack.write(
            "web.yaml",
            _SERVICE.format(
                name="web", v1=endpoints_yaml(v1), v2=endpoints_yaml(v2), share1=0, share2=100
            ),
        )
        wait_until(
            lambda: (
                (s := turnout.status())["served_version"] != before["served_version"]
                and _synced(s, node_id)
            ),
            15,
            what="the change ACKed",
        )
        client = stack.client()
        assert_split(count_versions(client, "web.test", 50), {"v2": 100})
        assert_split(count_versions(client, "api.test", 20), {"v1": 100})
