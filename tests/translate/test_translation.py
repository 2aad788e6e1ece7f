"""The public surface: translate, select, determinism, listeners and to_json."""

from __future__ import annotations

import pytest
from envoy.config.listener.v3 import listener_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)

import turnout.translate
from turnout.policy import PolicySet
from turnout.translate import Resources, cluster_name, pool_cluster_name, to_json, translate
from turnout.translate._translation import scope_host

from ._policies import comprehensive


def _names(resources: Resources) -> dict[str, list[str]]:
    return {
        "clusters": [c.name for c in resources.clusters],
        "endpoints": [e.cluster_name for e in resources.endpoints],
        "listeners": [x.name for x in resources.listeners],
        "routes": [r.name for r in resources.routes],
        "scoped_routes": [s.name for s in resources.scoped_routes],
    }


def _serialized(resources: Resources) -> list[bytes]:
    messages = [*resources.clusters, *resources.endpoints, *resources.listeners, *resources.routes]
    return [m.SerializeToString(deterministic=True) for m in messages]


def test_public_surface() -> None:
    """turnout.translate exports exactly its documented API."""
    assert sorted(turnout.translate.__all__) == [
        "Assignment",
        "COMPARE_HEADER",
        "Resources",
        "RouteParts",
        "ServiceResources",
        "Translation",
        "Translator",
        "WrittenCluster",
        "cluster_name",
        "compare_cluster_name",
        "pool_cluster_name",
        "route_name",
        "to_json",
        "translate",
    ]


def test_names() -> None:
    """Version clusters are `{service}_{version}`, the pool `{service}_instances`."""
    assert cluster_name("checkout", "v2") == "checkout_v2"
    assert pool_cluster_name("checkout") == "checkout_instances"


def test_select_public_gateway() -> None:
    """An Envoy with `public` gets its listener, routes and its services' clusters only."""
    names = _names(translate(comprehensive()).select(["public"]))
    assert names == {
        "clusters": [
            "catalog_a",
            "catalog_b",
            "catalog_instances",
            "checkout_v1",
            "checkout_v2",
            "checkout_v3",
        ],
        "endpoints": [
            "catalog_a",
            "catalog_b",
            "catalog_instances",
            "checkout_v1",
            "checkout_v2",
            "checkout_v3",
        ],
        "listeners": ["public"],
        "routes": ["public/catalog.example.com", "public/checkout.example.com"],
        "scoped_routes": ["public/catalog.example.com", "public/checkout.example.com"],
    }


def test_select_internal_gateway() -> None:
    """An Envoy with `internal` gets its services' clusters, DNS ones without assignments."""
    names = _names(translate(comprehensive()).select(["internal"]))
    assert names == {
        "clusters": [
            "catalog_a",
            "catalog_b",
            "catalog_instances",
            "search_blue",
            "search_green",
            "search_instances",
        ],
        "endpoints": ["catalog_a", "catalog_b", "catalog_instances", "search_green"],
        "listeners": ["internal"],
        "routes": ["internal", "internal/catalog.example.com"],
        "scoped_routes": ["internal/catalog.example.com"],
    }


def test_all_is_every_gateway_without_duplicates() -> None:
    """`all` is the selection of every gateway; a shared service's clusters appear once."""
    translation = translate(comprehensive())
    assert translation.all == translation.select(["public", "internal", "public"])
    assert _names(translation.all)["listeners"] == ["internal", "public"]
    clusters = _names(translation.all)["clusters"]
    assert len(clusters) == len(set(clusters)) == 9


def test_select_nothing_is_empty() -> None:
    """An Envoy with no gateways gets no resources at all."""
    assert translate(comprehensive()).select([]) == Resources()


def test_select_unknown_gateway_raises() -> None:
    """Asking for a gateway the policy set does not have is a caller bug and raises KeyError."""
    with pytest.raises(KeyError, match="nope"):
        translate(comprehensive()).select(["public", "nope"])


def test_every_route_target_is_a_selected_cluster() -> None:
    """Every cluster a selected route or mirror names is in the same selection."""
    translation = translate(comprehensive())
    for gateway in ("public", "internal"):
        resources = translation.select([gateway])
        clusters = {c.name for c in resources.clusters}
        for config in resources.routes:
            for vhost in config.virtual_hosts:
                for route in vhost.routes:
                    action = route.route
                    targets = {action.cluster} - {""}
                    targets |= {w.name for w in action.weighted_clusters.clusters}
                    targets |= {m.cluster for m in action.request_mirror_policies}
                    assert targets <= clusters, (gateway, route.name)


def test_translation_is_deterministic() -> None:
    """Translating the same policy set twice gives byte-identical resources."""
    first = _serialized(translate(comprehensive()).all)
    second = _serialized(translate(comprehensive()).all)
    assert first == second


def test_empty_policy_set() -> None:
    """A policy set with nothing in it translates to nothing."""
    assert translate(PolicySet(gateways=(), services=())).all == Resources()


def _manager(listener: listener_pb2.Listener) -> hcm_pb2.HttpConnectionManager:
    (network_filter,) = listener.filter_chains[0].filters
    manager = hcm_pb2.HttpConnectionManager()
    assert network_filter.typed_config.Unpack(manager)
    return manager


def test_a_gateway_of_exact_hosts_is_scoped_by_gateway_and_host_name() -> None:
    """A gateway whose hosts are all exact names routes by scoped RDS over ADS: its scope
    key is (gateway header, :authority before any port), the header written by an early
    header mutation, and each scope names its own route configuration, which removes
    the header again."""
    resources = translate(comprehensive()).select(["public"])
    manager = _manager(resources.listeners[0])
    assert manager.WhichOneof("route_specifier") == "scoped_routes"
    scoped = manager.scoped_routes
    assert scoped.scoped_rds.scoped_rds_config_source.HasField("ads")
    assert scoped.rds_config_source.HasField("ads")
    gateway, host = (f.header_value_extractor for f in scoped.scope_key_builder.fragments)
    assert (gateway.name, gateway.index) == ("x-turnout-gateway", 0)
    assert (host.name, host.element_separator, host.index) == (":authority", ":", 0)
    (early,) = manager.early_header_mutation_extensions
    assert early.typed_config.type_url.endswith("header_mutation.v3.HeaderMutation")
    checkout = next(s for s in resources.scoped_routes if s.name.endswith("/checkout.example.com"))
    assert checkout.route_configuration_name == "public/checkout.example.com"
    assert [f.string_key for f in checkout.key.fragments] == ["public", "checkout.example.com"]
    routes = {r.name: r for r in resources.routes}["public/checkout.example.com"]
    # Both host forms (bare and with any port) share the host name's scope.
    assert list(routes.virtual_hosts[0].domains) == [
        "checkout.example.com",
        "checkout.example.com:*",
    ]
    assert list(routes.request_headers_to_remove) == ["x-turnout-gateway"]


def test_a_wildcard_host_keeps_the_gateway_on_one_route_configuration() -> None:
    """A gateway with a wildcard host anywhere (`*` here) is not scoped: Envoy's scope
    look-up is exact, so its one route configuration holds every virtual host; its
    exact host names keep standby scopes (ready should the gateway turn scoped)."""
    resources = translate(comprehensive()).select(["internal"])
    manager = _manager(resources.listeners[0])
    assert manager.WhichOneof("route_specifier") == "rds"
    assert manager.rds.route_config_name == "internal"
    whole = {r.name: r for r in resources.routes}["internal"]
    assert [v.name for v in whole.virtual_hosts] == ["catalog", "search"]
    assert [s.name for s in resources.scoped_routes] == ["internal/catalog.example.com"]


@pytest.mark.parametrize(
    ("host", "scope"),
    [
        ("checkout.example.com", "checkout.example.com"),
        ("Checkout.Example.com:8443", "checkout.example.com"),
        ("checkout.example.com:*", "checkout.example.com"),
        ("*", None),
        ("*.example.com", None),
        ("example.*", None),
        ("[::1]:80", None),
        ("checkout:x", None),
    ],
)
def test_scope_host(host: str, scope: str | None) -> None:
    """A policy host's scope is its lowercased name without the port; wildcard names
    and IPv6 literals have none."""
    assert scope_host(host) == scope


def test_listener_per_gateway_uses_rds_over_ads() -> None:
    """A gateway's listener binds its address and port, and takes its routes by RDS over ADS."""
    (listener,) = translate(comprehensive()).select(["internal"]).listeners
    assert isinstance(listener, listener_pb2.Listener)
    socket = listener.address.socket_address
    assert (socket.address, socket.port_value) == ("127.0.0.1", 10001)
    (network_filter,) = listener.filter_chains[0].filters
    manager = hcm_pb2.HttpConnectionManager()
    assert network_filter.typed_config.Unpack(manager)
    assert manager.stat_prefix == "internal"
    assert manager.rds.route_config_name == "internal"
    assert manager.rds.config_source.HasField("ads")
    assert [f.name for f in manager.http_filters] == ["envoy.filters.http.router"]
    assert manager.http_filters[0].typed_config.type_url.endswith("router.v3.Router")


def test_to_json_shape() -> None:
    """to_json gives the five resource lists, each item with its proto field names and @type."""
    rendered = to_json(translate(comprehensive()).select(["public"]))
    assert sorted(rendered) == ["clusters", "endpoints", "listeners", "routes", "scoped_routes"]
    assert rendered["clusters"][0]["@type"] == (
        "type.googleapis.com/envoy.config.cluster.v3.Cluster"
    )
    assert rendered["endpoints"][0]["cluster_name"] == "catalog_a"
    assert rendered["routes"][0]["@type"].endswith("envoy.config.route.v3.RouteConfiguration")
    assert rendered["listeners"][0]["name"] == "public"
