"""A webhook receiver for tests and benchmarks: a real aiohttp server on 127.0.0.1.

It records every POST (headers and JSON body), can refuse the first `fail_first`
attempts of each delivery (by `X-Turnout-Delivery`) with 500, and can answer slowly
(`delay` seconds). It runs on its own event loop in a thread, so a synchronous test
(or one driving a `turnout serve` process) can use it; `start()` returns its URL.

    with WebhookReceiver(fail_first=2) as receiver:
        url = receiver.url
        ...
        receiver.wait_for(lambda events: len(events) >= 3)
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from aiohttp import web

from turnout.testing._wait import wait_until

__all__ = ["Received", "WebhookReceiver"]


@dataclass(frozen=True, slots=True)
class Received:
    """One POST that was answered 2xx: its event, delivery id, body and signature."""

    event: str
    delivery: str
    body: dict[str, Any]
    raw: bytes
    signature: str
    at: float  # time.time() when it was answered

    def signed_by(self, secret: bytes) -> bool:
        expected = "sha256=" + hmac.new(secret, self.raw, hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected, self.signature)


class WebhookReceiver:
    """A real HTTP receiver (see the module docstring)."""

    def __init__(self, *, fail_first: int = 0, delay: float = 0.0) -> None:
        self.fail_first = fail_first
        self.delay = delay
        self.accepted: list[Received] = []
        self.attempts: Counter[str] = Counter()  # delivery id -> POSTs received
        self.in_flight = 0
        self.max_in_flight = 0  # the most POSTs being answered at once
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def _handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        delivery = request.headers.get("X-Turnout-Delivery", "")
        with self._lock:
            self.attempts[delivery] += 1
            attempt = self.attempts[delivery]
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.delay:
                await asyncio.sleep(self.delay)
        finally:
            with self._lock:
                self.in_flight -= 1
        if attempt <= self.fail_first:
            return web.Response(status=500, text="not yet")
        received = Received(
            request.headers.get("X-Turnout-Event", ""),
            delivery,
            json.loads(raw),
            raw,
            request.headers.get("X-Turnout-Signature", ""),
            time.time(),
        )
        with self._lock:
            self.accepted.append(received)
        return web.Response(status=204)

    async def _start(self) -> int:
        app = web.Application()
        app.router.add_post("/hook", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        return int(self._runner.addresses[0][1])

    def start(self) -> WebhookReceiver:
        self._thread.start()
        self.port = asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
            self._runner = None
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
        if not self._loop.is_running() and not self._loop.is_closed():
            self._loop.close()

    def __enter__(self) -> WebhookReceiver:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def events(self) -> list[Received]:
        with self._lock:
            return list(self.accepted)

    def wait_for(
        self, condition: Callable[[list[Received]], bool], timeout: float = 10.0
    ) -> list[Received]:
        """Wait until `condition(accepted events)` holds; TimeoutError otherwise."""

        def met() -> list[Received] | None:
            events = self.events()
            return events if condition(events) else None

        return wait_until(met, timeout, what="webhook events")
