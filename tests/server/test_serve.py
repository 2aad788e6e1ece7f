"""`turnout serve` as a process: admin endpoints, JSON logs, hot reload, SIGTERM."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from turnout.compile import compile_policies
from turnout.policy import load_policies
from turnout.testing.control import TurnoutProcess
from turnout.testing.net import http_get, wait_until

GATEWAY = "kind: Gateway\nname: public\nport: 10000\n"
SERVICE = (
    "kind: Service\nname: web\nversions:\n  v1: {endpoints: ['127.0.0.1:9101']}\n"
    "  v2: {endpoints: ['127.0.0.1:9201']}\nstable: v1\ntraffic: {v1: %d, v2: %d}\n"
)


def _policies(tmp_path: Path) -> Path:
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "gw.yaml").write_text(GATEWAY)
    (policies / "web.yaml").write_text(SERVICE % (100, 0))
    return policies


def test_serve_logs_json_and_stops_on_sigterm(tmp_path: Path) -> None:
    """With --log-format json every log line is one JSON object, and SIGTERM exits 0."""
    turnout = TurnoutProcess(
        _policies(tmp_path), log_path=tmp_path / "t.log", extra_args=["--log-format", "json"]
    )
    turnout.start()
    try:
        assert http_get(turnout.admin_url("/readyz"))[0] == 200
    finally:
        code = turnout.stop()
    assert code == 0
    events = [json.loads(line) for line in turnout.log_path.read_text().splitlines() if line]
    names = [e["event"] for e in events]
    assert "policy set accepted" in names
    assert "turnout serving" in names
    assert all("timestamp" in e and "level" in e for e in events)


def test_a_burst_of_edits_is_coalesced_into_the_last_one(tmp_path: Path) -> None:
    """Ten quick edits end in the last edit being served, reloaded far fewer than ten times."""
    policies = _policies(tmp_path)
    with TurnoutProcess(policies, log_path=tmp_path / "t.log") as turnout:
        for share in range(1, 11):
            (policies / "web.yaml").write_text(SERVICE % (100 - share, share))
        last = compile_policies(load_policies(policies)).policy_version

        def served_last() -> dict[str, Any] | None:
            status = turnout.status()
            return status if status["served_version"] == last else None

        status = wait_until(served_last, what="the last edit to be served")
    accepted = int(status["reloads_accepted"])  # uint64: a string in JSON
    assert accepted <= 4, f"{accepted} reloads for one burst"
    assert status["served_version"] == last
    assert "v1=90 v2=10" in turnout.log_path.read_text()


def test_readyz_waits_for_a_valid_set_and_healthz_does_not(tmp_path: Path) -> None:
    """Started on an invalid set, turnout is alive but not ready, and shows why."""
    policies = _policies(tmp_path)
    (policies / "web.yaml").write_text(SERVICE % (90, 0))
    with TurnoutProcess(policies, log_path=tmp_path / "t.log") as turnout:
        assert http_get(turnout.admin_url("/healthz"))[0] == 200
        assert http_get(turnout.admin_url("/readyz"))[0] == 503
        status = turnout.status()
        assert status["served_version"] == ""
        assert status["rejected"]["errors"] == [
            f"{policies}/web.yaml:7: traffic: shares sum to 90, not 100"
        ]
        (policies / "web.yaml").write_text(SERVICE % (90, 10))
        wait_until(lambda: http_get(turnout.admin_url("/readyz"))[0] == 200, what="/readyz 200")
        assert "rejected" not in turnout.status()
