"""`turnout diff --envoy`: the Envoy resources a policy change adds, removes and changes."""

from __future__ import annotations

from turnout.diff import diff
from turnout.policy import parse_policies

from .test_diff_policy import CHECKOUT, GATEWAYS, policies


def envoy_lines(new: str, *, gateways: str = GATEWAYS) -> list[str]:
    result = diff(policies(), policies(new, gateways), envoy=True)
    assert result.envoy is not None
    return [change.text for change in result.envoy]


def test_no_change_no_resources() -> None:
    """The same set translates to the same resources: nothing listed."""
    result = diff(policies(), policies(), envoy=True)
    assert result.envoy == ()
    assert not result.changed


def test_traffic_change_changes_one_route() -> None:
    """A share change touches the gateway's route configuration, naming the route."""
    new = CHECKOUT.replace("traffic: {v1: 95, v2: 5}", "traffic: {v1: 75, v2: 25}")
    # `public` is scoped (exact hosts): checkout's routes are its host name's.
    assert envoy_lines(new) == ["~ route public/checkout.example.com (~checkout/default)"]


def test_deployed_version_adds_its_cluster_endpoints_and_pin_route() -> None:
    """A newly deployed version adds its cluster and assignment and a pin route."""
    new = CHECKOUT.replace(
        '  v3: {endpoints: ["127.0.0.1:9301"]}\n',
        '  v3: {endpoints: ["127.0.0.1:9301"]}\n  v4: {endpoints: ["127.0.0.1:9401"]}\n',
    )
    assert envoy_lines(new) == [
        "~ route public/checkout.example.com (+checkout/pin/v4)",
        "+ cluster checkout_v4",
        "+ endpoint checkout_v4",
    ]


def test_removed_service_and_moved_gateway() -> None:
    """A removed service's clusters go; a gateway's new port changes its listener; a
    gateway left with no service has one (empty) route configuration, no scope."""
    old = policies()
    new = parse_policies({"gw.yaml": GATEWAYS.replace("port: 10000", "port: 10005")})
    result = diff(old, new, envoy=True)
    assert result.envoy is not None
    texts = [change.text for change in result.envoy]
    assert texts[0] == "~ listener public"
    assert texts[1:] == [
        "- scope public/checkout.example.com",
        "+ route public",
        "- route public/checkout.example.com",
        "- cluster checkout_v1",
        "- cluster checkout_v2",
        "- cluster checkout_v3",
        "- endpoint checkout_v1",
        "- endpoint checkout_v2",
        "- endpoint checkout_v3",
    ]
    assert result.to_json()["envoy"][0] == {
        "action": "changed",
        "type": "listener",
        "name": "public",
    }
