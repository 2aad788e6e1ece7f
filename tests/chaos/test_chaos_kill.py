"""turnout killed with SIGKILL under load, then restarted: Envoy keeps serving on
its last config meanwhile, and the restarted turnout resyncs it fully without
changing anything in it (versions are content hashes)."""

from __future__ import annotations

import time
from contextlib import ExitStack
from pathlib import Path

import pytest
from e2e._load import Hey

from ._stack import HOST, launch, report

pytestmark = [pytest.mark.chaos, pytest.mark.e2e]

KILLS = 3
DOWN_SECONDS = 2.0


def test_kill_9_under_load_then_restart(tmp_path: Path) -> None:
    """Three SIGKILL + restart cycles under ~1,000 requests/s: zero failed requests,
    after each restart Envoy's synced_version equals the served version (a full
    resync) at the very versions it had, and no cluster or listener changed."""
    with ExitStack() as exits:
        stack = launch(exits, tmp_path)
        turnout = stack.stack.turnout
        version = turnout.status()["served_version"]
        churn = stack.churn()
        hey = Hey(stack.port, HOST, rate=1000).start()
        exits.callback(hey.kill)
        stack.wait_flowing()

        resync: list[float] = []
        for _ in range(KILLS):
            assert turnout.kill() == -9
            time.sleep(DOWN_SECONDS)  # the outage under test: Envoy on its own
            restarted = time.monotonic()
            turnout.start()
            stack.wait_synced(version, timeout=15)
            resync.append(time.monotonic() - restarted)
            status = turnout.status()
            (proxy,) = [p for p in status["proxies"] if p["node_id"] == stack.node]
            assert proxy["synced_version"] == status["served_version"] == version
            assert all(t["acked_version"] == t["sent_version"] for t in proxy["types"])
            stack.wait_flowing()  # load goes on through the resynced Envoy
        result = hey.stop()

        report(
            "kill -9",
            kills=KILLS,
            down_s=DOWN_SECONDS,
            requests=result.total,
            rate=f"{result.rate:.0f}/s",
            failed=result.failed,
            resync_ms=[round(s * 1000) for s in resync],
        )
        assert result.total >= 800 * (result.seconds - 1), result.summary()
        assert result.failed == 0, result.summary()
        assert stack.churn() == churn, "a restart changed a cluster or a listener in Envoy"
