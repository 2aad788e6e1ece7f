"""Garbage collection for a long-lived server heap: `turnout serve` with thousands of streams.

Python's cyclic collector walks every tracked object of a generation it collects, and
a server holding 10,000 streams has millions of them (the streams' state, the
snapshots, grpc's per-call objects), all long-lived. Left alone, it walks them all
again whenever enough new objects survive: a pause of about 0.1 s per 1,000 streams,
which lands in the middle of a fleet-wide push often enough to be the slowest proxy's
latency.

So after each publish the heap is *frozen* (``gc.freeze``, which only moves lists):
everything tracked moves to the permanent generation, which the collector never
walks, and it only looks at what is new since. Cyclic garbage frozen with it (made by
the reload, or a replaced snapshot's and a closed stream's later) is reclaimed by a
full collection once the fleet has been quiet for a while after a publish
(``quiet_seconds``), never in the middle of a push: unfreeze, collect everything,
freeze again. (Collecting even the young generations before freezing cost 90 ms at
10,000 streams, on the path of every change.) A compile runs with the collector
paused (:func:`collector_paused`): what it makes mostly lives on.

Memory freed by C code (grpc core's buffers, protobuf's parsed requests: every
stream's first requests of a 500-service gateway name 2,000 resources) stays with
glibc's malloc, in the middle of its heaps, and is not given back to the system on its
own: after a fleet connects that is ~8 KB per stream. So once the process has worked
(:data:`TRIM_AFTER_CPU` of CPU since the last trim) and then gone quiet for a look
(:data:`TRIM_LOOK` seconds using less than :data:`QUIET_SHARE` of a core),
``malloc_trim`` returns the free pages; nothing is trimmed during a push or a connect
storm, nor again and again while idle.

All of this is process-wide, so only the process `turnout serve` runs does it: the CLI
gives :class:`App` a :class:`HeapKeeper`. `validate`, `render`, the benchmarks (unless
one asks, as `bench translate` does for the compile) and an App built in a test
without one leave the collector alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import gc
import time
from collections.abc import Callable, Iterator
from typing import Protocol

import structlog

__all__ = ["HeapKeeper", "Timer", "collector_paused"]

log = structlog.get_logger("turnout.heap")


TRIM_LOOK = 0.5
"""Seconds between looks at whether to trim (one ``process_time`` call each)."""
TRIM_AFTER_CPU = 0.5
"""CPU seconds the process must have used since the last trim for another one."""
QUIET_SHARE = 0.1
"""A look finds the process quiet when it used less than this share of a core since
the previous look."""


def _malloc_trim() -> Callable[[], object] | None:
    """glibc's ``malloc_trim(0)``; None where there is none (another C library)."""
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return lambda: trim(0)


class _Scheduled(Protocol):
    def cancel(self) -> None: ...


class Timer(Protocol):
    """What schedules the quiet-time collection: an asyncio loop's ``call_later``, or
    a test's clock that it advances by hand."""

    def call_later(self, delay: float, callback: Callable[[], object], /) -> _Scheduled: ...


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """No cyclic garbage collection inside: for a compile, nearly all of what it makes
    lives on (a full compile of 5,000 services makes half a million objects, and the
    collector's passes over that growing heap were a tenth of its time). Reference
    counting still frees everything at once; the collector resumes afterwards.

    Process-wide: only the server process (``HeapKeeper.compiling``) and a benchmark
    that measures what it serves ask for it; library code never does."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


class HeapKeeper:
    """Freezes the heap after each publish; collects fully once things are quiet; keeps
    the collector out of compiles; gives malloc's free pages back once the process is
    quiet after work (from the first publish on).

    Process-wide tuning for `turnout serve` only: :class:`~turnout.server.App` is
    given one (``App(heap=HeapKeeper())``, what the CLI does), and wires
    :meth:`published` to the cache and :meth:`compiling` around the reload's compile.
    ``timer`` schedules the full collection (default: the running event loop at the
    publish; without one, only the freeze happens).
    """

    def __init__(
        self,
        quiet_seconds: float = 60.0,
        *,
        timer: Timer | None = None,
        trim: Callable[[], object] | None = None,
        cpu: Callable[[], float] = time.process_time,
    ) -> None:
        """``trim`` gives memory back to the system (default: glibc's
        ``malloc_trim``, none elsewhere); ``cpu`` is the process's CPU clock."""
        self.quiet_seconds = quiet_seconds
        self.full_collections = 0
        self.trims = 0
        self._timer = timer
        self._pending: _Scheduled | None = None
        self._trim = trim if trim is not None else _malloc_trim()
        self._cpu = cpu
        self._looking: _Scheduled | None = None
        self._looked_cpu = 0.0
        self._trimmed_cpu = 0.0

    def compiling(self) -> contextlib.AbstractContextManager[None]:
        """Around a compile: the cyclic collector paused (:func:`collector_paused`)."""
        return collector_paused()

    def published(self) -> None:
        """A publish just happened: freeze what is alive, schedule the next full pass."""
        gc.freeze()
        if self._pending is not None:
            self._pending.cancel()
            self._pending = None
        timer = self._timer
        if timer is None:
            try:
                timer = asyncio.get_running_loop()
            except RuntimeError:
                return
        self._pending = timer.call_later(self.quiet_seconds, self.collect)
        if self._looking is None and self._trim is not None:
            self._looked_cpu = self._trimmed_cpu = self._cpu()
            self._looking = timer.call_later(TRIM_LOOK, lambda: self._look(timer))

    def _look(self, timer: Timer) -> None:
        """Trim if the process worked since the last trim and is quiet now; look again."""
        cpu = self._cpu()
        busy, self._looked_cpu = cpu - self._looked_cpu, cpu
        if busy < QUIET_SHARE * TRIM_LOOK and cpu - self._trimmed_cpu >= TRIM_AFTER_CPU:
            assert self._trim is not None
            self._trim()
            self.trims += 1
            self._trimmed_cpu = cpu
        self._looking = timer.call_later(TRIM_LOOK, lambda: self._look(timer))

    def collect(self) -> None:
        """Collect everything, the frozen heap included, then freeze again."""
        self._pending = None
        started = time.perf_counter()
        gc.unfreeze()
        collected = gc.collect()
        gc.freeze()
        self.full_collections += 1
        log.info(
            "heap collected",
            objects=collected,
            frozen=gc.get_freeze_count(),
            ms=round((time.perf_counter() - started) * 1000, 1),
        )

    def close(self) -> None:
        """Cancel the scheduled full collection and trims (the process is stopping)."""
        if self._pending is not None:
            self._pending.cancel()
            self._pending = None
        if self._looking is not None:
            self._looking.cancel()
            self._looking = None
