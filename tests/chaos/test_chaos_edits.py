"""Route edits under steady load: 20 traffic and rule edits while ~1,000 requests/s
flow through a real Envoy. Every request is answered 2xx, and since only routes
change, Envoy swaps route tables in place: no listener is modified or drained."""

from __future__ import annotations

import statistics
import time
from contextlib import ExitStack
from pathlib import Path

import pytest
from e2e._load import Hey

from ._stack import HOST, launch, report

pytestmark = [pytest.mark.chaos, pytest.mark.e2e]

EDITS = 20


def test_twenty_route_edits_under_load(tmp_path: Path) -> None:
    """20 edits of shares and of a header rule, each ACKed by Envoy before the next,
    under ~1,000 requests/s: 100% 2xx, listener_modified and cluster_modified
    unchanged, no listener ever draining, and the last split is the one served."""
    with ExitStack() as exits:
        stack = launch(exits, tmp_path)
        envoy = stack.stack.envoy
        churn = stack.churn()
        hey = Hey(stack.port, HOST, rate=1000).start()
        exits.callback(hey.kill)
        stack.wait_flowing()

        seconds: list[float] = []
        draining: list[int] = []
        for edit in range(EDITS):
            v2 = 5 * (edit + 1) if edit < EDITS - 1 else 100
            rule = (50, 50) if edit % 2 == 0 and edit < EDITS - 1 else None
            version = stack.edit_service((100 - v2, v2), rule=rule)
            seconds.append(stack.wait_synced(version))
            draining.append(envoy.stat("listener_manager.total_listeners_draining"))
            time.sleep(0.2)  # pacing: the edits are spread over the load, not a burst
        before_last_check = stack.backend_requests()
        stack.wait_flowing(version="v2")
        after = stack.backend_requests()
        result = hey.stop()

        report(
            "route edits",
            edits=EDITS,
            requests=result.total,
            rate=f"{result.rate:.0f}/s",
            failed=result.failed,
            ack_ms_median=round(statistics.median(seconds) * 1000),
            ack_ms_max=round(max(seconds) * 1000),
            listeners_draining_max=max(draining),
        )
        assert result.total >= 800 * (result.seconds - 1), result.summary()
        assert result.failed == 0, result.summary()
        assert max(draining) == 0
        assert stack.churn() == churn, "a route-only edit changed a cluster or a listener"
        assert envoy.stat("listener_manager.total_listeners_draining") == 0
        # The last edit (v2 100%) is what Envoy routes by: v1 got nothing since.
        assert after["v1"] == before_last_check["v1"]
        assert after["v2"] > before_last_check["v2"]
