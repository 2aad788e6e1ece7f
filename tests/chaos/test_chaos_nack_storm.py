"""A NACK storm and a slow reader under load: beside one real Envoy serving ~1,000
requests/s, 50 simulated proxies hold ADS streams to the same turnout; 5 of them
NACK everything they are sent and one never reads (its first large response stalls
in grpc flow control). The real Envoy still ACKs each edit within 2 s and every
request is answered 2xx."""

from __future__ import annotations

import asyncio
import contextlib
import statistics
from contextlib import ExitStack
from pathlib import Path

import pytest
from e2e._load import Hey

from turnout.cache import CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE
from turnout.testing import AdsClient

from ._stack import HOST, ChaosStack, launch, report

pytestmark = [pytest.mark.chaos, pytest.mark.e2e]

SIMULATED = 50
NACKERS = 5  # 10%
EDITS = 6
CONVERGE_SECONDS = 2.0
BULK_ENDPOINTS = 2000
"""Per version of a `bulk` service no request is routed to: its assignments make a
response of ~150 kB, more than a stream's flow-control window, so the proxy that
never reads leaves turnout's write to it pending."""


def bulk_yaml(offset: int) -> str:
    """The `bulk` service; `offset` shifts its endpoints (an EDS-only change)."""

    def endpoints(base: int) -> str:
        ports = (1024 + (base + offset + i) % 60000 for i in range(BULK_ENDPOINTS))
        return "[" + ", ".join(f'"127.0.0.2:{p}"' for p in ports) + "]"

    return f"""\
kind: Service
name: bulk
hosts: [bulk.test]
versions:
  v1: {{endpoints: {endpoints(0)}}}
  v2: {{endpoints: {endpoints(BULK_ENDPOINTS)}}}
stable: v1
traffic: {{v1: 100}}
"""


async def _follow(client: AdsClient) -> None:
    """Like Envoy: subscribe to everything, then ACK every response."""
    await client.bootstrap(timeout=30)
    while True:
        await client.ack(await client.recv(timeout=3600))


async def _subscribe_all(client: AdsClient) -> None:
    await client.request(CLUSTER_TYPE)
    await client.request(ENDPOINT_TYPE, ["web_v1", "web_v2", "bulk_v1", "bulk_v2"])
    await client.request(LISTENER_TYPE)
    # exact hosts route by scoped RDS: a route configuration per host, `{gateway}/{host}`
    await client.request(ROUTE_TYPE, [f"public/{HOST}", "public/bulk.test"])


async def _nack_everything(client: AdsClient, nacks: list[int]) -> None:
    await _subscribe_all(client)
    while True:
        response = await client.recv(timeout=3600)
        await client.nack(response, "chaos: rejected on purpose")
        nacks[0] += 1


async def test_nack_storm_and_slow_reader_under_load(tmp_path: Path) -> None:
    """With 44 well-behaved, 5 NACKing and 1 never-reading simulated proxies beside a
    real Envoy under load, each of 6 edits (routes, and endpoints of 4,000) is ACKed by
    the real Envoy within 2 s, every request is 2xx, the NACKers rejected every edit,
    and the well-behaved proxies end in step too."""
    with ExitStack() as exits:
        stack: ChaosStack = await asyncio.to_thread(
            launch, exits, tmp_path, extra_files={"bulk.yaml": bulk_yaml(0)}
        )
        turnout = stack.stack.turnout
        target = f"127.0.0.1:{turnout.xds_port}"
        clients: list[AdsClient] = []
        tasks: list[asyncio.Task[None]] = []
        nacks = [0]
        try:
            for index in range(SIMULATED):
                read = index != SIMULATED - 1
                client = await AdsClient.connect(
                    target, node_id=f"sim-{index}", node_cluster="edge", read=read
                )
                clients.append(client)
                if not read:
                    await _subscribe_all(client)
                elif index < NACKERS:
                    tasks.append(asyncio.create_task(_nack_everything(client, nacks)))
                else:
                    tasks.append(asyncio.create_task(_follow(client)))
            await asyncio.to_thread(
                turnout.wait_settled, [f"sim-{i}" for i in range(NACKERS, SIMULATED - 1)], 30
            )
            hey = Hey(stack.port, HOST, rate=1000).start()
            exits.callback(hey.kill)
            await asyncio.to_thread(stack.wait_flowing)
            nacks_before = nacks[0]

            seconds: list[float] = []
            for edit in range(EDITS):
                if edit % 2:
                    await asyncio.to_thread(stack.write, "bulk.yaml", bulk_yaml(edit))
                version = await asyncio.to_thread(
                    stack.edit_service, (90 - 10 * edit, 10 + 10 * edit)
                )
                seconds.append(
                    await asyncio.to_thread(stack.wait_synced, version, CONVERGE_SECONDS)
                )
                # pacing: the edits are spread over the load, each reaching the NACKers
                # (the count of their NACKs is checked below)
                await asyncio.sleep(0.3)
            await asyncio.to_thread(stack.wait_flowing)  # load goes on after the last edit
            result = hey.stop()
            followers = [f"sim-{i}" for i in range(NACKERS, SIMULATED - 1)]
            status = await asyncio.to_thread(turnout.wait_settled, followers, 10, version)
            for task in tasks:
                assert not task.done(), task  # no simulated stream was ended by turnout
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for client in clients:
                with contextlib.suppress(Exception):
                    await client.close()

        slow = [p for p in status["proxies"] if p["node_id"] == f"sim-{SIMULATED - 1}"]
        report(
            "NACK storm + slow reader",
            simulated=SIMULATED,
            nackers=NACKERS,
            edits=EDITS,
            nacks=nacks[0] - nacks_before,
            requests=result.total,
            rate=f"{result.rate:.0f}/s",
            failed=result.failed,
            envoy_ack_ms_median=round(statistics.median(seconds) * 1000),
            envoy_ack_ms_max=round(max(seconds) * 1000),
        )
        assert result.failed == 0, result.summary()
        assert result.total >= 800 * (result.seconds - 1), result.summary()
        assert max(seconds) < CONVERGE_SECONDS
        assert nacks[0] - nacks_before >= NACKERS * EDITS, "the NACKers did not NACK each edit"
        (slow_reader,) = slow  # still connected, never in step
        assert slow_reader["synced_version"] == ""
