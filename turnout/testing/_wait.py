"""Waiting for a condition: the one way turnout's tests wait, instead of a fixed sleep.

A fixed sleep is either too short (a flaky test on a busy machine) or too long (a slow
test everywhere). These poll a *probe* until it says the condition holds, then return
at once:

- :func:`wait_until` from plain code (a real Envoy, a `turnout serve` process, a
  backend, Prometheus);
- :func:`eventually`, its asyncio twin, from coroutines (in-process servers, whose
  loop must keep running while the test waits).

Both read a probe the same way. It returns ``None`` or ``False`` for "not yet", anything
else for "done" (returned to the caller, so a probe can hand back what it found). An
exception it raises of a type in ``retry_on`` (by default any) also means "not yet" (a
server still starting refuses connections), and the last one is named if time runs
out; any other propagates at once (``retry_on=(OSError,)``: a refused connection is
"not yet", the process having exited is an error now, not in 20 s). When ``timeout``
seconds pass first, both raise :class:`TimeoutError` naming ``what`` was awaited.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TypeVar

__all__ = ["eventually", "wait_until"]

T = TypeVar("T")


class _Waiting:
    """One wait: the deadline, the last probe error, the message when time runs out."""

    def __init__(self, timeout: float, what: str, retry_on: tuple[type[Exception], ...]) -> None:
        self.timeout = timeout
        self.what = what
        self.retry_on = retry_on
        self.deadline = time.monotonic() + timeout
        self.last_error: Exception | None = None

    def probe(self, probe: Callable[[], T | None]) -> T | None:
        """The probe's answer, or None for "not yet" (a False or a retried exception)."""
        try:
            result = probe()
        except self.retry_on as exc:
            self.last_error = exc
            return None
        return None if result is False else result

    def check(self) -> None:
        """Raise TimeoutError once the deadline has passed."""
        if time.monotonic() >= self.deadline:
            detail = f" (last error: {self.last_error!r})" if self.last_error else ""
            raise TimeoutError(
                f"timed out after {self.timeout:.1f}s waiting for {self.what}{detail}"
            )


def wait_until(
    probe: Callable[[], T | None],
    timeout: float = 5.0,
    interval: float = 0.02,
    what: str = "condition",
    retry_on: tuple[type[Exception], ...] = (Exception,),
) -> T:
    """Call ``probe`` every ``interval`` seconds until it returns something other than
    None/False, and return that; TimeoutError naming ``what`` after ``timeout`` seconds."""
    waiting = _Waiting(timeout, what, retry_on)
    while True:
        result = waiting.probe(probe)
        if result is not None:
            return result
        waiting.check()
        time.sleep(interval)


async def eventually(
    probe: Callable[[], T | None],
    timeout: float = 5.0,  # noqa: ASYNC109 - a polling budget, not a cancellation deadline
    interval: float = 0.02,
    what: str = "condition",
    retry_on: tuple[type[Exception], ...] = (Exception,),
) -> T:
    """:func:`wait_until` for coroutines: the event loop runs between calls of ``probe``."""
    waiting = _Waiting(timeout, what, retry_on)
    while True:
        result = waiting.probe(probe)
        if result is not None:
            return result
        waiting.check()
        await asyncio.sleep(interval)
