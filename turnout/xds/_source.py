"""What the xDS server needs of the configuration it serves, and nothing more.

Streams read the current snapshot of their proxy group when they are about to send,
and are woken when it may have changed; that is the whole contract (the role of
go-control-plane's ``ConfigWatcher``). ``turnout.cache.SnapshotCache`` is the one
implementation turnout runs; anything with these three members can be served.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from turnout.cache import Snapshot

if TYPE_CHECKING:
    from turnout.cache import SnapshotCache

__all__ = ["SnapshotSource", "WatchHandle"]


class WatchHandle(Protocol):
    """A registered wake-up."""

    def cancel(self) -> None:
        """Stop being woken (idempotent)."""


class SnapshotSource(Protocol):
    """The configuration an :class:`~turnout.xds.XdsServer` serves."""

    @property
    def policy_version(self) -> str | None:
        """The policy version of what is published, or None before the first publish:
        a proxy that ACKed every requested type is synced with it. (Envoy never sees
        it: each response carries its type version, ``Snapshot.type_version``.)"""

    def policy_version_for(self, node_cluster: str, node_id: str) -> str | None:
        """The policy version a proxy is given (``policy_version``, or another one
        served beside it to some proxies during a staged rollout): what it is synced
        with once it ACKed every requested type."""

    def snapshot_for(self, node_cluster: str, node_id: str) -> Snapshot | None:
        """The current snapshot of a proxy (its group, ``node.cluster``, and during a
        staged rollout its ``node.id``), or None before the first publish. May raise:
        the stream logs it and sends nothing until woken."""

    def watch(self, wake: Callable[[], None]) -> WatchHandle:
        """Call ``wake()`` (on the event loop thread) whenever what ``policy_version`` or
        ``snapshot_for`` return may have changed, until the handle is cancelled."""


if TYPE_CHECKING:

    def _snapshot_cache_is_a_source(cache: SnapshotCache) -> SnapshotSource:
        return cache  # mypy proves the concrete cache satisfies the interface
