"""Scoped routes against a real Envoy, over SotW and Delta: a gateway whose hosts are
all exact names routes by scoped RDS (a scope per host name), one with a wildcard host
keeps one route table, and requests land where they did with one route table: ports,
unknown hosts (404), services added and removed, two gateways sharing a host name on
one Envoy, and a one-service change costing one scope's routes."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass

import pytest

from turnout.testing.backend import Backend
from turnout.testing.control import proxies_settled

from ._harness import (
    Stack,
    endpoints_yaml,
    free_port,
    gateway_yaml,
    launch_stack,
    served_by,
    start_backends,
    wait_until,
)

pytestmark = pytest.mark.e2e

GATEWAY_HEADER = "x-turnout-gateway"
RX = "cluster.turnout_xds.upstream_cx_rx_bytes_total"


def _service(
    name: str, hosts: str, gateways: str, versions: dict[str, Backend], traffic: str
) -> str:
    listed = "".join(f"  {v}: {{endpoints: {endpoints_yaml([b])}}}\n" for v, b in versions.items())
    return (
        f"kind: Service\nname: {name}\nhosts: {hosts}\ngateways: {gateways}\n"
        f"versions:\n{listed}stable: {next(iter(versions))}\ntraffic: {traffic}\n"
    )


@dataclass
class Gateways:
    stack: Stack
    public: int
    internal: int
    backends: dict[str, Backend]

    def api(self, traffic: str) -> str:
        return _api(self.backends, traffic)


def _api(backends: dict[str, Backend], traffic: str) -> str:
    versions = {"a1": backends["a1"], "a2": backends["a2"]}
    return _service("api", '["api.test:8443"]', "[public]", versions, traffic)


@pytest.fixture(scope="module")
def gateways(tmp_path_factory: pytest.TempPathFactory, api_type: str) -> Iterator[Gateways]:
    """One Envoy with two gateways: `public` (exact hosts only: scoped) and `internal`
    (a `*.wild.test` service: one route table); `shop` is on both, `api` (with a port)
    on public only."""
    with ExitStack() as exits:
        backends = {
            v: b
            for v in ("v1", "a1", "a2", "w1", "n1")
            for b in start_backends(exits, v, watch_headers=(GATEWAY_HEADER,))
        }
        public, internal = free_port(), free_port()
        files = {
            "gateways.yaml": gateway_yaml(public, "public")
            + "---\n"
            + gateway_yaml(internal, "internal"),
            "shop.yaml": _service(
                "shop",
                '[shop.test, "shop.test:*"]',
                "[public, internal]",
                {"v1": backends["v1"]},
                "{v1: 100}",
            ),
            "api.yaml": _api(backends, "{a1: 100}"),
            "wild.yaml": _service(
                "wild", '["*.wild.test"]', "[internal]", {"w1": backends["w1"]}, "{w1: 100}"
            ),
        }
        stack = launch_stack(
            exits, tmp_path_factory.mktemp("scoped"), files, public, api_type=api_type
        )
        stack.envoy.wait_for_listener(internal)
        yield Gateways(stack, public, internal, backends)


def _answer(stack: Stack, port: int, host: str, **headers: str) -> str:
    return served_by(stack.client(port).get("/", headers={"Host": host, **headers}))


def test_exact_hosts_route_by_scope_with_and_without_ports(gateways: Gateways) -> None:
    """On the scoped gateway a host name finds its scope with or without a port, a
    host's port form must match as with one route table (`api.test` alone is 404), an
    unknown host is 404, and the gateway header can be neither spoofed nor seen by a
    backend."""
    stack, public = gateways.stack, gateways.public
    scopes = stack.envoy.stats("scoped_rds.*all_scopes")
    # shop.test and api.test, and internal's standby scope for shop.test: every scoped
    # listener's subscription has every scope, told apart by the gateway fragment.
    assert scopes == {"http.public.scoped_rds.public.all_scopes": 3}
    assert _answer(stack, public, "shop.test") == "v1"
    assert _answer(stack, public, f"shop.test:{public}") == "v1"
    assert _answer(stack, public, "api.test:8443") == "a1"
    assert _answer(stack, public, "api.test") == "HTTP 404"
    assert _answer(stack, public, "nobody.test") == "HTTP 404"
    # A client's own gateway header is overwritten before the scope is looked up.
    assert _answer(stack, public, "api.test:8443", **{GATEWAY_HEADER: "internal"}) == "a1"
    seen = gateways.backends["a1"].counts().by_header[GATEWAY_HEADER]
    assert set(seen) == {""}, seen


def test_a_wildcard_gateway_keeps_one_route_table(gateways: Gateways) -> None:
    """The gateway with a wildcard host routes as before (no scopes), and the host it
    shares with the scoped gateway reaches the same service on both."""
    stack, internal = gateways.stack, gateways.internal
    assert _answer(stack, internal, "a.wild.test") == "w1"
    assert _answer(stack, internal, "shop.test") == "v1"
    assert _answer(stack, internal, "api.test:8443") == "HTTP 404"
    assert not any(".internal." in name for name in stack.envoy.stats("scoped_rds"))


def test_a_service_added_and_removed_never_disturbs_the_others(gateways: Gateways) -> None:
    """A new service's host is routed once its scope and routes arrive, and 404 again
    once it is removed; requests to another service of the gateway all succeed
    meanwhile (make-before-break)."""
    stack, public = gateways.stack, gateways.public
    stop = threading.Event()
    seen: Counter[str] = Counter()

    def keep_asking() -> None:
        client = stack.client(public)
        while not stop.is_set():
            seen[served_by(client.get("/", headers={"Host": "shop.test"}))] += 1

    asking = threading.Thread(target=keep_asking)
    asking.start()
    try:
        added = _service(
            "new", "[new.test]", "[public]", {"n1": gateways.backends["n1"]}, "{n1: 100}"
        )
        stack.write("new.yaml", added)
        wait_until(lambda: _answer(stack, public, "new.test") == "n1", timeout=20)
        (stack.policy_dir / "new.yaml").unlink()
        wait_until(lambda: _answer(stack, public, "new.test") == "HTTP 404", timeout=20)
    finally:
        stop.set()
        asking.join()
    assert set(seen) == {"v1"}, seen


def test_a_one_service_change_costs_its_scope_only(gateways: Gateways) -> None:
    """A traffic change of one service on the scoped gateway reaches the Envoy in a
    few hundred bytes (its scope's route configuration), by the Envoy's own count."""
    stack, public = gateways.stack, gateways.public
    wait_until(lambda: proxies_settled(stack.turnout.status(), stack.node_ids), timeout=20)
    before = stack.envoy.stat(RX)
    stack.write("api.yaml", gateways.api("{a1: 50, a2: 50}"))
    wait_until(
        lambda: {_answer(stack, public, "api.test:8443") for _ in range(40)} == {"a1", "a2"},
        timeout=20,
    )
    wait_until(lambda: proxies_settled(stack.turnout.status(), stack.node_ids), timeout=20)
    received = stack.envoy.stat(RX) - before
    assert 0 < received <= 4096, received


def test_a_wildcard_host_added_and_removed_flips_the_gateway_without_errors(
    gateways: Gateways,
) -> None:
    """Adding a `*` service to the scoped gateway turns it into one route table (its
    listener changes) and removing it turns it back into scopes; requests to an exact
    host keep succeeding throughout, and the catch-all answers only while it exists."""
    stack, public = gateways.stack, gateways.public
    stop = threading.Event()
    seen: Counter[str] = Counter()

    def keep_asking() -> None:
        client = stack.client(public)
        while not stop.is_set():
            seen[served_by(client.get("/", headers={"Host": "shop.test"}))] += 1

    asking = threading.Thread(target=keep_asking)
    asking.start()
    try:
        catch_all = _service(
            "any", '["*"]', "[public]", {"n1": gateways.backends["n1"]}, "{n1: 100}"
        )
        stack.write("any.yaml", catch_all)
        wait_until(lambda: _answer(stack, public, "elsewhere.test") == "n1", timeout=20)
        assert _answer(stack, public, "api.test:8443") in {"a1", "a2"}
        (stack.policy_dir / "any.yaml").unlink()
        wait_until(lambda: _answer(stack, public, "elsewhere.test") == "HTTP 404", timeout=20)
        assert _answer(stack, public, "api.test:8443") in {"a1", "a2"}
    finally:
        stop.set()
        asking.join()
    assert set(seen) == {"v1"}, seen
