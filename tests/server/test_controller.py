"""The reload path: only whole, valid, consistent sets are published."""

from __future__ import annotations

from pathlib import Path

from turnout.cache import SnapshotCache
from turnout.server import Controller

GATEWAY = "kind: Gateway\nname: public\nport: 10000\n"
SERVICE = (
    "kind: Service\nname: web\nversions:\n"
    "  v1: {endpoints: ['127.0.0.1:9101']}\n  v2: {endpoints: ['127.0.0.1:9201']}\n"
    "stable: v1\ntraffic: {v1: %s, v2: %s}\n"
)


def _write(directory: Path, v1: str, v2: str) -> None:
    (directory / "gw.yaml").write_text(GATEWAY)
    (directory / "web.yaml").write_text(SERVICE % (v1, v2))


def test_a_valid_set_is_published(tmp_path: Path) -> None:
    """A valid set is published to the cache under its content-hash version."""
    _write(tmp_path, "90", "10")
    cache = SnapshotCache()
    controller = Controller(tmp_path, cache)
    assert controller.reload()
    assert cache.policy_version == controller.policy_version
    snapshot = cache.snapshot_for("any-proxy")
    assert snapshot is not None
    assert snapshot.group_version == cache.policy_version  # one gateway set: the whole


def test_a_rejected_set_keeps_the_last_good_version(tmp_path: Path) -> None:
    """An invalid edit is rejected whole: the cache keeps serving the previous version."""
    _write(tmp_path, "90", "10")
    cache = SnapshotCache()
    controller = Controller(tmp_path, cache)
    controller.reload()
    served = cache.policy_version
    _write(tmp_path, "80", "10")
    assert not controller.reload()
    assert cache.policy_version == served
    assert controller.policy_version == served
    assert controller.rejected is not None
    assert controller.rejected.errors == [
        f"{tmp_path}/web.yaml:7: traffic: shares sum to 90, not 100"
    ]
    _write(tmp_path, "80", "20")
    assert controller.reload()
    assert cache.policy_version != served
    assert controller.rejected is None
    assert controller.last_rejected is not None


def test_the_same_files_give_the_same_version_in_a_new_process(tmp_path: Path) -> None:
    """Versions are content hashes: two controllers on the same files agree."""
    _write(tmp_path, "75.5", "24.5")
    first, second = SnapshotCache(), SnapshotCache()
    Controller(tmp_path, first).reload()
    Controller(tmp_path, second).reload()
    assert first.policy_version is not None
    assert first.policy_version == second.policy_version


def test_an_unchanged_reload_publishes_nothing(tmp_path: Path) -> None:
    """Touching files without changing what they mean publishes nothing new."""
    _write(tmp_path, "90", "10")
    controller = Controller(tmp_path, SnapshotCache())
    controller.reload()
    (tmp_path / "web.yaml").write_text((tmp_path / "web.yaml").read_text() + "# note\n")
    controller.reload()
    assert controller.reloads["accepted"] == 1
