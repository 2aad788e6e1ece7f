"""`turnout status` and `turnout wait` end to end: a real `turnout serve` process,
simulated proxies (AdsClient) and the commands run as a user runs them."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from turnout.compile import compile_policies
from turnout.policy import load_policies
from turnout.testing import AdsClient, eventually
from turnout.testing.control import TurnoutProcess
from turnout.testing.net import free_port

GATEWAY = "kind: Gateway\nname: public\nport: 10000\naddress: 127.0.0.1\n"
SERVICE = """\
kind: Service
name: web
versions:
  v1: {endpoints: ['127.0.0.1:9101']}
  v2: {endpoints: ['127.0.0.1:9201']}
  v3: {endpoints: ['127.0.0.1:9301']}
stable: v1
traffic: {v1: %s, v2: %s}
mirror: {to: v3, percent: 12.5}
rules:
  - name: dogfood
    match: {headers: {x-employee: "true"}}
    traffic: {v2: 100}
incremental:
  to: v2
  steps: [5, 25, 100]
  interval: 1m
  analysis: {maxErrorRate: 0.01}
  state: {phase: running, step: 0, since: "2026-11-28T08:00:00Z"}
"""


@dataclass
class Fleet:
    policies: Path
    turnout: TurnoutProcess

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.turnout.xds_port}"

    def write(self, v1: str, v2: str) -> str:
        """Edit the service's shares; return the policy version the edit compiles to."""
        (self.policies / "web.yaml").write_text(SERVICE % (v1, v2))
        return compile_policies(load_policies(self.policies)).policy_version

    async def proxy(self, node_id: str) -> AdsClient:
        return await AdsClient.connect(self.address, node_id=node_id, node_cluster="edge")

    async def served(self, version: str, timeout: float = 10.0) -> None:  # noqa: ASYNC109
        await eventually(
            lambda: self.turnout.status()["served_version"] == version,
            timeout,
            what=f"{version} served",
        )

    def nacked(self, node_id: str) -> bool:
        """Whether turnout's status shows a NACK from ``node_id``."""
        return any(
            "last_nack" in t
            for p in self.turnout.status()["proxies"]
            if p["node_id"] == node_id
            for t in p["types"]
        )


@pytest.fixture
async def fleet(tmp_path: Path) -> AsyncIterator[Fleet]:
    """`turnout serve` on free ports over a gateway and one service."""
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "gw.yaml").write_text(GATEWAY)
    (policies / "web.yaml").write_text(SERVICE % ("95", "5"))
    # the release is a fixture: no driver may step it
    turnout = TurnoutProcess(
        policies, log_path=tmp_path / "turnout.log", extra_args=["--no-drive-releases"]
    )
    turnout.start()
    try:
        yield Fleet(policies, turnout)
    finally:
        turnout.stop()


async def turnout_cli(*args: str, timeout: float = 30.0) -> tuple[int, str, str]:  # noqa: ASYNC109
    """Run `python -m turnout ARGS`; return (exit code, stdout, stderr)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "turnout",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def ack_everything(client: AdsClient, quiet: float = 0.3) -> int:
    """ACK every response until none comes for ``quiet`` seconds; how many were ACKed."""
    count = 0
    with contextlib.suppress(TimeoutError):
        while True:
            await client.ack(await client.recv(quiet))
            count += 1
    return count


async def test_status_shows_services_and_proxies_as_tables_and_json(fleet: Fleet) -> None:
    """`turnout status` prints the served version, each segment's shares, the mirror, the
    release state and each proxy with what it ACKed; --json has the same facts."""
    proxy = await fleet.proxy("edge-1")
    try:
        await proxy.bootstrap()
        served = fleet.turnout.wait_settled(["edge-1"])["served_version"]
        code, out, err = await turnout_cli("status", "--address", fleet.address)
        assert code == 0, err
        assert f"serving policy version {served}" in out
        lines = out.splitlines()
        [default] = [line for line in lines if line.startswith("web ")]
        assert "v1 95%, v2 5%" in default
        assert "v3 12.5%" in default
        assert "to v2: running step 1/3 (5%)" in default
        assert any("rule dogfood" in line and "v2 100%" in line for line in lines)
        [row] = [line for line in lines if line.startswith("edge-1 ")]
        assert row.split()[1:3] == ["edge", "ads"]
        assert served[:10] in row
        assert "1 proxies, 0 behind" in out

        code, out, err = await turnout_cli("status", "--address", fleet.address, "--json")
        assert code == 0, err
        status = json.loads(out)
        assert status["served_version"] == served
        [web] = status["services"]
        assert [s["name"] for s in web["segments"]] == ["default", "dogfood"]
        assert web["segments"][0]["shares"] == [
            {"version": "v1", "percent": "95"},
            {"version": "v2", "percent": "5"},
        ]
        assert web["segments"][0]["mirror"] == {"to": "v3", "percent": "12.5"}
        assert web["incremental"]["state"]["phase"] == "running"
        [entry] = status["proxies"]
        assert (entry["node_id"], entry["synced_version"], entry["behind"]) == (
            "edge-1",
            served,
            False,
        )
        assert [t["type"] for t in entry["types"]] == ["CDS", "EDS", "LDS", "RDS"]
    finally:
        await proxy.close()


async def test_status_over_the_admin_address_matches_grpc(fleet: Fleet) -> None:
    """`turnout status --admin-address` reads the same status from the admin's /status,
    which is GetStatus's answer in proto3's JSON mapping."""
    code, out, err = await turnout_cli(
        "status", "--admin-address", f"127.0.0.1:{fleet.turnout.admin_port}", "--json"
    )
    assert code == 0, err
    via_admin = json.loads(out)
    code, out, _ = await turnout_cli("status", "--address", fleet.address, "--json")
    via_grpc = json.loads(out)
    for status in (via_admin, via_grpc):
        status.pop("generated_at")
        for service in status["services"]:
            for dark in service["dark"]:  # judged anew every second: its clock moves
                for moving in ("at", "window_start", "window_note"):
                    dark.pop(moving)
    assert via_admin == via_grpc


async def test_status_names_a_nack_and_how_long_a_proxy_is_behind(fleet: Fleet) -> None:
    """A proxy that NACKed an edit shows as behind, with Envoy's message."""
    proxy = await fleet.proxy("picky-1")
    try:
        await proxy.bootstrap()
        await fleet.served(fleet.write("90", "10"))
        response = await proxy.recv(5)
        await proxy.nack(response, "rejected by the test: no weights today")
        await eventually(lambda: fleet.nacked("picky-1"), what="the NACK in turnout's status")
        code, out, err = await turnout_cli("status", "--address", fleet.address)
        assert code == 0, err
        [row] = [line for line in out.splitlines() if line.startswith("picky-1 ")]
        assert "rejected by the test: no weights today" in row
        assert "1 proxies, 1 behind" in out
    finally:
        await proxy.close()


async def test_wait_returns_once_every_proxy_has_acked_the_edit(fleet: Fleet) -> None:
    """`turnout wait --policies DIR` blocks while a proxy has not ACKed the edit and
    exits 0 soon after it has."""
    proxy = await fleet.proxy("edge-1")
    try:
        await proxy.bootstrap()
        fleet.turnout.wait_settled(["edge-1"])
        version = fleet.write("75", "25")
        wait = asyncio.create_task(
            turnout_cli(
                "wait",
                "--address",
                fleet.address,
                "--policies",
                str(fleet.policies),
                "--timeout",
                "30s",
            )
        )
        await fleet.served(version)
        # the behaviour under test is an absence (`wait` blocking; it shows nothing while
        # it does): 1 s is the window it is given to return too early
        await asyncio.sleep(1.0)
        assert not wait.done(), "wait returned before the proxy ACKed"
        acked_at = time.monotonic()
        assert await ack_everything(proxy) >= 1
        code, out, err = await wait
        assert code == 0, err
        assert time.monotonic() - acked_at < 5
        assert f"all 1 connected proxies have synced policy version {version}" in out
    finally:
        await proxy.close()


async def test_wait_times_out_naming_the_proxy_that_never_acks(fleet: Fleet) -> None:
    """With a proxy that never ACKs the served version, `turnout wait` exits 1 after the
    timeout and names it, with the version it has."""
    good = await fleet.proxy("good-1")
    stuck = await fleet.proxy("stuck-1")
    try:
        await good.bootstrap()
        await stuck.bootstrap()
        before = fleet.turnout.wait_settled(["good-1", "stuck-1"])["served_version"]
        version = fleet.write("50", "50")
        await fleet.served(version)
        await ack_everything(good)
        started = time.monotonic()
        code, _out, err = await turnout_cli("wait", "--address", fleet.address, "--timeout", "1.5s")
        assert code == 1
        assert 1.4 < time.monotonic() - started < 10
        assert "1 of 2 proxies have not synced policy version " + version in err
        [line] = [line for line in err.splitlines() if "stuck-1" in line]
        assert f"has {before}" in line
        assert "good-1" not in err
    finally:
        await good.close()
        await stuck.close()


async def test_wait_and_status_fail_clearly_when_no_turnout_answers() -> None:
    """Nothing listening: both commands exit 3 saying no turnout answers there."""
    address = f"127.0.0.1:{free_port()}"
    for command in ("wait", "status"):
        code, _out, err = await turnout_cli(command, "--address", address, "--timeout", "5s")
        assert code == 3
        assert f"no turnout answers at {address}" in err


async def test_wait_refuses_an_invalid_policy_directory(fleet: Fleet, tmp_path: Path) -> None:
    """`turnout wait --policies` on a set turnout would reject exits 1 with its errors."""
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "web.yaml").write_text(SERVICE % ("90", "5"))
    code, _out, err = await turnout_cli("wait", "--address", fleet.address, "--policies", str(bad))
    assert code == 1
    assert "shares sum to 95, not 100" in err
    assert "turnout will not serve it" in err
