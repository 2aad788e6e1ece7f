"""Listeners: one per gateway, an HTTP connection manager whose routes come by RDS."""

from __future__ import annotations

from envoy.config.core.v3 import address_pb2
from envoy.config.listener.v3 import listener_components_pb2, listener_pb2
from envoy.extensions.filters.http.router.v3 import router_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)
from google.protobuf import any_pb2, wrappers_pb2
from google.protobuf.message import Message

from turnout.policy import Gateway

from ._common import ads

__all__ = ["listener"]

HCM = hcm_pb2.HttpConnectionManager


def listener(gateway: Gateway) -> listener_pb2.Listener:
    """The listener of one gateway, named after it; its route configuration shares the name."""
    manager = HCM(
        stat_prefix=gateway.name,
        codec_type=HCM.AUTO,
        rds=hcm_pb2.Rds(config_source=ads(), route_config_name=gateway.name),
        http_filters=[
            hcm_pb2.HttpFilter(
                name="envoy.filters.http.router", typed_config=_pack(router_pb2.Router())
            )
        ],
        # A gateway is the edge: the client is the peer of the connection, not whatever an
        # x-forwarded-for header claims. Envoy appends the peer to x-forwarded-for.
        use_remote_address=wrappers_pb2.BoolValue(value=True),
    )
    return listener_pb2.Listener(
        name=gateway.name,
        address=address_pb2.Address(
            socket_address=address_pb2.SocketAddress(
                address=gateway.address, port_value=gateway.port
            )
        ),
        filter_chains=[
            listener_components_pb2.FilterChain(
                filters=[
                    listener_components_pb2.Filter(
                        name="envoy.filters.network.http_connection_manager",
                        typed_config=_pack(manager),
                    )
                ]
            )
        ],
    )


def _pack(message: Message) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message, deterministic=True)
    return packed
