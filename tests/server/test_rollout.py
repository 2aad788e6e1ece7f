"""ConfigRollout without Envoy: a real cache, real compiled sets, proxy states as the
xDS server reports them, a real window store and a fake clock: who gets which set,
when a change bakes, holds, completes or is aborted, what a restart restores, which
changes are only safer, and the webhooks said."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from turnout.analysis import WindowStore
from turnout.cache import ROUTE_TYPE, SnapshotCache
from turnout.compile import Compiled, Compiler
from turnout.policy import PolicySet, parse_policies
from turnout.server import ConfigRollout, Notifier, RolloutError, Webhook, only_safer
from turnout.testing.webhook import WebhookReceiver
from turnout.xds import NackRecord, ProxyStatus, TypeStatus

GATEWAY = """\
kind: Gateway
name: public
port: 10000
rollout: {canary: ["canary-*"], bake: 10s, maxErrorRateIncrease: 0.01}
"""


def _service(traffic: str, *, hosts: str = "[web.test]") -> str:
    return f"""\
kind: Service
name: web
hosts: {hosts}
versions:
  v1: {{endpoints: ["127.0.0.1:9001"]}}
  v2: {{endpoints: ["127.0.0.1:9002"]}}
stable: v1
traffic: {traffic}
"""


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Fleet:
    """A rollout over a cache, compiled by one compiler, with proxies to report."""

    def __init__(self, state_file: Path | None = None) -> None:
        self.clock = Clock()
        self.cache = SnapshotCache()
        self.compiler = Compiler()
        self.store = WindowStore(
            {"web_v1": ("web", "v1"), "web_v2": ("web", "v2")}, clock=self.clock
        )
        self.rollout = ConfigRollout(
            self.cache,
            state_file=state_file,
            figures=lambda nodes, since, name: self.store.node_figures(nodes, since, name=name),
            clock=self.clock,
        )
        self.synced: dict[str, str] = {}
        self.nacks: dict[str, NackRecord] = {}

    def publish(self, traffic: str, gateway: str = GATEWAY) -> Compiled:
        sources = {"gw.yaml": gateway, "web.yaml": _service(traffic)}
        compiled = self.compiler.compile(parse_policies(sources))
        self.rollout.publish(compiled, sources, self.compiler)
        return compiled

    def given(self, node: str) -> str | None:
        return self.cache.policy_version_for("edge", node)

    def ack_all(self) -> None:
        """Every proxy ACKs what it is given (as a real stream would record)."""
        for node in ("canary-1", "edge-1"):
            version = self.given(node)
            assert version is not None
            self.synced[node] = version

    def proxies(self) -> list[ProxyStatus]:
        at = datetime.fromtimestamp(self.clock.now, UTC)
        return [
            ProxyStatus(
                stream_id=index,
                node_id=node,
                node_cluster="edge",
                kind="ads",
                connected_at=at,
                types={ROUTE_TYPE: TypeStatus(ROUTE_TYPE, "x", "x", self.nacks.get(node), None)},
                synced_version=self.synced.get(node),
            )
            for index, node in enumerate(("canary-1", "edge-1"))
        ]

    def tick(self) -> str:
        self.rollout.tick(self.proxies())
        return self.rollout.phase


def test_a_change_goes_to_the_canary_then_everywhere_after_the_bake() -> None:
    """The first set goes everywhere; a change goes to the canary (by node.id) only,
    bakes from the canary's ACK, and reaches everyone once the bake has passed."""
    fleet = Fleet()
    good = fleet.publish("{v1: 100}")
    assert fleet.cache.staged is None
    fleet.ack_all()
    new = fleet.publish("{v1: 50, v2: 50}")
    assert fleet.given("canary-1") == new.policy_version
    assert fleet.given("edge-1") == good.policy_version
    assert fleet.rollout.role("edge", "canary-1") == "canary"
    assert fleet.rollout.role("edge", "edge-1") == "rest"
    assert fleet.tick() == "waiting"
    fleet.ack_all()
    assert fleet.tick() == "baking"
    fleet.clock.now += 9.9
    assert fleet.tick() == "baking"
    assert fleet.rollout.state().progress() == "baking 9.9s of 10s"
    fleet.clock.now += 0.2
    assert fleet.tick() == ""
    assert fleet.cache.staged is None
    assert fleet.given("edge-1") == new.policy_version


def test_a_canary_nack_holds_and_abort_puts_the_canary_back() -> None:
    """A NACK from a canary proxy after the change holds it (saying who NACKed what);
    abort serves everyone the last good set; a second abort and an unknown gateway are
    refused."""
    fleet = Fleet()
    good = fleet.publish("{v1: 100}")
    fleet.publish("{v1: 50, v2: 50}")
    at = datetime.fromtimestamp(fleet.clock.now + 0.1, UTC)
    fleet.nacks["canary-1"] = NackRecord("x", "route: regex too large\nmore", at)
    fleet.clock.now += 0.2
    assert fleet.tick() == "held"
    assert fleet.rollout.reason == "canary canary-1 NACKed RDS: route: regex too large"
    assert fleet.given("edge-1") == good.policy_version
    state = fleet.rollout.abort("public")
    assert state.phase == "aborted"
    assert fleet.given("canary-1") == good.policy_version
    with pytest.raises(RolloutError) as again:
        fleet.rollout.abort("public")
    assert again.value.code == "not-rolling"
    with pytest.raises(RolloutError) as unknown:
        fleet.rollout.abort("private")
    assert unknown.value.code == "not-found"


def test_a_canary_answering_5xx_is_held() -> None:
    """The canary proxies' 5xx rate, significantly above the rest's by more than the
    limit, holds the change with the judge's figures in the reason."""
    fleet = Fleet()
    fleet.publish("{v1: 100}")
    fleet.publish("{v1: 50, v2: 50}")
    fleet.ack_all()
    assert fleet.tick() == "baking"
    fleet.store.add("web_v2", "canary-1", fleet.clock.now, requests=200, errors=60)
    fleet.store.add("web_v1", "edge-1", fleet.clock.now, requests=400, errors=1)
    fleet.clock.now += 1
    assert fleet.tick() == "held"
    assert fleet.rollout.reason.startswith("canary 5xx: canary proxies error rate")


def test_only_safer_changes_and_gateways_without_rollout_go_everywhere_at_once() -> None:
    """A rollback toward stable and a gateway without rollout: skip the canary."""
    fleet = Fleet()
    fleet.publish("{v1: 50, v2: 50}")
    rollback = fleet.publish("{v1: 100}")
    assert fleet.cache.staged is None
    assert fleet.given("edge-1") == rollback.policy_version
    plain = "kind: Gateway\nname: public\nport: 10000\n"
    fleet.publish("{v1: 100}", gateway=plain)
    forward = fleet.publish("{v1: 10, v2: 90}", gateway=plain)
    assert fleet.cache.staged is None
    assert fleet.given("edge-1") == forward.policy_version


def test_the_newest_change_replaces_the_baking_one() -> None:
    """A second change while one bakes replaces it at the canary and restarts the bake;
    the rest stay on the last good set."""
    fleet = Fleet()
    good = fleet.publish("{v1: 100}")
    fleet.publish("{v1: 90, v2: 10}")
    fleet.ack_all()
    assert fleet.tick() == "baking"
    fleet.clock.now += 8
    newest = fleet.publish("{v1: 80, v2: 20}")
    assert fleet.tick() == "waiting"
    assert fleet.given("canary-1") == newest.policy_version
    assert fleet.given("edge-1") == good.policy_version


def test_a_restart_restores_the_last_good_set_from_the_state_file(tmp_path: Path) -> None:
    """The last fully rolled-out set is written on promotion; a new process given the
    files' (unbaked) set serves the rest the restored set and the canary the files'."""
    state = tmp_path / ".turnout" / "rollout.json"
    first = Fleet(state)
    good = first.publish("{v1: 100}")
    first.publish("{v1: 50, v2: 50}")
    assert state.exists()
    second = Fleet(state)
    unbaked = second.publish("{v1: 50, v2: 50}")
    assert second.given("edge-1") == good.policy_version
    assert second.given("canary-1") == unbaked.policy_version
    assert second.rollout.phase == "waiting"


def test_only_safer_names_what_it_found() -> None:
    """Only-safer: shares toward stable (a rollback) or release state alone; a share
    moving away from stable, or any other field, is not."""

    def policies(traffic: str, hosts: str = "[web.test]") -> PolicySet:
        return parse_policies({"gw.yaml": GATEWAY, "web.yaml": _service(traffic, hosts=hosts)})

    old = policies("{v1: 50, v2: 50}")
    assert only_safer(old, policies("{v1: 80, v2: 20}")) == "rollback of web"
    assert only_safer(old, policies("{v1: 40, v2: 60}")) == ""
    assert only_safer(old, policies("instances")) == ""
    assert only_safer(old, policies("{v1: 100}", hosts="[other.test]")) == ""


async def test_held_aborted_and_complete_rollouts_are_notified() -> None:
    """A webhook gets policy.rollout-held (with why), -aborted and -complete, each once."""
    fleet = Fleet()
    with WebhookReceiver() as receiver:
        notifier = Notifier([_webhook(receiver.url)])
        notifier.start()
        phase = ""

        def changed() -> None:
            nonlocal phase
            state = fleet.rollout.state()
            notifier.rollout(state, phase)
            phase = state.phase

        fleet.rollout.on_change = changed
        try:
            fleet.publish("{v1: 100}")
            fleet.publish("{v1: 50, v2: 50}")
            fleet.ack_all()
            fleet.tick()
            fleet.clock.now += 11
            fleet.tick()
            fleet.publish("{v1: 40, v2: 60}")
            at = datetime.fromtimestamp(fleet.clock.now + 0.1, UTC)
            fleet.nacks["canary-1"] = NackRecord("x", "bad", at)
            fleet.clock.now += 0.2
            fleet.tick()
            fleet.rollout.abort("public")
            assert await notifier.flush(10)
        finally:
            await notifier.stop()
    events = [e.event for e in receiver.events()]
    assert events == [
        "policy.rollout-complete",
        "policy.rollout-held",
        "policy.rollout-aborted",
    ]
    assert "NACKed RDS: bad" in receiver.events()[1].body["text"]


def _webhook(url: str) -> Webhook:
    return Webhook(url, "test", secret=b"s", backoff=0.02, max_backoff=0.1, concurrency=1)
