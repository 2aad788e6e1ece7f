"""The latest published configuration, per proxy group, and who to wake when it changes.

``publish`` is cheap and never blocks: it swaps the resolver, forgets the memoized
snapshots and calls every watcher's wake-up callback (O(watchers), no awaits). A
stream's writer then reads the *current* snapshot when it is ready to send, so a slow
proxy skips intermediate versions instead of queueing them.

This module knows nothing of gRPC or asyncio: a watcher is any callable; the server
passes ``asyncio.Event.set``. Call ``publish`` on the event loop thread that runs the
streams (``Event.set`` is not thread-safe).
"""

from __future__ import annotations

from collections.abc import Callable

from turnout.cache._snapshot import Snapshot

__all__ = ["SnapshotCache", "Watch"]


class Watch:
    """A registered wake-up callback; ``cancel()`` deregisters it (idempotent)."""

    __slots__ = ("_cache", "_key")

    def __init__(self, cache: SnapshotCache, key: int) -> None:
        self._cache: SnapshotCache | None = cache
        self._key = key

    def cancel(self) -> None:
        """Stop being woken by publishes."""
        if self._cache is not None:
            self._cache._watchers.pop(self._key, None)  # Watch is SnapshotCache's friend
            self._cache = None


class SnapshotCache:
    """Holds the published config version and resolves proxy groups to snapshots."""

    def __init__(self) -> None:
        """Start empty: ``snapshot_for`` returns None until the first publish."""
        self._version: str | None = None
        self._resolve: Callable[[str], Snapshot] | None = None
        self._snapshots: dict[str, Snapshot] = {}
        self._watchers: dict[int, Callable[[], None]] = {}
        self._next_key = 0

    @property
    def version(self) -> str | None:
        """The version string of the last publish (e.g. the policy commit), or None."""
        return self._version

    @property
    def watcher_count(self) -> int:
        """How many watches are registered (streams hold one each)."""
        return len(self._watchers)

    def publish(self, version: str, resolve: Callable[[str], Snapshot]) -> None:
        """Make ``resolve`` (node.cluster -> Snapshot) current and wake every watcher.

        ``resolve`` is called lazily, at most once per proxy group per publish. The
        caller is expected to have run ``Snapshot.check()`` on what it returns.
        """
        self._version = version
        self._resolve = resolve
        self._snapshots = {}
        for wake in list(self._watchers.values()):
            wake()

    def snapshot_for(self, node_cluster: str) -> Snapshot | None:
        """The current snapshot for a proxy group, or None before the first publish.

        Exceptions from the resolver propagate (and are retried on the next call).
        """
        snapshot = self._snapshots.get(node_cluster)
        if snapshot is not None:
            return snapshot
        if self._resolve is None:
            return None
        snapshot = self._resolve(node_cluster)
        self._snapshots[node_cluster] = snapshot
        return snapshot

    def watch(self, wake: Callable[[], None]) -> Watch:
        """Call ``wake()`` on every publish until the returned watch is cancelled."""
        key = self._next_key
        self._next_key += 1
        self._watchers[key] = wake
        return Watch(self, key)
