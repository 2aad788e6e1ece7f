"""The dashboard's actions: the CLI's edit path behind a token, same-origin only, applied
only as previewed; and the admin address stays read-only everywhere else."""

from __future__ import annotations

import subprocess
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientSession

from turnout._proto.v1 import release_pb2 as pb
from turnout.server import ActionError, Actions, AdminServer, Dashboard

TOKEN = "a-test-token-0123456789"
GATEWAY = "kind: Gateway\nname: public\nport: 10000\n"
SERVICE = (
    "kind: Service\nname: web\nversions:\n"
    "  v1: {endpoints: ['127.0.0.1:9101']}\n  v2: {endpoints: ['127.0.0.1:9201']}\n"
    "stable: v1\ntraffic: {v1: 90, v2: 10}  # the canary\n"
)


def _policies(directory: Path) -> Path:
    (directory / "gw.yaml").write_text(GATEWAY)
    (directory / "web.yaml").write_text(SERVICE)
    return directory


def _git(directory: Path, *args: str) -> str:
    command = ["git", "-C", str(directory), "-c", "user.name=t", "-c", "user.email=t@e.com"]
    return subprocess.run([*command, *args], check=True, capture_output=True, text=True).stdout


async def test_an_action_is_applied_only_as_previewed_and_committed(tmp_path: Path) -> None:
    """A preview writes nothing and returns the diff; applying needs the preview's digest
    (refused when the files would now change differently); the write is the CLI's, and
    with commits on it is committed with the edit's message."""
    _policies(tmp_path)
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "add", ".")
    _git(tmp_path, "commit", "-qm", "first")
    writes: list[int] = []
    actions = Actions(tmp_path, commit=True, on_write=lambda: writes.append(1))
    body: dict[str, Any] = {"service": "web", "shares": {"v1": "87.5", "v2": "12.5"}}
    preview = await actions.run("set-traffic", {**body, "dry_run": True})
    assert not preview.applied
    assert "+traffic: {v1: 87.5, v2: 12.5}  # the canary" in preview.diff
    assert (tmp_path / "web.yaml").read_text() == SERVICE
    with pytest.raises(ActionError) as refused:
        await actions.run("set-traffic", {**body, "preview": "0" * 16})
    assert refused.value.status == 409
    done = await actions.run("set-traffic", {**body, "preview": preview.digest})
    assert done.applied
    assert writes == [1]
    assert "traffic: {v1: 87.5, v2: 12.5}  # the canary" in (tmp_path / "web.yaml").read_text()
    assert done.commit
    assert "turnout: web traffic" in _git(tmp_path, "log", "-1", "--format=%s")
    with pytest.raises(ActionError) as invalid:
        await actions.run("promote", {"service": "web", "version": "v9", "dry_run": True})
    assert invalid.value.status == 409
    assert "v9" in str(invalid.value)


async def _no_events() -> AsyncGenerator[pb.StatusEvent, None]:
    yield pb.StatusEvent(kind=pb.StatusEvent.SNAPSHOT, sequence=1)


async def _serve(dashboard: Dashboard) -> AdminServer:
    admin = AdminServer(lambda: {"version": "v"}, dashboard=dashboard)
    await admin.start("127.0.0.1", 0)
    return admin


async def test_actions_need_the_token_from_the_same_origin(tmp_path: Path) -> None:
    """Without the bearer token 401; from another origin or site 403 even with it; with
    it from the page's own origin the action runs; every other write is 405."""
    _policies(tmp_path)
    actions = Actions(tmp_path, commit=False, on_write=lambda: None)
    admin = await _serve(Dashboard(_no_events, actions=actions, token=TOKEN))
    base = f"http://127.0.0.1:{admin.port}"
    url = f"{base}/api/v1/actions/rollback"
    body = {"service": "web", "dry_run": True}
    auth = {"Authorization": f"Bearer {TOKEN}"}
    try:
        async with ClientSession() as http:
            async with http.post(url, json=body) as r:
                assert r.status == 401
            async with http.post(url, json=body, headers={"Authorization": "Bearer nope"}) as r:
                assert r.status == 401
            evil = {**auth, "Origin": "http://evil.example"}
            async with http.post(url, json=body, headers=evil) as r:
                assert r.status == 403
            cross = {**auth, "Sec-Fetch-Site": "cross-site"}
            async with http.post(url, json=body, headers=cross) as r:
                assert r.status == 403
            same = {**auth, "Origin": base, "Sec-Fetch-Site": "same-origin"}
            async with http.post(url, json=body, headers=same) as r:
                assert r.status == 200
                assert "+traffic: {v1: 100}" in (await r.json())["diff"]
            async with http.post(url, data="service=web", headers=auth) as r:
                assert r.status == 415
            async with http.options(url) as r:
                assert r.status == 405
            async with http.post(f"{base}/status") as r:
                assert r.status == 405
            async with http.get(f"{base}/") as r:
                assert 'content="on"' in await r.text()
                assert "frame-ancestors 'none'" in r.headers["Content-Security-Policy"]
    finally:
        await admin.stop()
    assert (tmp_path / "web.yaml").read_text() == SERVICE


async def test_without_a_token_file_actions_are_refused(tmp_path: Path) -> None:
    """A read-only dashboard says so in the page and answers every action 403."""
    admin = await _serve(Dashboard(_no_events))
    base = f"http://127.0.0.1:{admin.port}"
    try:
        async with ClientSession() as http:
            headers = {"Authorization": f"Bearer {TOKEN}"}
            async with http.post(
                f"{base}/api/v1/actions/rollback", json={"service": "web"}, headers=headers
            ) as r:
                assert r.status == 403
                assert "read-only" in (await r.json())["error"]
            async with http.get(f"{base}/") as r:
                assert 'content="off"' in await r.text()
            async with http.get(f"{base}/ui/uPlot.iife.min.js") as r:
                assert r.status == 200
            async with http.get(f"{base}/ui/../_dashboard.py") as r:
                assert r.status == 404
    finally:
        await admin.stop()


def test_a_short_or_missing_token_file_is_refused(tmp_path: Path) -> None:
    """The token file must exist and hold at least 16 characters."""
    from turnout.server import read_token_file

    (tmp_path / "short").write_text("abc\n")
    with pytest.raises(ValueError, match="at least 16"):
        read_token_file(tmp_path / "short")
    with pytest.raises(ValueError, match="admin-token-file"):
        read_token_file(tmp_path / "missing")
    (tmp_path / "good").write_text(f"  {TOKEN}\n")
    assert read_token_file(tmp_path / "good") == TOKEN


async def test_approve_records_who_approved_the_next_gate(tmp_path: Path) -> None:
    """approve is turnout approve: it needs a name (the token names no one) and records
    the approval of the release's next gate in incremental.state."""
    (tmp_path / "gw.yaml").write_text(GATEWAY)
    (tmp_path / "web.yaml").write_text(
        SERVICE.replace("traffic: {v1: 90, v2: 10}  # the canary\n", "traffic: {v1: 95, v2: 5}\n")
        + "incremental:\n  to: v2\n  steps: [5, approve, 50, 100]\n  interval: 60s\n"
        "  state: {phase: running, step: 0, since: '2026-01-02T03:04:05Z'}\n"
    )
    actions = Actions(tmp_path, commit=False, on_write=lambda: None)
    with pytest.raises(ActionError) as nameless:
        await actions.run("approve", {"service": "web", "dry_run": True})
    assert nameless.value.status == 400
    preview = await actions.run("approve", {"service": "web", "by": "ana", "dry_run": True})
    assert "ana" in preview.diff
    done = await actions.run("approve", {"service": "web", "by": "ana", "preview": preview.digest})
    assert done.applied
    assert "ana" in (tmp_path / "web.yaml").read_text()
