"""The dashboard benchmark: the release dashboard in Chromium against a loaded turnout.

`turnout serve` (the real command line) on S services x 3 versions (500 by default),
with N simulated Envoys connected (``bench._fleet_client``, 1,000 by default), and the
dashboard open in Debian's headless Chromium driven by Playwright. Figures:

- first paint: from navigation start to the services view drawn with every service
  (the page's own ``services-painted`` performance mark), and what it loaded;
- file write -> page: a policy file written (one service's traffic share), until the
  open page shows the new share (turnout's debounce, reload, the pushed event, the
  redraw), per write: median and max;
- soak: the page left open on the services view while a file is written every few
  seconds and the whole fleet ACKs each change: the page's JS heap and DOM nodes and
  the server's RSS and CPU, sampled over the run (first, last, max).

    python -m bench dashboard                       # 500 services, 1,000 proxies, 60 s soak
    python -m bench dashboard --soak 600            # the 10-minute bar

The bars (issue 11): first paint <= 1 s; file write -> page <= 1 s; page memory and
server cost flat over 10 minutes.
"""

from __future__ import annotations

import contextlib
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.fleet import (
    CHANGED,
    _fleet,
    connect_fleet,
    proc_cpu,
    proc_rss,
    write_policies,
    write_service,
)
from turnout.testing.browser import CHROMIUM, launch_chromium
from turnout.testing.control import TurnoutProcess
from turnout.testing.net import free_port


def _shown(page: Any, share: int, timeout: float = 10.0) -> None:
    name = f"svc{CHANGED:05d}"
    page.wait_for_function(
        f'() => document.querySelector(\'.card[data-service="{name}"] '
        f".segment[data-segment=default]')?.innerText.includes('v2 {share}%')",
        timeout=timeout * 1000,
    )


def _page_metrics(session: Any) -> dict[str, float]:
    metrics = session.send("Performance.getMetrics")["metrics"]
    return {m["name"]: m["value"] for m in metrics}


def run(
    services: int = 500,
    streams: int = 1000,
    *,
    writes: int = 10,
    soak: float = 60.0,
    soak_every: float = 5.0,
    clients: int = 2,
    channels: int = 16,
) -> None:
    from playwright.sync_api import sync_playwright  # a test extra

    print(
        f"\n== dashboard: {services} services x 3 versions, {streams:,} simulated Envoys, "
        f"Chromium ({CHROMIUM}) ==",
        flush=True,
    )
    with contextlib.ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="turnout-dash-")))
        policies = workdir / "policies"
        write_policies(policies, services, free_port())
        turnout = TurnoutProcess(
            policies, log_path=workdir / "turnout.log", extra_args=["--log-level", "warning"]
        ).start(timeout=120)
        stack.callback(turnout.stop)
        turnout.wait_settled([], timeout=120)
        assert turnout.pid is not None
        fleet = stack.enter_context(_fleet(clients))
        connect_fleet(fleet, turnout.xds_port, streams, channels=channels)
        fleet.wait("connect", lambda s: s["synced"] >= streams, timeout=max(60, streams / 50))
        print(f"  {streams:,} simulated Envoys synced", flush=True)

        playwright = stack.enter_context(sync_playwright())
        browser = launch_chromium(playwright)
        stack.callback(browser.close)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        session = page.context.new_cdp_session(page)
        session.send("Performance.enable")

        # -- first paint ---------------------------------------------------------------
        paints = []
        for attempt in range(3):
            started = time.perf_counter()
            page.goto(turnout.admin_url("/"), wait_until="commit")
            page.wait_for_function(
                "() => performance.getEntriesByName('services-painted').length > 0",
                timeout=30000,
            )
            wall = time.perf_counter() - started
            mark = page.evaluate(
                "() => performance.getEntriesByName('services-painted')[0].startTime"
            )
            cards = page.locator("#services .card").count()
            # when the SNAPSHOT arrived (the server's part), against the page's clock
            snapshot = page.evaluate(
                "() => window.turnoutDashboard.state.firstEventAt - performance.timeOrigin"
            )
            paints.append(mark / 1000)
            print(
                f"  first paint #{attempt + 1}: {mark:.0f} ms after navigation start "
                f"({wall * 1000:.0f} ms wall from goto); the SNAPSHOT arrived at "
                f"{snapshot:.0f} ms; {cards} service cards",
                flush=True,
            )
        page.wait_for_selector("#live.up", timeout=30000)
        best, worst = min(paints), max(paints)
        print(
            f"first paint of the services view: {best * 1000:.0f}-{worst * 1000:.0f} ms "
            f"[bar <= 1 s: {'met' if worst <= 1.0 else 'MISSED'}]",
            flush=True,
        )

        # -- file write -> page ----------------------------------------------------------
        latencies = []
        arrivals = []
        for share in range(1, writes + 1):
            started = time.perf_counter()
            written = time.time() * 1000
            write_service(policies, CHANGED, v2=10 + share)
            _shown(page, 10 + share)
            latencies.append(time.perf_counter() - started)
            trace = page.evaluate("() => window.turnoutDashboard.trace")
            served = [t for kind, t in trace if kind == "VERSION_SERVED" and t >= written]
            if served:
                arrivals.append((served[0] - written) / 1000)
            time.sleep(0.5)
        if arrivals:
            reached = statistics.median(arrivals) * 1000
            print(
                f"  the VERSION_SERVED event reached the page {reached:.0f} ms (median) after "
                "the write; the rest is the page parsing and redrawing",
                flush=True,
            )
        median, worst = statistics.median(latencies), max(latencies)
        print(
            f"file write -> shown in the page: median {median * 1000:.0f} ms, max "
            f"{worst * 1000:.0f} ms over {writes} writes (turnout's debounce 100 ms included) "
            f"[bar <= 1 s: {'met' if worst <= 1.0 else 'MISSED'}]",
            flush=True,
        )

        # -- soak ------------------------------------------------------------------------
        samples: list[tuple[float, float, float, float, float]] = []
        started = time.monotonic()
        cpu0 = proc_cpu(turnout.pid)
        share = 0
        while time.monotonic() - started < soak:
            share = share % 40 + 1
            write_service(policies, CHANGED, v2=share)
            _shown(page, share, timeout=30)
            session.send("HeapProfiler.collectGarbage")
            metrics = _page_metrics(session)
            samples.append(
                (
                    time.monotonic() - started,
                    metrics.get("JSHeapUsedSize", 0.0) / 2**20,
                    metrics.get("Nodes", 0.0),
                    proc_rss(turnout.pid) / 2**20,
                    proc_cpu(turnout.pid) - cpu0,
                )
            )
            time.sleep(soak_every)
        if samples:
            first_s, last_s = samples[0], samples[-1]
            third = max(1, len(samples) // 3)
            early_cpu = (samples[third][4] - first_s[4]) / max(1e-9, samples[third][0] - first_s[0])
            late_cpu = (last_s[4] - samples[-third - 1][4]) / max(
                1e-9, last_s[0] - samples[-third - 1][0]
            )
            print(
                f"soak {last_s[0]:.0f} s, a file write every {soak_every:.0f} s with "
                f"{streams:,} proxies ACKing each, page on the services view:\n"
                f"  page JS heap (after GC) {first_s[1]:.1f} -> {last_s[1]:.1f} MB "
                f"(max {max(s[1] for s in samples):.1f}); DOM nodes {first_s[2]:.0f} -> "
                f"{last_s[2]:.0f}\n"
                f"  server RSS {first_s[3]:.0f} -> {last_s[3]:.0f} MB "
                f"(max {max(s[3] for s in samples):.0f}); server CPU {early_cpu * 100:.1f}% "
                f"of a core in the first third, {late_cpu * 100:.1f}% in the last",
                flush=True,
            )
