"""The release dashboard on the admin address: the page, its assets, the live event
stream, and (with `--admin-token-file`) the release actions.

- `GET /` is the page; `GET /ui/NAME` its assets (plain JS and CSS and the vendored
  uPlot, package data of turnout.server: no CDN, no build step).
- The page follows `GET /api/v1/events`: WatchStatus's events, each the StatusEvent
  in proto3's JSON mapping (the status document, `turnout.api.to_json`), as
  server-sent events (`text/event-stream`, one `data:` line per event, `id:` its
  sequence). The first event is the SNAPSHOT, whose `status` is GetStatus's answer:
  the page paints from it (one request, the status built and converted once), then
  applies each event. The browser never polls.
- `POST /api/v1/actions/ACTION` (rollback, pause, resume, promote, set-traffic,
  approve) is the one exception to the admin address being read-only, and only when
  turnout was started with a token file. It is refused with 403 when actions are off, when the
  request comes from another site (`Sec-Fetch-Site` other than same-origin/none, or
  an `Origin` that is not this address), and with 401 without the bearer token in the
  `Authorization` header. The token is never a cookie: a browser never sends it by
  itself, so another site's page cannot act with it, and a cross-origin request
  carrying it needs a CORS preflight this address never grants (OPTIONS is 405).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
from collections.abc import AsyncGenerator, Callable
from importlib import resources
from pathlib import Path
from typing import Any

import structlog
from aiohttp import web

from turnout._proto.v1 import release_pb2 as pb
from turnout.api import fast_to_json
from turnout.server._actions import ACTIONS, ActionError, Actions

__all__ = ["ACTIONS_PREFIX", "Dashboard", "read_token_file"]

log = structlog.get_logger("turnout.dashboard")

ACTIONS_PREFIX = "/api/v1/actions/"
SSE_BATCH = 1000
"""Events converted ahead of the page and sent in one write."""
_PROXY_KINDS = frozenset(
    pb.StatusEvent.Kind.Value(name)
    for name in (
        "PROXY_CONNECTED",
        "PROXY_ACKED",
        "PROXY_NACKED",
        "PROXY_SYNCED",
        "PROXY_DISCONNECTED",
    )
)
KEEPALIVE = 15.0
"""Seconds between comment lines on an idle event stream (a closed tab is noticed)."""

_ASSETS = {
    "app.js": "text/javascript",
    "app.css": "text/css",
    "uPlot.iife.min.js": "text/javascript",
    "uPlot.min.css": "text/css",
    "uPlot.LICENSE": "text/plain",
}
_SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
        "frame-ancestors 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}

EventSource = Callable[[], AsyncGenerator[pb.StatusEvent, None]]


def read_token_file(path: Path) -> str:
    """The bearer token in ``path`` (surrounding whitespace ignored); ValueError when
    it cannot be read or is too short to guess-proof (16 characters)."""
    try:
        token = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"--admin-token-file {path}: {exc}") from None
    if len(token) < 16:
        raise ValueError(
            f"--admin-token-file {path}: the token must be at least 16 characters "
            f"(e.g. `openssl rand -hex 32 > {path}`)"
        )
    return token


def _assets() -> Any:
    return resources.files("turnout.server") / "dashboard"


class Dashboard:
    """The dashboard's routes; ``actions`` None: read-only (no token file)."""

    def __init__(
        self, events: EventSource, *, actions: Actions | None = None, token: str | None = None
    ) -> None:
        if (actions is None) != (token is None):
            raise ValueError("actions need a token, and a token needs actions")
        self._events = events
        self._actions = actions
        self._token = token
        self._page: bytes | None = None

    @property
    def actions_enabled(self) -> bool:
        return self._actions is not None

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/", self._index)
        app.router.add_get("/favicon.ico", self._no_icon)
        app.router.add_get("/ui/{name}", self._asset)
        app.router.add_get("/api/v1/events", self._stream)
        app.router.add_post(ACTIONS_PREFIX + "{action}", self._action)

    # -- the page ---------------------------------------------------------------------

    async def _index(self, _request: web.Request) -> web.Response:
        if self._page is None:
            html = (_assets() / "index.html").read_text(encoding="utf-8")
            mode = "on" if self.actions_enabled else "off"
            extra = ",".join(ACTIONS)
            html = html.replace("{{actions}}", mode).replace("{{action_names}}", extra)
            self._page = html.encode("utf-8")
        return web.Response(
            body=self._page,
            content_type="text/html",
            charset="utf-8",
            headers={**_SECURITY_HEADERS, "Cache-Control": "no-cache"},
        )

    async def _no_icon(self, _request: web.Request) -> web.Response:
        return web.Response(status=204)

    async def _asset(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        kind = _ASSETS.get(name)
        if kind is None:
            raise web.HTTPNotFound(text=f"no asset {name}\n")
        body = (_assets() / name).read_bytes()
        return web.Response(
            body=body,
            headers={
                "Content-Type": f"{kind}; charset=utf-8",
                "Cache-Control": "no-cache",
                "X-Content-Type-Options": "nosniff",
            },
        )

    # -- the event stream -------------------------------------------------------------

    async def _stream(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-cache",
                "X-Accel-Buffering": "no",
            }
        )
        await response.prepare(request)
        # One event in hand per SSE_BATCH: when the page reads slower than events come,
        # WatchStatus's own queue fills and the page is sent a fresh SNAPSHOT instead.
        queue: asyncio.Queue[pb.StatusEvent | None] = asyncio.Queue(maxsize=SSE_BATCH)

        async def pump() -> None:
            try:
                async with contextlib.aclosing(self._events()) as events:
                    async for event in events:
                        await queue.put(event)
            finally:
                await queue.put(None)

        task = asyncio.create_task(pump(), name="dashboard-events")
        try:
            await response.write(b"retry: 1000\n\n")
            ended = False
            while not ended:
                try:
                    event = await asyncio.wait_for(queue.get(), KEEPALIVE)
                except TimeoutError:
                    await response.write(b": keepalive\n\n")
                    continue
                # what is already waiting goes out in few writes: proxies' events in
                # bunches, and the page's news (a version, a rejection, a release)
                # at once, not behind a thousand ACKs converted after it
                batch: list[bytes] = []
                while event is not None:
                    data = json.dumps(fast_to_json(event), separators=(",", ":"))
                    batch.append(f"id: {event.sequence}\ndata: {data}\n\n".encode())
                    if event.kind not in _PROXY_KINDS or len(batch) >= SSE_BATCH // 4:
                        await response.write(b"".join(batch))
                        batch.clear()
                    if queue.empty():
                        break
                    event = queue.get_nowait()
                ended = event is None
                if batch:
                    await response.write(b"".join(batch))
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        return response

    # -- actions ----------------------------------------------------------------------

    def _refusal(self, request: web.Request) -> web.Response | None:
        """Why this request may not act, or None when it may."""
        if self._actions is None or self._token is None:
            return _error(
                403,
                "actions are off: this turnout was started without --admin-token-file; "
                "the dashboard is read-only",
            )
        site = request.headers.get("Sec-Fetch-Site")
        if site is not None and site not in ("same-origin", "none"):
            return _error(403, f"cross-site request refused (Sec-Fetch-Site: {site})")
        origin = request.headers.get("Origin")
        if origin is not None and origin != f"{request.scheme}://{request.host}":
            return _error(403, f"cross-origin request refused (Origin: {origin})")
        header = request.headers.get("Authorization", "")
        scheme, _, given = header.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            given.strip().encode(), self._token.encode()
        ):
            return _error(
                401,
                "a bearer token is required (Authorization: Bearer TOKEN, the contents "
                "of --admin-token-file)",
                headers={"WWW-Authenticate": 'Bearer realm="turnout"'},
            )
        if request.content_type != "application/json":
            return _error(415, "send the action as application/json")
        return None

    async def _action(self, request: web.Request) -> web.Response:
        refusal = self._refusal(request)
        if refusal is not None:
            return refusal
        assert self._actions is not None
        try:
            body = await request.json()
        except ValueError:
            return _error(400, "the body is not JSON")
        if not isinstance(body, dict):
            return _error(400, "the body must be a JSON object")
        try:
            result = await self._actions.run(request.match_info["action"], body)
        except ActionError as exc:
            return _error(exc.status, str(exc))
        return web.json_response(result.to_json())


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"error": message}, status=status, headers=headers)
