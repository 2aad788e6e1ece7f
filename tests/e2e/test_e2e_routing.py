"""What a real Envoy configured by turnout does with real requests: splits, rules,
pinning, dark traffic, release-in-place, stickiness and health checking.

One turnout and one Envoy serve every scenario here, each scenario as its own
service on its own host, so the module starts the processes once per ADS flavour:
every test runs against an Envoy speaking state-of-the-world ADS and one speaking
Delta (incremental) ADS.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from turnout.testing.backend import Backend

from ._harness import (
    PIN_HEADER,
    Stack,
    assert_split,
    count_versions,
    endpoints_yaml,
    free_port,
    gateway_yaml,
    launch_stack,
    served_by,
    start_backends,
    wait_backend_requests,
    wait_until,
)

pytestmark = pytest.mark.e2e

N = 1000  # requests per measured split


@dataclass
class World:
    stack: Stack
    client: httpx.Client
    backends: dict[str, list[Backend]]  # "service/version" -> instances


def _policies(gateway_port: int, b: dict[str, list[Backend]]) -> dict[str, str]:
    def eps(key: str) -> str:
        return endpoints_yaml(b[key])

    return {
        "gateway.yaml": gateway_yaml(gateway_port),
        "split.yaml": f"""\
kind: Service
name: split
hosts: [split.test]
versions:
  v1: {{endpoints: {eps("split/v1")}}}
  v2: {{endpoints: {eps("split/v2")}}}
  v3: {{endpoints: {eps("split/v3")}}}
stable: v1
traffic: {{v1: 90, v2: 10}}
rules:
  - name: by-header
    match: {{headers: {{x-segment: "hdr"}}}}
    traffic: {{v2: 70, v3: 30}}
  - name: by-cookie
    match: {{cookies: {{beta: "on"}}}}
    traffic: {{v1: 40, v3: 60}}
  - name: by-query
    match: {{query: {{preview: "1"}}}}
    traffic: {{v1: 25, v2: 75}}
  - name: by-path
    match: {{path: {{prefix: /api}}}}
    traffic: {{v3: 100}}
""",
        "bluegreen.yaml": f"""\
kind: Service
name: bluegreen
hosts: [bluegreen.test]
versions:
  blue: {{endpoints: {eps("bluegreen/blue")}}}
  green: {{endpoints: {eps("bluegreen/green")}}}
healthCheck:
  {{path: /healthz, interval: 1s, timeout: 1s, unhealthyThreshold: 1, healthyThreshold: 1}}
stable: blue
traffic: {{blue: 100}}
""",
        "dark.yaml": f"""\
kind: Service
name: dark
hosts: [dark.test]
versions:
  v1: {{endpoints: {eps("dark/v1")}}}
  v3: {{endpoints: {eps("dark/v3")}}}
stable: v1
traffic: {{v1: 100}}
mirror: {{to: v3, percent: 100}}
""",
        "canary.yaml": f"""\
kind: Service
name: canary
hosts: [canary.test]
versions:
  v1: {{endpoints: {eps("canary/v1")}}}
  v2: {{endpoints: {eps("canary/v2")}}}
stable: v1
traffic: instances
""",
        "sticky.yaml": f"""\
kind: Service
name: sticky
hosts: [sticky.test]
versions:
  v1: {{endpoints: {eps("sticky/v1")}}}
  v2: {{endpoints: {eps("sticky/v2")}}}
stable: v1
traffic: {{v1: 50, v2: 50}}
sticky: {{header: x-user-id}}
""",
        "health.yaml": f"""\
kind: Service
name: health
hosts: [health.test]
versions:
  v1: {{endpoints: {eps("health/v1")}}}
healthCheck:
  {{path: /healthz, interval: 1s, timeout: 1s, unhealthyThreshold: 1, healthyThreshold: 1}}
stable: v1
traffic: {{v1: 100}}
""",
    }


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, api_type: str) -> Iterator[World]:
    with ExitStack() as exits:
        b: dict[str, list[Backend]] = {}
        for key, count in {
            "split/v1": 1,
            "split/v2": 1,
            "split/v3": 1,
            "bluegreen/blue": 1,
            "bluegreen/green": 1,
            "dark/v1": 1,
            "dark/v3": 1,
            "canary/v1": 3,
            "canary/v2": 1,
            "sticky/v1": 1,
            "sticky/v2": 1,
            "health/v1": 3,
        }.items():
            b[key] = start_backends(exits, key.split("/")[1], count)
        # The third health/v1 instance is unhealthy before Envoy ever sees it.
        b["health/v1"][2].healthy = False
        port = free_port()
        stack = launch_stack(
            exits,
            tmp_path_factory.mktemp(f"routing-{api_type}"),
            _policies(port, b),
            port,
            api_type=api_type,
        )
        stack.turnout.wait_settled(stack.node_ids)
        yield World(stack, stack.client(), b)


def test_envoy_speaks_the_ads_flavour(world: World, api_type: str) -> None:
    """turnout's /status shows the Envoy on a stream of the flavour its bootstrap asks
    for (SotW "ads" or Delta "delta-ads"), fully ACKed."""
    status = world.stack.turnout.wait_settled(world.stack.node_ids)
    kinds = {p["stream_kind"] for p in status["proxies"] if p["node_id"] in world.stack.node_ids}
    assert kinds == {"delta-ads" if api_type == "DELTA_GRPC" else "ads"}


def test_default_split(world: World) -> None:
    """Requests matching no rule are split 90/10 between v1 and v2 as `traffic` says."""
    counts = count_versions(world.client, "split.test", 2 * N)
    assert_split(counts, {"v1": 90, "v2": 10})


@pytest.mark.parametrize(
    ("segment", "request_kwargs", "expected"),
    [
        ("header", {"headers": {"x-segment": "hdr"}}, {"v2": 70, "v3": 30}),
        ("cookie", {"headers": {"cookie": "theme=dark; beta=on"}}, {"v1": 40, "v3": 60}),
        ("query", {"params": {"preview": "1"}}, {"v1": 25, "v2": 75}),
        ("path", {"path": "/api/cart"}, {"v3": 100}),
    ],
)
def test_rule_split(
    world: World, segment: str, request_kwargs: dict[str, Any], expected: dict[str, float]
) -> None:
    """A request matching a rule gets that rule's split, not the default one."""
    counts = count_versions(world.client, "split.test", N, **request_kwargs)
    assert_split(counts, expected)


@pytest.mark.parametrize(
    "request_kwargs",
    [
        {"headers": {"x-segment": "hdr2"}},
        {"headers": {"cookie": "xbeta=on"}},
        {"headers": {"cookie": "beta=onion"}},
        {"params": {"preview": "10"}},
        {"path": "/apps"},
    ],
    ids=["header-value", "cookie-xbeta", "cookie-value-prefix", "query-value", "path-sibling"],
)
def test_near_misses_take_the_default(world: World, request_kwargs: dict[str, Any]) -> None:
    """A request that almost matches a rule (e.g. cookie `xbeta=on` for `beta: "on"`)
    gets the default split."""
    counts = count_versions(world.client, "split.test", N // 2, **request_kwargs)
    assert_split(counts, {"v1": 90, "v2": 10})


def test_pin_header_reaches_any_deployed_version(world: World) -> None:
    """The pin header reaches a deployed version whatever its share, including one
    that no rule or split sends traffic to."""
    for version in ("v1", "v2", "v3"):
        counts = count_versions(world.client, "split.test", 50, headers={PIN_HEADER: version})
        assert counts == Counter({version: 50})


def test_blue_green_green_only_by_pin(world: World) -> None:
    """Blue/green: with `traffic: {blue: 100}` every request goes to blue, green is
    health-checked and reachable only with the pin header."""
    green = world.backends["bluegreen/green"][0]
    assert count_versions(world.client, "bluegreen.test", 300) == Counter({"blue": 300})
    assert green.counts().requests == 0
    pinned = count_versions(world.client, "bluegreen.test", 100, headers={PIN_HEADER: "green"})
    assert pinned == Counter({"green": 100})
    assert green.counts().requests == 100
    assert green.counts().health_checks > 0


def test_pin_to_unknown_version_takes_the_default(world: World) -> None:
    """A pin header naming no deployed version is ignored: the request takes the split."""
    counts = count_versions(world.client, "bluegreen.test", 50, headers={PIN_HEADER: "purple"})
    assert counts == Counter({"blue": 50})


def test_dark_traffic_is_mirrored_not_answered(world: World) -> None:
    """With a 100% mirror to v3, every client answer comes from v1 while v3 receives a
    copy of every request, marked by Envoy's `-shadow` Host suffix."""
    v1, v3 = world.backends["dark/v1"][0], world.backends["dark/v3"][0]
    v1.reset()
    v3.reset()
    n = 400
    counts = count_versions(world.client, "dark.test", n, path="/dark")
    assert counts == Counter({"v1": n})
    received = wait_backend_requests(v3, n, timeout=10)
    copies = v3.counts()
    assert received == n, f"v3 received {received} mirrored copies of {n} requests"
    assert copies.by_host == {"dark.test-shadow": n}
    assert copies.by_path == {"/dark": n}
    assert v1.counts().requests == n


def test_release_in_place_follows_instances(world: World) -> None:
    """`traffic: instances` with three v1 instances and one v2 sends ~75/25, and every
    instance gets traffic."""
    for backend in world.backends["canary/v1"] + world.backends["canary/v2"]:
        backend.reset()
    counts = count_versions(world.client, "canary.test", N)
    assert_split(counts, {"v1": 75, "v2": 25})
    for backend in world.backends["canary/v1"] + world.backends["canary/v2"]:
        assert backend.counts().requests > N // 8, f"{backend.instance} got almost nothing"


def test_sticky_header_keeps_a_user_on_one_version(world: World) -> None:
    """The same x-user-id always lands on the same version, while different users
    spread over both versions of a 50/50 split."""
    landed: dict[str, str] = {}
    for user in (f"user-{i}" for i in range(200)):
        counts = count_versions(world.client, "sticky.test", 5, headers={"x-user-id": user})
        assert len(counts) == 1, f"{user} saw {dict(counts)}"
        landed[user] = next(iter(counts))
    for user in ("user-7", "user-42"):
        counts = count_versions(world.client, "sticky.test", 50, headers={"x-user-id": user})
        assert counts == Counter({landed[user]: 50})
    spread = Counter(landed.values())
    assert set(spread) == {"v1", "v2"}
    assert_split(spread, {"v1": 50, "v2": 50})


def test_unhealthy_endpoint_gets_no_traffic(world: World) -> None:
    """An endpoint whose /healthz answers 503 gets no requests once health checks ran,
    and one that turns unhealthy stops getting them (within a few check intervals)."""
    first, second, sick = world.backends["health/v1"]
    wait_until(lambda: sick.counts().health_checks > 0, 5, what="a health check of `sick`")
    for backend in (first, second, sick):
        backend.reset()
    counts = count_versions(world.client, "health.test", 300)
    assert counts == Counter({"v1": 300})
    assert sick.counts().requests == 0
    assert first.counts().requests > 0
    assert second.counts().requests > 0

    # Now it recovers and another falls ill: traffic follows the health checks.
    sick.healthy = True
    second.healthy = False

    def traffic_follows_health() -> bool:  # 100 requests; who got them
        for backend in (first, second, sick):
            backend.reset()
        count_versions(world.client, "health.test", 100)
        return second.counts().requests == 0 and sick.counts().requests > 0

    with contextlib.suppress(TimeoutError):  # a failed request is an error at once
        wait_until(traffic_follows_health, 10, interval=0.2, what="health", retry_on=())
    assert second.counts().requests == 0, "an unhealthy endpoint still gets traffic"
    assert sick.counts().requests > 0, "a recovered endpoint gets no traffic"


def test_unknown_host_is_not_routed(world: World) -> None:
    """A Host that no service claims gets a 404 from Envoy, not some service's answer."""
    response = world.client.get("/", headers={"Host": "nobody.test"})
    assert served_by(response) == "HTTP 404"
