"""HeapKeeper: the heap is frozen after each publish, and fully collected once quiet."""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from turnout.cache import Snapshot, SnapshotCache
from turnout.server import App, HeapKeeper, collector_paused


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


class _Clock:
    """A Timer whose time moves only when the test says: scheduled calls run in
    :meth:`advance`, none by the wall clock."""

    def __init__(self) -> None:
        self.now = 0.0
        self._calls: list[tuple[float, int, Callable[[], object], list[bool]]] = []

    def call_later(self, delay: float, callback: Callable[[], object], /) -> _Call:
        cancelled = [False]
        self._calls.append((self.now + delay, len(self._calls), callback, cancelled))
        return _Call(cancelled)

    def advance(self, seconds: float) -> None:
        self.now += seconds
        due = sorted(c for c in self._calls if c[0] <= self.now and not c[3][0])
        self._calls = [c for c in self._calls if c[0] > self.now and not c[3][0]]
        for _, _, callback, _ in due:
            callback()


class _Call:
    def __init__(self, cancelled: list[bool]) -> None:
        self._cancelled = cancelled

    def cancel(self) -> None:
        self._cancelled[0] = True


def test_full_collection_waits_for_quiet_after_the_last_publish() -> None:
    """The full collection runs quiet_seconds after the last publish; a publish in
    between postpones it, and close() cancels it."""
    clock = _Clock()
    keeper = HeapKeeper(quiet_seconds=60.0, timer=clock)
    keeper.published()
    clock.advance(40.0)
    keeper.published()
    clock.advance(40.0)
    assert keeper.full_collections == 0  # 80 s after the first, 40 s after the last
    clock.advance(20.0)
    assert keeper.full_collections == 1
    clock.advance(600.0)
    assert keeper.full_collections == 1  # once per quiet spell, not periodically
    keeper.published()
    keeper.close()
    clock.advance(600.0)
    assert keeper.full_collections == 1


async def test_without_a_timer_the_running_loop_schedules_it() -> None:
    """Given no timer, the collection is scheduled on the running event loop, due
    quiet_seconds after the publish."""
    keeper = HeapKeeper(quiet_seconds=3600.0)
    keeper.published()
    pending = keeper._pending
    assert isinstance(pending, asyncio.TimerHandle)
    loop = asyncio.get_running_loop()
    assert 3599.0 < pending.when() - loop.time() <= 3600.0
    keeper.close()
    assert pending.cancelled()


def test_malloc_is_trimmed_once_quiet_after_work_and_not_while_busy_or_idle() -> None:
    """After the first publish the keeper looks twice a second: it trims when the
    process used at least half a CPU second since the last trim and almost none since
    the previous look; never during work, and once per quiet spell; close() stops it."""
    clock = _Clock()
    cpu = [0.0]
    trims: list[float] = []
    keeper = HeapKeeper(timer=clock, trim=lambda: trims.append(clock.now), cpu=lambda: cpu[0])
    keeper.published()
    clock.advance(0.5)
    assert trims == []  # nothing worked since the publish
    for _ in range(6):  # a connect storm: busy at every look
        cpu[0] += 0.4
        clock.advance(0.5)
    assert trims == []
    clock.advance(0.5)  # quiet now
    assert trims == [4.0]
    clock.advance(10.0)
    assert trims == [4.0]  # idle: nothing new to give back
    cpu[0] += 0.6
    clock.advance(0.5)
    clock.advance(0.5)
    assert trims == [4.0, 15.0]
    keeper.close()
    cpu[0] += 1.0
    clock.advance(5.0)
    assert keeper.trims == 2


def test_glibc_malloc_trim_is_found() -> None:
    """On glibc (this machine, the container images) the default trim is malloc_trim,
    and calling it works."""
    keeper = HeapKeeper()
    assert keeper._trim is not None
    keeper._trim()


def test_compiling_pauses_the_collector_and_restores_it() -> None:
    """The keeper's compile guard turns the cyclic collector off inside and back on
    after, even when the compile raises; a collector already off stays off."""
    seen: list[bool] = []

    def failing_compile() -> None:
        with HeapKeeper().compiling():
            seen.append(gc.isenabled())
            raise RuntimeError("compile failed")

    assert gc.isenabled()
    with pytest.raises(RuntimeError):
        failing_compile()
    assert seen == [False]
    assert gc.isenabled()
    gc.disable()
    try:
        with collector_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    finally:
        gc.enable()


def _policies(tmp_path: Path) -> Path:
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "gw.yaml").write_text("kind: Gateway\nname: public\nport: 10000\n")
    (policies / "web.yaml").write_text(
        "kind: Service\nname: web\nversions:\n  v1: {endpoints: ['127.0.0.1:9101']}\n"
        "stable: v1\ntraffic: {v1: 100}\n"
    )
    return policies


def test_an_app_tunes_the_collector_only_when_given_a_heap_keeper(
    tmp_path: Path, collector_seen: list[bool]
) -> None:
    """An App built without a HeapKeeper (a test, an embedder) compiles with the
    collector on and freezes nothing when it publishes; given one, as `turnout serve`
    is, it compiles with the collector paused and freezes the heap at each publish."""
    policies = _policies(tmp_path)
    frozen = gc.get_freeze_count()
    plain = App(policies, "127.0.0.1:0", "127.0.0.1:0")
    assert plain.reload()
    assert collector_seen == [True]
    assert gc.get_freeze_count() == frozen

    collector_seen.clear()
    tuned = App(policies, "127.0.0.1:0", "127.0.0.1:0", heap=HeapKeeper(timer=_Clock()))
    assert tuned.reload()
    assert collector_seen == [False]
    assert gc.isenabled()
    assert gc.get_freeze_count() > frozen
