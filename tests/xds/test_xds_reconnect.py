"""A reconnecting state-of-the-world Envoy (after its stream broke, or turnout restarted)
asks again for every type with the version it last ACKed: what it has already is not
sent again, what it lacks is, and later changes go as from an ACKed response."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import RecordingCallbacks

from turnout.cache import CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ORDER, ROUTE_TYPE, Snapshot
from turnout.testing import (
    AdsClient,
    RunningXds,
    assignment,
    eds_cluster,
    eventually,
    make_snapshot,
    rds_listener,
    resource_names,
    weighted_routes,
)
from turnout.xds import ProxyStatus

pytestmark = pytest.mark.timeout(30)


def _stream(xds: RunningXds) -> ProxyStatus | None:
    """The newest stream's status, once the closed one is gone and the new one exists."""
    proxies = xds.server.proxies()
    if len(proxies) != 1 or not proxies[0].types:
        return None
    return proxies[0]


async def _reconnect(xds: RunningXds, old: AdsClient) -> AdsClient:
    """Break ``old``'s stream and resume its subscriptions on a new one."""
    await old.close()
    await eventually(lambda: not xds.server.proxies(), what="the old stream closed")
    new = await xds.client(old.node.id, old.node.cluster)
    await new.resume(old)
    return new


def _two_gateways(b_weights: dict[str, int]) -> Snapshot:
    """Two listeners, each with its own route configuration (``ra`` and ``rb``)."""
    snapshot = Snapshot.of(
        clusters=[eds_cluster(n) for n in ("x", "y", "z")],
        endpoints=[assignment(n, [("10.0.0.1", 80)]) for n in ("x", "y", "z")],
        listeners=[rds_listener("a", "ra", 10000), rds_listener("b", "rb", 10001)],
        routes=[weighted_routes("ra", {"x": 100}), weighted_routes("rb", b_weights)],
    )
    snapshot.check()
    return snapshot


async def test_reconnect_with_the_current_versions_is_sent_nothing(
    xds: RunningXds, callbacks: RecordingCallbacks
) -> None:
    """A proxy reconnecting with the versions it has, which are the current ones, gets
    no response of any type, and the stream reports it ACKed and synced at once."""
    snapshot = make_snapshot({"a": 90, "b": 10})
    xds.publish(snapshot, version="policy-1")
    old = await xds.client()
    accepted = await old.bootstrap()
    responses_before = sum(1 for e in callbacks.events if e[0] == "response")
    new = await _reconnect(xds, old)
    status = await eventually(
        lambda: (
            (s := _stream(xds)) is not None
            and s.synced_version == "policy-1"
            and s.types.keys() == accepted.keys()
            and s
        ),
        what="the reconnected proxy reported synced on every type",
    )
    await new.expect_silence(0.3)
    assert sum(1 for e in callbacks.events if e[0] == "response") == responses_before
    for type_url, response in accepted.items():
        kind = status.types[type_url]
        assert kind.acked_version == kind.sent_version == response.version_info
        assert kind.behind_since is None


async def test_reconnect_with_a_stale_version_gets_that_type(xds: RunningXds) -> None:
    """A proxy whose endpoints changed while it was away gets EDS, in full, and only
    EDS: its clusters, listeners and routes are current."""
    xds.publish(make_snapshot({"a": 90, "b": 10}, endpoints={"a": [("10.0.0.1", 80)]}))
    old = await xds.client()
    await old.bootstrap()
    xds.publish(make_snapshot({"a": 90, "b": 10}, endpoints={"a": [("10.0.0.2", 80)]}))
    new = await _reconnect(xds, old)
    eds = await new.recv()
    assert eds.type_url == ENDPOINT_TYPE
    assert resource_names(eds) == ["a", "b"]
    await new.ack(eds)
    await new.expect_silence(0.3)


async def test_reconnect_after_a_cluster_change_warms_its_endpoints(xds: RunningXds) -> None:
    """Clusters changed while the proxy was away: CDS is answered, and EDS with it even
    though the assignments the proxy has are current (a changed cluster warms until it
    gets its assignment)."""
    xds.publish(make_snapshot({"a": 100}))
    old = await xds.client()
    await old.bootstrap()
    xds.publish(make_snapshot({"a": 100}, padding=3))  # same names, other cluster bytes
    new = await _reconnect(xds, old)
    cds = await new.recv()
    assert cds.type_url == CLUSTER_TYPE
    eds = await new.recv()  # EDS is never held behind CDS's ACK
    assert (eds.type_url, resource_names(eds)) == (ENDPOINT_TYPE, ["a"])
    await new.ack(cds)
    await new.ack(eds)
    await new.expect_silence(0.3)


async def test_reconnect_after_a_listener_change_warms_its_routes(xds: RunningXds) -> None:
    """Listeners changed while the proxy was away: LDS is answered, then (once it is
    ACKed) RDS too, though the routes the proxy has are current (a changed listener
    warms until it gets its routes); clusters and endpoints are not sent."""
    xds.publish(make_snapshot({"a": 100}))
    old = await xds.client()
    await old.bootstrap()
    xds.publish(make_snapshot({"a": 100}, port=10001))
    new = await _reconnect(xds, old)
    lds = await new.recv()
    assert lds.type_url == LISTENER_TYPE
    await new.expect_silence(0.2)  # RDS waits for the listeners' ACK
    await new.ack(lds)
    rds = await new.recv()
    assert (rds.type_url, resource_names(rds)) == (ROUTE_TYPE, ["public"])
    await new.ack(rds)
    await new.expect_silence(0.2)


async def test_reconnect_after_a_nack_gets_the_current_version(xds: RunningXds) -> None:
    """A proxy that NACKed the current endpoints reconnects with the version it last
    ACKed (Envoy never reports a NACKed one): it is not current, so EDS is answered."""
    xds.publish(make_snapshot({"a": 100}, endpoints={"a": [("10.0.0.1", 80)]}))
    old = await xds.client()
    first = await old.bootstrap()
    xds.publish(make_snapshot({"a": 100}, endpoints={"a": [("10.0.0.2", 80)]}))
    rejected = await old.recv()
    assert rejected.type_url == ENDPOINT_TYPE
    await old.nack(rejected, "endpoint 10.0.0.2: rejected")
    await old.expect_silence(0.2)
    assert old.versions[ENDPOINT_TYPE] == first[ENDPOINT_TYPE].version_info
    new = await _reconnect(xds, old)
    eds = await new.recv()
    assert (eds.type_url, eds.version_info) == (ENDPOINT_TYPE, rejected.version_info)
    await new.ack(eds)
    await new.expect_silence(0.2)


async def test_a_change_after_a_silent_reconnect_sends_only_what_changed(xds: RunningXds) -> None:
    """After a reconnect that was sent nothing, a change of one route configuration
    sends that one only (the routes the proxy reported are its base), and the proxy is
    synced again once it ACKs."""
    xds.publish(_two_gateways({"y": 100}), version="policy-1")
    old = await xds.client()
    await old.bootstrap()
    assert old.names[ROUTE_TYPE] == ("ra", "rb")
    new = await _reconnect(xds, old)
    await eventually(
        lambda: (
            (s := _stream(xds)) is not None
            and s.synced_version == "policy-1"
            and ROUTE_TYPE in s.types
        ),
        what="synced without a response",
    )
    await new.expect_silence(0.2)
    xds.publish(_two_gateways({"y": 50, "z": 50}), version="policy-2")
    rds = await new.recv()
    assert (rds.type_url, resource_names(rds)) == (ROUTE_TYPE, ["rb"])
    await new.ack(rds)
    await new.expect_silence(0.2)
    await eventually(
        lambda: (s := _stream(xds)) is not None and s.synced_version == "policy-2",
        what="synced at the change",
    )


async def test_reconnect_naming_more_than_it_had_is_answered(xds: RunningXds) -> None:
    """A proxy reconnecting with a route configuration name it never had is sent the
    selection (its version names other content); one naming a route configuration
    that does not exist is sent nothing until it appears, then only it."""
    xds.publish(_two_gateways({"y": 100}))
    old = await xds.client()
    await old.bootstrap()
    old.names[ROUTE_TYPE] = ("ra", "rb", "rc")  # rc does not exist
    new = await _reconnect(xds, old)
    await new.expect_silence(0.3)
    with_rc = Snapshot.of(
        clusters=[eds_cluster(n) for n in ("x", "y", "z")],
        endpoints=[assignment(n, [("10.0.0.1", 80)]) for n in ("x", "y", "z")],
        listeners=[rds_listener("a", "ra", 10000), rds_listener("b", "rb", 10001)],
        routes=[
            weighted_routes("ra", {"x": 100}),
            weighted_routes("rb", {"y": 100}),
            weighted_routes("rc", {"z": 100}),
        ],
    )
    xds.publish(with_rc)
    rds = await new.recv()
    assert (rds.type_url, resource_names(rds)) == (ROUTE_TYPE, ["rc"])

    other = await xds.client("proxy-2")
    await other.bootstrap()
    other.names[ROUTE_TYPE] = ("ra", "rb", "rc")  # it has ra and rb only
    await other.close()
    again = await xds.client("proxy-2")
    await again.resume(other)
    rds = await again.recv()
    assert (rds.type_url, resource_names(rds)) == (ROUTE_TYPE, ["ra", "rb", "rc"])


async def test_legacy_wildcard_reconnect_with_the_current_version(xds: RunningXds) -> None:
    """A legacy wildcard CDS subscription (no names) resumed with the current version
    gets nothing, stays wildcard, and gets every cluster when one is added."""
    xds.publish(make_snapshot({"a": 100}))
    old = await xds.client(kind="cds")
    await old.request(CLUSTER_TYPE)
    await old.ack(await old.recv())
    await old.close()
    await eventually(lambda: not xds.server.proxies(), what="the old stream closed")
    new = await xds.client(kind="cds")
    await new.resume(old)
    await new.expect_silence(0.3)
    xds.publish(make_snapshot({"a": 100}, extra_clusters=["b"]))
    assert resource_names(await new.recv()) == ["a", "b"]


async def test_first_request_without_a_version_is_answered(xds: RunningXds) -> None:
    """A proxy that has nothing (an empty version_info) is answered, even when it names
    exactly the current resources."""
    snapshot = make_snapshot({"a": 100})
    xds.publish(snapshot)
    client = await xds.client()
    await client.request(ENDPOINT_TYPE, ["a"], version="")
    eds = await client.recv()
    assert (eds.type_url, resource_names(eds)) == (ENDPOINT_TYPE, ["a"])
    assert eds.version_info == snapshot.select(ENDPOINT_TYPE, frozenset({"a"}))[1]


_TYPE_VERSIONS = """
import sys
from turnout.cache import ORDER
from turnout.compile import compile_policies
from turnout.policy import load_policies
compiled = compile_policies(load_policies(sys.argv[1]))
print(compiled.policy_version)
for type_url in ORDER:
    print(type_url, compiled.snapshot.type_version(type_url))
"""

_SERVICE = """kind: Service
name: svc{index}
hosts: [svc{index}.example.com]
versions:
  v1: {{endpoints: ["127.0.0.1:{p1}"]}}
  v2: {{endpoints: ["127.0.0.1:{p2}"]}}
stable: v1
traffic: {{v1: 90, v2: 10}}
rules:
  - name: dogfood
    match: {{headers: {{x-employee: "true"}}}}
    traffic: {{v1: 50, v2: 50}}
"""


def test_type_versions_are_identical_across_processes(tmp_path: Path) -> None:
    """Two processes (as a restarted `turnout serve` is) compiling the same policies
    give the policy and every type the same version, whatever their hash seeds: a
    reconnecting proxy's versions can be compared with the restarted server's."""
    (tmp_path / "gateway.yaml").write_text(
        "kind: Gateway\nname: public\nport: 10000\naddress: 127.0.0.1\n"
    )
    for index in range(5):
        (tmp_path / f"svc{index}.yaml").write_text(
            _SERVICE.format(index=index, p1=20000 + index, p2=30000 + index)
        )
    outputs = []
    for seed in ("1", "2"):
        result = subprocess.run(
            [sys.executable, "-c", _TYPE_VERSIONS, str(tmp_path)],
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        )
        outputs.append(result.stdout)
    assert outputs[0] == outputs[1]
    assert len(outputs[0].splitlines()) == 1 + len(ORDER)


async def test_synced_at_is_when_the_last_type_asked_for_was_found_in_sync(
    xds: RunningXds,
) -> None:
    """A reconnecting proxy's requests arrive type by type: it is reported synced on
    the first, and synced_at moves to when each later type was found in sync, so it
    tells when the proxy's whole reconnect was."""
    xds.publish(make_snapshot({"a": 100}), version="policy-1")
    old = await xds.client()
    await old.bootstrap()
    await old.close()
    await eventually(lambda: not xds.server.proxies(), what="the old stream closed")
    new = await xds.client()
    new.versions = dict(old.versions)
    await new.request(CLUSTER_TYPE, nonce="")
    first = await eventually(
        lambda: (s := _stream(xds)) is not None and s.synced_version == "policy-1" and s,
        what="synced on CDS",
    )
    assert first.synced_at is not None
    await new.request(LISTENER_TYPE, nonce="")
    later = await eventually(
        lambda: (
            (s := _stream(xds)) is not None
            and LISTENER_TYPE in s.types
            and s.synced_at is not None
            and first.synced_at is not None
            and s.synced_at > first.synced_at
            and s
        ),
        what="synced_at moved on LDS",
    )
    assert later.synced_version == "policy-1"
    await new.expect_silence(0.2)
