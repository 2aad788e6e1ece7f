"""The state-of-the-world xDS server: ADS plus per-type CDS/EDS/LDS/RDS over grpc.aio.

It serves what ``turnout.cache`` holds and never reads policies or translates them.
The protocol decisions (nonces, ACK/NACK, wildcard, ordering, warming) are written
down in ``_stream``.
"""

from __future__ import annotations

from turnout.xds._callbacks import XdsCallbacks
from turnout.xds._server import SERVICES, XdsServer
from turnout.xds._status import NackRecord, ProxyStatus, StreamInfo, TypeStatus

__all__ = [
    "SERVICES",
    "NackRecord",
    "ProxyStatus",
    "StreamInfo",
    "TypeStatus",
    "XdsCallbacks",
    "XdsServer",
]
