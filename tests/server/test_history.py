"""The policy change history the dashboard shows: accepted and rejected reloads, bounded."""

from __future__ import annotations

import subprocess
from pathlib import Path

from turnout.cache import SnapshotCache
from turnout.server import Controller, PolicyHistory

GATEWAY = "kind: Gateway\nname: public\nport: 10000\n"
SERVICE = (
    "kind: Service\nname: web\nversions:\n"
    "  v1: {endpoints: ['127.0.0.1:9101']}\n  v2: {endpoints: ['127.0.0.1:9201']}\n"
    "stable: v1\ntraffic: {v1: %s, v2: %s}\n"
)


def _write(directory: Path, v1: str, v2: str) -> None:
    (directory / "gw.yaml").write_text(GATEWAY)
    (directory / "web.yaml").write_text(SERVICE % (v1, v2))


def _controller(directory: Path, limit: int = 200) -> Controller:
    return Controller(directory, SnapshotCache(), history=PolicyHistory(directory, limit))


def test_accepted_and_rejected_reloads_are_recorded_with_their_summary(tmp_path: Path) -> None:
    """Each accepted change and each rejection is one entry; an unchanged reload none."""
    _write(tmp_path, "90", "10")
    controller = _controller(tmp_path)
    controller.reload()
    first = controller.current.policy_version if controller.current else ""
    controller.reload()  # nothing changed: nothing recorded
    _write(tmp_path, "80", "10")
    controller.reload()
    _write(tmp_path, "80", "20")
    controller.reload()
    assert controller.history is not None
    entries = controller.history.entries
    assert [(e.accepted, e.summary) for e in entries] == [
        (True, "1 gateways, 1 services"),
        (False, f"1 error(s): {tmp_path}/web.yaml:7: traffic: shares sum to 90, not 100"),
        (True, "web traffic v1=90 v2=10 -> v1=80 v2=20"),
    ]
    assert entries[1].version == first  # what went on being served
    assert entries[0].commit == ""  # not a git repository


def test_the_history_is_bounded_and_names_the_git_commit(tmp_path: Path) -> None:
    """Only the newest entries are kept; in a git repository each names HEAD (dirty or not)."""
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    _write(tmp_path, "90", "10")
    git = ["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "first"], check=True)
    head = subprocess.run(
        [*git, "rev-parse", "--short", "HEAD"], check=True, capture_output=True, text=True
    ).stdout.strip()
    controller = _controller(tmp_path, limit=2)
    controller.reload()
    for v1, v2 in (("80", "20"), ("70", "30")):
        _write(tmp_path, v1, v2)
        controller.reload()
    assert controller.history is not None
    entries = controller.history.entries
    assert [e.summary for e in entries] == [
        "web traffic v1=90 v2=10 -> v1=80 v2=20",
        "web traffic v1=80 v2=20 -> v1=70 v2=30",
    ]
    assert entries[-1].commit == f"{head} (dirty)"
