"""The latest published configuration, per proxy group, and who to wake when it changes.

``publish`` is cheap and never blocks: it swaps the resolver, forgets the memoized
snapshots and calls every watcher's wake-up callback (O(watchers), no awaits). A
stream's writer then reads the *current* snapshot when it is ready to send, so a slow
proxy skips intermediate versions instead of queueing them.

Two versions can be served at once (a staged rollout of a policy change): ``publish``
takes, beside the version every proxy gets, a :class:`Staged` one and which proxies
(by node.cluster and node.id) get it instead. Snapshots stay per proxy group and
version, shared by every proxy given them: nothing is copied per proxy.

This module knows nothing of gRPC or asyncio: a watcher is any callable; the server
passes ``asyncio.Event.set``. Call ``publish`` on the event loop thread that runs the
streams (``Event.set`` is not thread-safe).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from turnout.cache._snapshot import Snapshot

__all__ = ["SnapshotCache", "Staged", "Watch"]


@dataclass(frozen=True, slots=True)
class Staged:
    """A second version served beside the published one, only to the proxies
    ``chosen(node_cluster, node_id)`` picks (a canary ring)."""

    version: str
    """The staged policy version."""
    resolve: Callable[[str], Snapshot]
    """node.cluster -> Snapshot, like ``publish``'s resolver."""
    chosen: Callable[[str, str], bool]


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
    """Holds the published policy version and resolves proxy groups to snapshots."""

    def __init__(self) -> None:
        """Start empty: ``snapshot_for`` returns None until the first publish."""
        self._policy_version: str | None = None
        self._resolve: Callable[[str], Snapshot] | None = None
        self._snapshots: dict[str, Snapshot] = {}
        self._staged: Staged | None = None
        self._staged_snapshots: dict[str, Snapshot] = {}
        self._chosen: dict[tuple[str, str], bool] = {}
        self._watchers: dict[int, Callable[[], None]] = {}
        self._next_key = 0

    @property
    def policy_version(self) -> str | None:
        """The policy version of the last publish (what turnout serves, what a proxy
        counts as synced to), or None before the first. Not a snapshot's
        ``group_version`` nor a type version (see ``turnout.cache._snapshot``)."""
        return self._policy_version

    @property
    def watcher_count(self) -> int:
        """How many watches are registered (streams hold one each)."""
        return len(self._watchers)

    @property
    def staged(self) -> Staged | None:
        """The policy version served beside :attr:`policy_version` to some proxies, if any."""
        return self._staged

    def publish(
        self,
        policy_version: str,
        resolve: Callable[[str], Snapshot],
        *,
        staged: Staged | None = None,
    ) -> None:
        """Make ``resolve`` (node.cluster -> Snapshot) current and wake every watcher.

        ``resolve`` is called lazily, at most once per proxy group per publish. The
        caller is expected to have run ``Snapshot.check()`` on what it returns. With
        ``staged``, the proxies it chooses get its version instead (resolved the same
        way, once per proxy group); a publish without it ends the staging.
        """
        self._policy_version = policy_version
        self._resolve = resolve
        self._snapshots = {}
        self._staged = staged
        self._staged_snapshots = {}
        self._chosen = {}
        for wake in list(self._watchers.values()):
            wake()

    def _is_staged(self, node_cluster: str, node_id: str) -> bool:
        staged = self._staged
        if staged is None:
            return False
        key = (node_cluster, node_id)
        chosen = self._chosen.get(key)
        if chosen is None:
            chosen = self._chosen[key] = staged.chosen(node_cluster, node_id)
        return chosen

    def policy_version_for(self, node_cluster: str, node_id: str = "") -> str | None:
        """The policy version a proxy is given: the staged one when it is chosen for
        it, else :attr:`policy_version` (None before the first publish)."""
        if self._staged is not None and self._is_staged(node_cluster, node_id):
            return self._staged.version
        return self._policy_version

    def snapshot_for(self, node_cluster: str, node_id: str = "") -> Snapshot | None:
        """The current snapshot for a proxy (its group and, when a version is staged,
        whether it is chosen for it), or None before the first publish.

        Exceptions from the resolver propagate (and are retried on the next call).
        """
        staged = self._staged
        if staged is not None and self._is_staged(node_cluster, node_id):
            memo, resolve = self._staged_snapshots, staged.resolve
        else:
            if self._resolve is None:
                return None
            memo, resolve = self._snapshots, self._resolve
        snapshot = memo.get(node_cluster)
        if snapshot is None:
            snapshot = memo[node_cluster] = resolve(node_cluster)
        return snapshot

    def watch(self, wake: Callable[[], None]) -> Watch:
        """Call ``wake()`` on every publish until the returned watch is cancelled."""
        key = self._next_key
        self._next_key += 1
        self._watchers[key] = wake
        return Watch(self, key)
