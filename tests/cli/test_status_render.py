"""The status/wait helpers that need no server: durations, tables, applying events."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from turnout._proto.v1 import release_pb2 as pb
from turnout.cli._status_cmd import FleetView, render_status
from turnout.policy import parse_duration

Kind = pb.StatusEvent.Kind


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("60s", 60.0), ("1m30s", 90.0), ("500ms", 0.5), ("2h", 7200.0), ("1.5", 1.5), ("45", 45.0)],
)
def test_durations(text: str, seconds: float) -> None:
    """--timeout takes Go-style durations or a bare number of seconds."""
    assert parse_duration(text, bare_seconds=True) == seconds


@pytest.mark.parametrize("text", ["", "0s", "-1", "5 s", "1x", "s", "1m-5s", "inf", "nan"])
def test_bad_durations(text: str) -> None:
    """Anything else, or nothing longer than 0, is refused."""
    with pytest.raises(ValueError, match=r"invalid duration|longer than 0"):
        parse_duration(text, bare_seconds=True)


def test_render_without_proxies_or_release_state() -> None:
    """An `instances` segment, a release not started and an empty fleet read plainly."""
    status = pb.Status(served_version="abc", reloads_accepted=1)
    service = status.services.add(name="api", stable="v1")
    service.segments.add(name="default", instances=True)
    service.incremental.to = "v2"
    service.incremental.steps.extend(["5", "100"])
    text = render_status(status, now=datetime(2026, 11, 28, tzinfo=UTC))
    assert "serving policy version abc" in text
    [row] = [line for line in text.splitlines() if line.startswith("api ")]
    assert "instances (by healthy instances)" in row
    assert "to v2: not started" in row
    assert text.endswith("no proxies connected")


def test_fleet_view_applies_events_in_order() -> None:
    """A client's view: SNAPSHOT sets the proxies, proxy events replace or remove one,
    and a proxy is behind until its synced version is the one asked about."""
    fleet = FleetView()
    snapshot = pb.Status(served_version="v2")
    snapshot.proxies.add(stream_id=1, node_id="a", synced_version="v1")
    snapshot.proxies.add(stream_id=2, node_id="b", synced_version="v2")
    fleet.apply(pb.StatusEvent(kind=Kind.SNAPSHOT, served_version="v2", status=snapshot))
    assert [p.node_id for p in fleet.behind("v2")] == ["a"]
    synced = pb.ProxyStatus(stream_id=1, node_id="a", synced_version="v2")
    fleet.apply(pb.StatusEvent(kind=Kind.PROXY_SYNCED, served_version="v2", proxy=synced))
    assert fleet.behind("v2") == []
    gone = pb.ProxyStatus(stream_id=2, node_id="b")
    fleet.apply(pb.StatusEvent(kind=Kind.PROXY_DISCONNECTED, served_version="v3", proxy=gone))
    assert list(fleet.proxies) == [1]
    assert fleet.served_version == "v3"
    assert [p.node_id for p in fleet.behind("v3")] == ["a"]
