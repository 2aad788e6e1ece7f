"""What the server knows about each connected proxy: the ReleaseService turns it into
the one status (turnout.api's proxy_message), served by GetStatus and the admin's /status."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

__all__ = ["NackRecord", "ProxyStatus", "StreamInfo", "TypeStatus"]


@dataclass(frozen=True, slots=True)
class StreamInfo:
    """Who is on a stream: passed to callbacks."""

    stream_id: int
    kind: str
    """``"ads"``, or ``"cds"``/``"eds"``/``"lds"``/``"rds"`` for a per-type stream."""
    node_id: str
    node_cluster: str


@dataclass(frozen=True, slots=True)
class NackRecord:
    """A response version a proxy rejected, with Envoy's reason."""

    version: str
    message: str
    at: datetime


@dataclass(frozen=True, slots=True)
class TypeStatus:
    """One resource type on one stream."""

    type_url: str
    sent_version: str | None
    acked_version: str | None
    last_nack: NackRecord | None
    behind_since: datetime | None
    """Since when the proxy's ACKed version differs from what it should have; None if current."""


@dataclass(frozen=True, slots=True)
class ProxyStatus:
    """A copy of one stream's state, taken when ``XdsServer.proxies()`` was called."""

    stream_id: int
    node_id: str
    node_cluster: str
    kind: str
    connected_at: datetime
    types: dict[str, TypeStatus] = field(default_factory=dict)
    """By type URL; only the types the proxy has requested."""
    synced_version: str | None = None
    """The policy version whose every requested type this proxy has ACKed."""
    synced_at: datetime | None = None
