"""HeapKeeper: the heap is frozen after each publish, and fully collected once quiet."""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import Iterator

import pytest

from turnout.cache import Snapshot, SnapshotCache
from turnout.server import HeapKeeper


class _Node:
    def __init__(self) -> None:
        self.me = self  # a cycle: only the cyclic collector frees it


@pytest.fixture(autouse=True)
def _unfrozen() -> Iterator[None]:
    yield
    gc.unfreeze()  # leave the test process's collector as it was


def test_publish_freezes_and_a_full_collection_frees_frozen_cycles() -> None:
    """After a publish the heap is frozen (a frozen cycle outlives gc.collect()), and
    collect() reclaims it and freezes the rest again."""
    keeper = HeapKeeper()
    cache = SnapshotCache()
    cache.watch(keeper.published)
    node = _Node()
    alive = weakref.ref(node)
    cache.publish("v1", lambda _cluster: Snapshot.of())
    assert gc.get_freeze_count() > 0
    del node
    gc.collect()
    assert alive() is not None  # frozen: the collector does not look at it
    keeper.collect()
    assert alive() is None
    assert gc.get_freeze_count() > 0
    assert keeper.full_collections == 1


def test_garbage_frozen_at_a_publish_is_freed_by_the_full_collection() -> None:
    """A cycle that is already garbage at a publish is frozen with the rest, and the
    full collection frees it."""
    keeper = HeapKeeper()
    node = _Node()
    gone = weakref.ref(node)
    del node
    keeper.published()
    gc.collect()
    assert gone() is not None
    keeper.collect()
    assert gone() is None


async def test_full_collection_waits_for_quiet_after_the_last_publish() -> None:
    """The full collection runs quiet_seconds after the last publish; a publish in
    between postpones it, and close() cancels it."""
    keeper = HeapKeeper(quiet_seconds=0.2)
    keeper.published()
    await asyncio.sleep(0.12)
    keeper.published()
    await asyncio.sleep(0.12)
    assert keeper.full_collections == 0
    await asyncio.sleep(0.2)
    assert keeper.full_collections == 1
    keeper.published()
    keeper.close()
    await asyncio.sleep(0.3)
    assert keeper.full_collections == 1
