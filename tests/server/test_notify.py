"""Webhook notifications against a real aiohttp receiver on 127.0.0.1: signed bodies,
retries with the same delivery id, bounded queues, rate-limited NACKs, the --notify
file's errors, and what /metrics counts."""

from __future__ import annotations

import json
import time
from decimal import Decimal
from pathlib import Path

import pytest

from turnout.analysis import Figures, Thresholds, judge
from turnout.release import ReleaseEvent
from turnout.server import Notifier, NotifyConfigError, Webhook, load_webhooks, sign
from turnout.testing import eventually
from turnout.testing.webhook import WebhookReceiver
from turnout.xds import StreamInfo

SECRET = b"s3cret"


def _event(action: str, reason: str = "why", step: int = 1) -> ReleaseEvent:
    verdict = judge(
        Figures(0, 60, requests=500, errors=1, proxies=1, service="shop", version="v2"),
        Figures(0, 60, requests=2000, errors=2, proxies=1, service="shop", version="v1"),
        Thresholds(min_requests=100, max_error_rate=0.01),
    )
    return ReleaseEvent(
        service="shop",
        action=action,
        phase="running",
        step=step,
        steps=4,
        share=Decimal(25),
        to="v2",
        stable="v1",
        traffic={"v1": Decimal(75), "v2": Decimal(25)},
        reason=reason,
        verdict=verdict,
        at=time.time(),
    )


def _webhook(url: str, **changes: object) -> Webhook:
    settings: dict[str, object] = {"secret": SECRET, "backoff": 0.02, "max_backoff": 0.1}
    settings.update(changes)
    return Webhook(url, "test", **settings)  # type: ignore[arg-type]


async def test_failing_twice_then_answering_gets_each_event_once_signed() -> None:
    """A receiver failing every delivery twice then answering gets each event exactly
    once, in order (one post in flight), signed with HMAC-SHA256 of the body, with the
    same delivery id on every attempt; /metrics counts the retries."""
    with WebhookReceiver(fail_first=2) as receiver:
        notifier = Notifier([_webhook(receiver.url, concurrency=1)])
        notifier.start()
        try:
            for action in ("start", "advance", "rollback"):
                notifier.release(_event(action))
            assert await notifier.flush(10)
        finally:
            await notifier.stop()
    events = receiver.events()
    assert [e.event for e in events] == [
        "release.started",
        "release.stepped",
        "release.rolled-back",
    ]
    assert all(e.signed_by(SECRET) for e in events)
    assert all(receiver.attempts[e.delivery] == 3 for e in events)
    assert len({e.delivery for e in events}) == 3
    body = events[2].body
    assert (body["service"], body["to"], body["stable"], body["share"]) == (
        "shop",
        "v2",
        "v1",
        25.0,
    )
    assert body["traffic"] == {"v1": 75.0, "v2": 25.0}
    assert body["verdict"]["outcome"] == "pass"
    assert body["verdict"]["canary"]["requests"] == 500
    assert body["text"].startswith(
        "turnout: shop v1 -> v2: rolled back at step 2/4 (25%): traffic v1 75%, v2 25%; why"
    )
    counts = notifier.counts()["test"]
    assert (counts.delivered, counts.failed, counts.retries) == (3, 0, 6)


def test_signature_is_hmac_sha256_of_the_body() -> None:
    """The signature is `sha256=` and the hex HMAC-SHA256 of the exact body."""
    # RFC 4231 test case 2: HMAC-SHA256("Jefe", "what do ya want for nothing?")
    assert sign(b"Jefe", b"what do ya want for nothing?") == (
        "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    )


async def test_a_dead_receiver_never_blocks_and_is_counted_failed() -> None:
    """With nothing listening, publishing returns at once, every attempt fails, and the
    event is counted failed (not lost silently)."""
    notifier = Notifier([_webhook("http://127.0.0.1:9/hook", attempts=3)])
    notifier.start()
    try:
        notifier.release(_event("fail"))  # a plain call: it cannot wait for the network
        await eventually(lambda: notifier.counts()["test"].failed == 1, 10, what="given up")
        assert notifier.counts()["test"].retries == 2
    finally:
        await notifier.stop()


async def test_a_slow_receiver_fills_a_bounded_queue_and_drops_the_oldest() -> None:
    """A receiver slower than the events: the queue stays bounded, the oldest events are
    dropped and counted, publishing never waits."""
    with WebhookReceiver(delay=0.5) as receiver:
        notifier = Notifier([_webhook(receiver.url, queue=3, concurrency=1)])
        notifier.start()
        try:
            for step in range(10):
                notifier.release(_event("advance", f"step {step}", step=step))
            assert notifier.depths()["test"] <= 3
            assert await notifier.flush(10)
        finally:
            await notifier.stop()
    counts = notifier.counts()["test"]
    assert counts.dropped >= 6
    assert counts.delivered + counts.dropped == 10
    assert receiver.events()[-1].body["reason"] == "step 9"  # the newest is kept


async def test_events_filter_and_policy_rejections_said_once() -> None:
    """A webhook gets only the categories it asks for; a rejected set is said once with
    its errors (the same rejection again is not news, a new one is)."""
    with WebhookReceiver() as receiver:
        notifier = Notifier([_webhook(receiver.url, events=("policy",), concurrency=1)])
        notifier.start()
        try:
            notifier.release(_event("start"))
            notifier.policy(["p/a.yaml:3: traffic: shares sum to 90, not 100"])
            notifier.policy(["p/a.yaml:3: traffic: shares sum to 90, not 100"])
            notifier.policy(None)
            notifier.policy(["p/a.yaml:3: traffic: shares sum to 90, not 100"])
            assert await notifier.flush(10)
        finally:
            await notifier.stop()
    events = receiver.events()
    assert [e.event for e in events] == ["policy.rejected", "policy.rejected"]
    assert events[0].body["errors"] == ["p/a.yaml:3: traffic: shares sum to 90, not 100"]
    assert "policy set rejected (1 error(s))" in events[0].body["text"]


async def test_nacks_are_rate_limited_per_proxy() -> None:
    """A proxy NACKing in a loop is told once a minute, the next saying how many were
    left out; another proxy is told on its own."""
    with WebhookReceiver() as receiver:
        notifier = Notifier([_webhook(receiver.url, concurrency=1)])
        notifier.start()
        try:
            edge1, edge2 = (
                StreamInfo(1, "ads", "edge-1", "edge"),
                StreamInfo(2, "ads", "edge-2", "edge"),
            )
            rds = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"
            for _ in range(20):
                notifier.callbacks.on_nack(edge1, rds, "abc123", "bad regex")
            notifier.callbacks.on_nack(edge2, rds, "abc123", "bad regex")
            assert await notifier.flush(10)
        finally:
            await notifier.stop()
    events = receiver.events()
    assert [(e.event, e.body["node"]) for e in events] == [
        ("proxy.nack", "edge-1"),
        ("proxy.nack", "edge-2"),
    ]
    assert (
        events[0].body["text"]
        == "turnout: proxy edge-1 rejected RouteConfiguration abc123: bad regex"
    )


async def test_metrics_expose_delivery_counts() -> None:
    """/metrics' collector shows delivered, failed, dropped, retries and queue depth."""
    with WebhookReceiver(fail_first=1) as receiver:
        notifier = Notifier([_webhook(receiver.url)])
        notifier.start()
        try:
            notifier.release(_event("promote"))
            assert await notifier.flush(10)
        finally:
            await notifier.stop()
    families = {f.name: f for f in notifier.collector().collect()}
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in families.values()
        for s in family.samples
    }
    assert (
        samples[("turnout_notifications_total", (("result", "delivered"), ("webhook", "test")))]
        == 1
    )
    assert samples[("turnout_notification_retries_total", (("webhook", "test"),))] == 1
    assert samples[("turnout_notification_delivery_seconds_count", (("webhook", "test"),))] == 1


def test_notify_file_errors_name_the_field(tmp_path: Path) -> None:
    """A --notify file's mistakes are refused with the file and field; the secret must
    come from the environment."""
    path = tmp_path / "notify.yaml"
    cases = {
        "webhooks: []\n": "webhooks: expected a list of at least one webhook",
        "webhooks: [{url: 'ftp://x'}]\n": "webhooks[0].url: expected an http:// or https:// URL",
        "webhooks: [{url: 'http://x', secretEnv: NOPE}]\n": "webhooks[0].secretEnv: the "
        "environment variable 'NOPE' is not set",
        "webhooks: [{url: 'http://x', events: [releases]}]\n": "webhooks[0].events: unknown "
        "event 'releases'",
        "webhooks: [{url: 'http://x', uri: 'y'}]\n": "webhooks[0].uri: unknown field",
    }
    for text, message in cases.items():
        path.write_text(text)
        with pytest.raises(NotifyConfigError, match="^" + str(path).replace(".", r"\.")) as info:
            load_webhooks(path, environ={})
        assert message in str(info.value)
    path.write_text(
        json.dumps(
            {
                "webhooks": [
                    {"url": "https://hooks.example.com/t", "secretEnv": "S", "events": ["release"]}
                ]
            }
        )
    )
    [webhook] = load_webhooks(path, environ={"S": "abc"})
    assert (webhook.name, webhook.secret, webhook.events) == (
        "hooks.example.com",
        b"abc",
        ("release",),
    )
    assert webhook.wants("release.rolled-back")
    assert not webhook.wants("proxy.nack")
    path.write_text("webhooks: [{url: 'http://h/a'}, {url: 'http://h/b'}]\n")
    assert [w.name for w in load_webhooks(path, environ={})] == ["h", "h-2"]  # one label each
    path.write_text("webhooks: [{url: 'http://h/a', name: x}, {url: 'http://h/b', name: x}]\n")
    with pytest.raises(NotifyConfigError, match=r"webhooks\[1\]\.name: 'x' is used twice"):
        load_webhooks(path, environ={})


async def test_publish_without_webhooks_is_free() -> None:
    """With no webhooks nothing is serialized or queued."""
    notifier = Notifier([])
    notifier.start()
    notifier.release(_event("start"))
    await notifier.stop()
    assert notifier.counts() == {}


async def test_a_slow_receiver_answers_several_events_at_once() -> None:
    """With the default concurrency (4) a slow receiver is sent 4 events at a time, never
    more; with concurrency 1, one at a time."""
    for concurrency, most in ((4, 4), (1, 1)):
        with WebhookReceiver(delay=0.5) as receiver:
            notifier = Notifier([_webhook(receiver.url, concurrency=concurrency)])
            notifier.start()
            try:
                for step in range(8):
                    notifier.release(_event("advance", f"step {step}", step=step))
                assert await notifier.flush(15)
            finally:
                await notifier.stop()
        assert len(receiver.events()) == 8
        assert receiver.max_in_flight == most


def test_the_example_notify_file_loads() -> None:
    """examples/notify.yaml is a valid --notify file (with its secrets set)."""
    path = Path(__file__).resolve().parents[2] / "examples" / "notify.yaml"
    environ = {"TURNOUT_SLACK_SECRET": "a", "TURNOUT_OPS_SECRET": "b"}
    slack, ops = load_webhooks(path, environ=environ)
    assert (slack.name, slack.events) == ("slack", ("release", "policy"))
    assert (ops.name, ops.concurrency, ops.secret) == ("ops.example.com", 1, b"b")
