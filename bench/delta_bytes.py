"""Bytes one proxy receives for a one-service change, state of the world vs Delta.

An in-process turnout xDS server on loopback serves N services x 3 versions behind one
gateway (the translate benchmark's policy set) to one simulated SotW ADS proxy and one
simulated Delta ADS proxy, which behave like Envoy: they ACK every response and follow
CDS/LDS with EDS/RDS subscriptions. Then one service changes, three ways, and each
proxy's received bytes (serialized responses) are counted until the server is quiet.
"(res)" counts the resources in those responses (Delta: removals included).

The gateway's hosts are exact names, so it routes by scoped RDS: a traffic change
rewrites that service's route configuration only (its host name's scope), on both
protocols, whatever the number of services; an endpoint change costs SotW the whole
EDS type, Delta the one assignment.

    python -m bench delta            # 200 and 1000 services
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable, Sequence
from decimal import Decimal

import structlog
from envoy.service.discovery.v3.discovery_pb2 import DeltaDiscoveryResponse, DiscoveryResponse

from bench.translate_scale import policy_set
from turnout.cache import CLUSTER_TYPE, ENDPOINT_TYPE, Snapshot, eds_name
from turnout.compile import resources_by_type
from turnout.policy import Endpoint, PolicySet, Service, Version
from turnout.testing import (
    AdsClient,
    DeltaClient,
    RunningXds,
    decode,
    decode_delta,
    eventually,
    running_xds,
)
from turnout.translate import translate

QUIET = 0.3
"""Seconds without a response that count as "the server has sent everything"."""

CHANGED = 7
"""The index of the service that changes."""


def _with_service(policies: PolicySet, edit: Callable[[Service], Service]) -> PolicySet:
    services = list(policies.services)
    services[CHANGED] = edit(services[CHANGED])
    return dataclasses.replace(policies, services=tuple(services))


def _share(service: Service) -> Service:
    return dataclasses.replace(service, traffic=(("v1", Decimal(80)), ("v2", Decimal(20))))


def _endpoint(service: Service) -> Service:
    v1, *rest = service.versions
    moved = dataclasses.replace(v1, endpoints=(Endpoint("10.9.9.9", 8080),))
    return dataclasses.replace(service, versions=(moved, *rest))


def _new_version(service: Service) -> Service:
    v4 = Version("v4", (Endpoint("10.4.0.1", 8080),))
    return dataclasses.replace(
        service,
        versions=(*service.versions, v4),
        traffic=(("v1", Decimal(90)), ("v2", Decimal(5)), ("v4", Decimal(5))),
    )


CHANGES: Sequence[tuple[str, Callable[[Service], Service]]] = (
    ("traffic share 95/5 -> 80/20", _share),
    ("one endpoint moved", _endpoint),
    ("version v4 added at 5%", _new_version),
)


def _snapshot(policies: PolicySet) -> Snapshot:
    snapshot = Snapshot.build(resources_by_type(translate(policies).all))
    snapshot.check()
    return snapshot


async def _drain_sotw(client: AdsClient) -> tuple[int, int]:
    """ACK (and re-subscribe like Envoy) until quiet; (bytes, resources) received."""
    size = count = 0
    while True:
        try:
            response: DiscoveryResponse = await client.recv(QUIET)
        except TimeoutError:
            return size, count
        size += response.ByteSize()
        count += len(response.resources)
        await client.ack(response)
        if response.type_url == CLUSTER_TYPE:
            names = sorted({n for c in decode(response) if (n := eds_name(c)) is not None})
            if tuple(names) != client.names.get(ENDPOINT_TYPE):
                await client.request(ENDPOINT_TYPE, names)


async def _drain_delta(client: DeltaClient) -> tuple[int, int]:
    """ACK (and subscribe to new clusters' assignments like Envoy) until quiet."""
    size = count = 0
    while True:
        try:
            response: DeltaDiscoveryResponse = await client.recv(QUIET)
        except TimeoutError:
            return size, count
        size += response.ByteSize()
        count += len(response.resources) + len(response.removed_resources)
        known = set(client.have.get(ENDPOINT_TYPE, {}))
        await client.ack(response)
        if response.type_url == CLUSTER_TYPE:
            wanted = {n for c in decode_delta(response).values() if (n := eds_name(c))}
            if wanted - known:
                await client.request(ENDPOINT_TYPE, sorted(wanted - known))


async def _measure(services: int) -> list[tuple[str, int, int, int, int]]:
    policies = policy_set(services)
    rows = []
    async with running_xds() as xds:
        xds.publish(_snapshot(policies))
        sotw = await xds.client("sotw-proxy")
        delta = await xds.delta_client("delta-proxy")
        full_sotw = list((await sotw.bootstrap(timeout=30)).values())
        full_delta = list((await delta.bootstrap(timeout=30)).values())
        rows.append(
            (
                "full config (bootstrap)",
                sum(r.ByteSize() for r in full_sotw),
                sum(len(r.resources) for r in full_sotw),
                sum(r.ByteSize() for r in full_delta),
                sum(len(r.resources) for r in full_delta),
            )
        )
        for label, edit in CHANGES:
            changed = _with_service(policies, edit)
            xds.publish(_snapshot(changed))
            (sotw_bytes, sotw_count), (delta_bytes, delta_count) = await asyncio.gather(
                _drain_sotw(sotw), _drain_delta(delta)
            )
            rows.append((label, sotw_bytes, sotw_count, delta_bytes, delta_count))
            xds.publish(_snapshot(policies))  # back to the baseline for the next change
            await asyncio.gather(_drain_sotw(sotw), _drain_delta(delta))
        _check_settled(xds)
        await sotw.close()
        await delta.close()
        await eventually(lambda: xds.server.stream_count == 0)
    return rows


def _check_settled(xds: RunningXds) -> None:
    for proxy in xds.server.proxies():
        for state in proxy.types.values():
            assert state.acked_version == state.sent_version, (proxy.node_id, state)


def run(services: Sequence[int] = (200, 1000)) -> None:
    """Print, per service count, the bytes per proxy for each change, SotW vs Delta."""
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    print("\n== delta: bytes one proxy receives per one-service change, SotW vs Delta ==")
    print(
        f"{'services':>8}  {'change':<26} {'SotW bytes':>12} {'(res)':>6} "
        f"{'Delta bytes':>12} {'(res)':>6} {'SotW/Delta':>10}"
    )
    for n in services:
        for label, sotw_bytes, sotw_count, delta_bytes, delta_count in asyncio.run(_measure(n)):
            ratio = f"{sotw_bytes / delta_bytes:>9.1f}x" if delta_bytes else ""
            print(
                f"{n:>8}  {label:<26} {sotw_bytes:>12,} {sotw_count:>6} "
                f"{delta_bytes:>12,} {delta_count:>6} {ratio:>10}"
            )
