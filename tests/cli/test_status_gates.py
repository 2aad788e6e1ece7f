"""`turnout status` shows a release's window and approve gates (who approved, when)."""

from __future__ import annotations

from api.test_api_approvals import POLICIES  # tests/api (rootdir)

from turnout._proto.v1 import release_pb2 as pb
from turnout.api import service_message
from turnout.cli._release_status import render_releases
from turnout.policy import parse_policies
from turnout.server import service_view


def test_turnout_status_shows_the_window_and_each_gate() -> None:
    """`turnout status` lists the window and each approve gate, approved or not."""
    status = pb.Status(release_driver="driving")
    status.services.append(service_message(service_view(parse_policies(POLICIES).service("shop"))))
    lines = render_releases(status)
    assert "  window: Mon-Fri 09:00-17:00 Europe/Berlin (steps advance only inside it)" in lines
    assert "  approve before step 3/4 (50%): approved by alice at 2026-11-28T08:30:00Z" in lines
    assert lines[1].startswith("shop: v1 -> v2: waiting, step 2/4 (v2 at 25%)")
