"""GetStatus carries what a person needs to see of gates and windows: the phase and
reason ("waiting for approval"), who approved which gate and when, the gates and the
window in words."""

from __future__ import annotations

from turnout.api import service_message
from turnout.policy import parse_policies
from turnout.server import service_view

POLICIES = {
    "g.yaml": "kind: Gateway\nname: public\nport: 10000\n",
    "s.yaml": """\
kind: Service
name: shop
versions: {v1: {endpoints: ["127.0.0.1:1"]}, v2: {endpoints: ["127.0.0.1:2"]}}
stable: v1
traffic: {v1: 75, v2: 25}
incremental:
  to: v2
  steps: [5, 25, approve, 50, 100]
  interval: 1m
  window: {days: Mon-Fri, hours: "09:00-17:00", timezone: Europe/Berlin}
  state:
    phase: waiting
    step: 1
    since: "2026-11-28T08:00:00Z"
    reason: "waiting for approval to go on to step 3/4 (50%): turnout approve records it"
    approvals: [{step: 2, by: alice, at: "2026-11-28T08:30:00Z"}]
""",
}


def test_status_shows_waiting_approvals_gates_and_window() -> None:
    """A waiting release's status has its phase and reason, the approvals with who and
    when, the gates and the window in words."""
    service = parse_policies(POLICIES).service("shop")
    message = service_message(service_view(service))
    incremental = message.incremental
    assert incremental.window == "Mon-Fri 09:00-17:00 Europe/Berlin"
    assert list(incremental.gates) == [2]
    state = incremental.state
    assert state.phase == "waiting"
    assert state.reason.startswith("waiting for approval")
    [approval] = state.approvals
    assert (approval.step, approval.by) == (2, "alice")
    assert approval.at.ToJsonString() == "2026-11-28T08:30:00Z"
