"""The admin HTTP endpoint: read-only views of what turnout serves.

`/status` is the one status: GetStatus's answer in proto3's JSON mapping
(`turnout.api.to_json`), what `turnout status --admin-address` reads where gRPC is not
reachable; `/api/v1/status` serves the same document.

Nothing served here changes state: `/healthz` (liveness), `/readyz` (a policy version
is being served), `/status`, and when wired: `/metrics` (Prometheus text format),
`/api/v1/status` (the same document as `/status`) and the release
dashboard (`/`, see `_dashboard`). The one exception to read-only is the dashboard's
`POST /api/v1/actions/ACTION`, token-guarded, and refused whole without a token file.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from turnout.server._dashboard import ACTIONS_PREFIX, Dashboard

StatusSource = Callable[[], dict[str, Any]]
MetricsSource = Callable[[], bytes]
"""Returns the Prometheus text exposition."""

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class AdminServer:
    """Serves /healthz, /readyz, /status (also at /api/v1/status) and /metrics on one
    address. ``status`` returns the status document; ``ready`` (cheaper than building
    it, for probes) whether a policy version is served."""

    def __init__(
        self,
        status: StatusSource,
        *,
        metrics: MetricsSource | None = None,
        ready: Callable[[], bool] | None = None,
        dashboard: Dashboard | None = None,
    ) -> None:
        self._status = status
        self._metrics = metrics
        self._ready = ready
        self._dashboard = dashboard
        self._runner: web.AppRunner | None = None
        self.port = 0

    async def start(self, host: str, port: int) -> int:
        app = web.Application(middlewares=[_read_only(self._dashboard is not None)])
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        app.router.add_get("/status", self._status_json)
        app.router.add_get("/api/v1/status", self._status_json)  # the same document
        if self._metrics is not None:
            app.router.add_get("/metrics", self._metrics_text)
        if self._dashboard is not None:
            self._dashboard.add_routes(app)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port, reuse_address=True)
        await site.start()
        server = site._server  # aiohttp exposes the bound port only here
        sockets = getattr(server, "sockets", None) or []
        self.port = sockets[0].getsockname()[1] if sockets else port
        return self.port

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _healthz(self, _request: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def _readyz(self, _request: web.Request) -> web.Response:
        ready = self._ready() if self._ready is not None else self._status()["served_version"]
        if not ready:
            return web.Response(status=503, text="no valid policy set served yet\n")
        return web.Response(text="ok\n")

    async def _status_json(self, _request: web.Request) -> web.Response:
        return web.json_response(self._status(), dumps=_dumps)

    async def _metrics_text(self, _request: web.Request) -> web.Response:
        assert self._metrics is not None
        return web.Response(body=self._metrics(), headers={"Content-Type": METRICS_CONTENT_TYPE})


def _read_only(actions: bool) -> Any:
    """Any method but GET/HEAD, on any path (known or not), is 405 before routing: the
    admin address changes nothing, so a request that would is refused the same way.
    The exception, with the dashboard (``actions``): POST under /api/v1/actions/, whose
    handler refuses it (403/401) unless turnout has a token file and the request
    carries the token from this same origin."""

    @web.middleware
    async def read_only(request: web.Request, handler: Handler) -> web.StreamResponse:
        method = request.method
        if method in ("GET", "HEAD") or (
            actions and method == "POST" and request.path.startswith(ACTIONS_PREFIX)
        ):
            return await handler(request)
        return web.Response(
            status=405, text="the admin address is read-only\n", headers={"Allow": "GET, HEAD"}
        )

    return read_only


def _dumps(obj: Any) -> str:
    import json

    return json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n"
