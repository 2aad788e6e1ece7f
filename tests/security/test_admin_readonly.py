"""The admin address serves status and metrics only: no method but GET/HEAD, on any
path, is accepted, and sending them changes nothing."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import httpx

from turnout.server import App
from turnout.testing import eventually

GATEWAY = "kind: Gateway\nname: public\nport: 10000\n"
SERVICE = (
    "kind: Service\nname: web\nversions:\n  v1: {endpoints: ['127.0.0.1:9101']}\n"
    "  v2: {endpoints: ['127.0.0.1:9201']}\nstable: v1\ntraffic: {v1: 90, v2: 10}\n"
)
PATHS = ("/healthz", "/readyz", "/status", "/metrics", "/api/v1/status", "/reload", "/", "/x/y")
METHODS = ("POST", "PUT", "DELETE", "PATCH", "OPTIONS")


@contextlib.asynccontextmanager
async def running_app(tmp_path: Path) -> AsyncIterator[App]:
    """`turnout serve` in this process on free ports; stopped (and awaited) on exit."""
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "gw.yaml").write_text(GATEWAY)
    (policies / "web.yaml").write_text(SERVICE)
    app = App(policies, "127.0.0.1:0", "127.0.0.1:0", grace_seconds=0.2)
    run = asyncio.create_task(app.run())
    try:
        await eventually(lambda: app.admin_port != 0 or run.done(), timeout=10)
        assert not run.done(), run
        yield app
    finally:
        app.stop()
        await asyncio.wait_for(run, 10)


async def test_state_changing_methods_are_405_everywhere(tmp_path: Path) -> None:
    """POST, PUT, DELETE, PATCH and OPTIONS to every admin path, known or not, answer
    405 with `Allow: GET, HEAD`; the status (the same at /status and /api/v1/status) and
    the policy files are the same afterwards, and the served paths still answer GET and
    HEAD."""
    async with running_app(tmp_path) as app:
        base = f"http://127.0.0.1:{app.admin_port}"
        async with httpx.AsyncClient(base_url=base, timeout=5) as http:
            before = (await http.get("/status")).json()
            assert before["served_version"]
            for path in PATHS:
                for method in METHODS:
                    response = await http.request(method, path, content=b'{"traffic": {"v2": 100}}')
                    assert response.status_code == 405, (method, path, response.status_code)
                    assert response.headers["Allow"] == "GET, HEAD"
            for path in ("/status", "/api/v1/status"):  # one status, at both paths
                after = (await http.get(path)).json()
                assert after.pop("generated_at") >= before["generated_at"]
                assert after == {k: v for k, v in before.items() if k != "generated_at"}
            for path in PATHS[:5]:  # the served ones still answer GET and HEAD
                assert (await http.get(path)).status_code == 200, path
                assert (await http.head(path)).status_code == 200, path
        assert app.cache.policy_version == before["served_version"]
        assert (tmp_path / "policies" / "web.yaml").read_text() == SERVICE
