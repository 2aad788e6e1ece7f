"""Webhook notifications: `turnout serve --notify FILE`.

Where the URLs and secrets live (not in the policy repository):

    webhooks:
      - url: https://hooks.example.com/turnout
        secretEnv: TURNOUT_WEBHOOK_SECRET   # HMAC-SHA256 of the body: X-Turnout-Signature
        events: [release, policy, proxy]     # categories or event names; default: all
        name: ops                            # optional: the `webhook` label in /metrics
        concurrency: 4                       # optional: posts in flight (1: in order)

One JSON POST per event: `release.started`, `release.stepped`, `release.holding` (once
per reason), `release.waiting-approval`, `release.promoted`, `release.rolled-back`,
`release.failed`, `release.paused`; `policy.rejected` (with the errors); `proxy.nack`
(at most one per proxy a minute, saying how many were left out). The body carries the
service, its versions and shares, the verdict with its figures, and a `text` line a
Slack (or Mattermost, Teams) incoming webhook shows as it is.

Delivery never slows turnout: `publish` only puts the event on each webhook's bounded
queue (the oldest is dropped, and counted, when a receiver falls that far behind), and
each webhook has its own asyncio tasks (`concurrency`, default 4: a slow receiver
answers several events at once; 1 keeps them in order) posting with an aiohttp client
with timeouts, retrying with exponential backoff and jitter on connection errors,
timeouts, 429 and 5xx. Events carry their time (`at`) for receivers that sort. Every
attempt of one event carries the same `X-Turnout-Delivery` id, so a receiver that
answered late can drop a duplicate. Counts of delivered, failed (gave up), dropped and
retried events and the delivery latency are in `/metrics`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import os
import random
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import structlog
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from turnout.policy import Problem, shares_text
from turnout.release import ReleaseEvent
from turnout.server._metrics import _Histogram
from turnout.server._rollout import RolloutState
from turnout.xds import StreamInfo, XdsCallbacks

__all__ = [
    "CATEGORIES",
    "Notifier",
    "NotifyConfigError",
    "Webhook",
    "load_webhooks",
    "release_event_name",
    "sign",
]

log = structlog.get_logger("turnout.notify")

CATEGORIES = ("release", "policy", "proxy")

#: The driver's actions, as events people subscribe to.
_RELEASE_EVENTS = {
    "start": "release.started",
    "dark": "release.started",
    "advance": "release.stepped",
    "restore": "release.stepped",
    "promote": "release.promoted",
    "rollback": "release.rolled-back",
    "fail": "release.failed",
    "hold": "release.holding",
    "await-data": "release.holding",
    "await-window": "release.holding",
    "wait": "release.waiting-approval",
    "await-approval": "release.waiting-approval",
    "pause": "release.paused",
}

NACK_INTERVAL = 60.0
"""At most one `proxy.nack` event per proxy in this many seconds."""


class NotifyConfigError(ValueError):
    """The --notify file cannot be used; the message names the file and the field."""


@dataclass(frozen=True, slots=True)
class Webhook:
    """One receiver: where, how it is signed, which events, how hard to try."""

    url: str
    name: str
    secret: bytes | None = None
    events: tuple[str, ...] = ()  # categories or event names; empty: every event
    timeout: float = 5.0
    attempts: int = 6  # the first and five retries
    backoff: float = 0.5  # the first retry's mean delay; doubles each time
    max_backoff: float = 30.0
    queue: int = 1000
    concurrency: int = 4  # posts in flight at once (1: delivered in order)

    def wants(self, event: str) -> bool:
        if not self.events:
            return True
        return event in self.events or event.split(".", 1)[0] in self.events


def load_webhooks(path: Path, environ: Mapping[str, str] | None = None) -> tuple[Webhook, ...]:
    """The webhooks of a --notify file; NotifyConfigError names what is wrong."""
    env = os.environ if environ is None else environ
    try:
        data = YAML(typ="safe").load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, YAMLError) as exc:
        raise NotifyConfigError(f"{path}: cannot read: {exc}") from exc
    if not isinstance(data, dict) or set(data) - {"webhooks"}:
        raise NotifyConfigError(f"{path}: expected a mapping with one key, webhooks")
    items = data.get("webhooks")
    if not isinstance(items, list) or not items:
        raise NotifyConfigError(f"{path}: webhooks: expected a list of at least one webhook")
    webhooks: list[Webhook] = []
    for index, item in enumerate(items):
        webhook = _webhook(path, index, item, env)
        taken = {w.name for w in webhooks}
        if webhook.name in taken:
            if isinstance(item, dict) and "name" in item:
                raise NotifyConfigError(
                    f"{path}: webhooks[{index}].name: {webhook.name!r} is used twice"
                )
            number = 2
            while f"{webhook.name}-{number}" in taken:
                number += 1
            webhook = replace(webhook, name=f"{webhook.name}-{number}")  # one label each
        webhooks.append(webhook)
    return tuple(webhooks)


_KEYS = {"url", "secretEnv", "events", "name", "timeout", "attempts", "concurrency"}


def _webhook(path: Path, index: int, item: object, env: Mapping[str, str]) -> Webhook:
    where = f"{path}: webhooks[{index}]"
    if not isinstance(item, dict):
        raise NotifyConfigError(f"{where}: expected a mapping with url (and secretEnv, events)")
    unknown = sorted(set(item) - _KEYS)
    if unknown:
        raise NotifyConfigError(f"{where}.{unknown[0]}: unknown field (known: {sorted(_KEYS)})")
    url = item.get("url")
    parts = urlsplit(url) if isinstance(url, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise NotifyConfigError(f"{where}.url: expected an http:// or https:// URL, got {url!r}")
    secret: bytes | None = None
    if "secretEnv" in item:
        variable = item["secretEnv"]
        if not isinstance(variable, str) or not env.get(variable):
            raise NotifyConfigError(
                f"{where}.secretEnv: the environment variable {variable!r} is not set "
                "(the secret signs every body; it never lives in a file)"
            )
        secret = env[variable].encode()
    events = item.get("events", [])
    if not isinstance(events, list) or not all(isinstance(e, str) for e in events):
        raise NotifyConfigError(f"{where}.events: expected a list like [release, policy, proxy]")
    for event in events:
        if event not in CATEGORIES and event not in {*_RELEASE_EVENTS.values(), *_OTHER_EVENTS}:
            raise NotifyConfigError(
                f"{where}.events: unknown event {event!r} (categories: {', '.join(CATEGORIES)})"
            )
    name = item.get("name", parts.hostname)
    timeout, attempts = item.get("timeout", 5.0), item.get("attempts", 6)
    if not isinstance(timeout, int | float) or timeout <= 0:
        raise NotifyConfigError(f"{where}.timeout: expected seconds, more than 0")
    if not isinstance(attempts, int) or attempts < 1:
        raise NotifyConfigError(f"{where}.attempts: expected a whole number, at least 1")
    concurrency = item.get("concurrency", 4)
    if not isinstance(concurrency, int) or not 1 <= concurrency <= 64:
        raise NotifyConfigError(f"{where}.concurrency: expected a whole number from 1 to 64")
    return Webhook(
        str(url),
        str(name),
        secret,
        tuple(events),
        float(timeout),
        attempts,
        concurrency=concurrency,
    )


_OTHER_EVENTS = (
    "policy.rejected",
    "policy.rollout-held",
    "policy.rollout-aborted",
    "policy.rollout-complete",
    "proxy.nack",
)


def sign(secret: bytes, body: bytes) -> str:
    """The `X-Turnout-Signature` header's value: `sha256=` and the hex HMAC of the body
    (the form GitHub's webhooks use; compare it with hmac.compare_digest)."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def release_event_name(action: str) -> str | None:
    """The event a driver action is published as (None: not an event)."""
    return _RELEASE_EVENTS.get(action)


def _timestamp(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _number(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


@dataclass(slots=True)
class _Event:
    name: str
    body: bytes
    id: str
    created: float  # monotonic, for the delivery latency


@dataclass(slots=True)
class _Counts:
    delivered: int = 0
    failed: int = 0
    dropped: int = 0
    retries: int = 0
    latency: _Histogram = field(default_factory=_Histogram)


class _Delivery:
    """One webhook's queue and the task that posts from it."""

    def __init__(self, webhook: Webhook, session: aiohttp.ClientSession) -> None:
        self.webhook = webhook
        self.queue: asyncio.Queue[_Event] = asyncio.Queue(maxsize=webhook.queue)
        self.counts = _Counts()
        self._session = session
        self.tasks: list[asyncio.Task[None]] = []

    def put(self, event: _Event) -> None:
        if self.queue.full():
            with contextlib.suppress(asyncio.QueueEmpty):
                self.queue.get_nowait()  # the oldest goes: the newest says more
                self.queue.task_done()
                self.counts.dropped += 1
        self.queue.put_nowait(event)

    async def run(self) -> None:
        while True:
            event = await self.queue.get()
            try:
                await self._deliver(event)
            finally:
                self.queue.task_done()

    async def _deliver(self, event: _Event) -> None:
        webhook = self.webhook
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "turnout",
            "X-Turnout-Event": event.name,
            "X-Turnout-Delivery": event.id,
        }
        if webhook.secret is not None:
            headers["X-Turnout-Signature"] = sign(webhook.secret, event.body)
        timeout = aiohttp.ClientTimeout(total=webhook.timeout, connect=min(2.0, webhook.timeout))
        why = ""
        for attempt in range(1, webhook.attempts + 1):
            if attempt > 1:
                self.counts.retries += 1
                # Exponential backoff with full jitter: receivers that failed together
                # are not hit again together.
                ceiling = min(webhook.max_backoff, webhook.backoff * 2 ** (attempt - 2))
                await asyncio.sleep(random.uniform(ceiling / 2, ceiling * 1.5))  # noqa: S311
            try:
                async with self._session.post(
                    webhook.url, data=event.body, headers=headers, timeout=timeout
                ) as response:
                    await response.read()
                    if 200 <= response.status < 300:
                        self.counts.delivered += 1
                        self.counts.latency.observe(time.monotonic() - event.created)
                        return
                    why = f"HTTP {response.status}"
                    if response.status != 429 and response.status < 500:
                        break  # the receiver refuses it: trying again will not help
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                why = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        self.counts.failed += 1
        log.warning(
            "notification not delivered",
            webhook=webhook.name,
            notification=event.name,
            delivery=event.id,
            attempts=attempt,
            error=why,
        )


class Notifier:
    """Publishes turnout's events to webhooks (see the module docstring)."""

    def __init__(self, webhooks: Sequence[Webhook], *, clock: Any = time.time) -> None:
        self.webhooks = tuple(webhooks)
        self._clock = clock
        self._deliveries: list[_Delivery] = []
        self._session: aiohttp.ClientSession | None = None
        self._nacks: dict[str, tuple[float, int]] = {}  # node -> (last sent, left out since)
        self._rejected: tuple[str, ...] | None = None
        self.callbacks: XdsCallbacks = _NackHook(self)

    # -- lifecycle ---------------------------------------------------------------------

    @property
    def started(self) -> bool:
        return self._session is not None

    def start(self) -> None:
        """Start one delivery task per webhook on the running loop."""
        self._session = aiohttp.ClientSession(trust_env=False)
        for webhook in self.webhooks:
            delivery = _Delivery(webhook, self._session)
            delivery.tasks = [
                asyncio.create_task(delivery.run(), name=f"notify {webhook.name}")
                for _ in range(webhook.concurrency)
            ]
            self._deliveries.append(delivery)

    async def flush(self, within: float) -> bool:
        """Wait up to `within` seconds for every queued event to be delivered or given up."""
        waits = [asyncio.create_task(d.queue.join()) for d in self._deliveries]
        if not waits:
            return True
        _, pending = await asyncio.wait(waits, timeout=within)
        for task in pending:
            task.cancel()
        return not pending

    async def stop(self, grace: float = 2.0) -> None:
        """Deliver what is queued for up to `grace` seconds, then stop."""
        await self.flush(grace)
        for delivery in self._deliveries:
            for task in delivery.tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self._session is not None:
            await self._session.close()
            self._session = None

    # -- events ------------------------------------------------------------------------

    def publish(self, name: str, payload: Mapping[str, Any]) -> None:
        """Queue an event for every webhook that wants it; never blocks, never raises
        for a receiver's sake."""
        wanted = [d for d in self._deliveries if d.webhook.wants(name)]
        if not wanted:
            return
        event_id = str(uuid.uuid4())
        body = json.dumps(
            {"event": name, "id": event_id, "at": _timestamp(self._clock()), **payload},
            separators=(",", ":"),
            default=str,
        ).encode()
        event = _Event(name, body, event_id, time.monotonic())
        for delivery in wanted:
            delivery.put(event)

    def release(self, event: ReleaseEvent) -> None:
        """A release driver decision (`Driver(on_event=...)`)."""
        name = release_event_name(event.action)
        if name is None:
            return
        share = _number(event.share)
        where = f"step {event.step + 1}/{event.steps}" + (
            f" ({share:g}%)" if share is not None else ""
        )
        what = name.removeprefix("release.").replace("-", " ")
        text = f"turnout: {event.service} {event.stable} -> {event.to}: {what} at {where}: "
        if event.traffic:
            text += f"traffic {shares_text(event.traffic)}; "
        text += event.reason
        self.publish(
            name,
            {
                "service": event.service,
                "to": event.to,
                "stable": event.stable,
                "action": event.action,
                "phase": event.phase,
                "step": event.step,
                "steps": event.steps,
                "share": share,
                "traffic": None
                if event.traffic is None
                else {v: float(s) for v, s in event.traffic.items()},
                "reason": event.reason,
                "verdict": event.verdict.to_json() if event.verdict is not None else None,
                "text": text,
            },
        )

    def policy(self, errors: Iterable[Problem | str] | None) -> None:
        """The policy set was reloaded: a new rejection (not the same one again) is said
        once, with its errors; None: accepted (a later rejection is said again)."""
        found = tuple(str(error) for error in errors) if errors is not None else None
        if found == self._rejected:
            return
        self._rejected = found
        if found is None:
            return
        lines = list(found)
        self.publish(
            "policy.rejected",
            {
                "errors": lines,
                "text": f"turnout: policy set rejected ({len(lines)} error(s)); "
                "the last good set is still served:\n" + "\n".join(lines[:10]),
            },
        )

    def rollout(self, state: RolloutState, before: str) -> None:
        """A config rollout changed phase (``before`` -> ``state.phase``): held, aborted,
        or complete (baked and now everywhere) is said once each time."""
        good = state.last_good_version[:10]
        if state.phase == "held":
            name = "policy.rollout-held"
            text = (
                f"turnout: config rollout of {state.version[:10]} held at the canary "
                f"({state.reason}); the other proxies stay on {good}"
            )
        elif state.phase == "aborted":
            name = "policy.rollout-aborted"
            text = f"turnout: config rollout of {state.version[:10]} aborted; every proxy on {good}"
        elif not state.phase and before in ("waiting", "baking"):
            name = "policy.rollout-complete"
            text = f"turnout: config {good} rolled out to every proxy ({state.reason})"
        else:
            return
        self.publish(
            name,
            {
                "version": state.version or state.last_good_version,
                "last_good": state.last_good_version,
                "gateways": list(state.gateways),
                "reason": state.reason,
                "text": text,
            },
        )

    def nack(self, stream: StreamInfo, type_url: str, version: str, message: str) -> None:
        """A proxy rejected a response: one event per proxy a minute at most."""
        node = stream.node_id or f"stream {stream.stream_id}"
        now = time.monotonic()
        last, left_out = self._nacks.get(node, (-NACK_INTERVAL, 0))
        if now - last < NACK_INTERVAL:
            self._nacks[node] = (last, left_out + 1)
            return
        self._nacks[node] = (now, 0)
        kind = type_url.rsplit(".", 1)[-1]
        more = f" ({left_out} more NACK(s) from it since the last notification)" if left_out else ""
        self.publish(
            "proxy.nack",
            {
                "node": stream.node_id,
                "cluster": stream.node_cluster,
                "type": type_url,
                "version": version,
                "message": message,
                "left_out": left_out,
                "text": f"turnout: proxy {node} rejected {kind} {version[:10]}: {message}{more}",
            },
        )

    # -- /metrics ----------------------------------------------------------------------

    def collector(self) -> Collector:
        return _NotifyCollector(self)

    def counts(self) -> dict[str, _Counts]:
        return {d.webhook.name: d.counts for d in self._deliveries}

    def depths(self) -> dict[str, int]:
        return {d.webhook.name: d.queue.qsize() for d in self._deliveries}


class _NackHook(XdsCallbacks):
    def __init__(self, notifier: Notifier) -> None:
        self._notifier = notifier

    def on_nack(self, stream: StreamInfo, type_url: str, version: str, message: str) -> None:
        self._notifier.nack(stream, type_url, version, message)


class _NotifyCollector(Collector):
    def __init__(self, notifier: Notifier) -> None:
        self._notifier = notifier

    def collect(self) -> Iterable[Metric]:
        counts = self._notifier.counts()
        total = CounterMetricFamily(
            "turnout_notifications",
            "Webhook notifications by result: delivered, failed (every attempt failed), "
            "dropped (the webhook's queue was full).",
            labels=["webhook", "result"],
        )
        retries = CounterMetricFamily(
            "turnout_notification_retries", "Webhook posts retried.", labels=["webhook"]
        )
        latency = HistogramMetricFamily(
            "turnout_notification_delivery_seconds",
            "From an event to its webhook's 2xx answer (retries included).",
            labels=["webhook"],
        )
        for name, c in sorted(counts.items()):
            for result in ("delivered", "failed", "dropped"):
                total.add_metric([name, result], getattr(c, result))
            retries.add_metric([name], c.retries)
            latency.add_metric([name], c.latency.buckets(), c.latency.sum)
        depth = GaugeMetricFamily(
            "turnout_notification_queue_depth", "Events waiting per webhook.", labels=["webhook"]
        )
        for name, size in sorted(self._notifier.depths().items()):
            depth.add_metric([name], size)
        yield from (total, retries, latency, depth)
