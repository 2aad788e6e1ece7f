"""Turn translated (xDS) resources into a static Envoy bootstrap, for `envoy --mode validate`
and for experiments against a real Envoy: routes inlined into each listener's HCM instead of
RDS (a scoped listener's scopes inlined, each with its route configuration), EDS clusters
made STATIC with their assignment inline."""

from __future__ import annotations

from typing import Any

from envoy.config.bootstrap.v3 import bootstrap_pb2
from envoy.config.cluster.v3 import cluster_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)
from google.protobuf import json_format

from turnout.translate import Resources


def static_bootstrap(resources: Resources, admin_port: int = 0) -> dict[str, Any]:
    """A bootstrap (as JSON-ready dict) serving `resources` without any control plane."""
    routes = {r.name: r for r in resources.routes}
    assignments = {a.cluster_name: a for a in resources.endpoints}
    bootstrap = bootstrap_pb2.Bootstrap()
    bootstrap.node.id = "validate"
    bootstrap.node.cluster = "validate"
    admin = bootstrap.admin.address.socket_address
    admin.address, admin.port_value = "127.0.0.1", admin_port
    for listener in resources.listeners:
        static = bootstrap.static_resources.listeners.add()
        static.CopyFrom(listener)
        for chain in static.filter_chains:
            for network_filter in chain.filters:
                manager = hcm_pb2.HttpConnectionManager()
                assert network_filter.typed_config.Unpack(manager)
                if manager.HasField("scoped_routes"):
                    scoped = manager.scoped_routes
                    scoped.ClearField("scoped_rds")
                    for scope in resources.scoped_routes:
                        if scope.key.fragments[0].string_key != scoped.name:
                            continue
                        scopes = scoped.scoped_route_configurations_list
                        inline = scopes.scoped_route_configurations.add()
                        inline.CopyFrom(scope)
                        inline.ClearField("route_configuration_name")
                        inline.route_configuration.CopyFrom(routes[scope.route_configuration_name])
                else:
                    manager.route_config.CopyFrom(routes[manager.rds.route_config_name])
                network_filter.typed_config.Pack(manager)
    for cluster in resources.clusters:
        static_cluster = bootstrap.static_resources.clusters.add()
        static_cluster.CopyFrom(cluster)
        if cluster.type == cluster_pb2.Cluster.EDS:
            static_cluster.ClearField("eds_cluster_config")
            static_cluster.type = cluster_pb2.Cluster.STATIC
            static_cluster.load_assignment.CopyFrom(assignments[cluster.name])
    return json_format.MessageToDict(bootstrap, preserving_proto_field_name=True)
