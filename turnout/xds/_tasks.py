"""A stream's reader (the RPC's own task) and its writer task, and how they stop
(shared by the state-of-the-world and the Delta streams).

- **A write handed to grpc is never cancelled in flight.** Cancelling ``write()``
  cancels only the Python side: the send stays pending in grpc core, and the status
  the server sends next races with it (a ``GRPC_CALL_ERROR_TOO_MANY_OPERATIONS``
  there leaves the proxy with no status at all). So when a stream ends (the proxy
  closed its side, it was refused, or the RPC is cancelled) the reader is cancelled
  at once, but the writer is first stopped from starting another write and its
  current one is given :data:`WRITE_GRACE` seconds to finish; only a proxy that
  stopped reading makes it wait that long, and its write is then cancelled anyway.
- **What ended the stream is returned, without its traceback**, never kept: a
  traceback holds the frames of the stream's tasks and, through them, the stream and
  everything it last sent, so a refusal passed on or logged would keep those alive.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

__all__ = ["WRITE_GRACE", "Wake", "Write", "run_stream"]

Write = Callable[[bytes], Awaitable[None]]

WRITE_GRACE = 0.5
"""Seconds a write in flight when its stream ends may take to finish before it is cancelled."""


class Wake:
    """``asyncio.Event`` for one waiter (the stream's writer), without its cost: an
    Event keeps a deque of waiters (624 bytes) and an instance dict, per stream. The
    one future exists only while the writer waits."""

    __slots__ = ("_flag", "_waiter")

    def __init__(self) -> None:
        self._flag = False
        self._waiter: asyncio.Future[None] | None = None

    def is_set(self) -> bool:
        return self._flag

    def set(self) -> None:
        if not self._flag:
            self._flag = True
            waiter = self._waiter
            if waiter is not None and not waiter.done():
                waiter.set_result(None)

    def clear(self) -> None:
        self._flag = False

    async def wait(self) -> None:
        """Return once set (at once if it is); one waiter at a time."""
        if self._flag:
            return
        waiter = self._waiter = asyncio.get_running_loop().create_future()
        try:
            await waiter
        finally:
            self._waiter = None


class _ClosedError(Exception):
    """A write asked for after the stream ended (the writer task ends with it)."""


class _Writes:
    """``write`` that knows whether a write is in flight and starts none once closed."""

    __slots__ = ("_done", "_write", "closed", "writing")

    def __init__(self, write: Write) -> None:
        self._write = write
        self.writing = False
        self._done: asyncio.Future[None] | None = None
        """Made by :meth:`close` when a write is in flight, resolved as it finishes."""
        self.closed = False

    async def __call__(self, frame: bytes) -> None:
        if self.closed:
            raise _ClosedError
        self.writing = True
        try:
            await self._write(frame)
        finally:
            self.writing = False
            if self._done is not None and not self._done.done():
                self._done.set_result(None)

    async def close(self, grace: float) -> None:
        """Start no more writes; wait up to ``grace`` seconds for the one in flight."""
        self.closed = True
        if self.writing:
            self._done = asyncio.get_running_loop().create_future()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._done, grace)


def _bare(error: BaseException) -> BaseException:
    """``error`` without its traceback or the exceptions it was raised from."""
    error.__cause__ = error.__context__ = None
    return error.with_traceback(None)


async def run_stream(
    stream_id: int,
    read: Coroutine[Any, Any, None],
    write_loop: Callable[[Write], Coroutine[Any, Any, None]],
    write: Write,
) -> BaseException | None:
    """Run ``read`` in the calling task and ``write_loop(write)`` as the stream's
    writer task until either ends (or this is cancelled), then stop both as the module
    says. Returns the exception that ended one (its traceback cleared), None if one
    simply returned (the proxy closed its side).

    The reader is not a task of its own: a third task per stream, with the
    ``asyncio.wait`` that watched both, cost ~1.5 KB per idle stream. The writer ending
    first cancels the reading task, and that cancellation is told apart from one from
    outside (which propagates) by ``ended_by_writer``."""
    writes = _Writes(write)
    reading = asyncio.current_task()
    assert reading is not None
    writer = asyncio.create_task(write_loop(writes), name=f"xds-write-{stream_id}")
    ended_by_writer = False

    def writer_ended(_task: asyncio.Task[None]) -> None:
        nonlocal ended_by_writer
        ended_by_writer = True
        reading.cancel()

    writer.add_done_callback(writer_ended)
    try:
        try:
            await read
        except asyncio.CancelledError:
            if not ended_by_writer:
                raise  # the RPC was cancelled (the proxy went, the server stops)
            reading.uncancel()
        except Exception as error:
            return _bare(error)
        if ended_by_writer and not writer.cancelled():
            failed = writer.exception()
            return _bare(failed) if failed is not None else None
        return None
    finally:
        writer.remove_done_callback(writer_ended)
        try:
            await writes.close(WRITE_GRACE)
        finally:
            writer.cancel()
            await asyncio.gather(writer, return_exceptions=True)
