"""Webhook notifications must never slow the release driver or the event loop that
serves xDS: the driver's tick and the loop's responsiveness with no webhook, a fast
receiver, a slow one (answers after 1 s) and a dead one (accepts, never answers: every
attempt runs into the 5 s timeout), and each receiver's delivery latency.

The driver steps `--services` real releases in a real policy directory (round-trip
edits, validated, atomic writes) through 100 steps with a 0.2 s interval, so it writes
(and notifies) many times a second; figures come from an in-memory healthy source. A
heartbeat task on the same loop measures how late a 10 ms sleep wakes (what an xDS
stream's write would wait).

    python -m bench notify [--services 5] [--writes 60] [--burst 20]
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import statistics
import tempfile
import time
from pathlib import Path

import structlog

from turnout.analysis import Figures, Histogram
from turnout.policy import load_policies
from turnout.release import Driver, ReleaseEvent
from turnout.server import Notifier, Webhook
from turnout.testing.webhook import WebhookReceiver

GATEWAY = "kind: Gateway\nname: public\nport: 10000\n"
STEPS = "[" + ", ".join(str(n) for n in range(1, 101)) + "]"


def _service(index: int) -> str:
    return (
        f"kind: Service\nname: svc-{index}\nhosts: [svc-{index}.example.com]\n"
        "versions:\n"
        f'  v1: {{endpoints: ["127.0.0.1:{20000 + index}"]}}\n'
        f'  v2: {{endpoints: ["127.0.0.1:{30000 + index}"]}}\n'
        "stable: v1\ntraffic: {v1: 100}\n"
        f"incremental:\n  to: v2\n  steps: {STEPS}\n  interval: 200ms\n"
        "  analysis: {minRequests: 10, maxErrorRate: 0.05}\n"
    )


class _Healthy:
    """Every version healthy, always enough requests."""

    async def figures(
        self, service: str, version: str, since: float, until: float | None = None
    ) -> Figures:
        end = until if until is not None else time.time()
        latency = Histogram((0.005, 0.01), (1000, 0, 0))
        return Figures(since, end, 1000, 0, 0, latency, 1, service, version)


def _pcts(values: list[float]) -> str:
    if not values:
        return "-"
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return (
        f"p50 {statistics.median(ordered) * 1000:.3g} ms, p99 {p99 * 1000:.3g} ms, "
        f"max {ordered[-1] * 1000:.3g} ms"
    )


async def _drive(label: str, webhooks: list[Webhook], services: int, writes: int) -> None:
    """The driver stepping `services` releases until it has written `writes` steps."""
    with tempfile.TemporaryDirectory(prefix="bench-notify-") as tmp:
        directory = Path(tmp)
        (directory / "gateway.yaml").write_text(GATEWAY)
        for index in range(services):
            (directory / f"svc-{index}.yaml").write_text(_service(index))
        notifier = Notifier(webhooks)
        notifier.start()
        calls: list[float] = []

        def on_event(event: ReleaseEvent) -> None:
            """What the driver's tick pays for notifying: this call's time."""
            began = time.perf_counter()
            notifier.release(event)
            calls.append(time.perf_counter() - began)

        driver = Driver(
            directory,
            lambda: load_policies(directory),
            _Healthy(),
            tick=0.1,
            on_event=on_event,
        )
        ticks: list[float] = []
        lateness: list[float] = []
        written = 0
        done = asyncio.Event()

        async def heartbeat() -> None:
            while not done.is_set():
                asked = time.monotonic()
                await asyncio.sleep(0.01)
                lateness.append(time.monotonic() - asked - 0.01)

        beat = asyncio.create_task(heartbeat())
        while written < writes:
            began = time.perf_counter()
            written += len(await driver.tick())
            ticks.append(time.perf_counter() - began)
            await asyncio.sleep(0.05)
        done.set()
        await beat
        counts = notifier.counts()
        depths = notifier.depths()
        await notifier.stop(grace=0.0)
        print(f"{label}: {len(ticks)} ticks, {written} steps written")
        print(f"  driver tick: {_pcts(ticks)}")
        print(f"  of which notifying ({len(calls)} events): {_pcts(calls)} per event")
        print(f"  event loop: a 10 ms sleep woke late by {_pcts(lateness)}")
        for name, c in counts.items():
            print(
                f"  webhook {name}: {c.delivered} delivered, {c.failed} failed, "
                f"{c.dropped} dropped, {depths.get(name, 0)} still queued"
            )


async def _burst(label: str, webhook: Webhook, receiver: WebhookReceiver, events: int) -> None:
    """`events` events at once (a fleet-wide rollback): the publish call's cost and each
    event's delivery latency (publish -> the receiver's answer)."""
    notifier = Notifier([webhook])
    notifier.start()
    before = len(receiver.events())
    costs: list[float] = []
    published: dict[str, float] = {}
    for index in range(events):
        began = time.perf_counter()
        notifier.publish("release.rolled-back", {"service": f"svc-{index}", "text": "bench"})
        costs.append(time.perf_counter() - began)
        published[f"svc-{index}"] = time.time()
    await notifier.flush(120.0)
    await notifier.stop(grace=0.0)
    got = receiver.events()[before:]
    latency = [e.at - published[e.body["service"]] for e in got]
    print(
        f"{label}: {events} events at once: publish {_pcts(costs)} per call; "
        f"delivered {len(got)}, latency {_pcts(latency)}"
    )


def _blackhole() -> tuple[socket.socket, str]:
    """A listener that accepts connections and never answers."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    return sock, f"http://127.0.0.1:{sock.getsockname()[1]}/hook"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench notify", description=__doc__)
    parser.add_argument("--services", type=int, default=5)
    parser.add_argument("--writes", type=int, default=60, help="release steps to write")
    parser.add_argument("--burst", type=int, default=20, help="events at once (latency)")
    args = parser.parse_args(argv)
    structlog.configure(logger_factory=structlog.ReturnLoggerFactory())  # no log output
    sock, dead = _blackhole()
    with WebhookReceiver() as fast, WebhookReceiver(delay=1.0) as slow:
        runs = [
            ("no webhook", []),
            ("slow receiver (1 s per answer)", [Webhook(slow.url, "slow", secret=b"x")]),
            ("dead receiver (never answers)", [Webhook(dead, "dead", secret=b"x")]),
        ]
        for label, hooks in runs:
            asyncio.run(_drive(label, hooks, args.services, args.writes))
        asyncio.run(_burst("fast receiver", Webhook(fast.url, "fast"), fast, args.burst))
        slow_hook = Webhook(slow.url, "slow", secret=b"x")
        asyncio.run(_burst("slow receiver (1 s per answer)", slow_hook, slow, args.burst))
    sock.close()


if __name__ == "__main__":
    main()
