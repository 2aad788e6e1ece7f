"""`GET /metrics` on a real `turnout serve`: values after reloads, pushes and a NACK."""

from __future__ import annotations

import contextlib
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from turnout.cache import ORDER, SCOPED_ROUTE_TYPE, short_name
from turnout.compile import compile_policies
from turnout.policy import load_policies
from turnout.testing import AdsClient, eventually
from turnout.testing.control import TurnoutProcess
from turnout.testing.net import http_get

GATEWAY = "kind: Gateway\nname: public\nport: 10000\naddress: 127.0.0.1\n"
SERVICE = """\
kind: Service
name: web
versions:
  v1: {endpoints: ['127.0.0.1:9101']}
  v2: {endpoints: ['127.0.0.1:9201']}
stable: v1
traffic: {v1: %s, v2: %s}
"""

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(turnout: TurnoutProcess) -> Samples:
    """Every sample of /metrics by (name, sorted labels)."""
    code, body = http_get(turnout.admin_url("/metrics"))
    assert code == 200
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(body)
        for s in family.samples
    }


async def ack_everything(client: AdsClient, quiet: float = 0.3) -> int:
    """ACK every response until none comes for ``quiet`` seconds."""
    count = 0
    with contextlib.suppress(TimeoutError):
        while True:
            await client.ack(await client.recv(quiet))
            count += 1
    return count


async def served(turnout: TurnoutProcess, policies: Path) -> str:
    """Wait until turnout serves what ``policies`` compiles to; return that version."""
    version = compile_policies(load_policies(policies)).policy_version
    await eventually(
        lambda: turnout.status()["served_version"] == version, 10, what=f"{version} served"
    )
    return version


async def rejected(turnout: TurnoutProcess, count: int) -> None:
    """Wait until turnout has rejected ``count`` reloads."""
    await eventually(
        lambda: int(turnout.status()["reloads_rejected"]) >= count, 10, what=f"{count} rejections"
    )


async def test_metrics_after_reloads_pushes_and_a_nack(tmp_path: Path) -> None:
    """After an accepted edit, a rejected one and a NACKed one, /metrics counts the
    reloads by result, pushes and the NACK by type, the connected proxy by stream
    kind and as behind, observes push and convergence latencies, sizes the served
    config per type exactly, and names the served version."""
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "gw.yaml").write_text(GATEWAY)
    (policies / "web.yaml").write_text(SERVICE % (100, 0))
    with TurnoutProcess(policies, log_path=tmp_path / "turnout.log") as turnout:
        proxy = await AdsClient.connect(f"127.0.0.1:{turnout.xds_port}", node_id="edge-1")
        try:
            await proxy.bootstrap()
            turnout.wait_settled(["edge-1"])
            first = scrape(turnout)
            assert first[("turnout_policy_reloads_total", (("result", "accepted"),))] == 1
            assert first[("turnout_xds_pushes_total", (("type", "CDS"),))] == 1
            # a first sync is not a push latency: the proxy connected after the publish
            assert first[("turnout_xds_push_latency_seconds_count", (("type", "CDS"),))] == 0

            (policies / "web.yaml").write_text(SERVICE % (90, 10))  # accepted, ACKed
            await served(turnout, policies)
            assert await ack_everything(proxy) >= 1
            (policies / "web.yaml").write_text(SERVICE % (90, 5))  # rejected
            await rejected(turnout, 1)
            (policies / "web.yaml").write_text(SERVICE % (50, 50))  # accepted, NACKed
            version = await served(turnout, policies)
            response = await proxy.recv(5)
            await proxy.nack(response, "not today")
            nacks = ("turnout_xds_nacks_total", (("type", short_name(response.type_url)),))

            def nack_counted() -> Samples | None:
                samples = scrape(turnout)
                return samples if samples.get(nacks, 0) >= 1 else None

            metrics = await eventually(nack_counted, what="the NACK counted in /metrics")
        finally:
            await proxy.close()

    def value(name: str, **labels: str) -> float:
        return metrics[(name, tuple(sorted(labels.items())))]

    nacked = short_name(response.type_url)
    assert value("turnout_policy_reloads_total", result="accepted") == 3
    assert value("turnout_policy_reloads_total", result="rejected") == 1
    assert value("turnout_xds_nacks_total", type=nacked) == 1
    assert sum(value("turnout_xds_nacks_total", type=short_name(t)) for t in ORDER) == 1
    assert value("turnout_proxies_connected", kind="ads") == 1
    assert value("turnout_proxies_connected", kind="cds") == 0
    assert value("turnout_proxies_behind") == 1
    assert value("turnout_served_version_info", version=version) == 1
    rds_pushes = value("turnout_xds_pushes_total", type="RDS")
    assert rds_pushes == 3  # bootstrap + two accepted edits of the weights
    assert value("turnout_xds_acks_total", type="RDS") == 2
    # each accepted edit after the bootstrap pushed RDS once to a proxy that was there
    assert value("turnout_xds_push_latency_seconds_count", type="RDS") == 2
    assert 0 < value("turnout_xds_push_latency_seconds_sum", type="RDS") < 2
    # only the first edit converged (the second was NACKed)
    assert value("turnout_xds_convergence_latency_seconds_count") == 1
    assert 0 < value("turnout_xds_convergence_latency_seconds_sum") < 5
    snapshot = compile_policies(load_policies(policies)).snapshot
    for type_url in ORDER:
        size = sum(len(r.serialized) for r in snapshot.resources(type_url).values())
        # This gateway's host is `*`: it keeps one route table, and has no scopes.
        assert size > 0 or type_url == SCOPED_ROUTE_TYPE
        assert value("turnout_config_size_bytes", type=short_name(type_url)) == size
    assert value("process_resident_memory_bytes") > 0
