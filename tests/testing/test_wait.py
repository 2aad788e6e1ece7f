"""wait_until and eventually: the one way tests wait for a condition."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from turnout.testing import eventually, wait_until


def test_wait_until_returns_what_the_probe_found() -> None:
    """wait_until polls until the probe returns something other than None/False, and
    returns that; the probe's exceptions mean "not yet"."""
    calls = itertools.count()

    def probe() -> str | bool | None:
        n = next(calls)
        if n == 0:
            raise ConnectionRefusedError("still starting")
        if n == 1:
            return None
        return "ready" if n >= 3 else False

    assert wait_until(probe, timeout=5, interval=0) == "ready"
    assert next(calls) == 4


def test_wait_until_times_out_naming_what_and_the_last_error() -> None:
    """Out of time, wait_until raises TimeoutError naming what it awaited and the
    probe's last exception."""

    def probe() -> None:
        raise ConnectionRefusedError("nobody home")

    with pytest.raises(TimeoutError, match=r"0\.1s waiting for the backend.*nobody home"):
        wait_until(probe, timeout=0.1, what="the backend")


def test_wait_until_lets_errors_outside_retry_on_through_at_once() -> None:
    """An exception not in retry_on ends the wait at once: a dead process is an error
    now, not a timeout later."""
    calls = itertools.count()

    def probe() -> None:
        if next(calls) == 0:
            raise ConnectionRefusedError("still starting")
        raise RuntimeError("exited with 1")

    with pytest.raises(RuntimeError, match="exited with 1"):
        wait_until(probe, timeout=30, interval=0, retry_on=(OSError,))
    assert next(calls) == 2


async def test_eventually_lets_the_loop_run_while_it_waits() -> None:
    """eventually returns once a task running on the same loop makes the probe true."""
    done: list[int] = []

    async def later() -> None:  # runs only once eventually yields to the loop
        done.append(7)

    task = asyncio.create_task(later())
    assert await eventually(lambda: done[0] if done else None, timeout=5) == 7
    await task


async def test_eventually_times_out_naming_what() -> None:
    """Out of time, eventually raises TimeoutError naming what it awaited."""
    with pytest.raises(TimeoutError, match="waiting for the proxy to go"):
        await eventually(lambda: False, timeout=0.05, what="the proxy to go")
