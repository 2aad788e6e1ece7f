"""The xDS server: ADS plus per-type CDS/EDS/LDS/RDS over grpc.aio, state of the world
and incremental (Delta).

It serves what a ``SnapshotSource`` (``_source``; ``turnout.cache.SnapshotCache``)
holds and never reads policies or translates them.
The protocol rules (nonces, ACK/NACK, wildcard, ordering, warming) are comments at
the code they govern, each linked to its section of Envoy's xDS protocol doc: state of
the world in ``_stream``, what Delta adds in ``_delta``, what both share in ``_base``.
Who may open a stream and claim which node, and the limits on what it asks, are in
``_security``.
"""

from __future__ import annotations

from turnout.xds._callbacks import XdsCallbacks
from turnout.xds._security import (
    IdentityMap,
    IdentityMapError,
    Limits,
    PeerIdentity,
    StreamGuard,
    StreamRejectedError,
)
from turnout.xds._server import DELTA_SERVICES, SERVICES, XdsServer
from turnout.xds._source import SnapshotSource, WatchHandle
from turnout.xds._status import NackRecord, ProxyStatus, StreamInfo, TypeStatus

__all__ = [
    "DELTA_SERVICES",
    "SERVICES",
    "IdentityMap",
    "IdentityMapError",
    "Limits",
    "NackRecord",
    "PeerIdentity",
    "ProxyStatus",
    "SnapshotSource",
    "StreamGuard",
    "StreamInfo",
    "StreamRejectedError",
    "TypeStatus",
    "WatchHandle",
    "XdsCallbacks",
    "XdsServer",
]
