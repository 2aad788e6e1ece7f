"""SnapshotCache: publish, per-group memoization and watchers."""

from __future__ import annotations

from turnout.cache import Snapshot, SnapshotCache
from turnout.testing import make_snapshot


def test_nothing_before_the_first_publish() -> None:
    """Before any publish there is no version and no snapshot."""
    cache = SnapshotCache()
    assert cache.policy_version is None
    assert cache.snapshot_for("any") is None


def test_resolve_is_memoized_per_group_and_publish() -> None:
    """Each group is resolved once per publish, and again after the next publish."""
    calls: list[str] = []
    snapshots = {"a": make_snapshot({"x": 100}), "b": make_snapshot({"y": 100})}

    def resolve(group: str) -> Snapshot:
        calls.append(group)
        return snapshots[group]

    cache = SnapshotCache()
    cache.publish("v1", resolve)
    assert cache.snapshot_for("a") is snapshots["a"]
    assert cache.snapshot_for("a") is snapshots["a"]
    assert cache.snapshot_for("b") is snapshots["b"]
    assert calls == ["a", "b"]
    cache.publish("v2", resolve)
    cache.snapshot_for("a")
    assert calls == ["a", "b", "a"]
    assert cache.policy_version == "v2"


def test_publish_wakes_watchers_until_cancelled() -> None:
    """Every publish calls each registered watcher; a cancelled watch is not called."""
    cache = SnapshotCache()
    woken: list[str] = []
    first = cache.watch(lambda: woken.append("first"))
    cache.watch(lambda: woken.append("second"))
    cache.publish("v1", lambda _group: Snapshot.of())
    first.cancel()
    first.cancel()
    cache.publish("v2", lambda _group: Snapshot.of())
    assert woken == ["first", "second", "second"]
    assert cache.watcher_count == 1
