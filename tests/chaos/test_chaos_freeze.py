"""turnout frozen with SIGSTOP for 30 s under load: Envoy keeps serving on its
config (turnout is not on the request path); after SIGCONT turnout answers again
and a policy edit reaches Envoy."""

from __future__ import annotations

import os
import signal
import time
from contextlib import ExitStack
from pathlib import Path
from urllib.error import URLError

import pytest
from e2e._load import Hey

from turnout.testing.net import http_get, wait_until

from ._stack import HOST, launch, report

pytestmark = [pytest.mark.chaos, pytest.mark.e2e]

FROZEN_SECONDS = 30.0


def _state(pid: int) -> str:
    """The process's state letter from /proc (``T``: stopped by a signal)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat.rpartition(")")[2].split()[0]


def test_sigstop_for_30_seconds_under_load(tmp_path: Path) -> None:
    """30 s of SIGSTOP under ~1,000 requests/s: zero failed requests while frozen and
    after; once resumed turnout answers /healthz, Envoy is still its stream, and an
    edit propagates."""
    with ExitStack() as exits:
        stack = launch(exits, tmp_path)
        turnout = stack.stack.turnout
        pid = turnout.pid
        assert pid is not None
        hey = Hey(stack.port, HOST, rate=1000, limit=FROZEN_SECONDS + 60).start()
        exits.callback(hey.kill)
        stack.wait_flowing()

        os.kill(pid, signal.SIGSTOP)
        exits.callback(lambda: os.kill(pid, signal.SIGCONT) if turnout.running else None)
        frozen_at = time.monotonic()
        wait_until(lambda: _state(pid) == "T", what=f"turnout (pid {pid}) to be stopped")
        with pytest.raises((TimeoutError, URLError)):  # really frozen: no answer
            http_get(turnout.admin_url("/healthz"), timeout=0.5)
        before = stack.backend_requests()
        time.sleep(FROZEN_SECONDS - (time.monotonic() - frozen_at))  # the freeze under test
        during = stack.backend_requests()
        os.kill(pid, signal.SIGCONT)
        resumed = time.monotonic()

        assert http_get(turnout.admin_url("/healthz"), timeout=5)[0] == 200
        answered = time.monotonic() - resumed
        (proxy,) = [p for p in turnout.status()["proxies"] if p["node_id"] == stack.node]
        edited = time.monotonic()
        version = stack.edit_service((50, 50))
        stack.wait_synced(version, timeout=10)
        propagated = time.monotonic() - edited
        stack.wait_flowing()  # load goes on after the edit
        result = hey.stop()

        served_frozen = sum(during.values()) - sum(before.values())
        report(
            "SIGSTOP",
            frozen_s=FROZEN_SECONDS,
            requests=result.total,
            rate=f"{result.rate:.0f}/s",
            failed=result.failed,
            backend_requests_while_frozen=served_frozen,
            healthz_after_resume_ms=round(answered * 1000),
            edit_after_resume_ms=round(propagated * 1000),
            same_stream=proxy["stream_id"],
        )
        assert result.failed == 0, result.summary()
        assert served_frozen >= 800 * (FROZEN_SECONDS - 1), "Envoy did not keep serving"
        assert result.total >= 800 * (result.seconds - 1), result.summary()
