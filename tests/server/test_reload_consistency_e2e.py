"""A real Envoy keeps the last good config while inconsistent sets are rejected: on a
retry of the same files and after an unrelated edit, nothing reaches it."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest

from turnout.server import Controller
from turnout.testing import RunningXds, eventually, running_xds
from turnout.testing.backend import Backend
from turnout.testing.envoy import EnvoyProcess
from turnout.testing.net import free_port

pytestmark = pytest.mark.e2e

CHECKOUT = """kind: Service
name: checkout
hosts: [checkout.example.com]
versions:
  v1: {{endpoints: ["{v1}"]}}
  v2: {{endpoints: ["{v2}"]}}
stable: v1
traffic: {traffic}
"""
WEB = """kind: Service
name: web
hosts: [web.example.com]
versions:
  w: {{endpoints: ["{endpoint}"]}}
stable: w
traffic: {{w: 100}}
"""


@pytest.fixture
def backends() -> Iterator[dict[str, Backend]]:
    """checkout's v1 and v2, and two instances of web ("web-a", "web-b"), running."""
    with ExitStack() as stack:
        yield {
            name: stack.enter_context(Backend(version))
            for name, version in (("v1", "v1"), ("v2", "v2"), ("web-a", "a"), ("web-b", "b"))
        }


def _served(port: int, host: str, n: int = 20) -> Counter[str]:
    """Which backend versions answered ``n`` requests for ``host`` through Envoy."""
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", trust_env=False) as client:
        return Counter(
            client.get("/", headers={"Host": host}).headers.get("x-served-by", "none")
            for _ in range(n)
        )


def _synced(xds: RunningXds, version: str | None) -> bool:
    """Every connected proxy has ACKed ``version`` for every type it asked for."""
    proxies = xds.server.proxies()
    return bool(proxies) and all(p.synced_version == version for p in proxies)


async def test_envoy_keeps_the_last_good_config_while_sets_are_rejected(
    tmp_path: Path,
    backends: dict[str, Backend],
    inject_route: Callable[[str, str], None],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With translation broken for checkout (a route to ghost-cluster), moving its
    traffic to v2 is rejected, a reload of the same files is rejected again, and so is
    moving web to another instance: the served version stays, the Envoy in step with
    it never sees ghost-cluster, and requests keep reaching v1 and web's old instance.
    Once translation is sound again, the next edit of checkout reaches Envoy."""
    policies = tmp_path / "policies"
    policies.mkdir()
    port = free_port()
    v1, v2 = backends["v1"].address, backends["v2"].address
    (policies / "gateway.yaml").write_text(
        f"kind: Gateway\nname: public\nport: {port}\naddress: 127.0.0.1\n"
    )
    (policies / "checkout.yaml").write_text(CHECKOUT.format(v1=v1, v2=v2, traffic="{v1: 100}"))
    (policies / "web.yaml").write_text(WEB.format(endpoint=backends["web-a"].address))

    async with running_xds() as xds:
        controller = Controller(policies, xds.cache)
        assert controller.reload()
        good = xds.cache.policy_version
        envoy = EnvoyProcess(xds.port, workdir=tmp_path / "envoy", stats_flush_interval=None)
        try:
            await asyncio.to_thread(envoy.start)
            await asyncio.to_thread(envoy.wait_for_listener, port)
            assert await asyncio.to_thread(_served, port, "checkout.example.com") == {"v1": 20}

            inject_route("checkout", "ghost-cluster")
            (policies / "checkout.yaml").write_text(
                CHECKOUT.format(v1=v1, v2=v2, traffic="{v2: 100}")
            )
            assert not controller.reload()
            assert not controller.reload()
            (policies / "web.yaml").write_text(WEB.format(endpoint=backends["web-b"].address))
            assert not controller.reload()
            assert xds.cache.policy_version == good
            await eventually(lambda: _synced(xds, good), timeout=10, what="Envoy on the good set")
            routes = await asyncio.to_thread(envoy.config_dump, "dynamic_route_configs")
            assert "ghost-cluster" not in json.dumps(routes)
            assert await asyncio.to_thread(_served, port, "checkout.example.com") == {"v1": 20}
            assert await asyncio.to_thread(_served, port, "web.example.com") == {"a": 20}

            # The path to Envoy is live: once translation is sound again, an edit of
            # checkout (translated anew) reaches it.
            monkeypatch.undo()
            (policies / "web.yaml").write_text(WEB.format(endpoint=backends["web-a"].address))
            (policies / "checkout.yaml").write_text(
                CHECKOUT.format(v1=v1, v2=v2, traffic="{v1: 50, v2: 50}")
            )
            assert controller.reload()
            fixed = xds.cache.policy_version
            assert fixed != good
            await eventually(lambda: _synced(xds, fixed), timeout=10, what="Envoy on the fix")
            both = await asyncio.to_thread(_served, port, "checkout.example.com", 40)
            assert set(both) == {"v1", "v2"}  # 50/50: all 40 on one side is ~1e-12
        finally:
            await asyncio.to_thread(envoy.stop)
