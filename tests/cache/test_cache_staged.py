"""SnapshotCache with a staged version: two versions served at once, chosen per proxy."""

from __future__ import annotations

from collections.abc import Callable

from turnout.cache import Snapshot, SnapshotCache, Staged
from turnout.testing import make_snapshot


def test_staged_version_goes_only_to_the_chosen_proxies() -> None:
    """Chosen proxies (by node.cluster or node.id) get the staged version's snapshot
    and version; the rest get the published one; the snapshots are the resolvers' own
    objects, shared by every proxy of a group."""
    good, new = make_snapshot({"a": 100}), make_snapshot({"a": 50, "b": 50})
    cache = SnapshotCache()
    cache.publish(
        "good",
        lambda group: good,
        staged=Staged("new", lambda group: new, lambda cluster, node: node.startswith("c-")),
    )
    assert cache.snapshot_for("edge", "c-1") is new
    assert cache.snapshot_for("edge", "c-2") is new
    assert cache.policy_version_for("edge", "c-1") == "new"
    assert cache.snapshot_for("edge", "e-1") is good
    assert cache.policy_version_for("edge", "e-1") == "good"
    assert cache.policy_version == "good"
    assert cache.staged is not None
    assert cache.staged.version == "new"


def test_each_version_resolves_once_per_group_and_a_plain_publish_ends_staging() -> None:
    """Each version's resolver runs once per proxy group per publish, whichever proxies
    ask; the next publish without ``staged`` serves everyone the published version."""
    calls: list[tuple[str, str]] = []

    def resolver(version: str) -> Callable[[str], Snapshot]:
        def resolve(group: str) -> Snapshot:
            calls.append((version, group))
            return make_snapshot({version: 100})

        return resolve

    cache = SnapshotCache()
    chosen = Staged("new", resolver("new"), lambda cluster, node: cluster == "canary")
    cache.publish("good", resolver("good"), staged=chosen)
    for node in ("1", "2", "3"):
        cache.snapshot_for("canary", node)
        cache.snapshot_for("edge", node)
    assert sorted(calls) == [("good", "edge"), ("new", "canary")]
    cache.publish("new", resolver("new"))
    assert cache.staged is None
    assert cache.policy_version_for("edge", "1") == "new"
    cache.snapshot_for("edge", "1")
    assert calls[-1] == ("new", "edge")
