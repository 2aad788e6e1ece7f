"""`turnout serve` with webhooks, in this process: a rejected policy set and a proxy's
NACK reach a real receiver, and /metrics counts the deliveries."""

from __future__ import annotations

import asyncio
from pathlib import Path

from turnout.server import App, ReleaseOptions, Webhook
from turnout.testing import AdsClient, eventually
from turnout.testing.net import http_get
from turnout.testing.webhook import WebhookReceiver

CLUSTER_TYPE = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
GATEWAY = "kind: Gateway\nname: public\nport: 10000\naddress: 127.0.0.1\n"
SERVICE = (
    "kind: Service\nname: web\nversions:\n  v1: {endpoints: ['127.0.0.1:9101']}\n"
    "  v2: {endpoints: ['127.0.0.1:9201']}\nstable: v1\ntraffic: {v1: 90, v2: 10}\n"
)


async def test_rejected_set_and_nack_are_notified(tmp_path: Path) -> None:
    """A policy set rejected by the watcher's reload is one `policy.rejected` event with
    its errors; a NACK is one `proxy.nack`; both are counted delivered in /metrics."""
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "gw.yaml").write_text(GATEWAY)
    (policies / "web.yaml").write_text(SERVICE)
    with WebhookReceiver() as receiver:
        options = ReleaseOptions(drive=False, webhooks=(Webhook(receiver.url, "ops"),))
        app = App(policies, "127.0.0.1:0", "127.0.0.1:0", debounce_ms=20, releases=options)
        run = asyncio.create_task(app.run())
        try:
            await eventually(lambda: app.admin_port != 0 or run.done(), timeout=10)
            assert not run.done()
            (policies / "web.yaml").write_text(SERVICE.replace("v2: 10}", "v2: 20}"))

            def names() -> list[str]:
                return [e.event for e in receiver.events()]

            await eventually(lambda: "policy.rejected" in names(), timeout=10)
            [rejected] = [e for e in receiver.events() if e.event == "policy.rejected"]
            assert rejected.body["errors"] == [
                f"{policies}/web.yaml:7: traffic: shares sum to 110, not 100"
            ]
            client = await AdsClient.connect(f"127.0.0.1:{app.xds_port}", node_id="edge-1")
            try:
                await client.request(CLUSTER_TYPE)
                await client.nack(await client.recv(), "bad cluster")
                await eventually(lambda: "proxy.nack" in names(), timeout=10)
            finally:
                await client.close()
            [nack] = [e for e in receiver.events() if e.event == "proxy.nack"]
            assert (nack.body["node"], nack.body["message"]) == ("edge-1", "bad cluster")
            status, text = await asyncio.to_thread(
                http_get, f"http://127.0.0.1:{app.admin_port}/metrics"
            )
            assert status == 200
            assert 'turnout_notifications_total{result="delivered",webhook="ops"} 2.0' in text
        finally:
            app.stop()
            await asyncio.wait_for(run, 15)
