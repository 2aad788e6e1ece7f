"""What the server knows about each connected proxy, for /status and for tests."""

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

    def to_json(self) -> dict[str, str]:
        """JSON-safe form."""
        return {"version": self.version, "message": self.message, "at": self.at.isoformat()}


@dataclass(frozen=True, slots=True)
class TypeStatus:
    """One resource type on one stream."""

    type_url: str
    sent_version: str | None
    acked_version: str | None
    last_nack: NackRecord | None
    behind_since: datetime | None
    """Since when the proxy's ACKed version differs from what it should have; None if current."""

    def to_json(self) -> dict[str, object]:
        """JSON-safe form."""
        return {
            "sent_version": self.sent_version,
            "acked_version": self.acked_version,
            "last_nack": None if self.last_nack is None else self.last_nack.to_json(),
            "behind_since": None if self.behind_since is None else self.behind_since.isoformat(),
        }


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

    def to_json(self) -> dict[str, object]:
        """JSON-safe form, as served by the admin endpoint's /status."""
        return {
            "stream_id": self.stream_id,
            "node_id": self.node_id,
            "node_cluster": self.node_cluster,
            "kind": self.kind,
            "connected_at": self.connected_at.isoformat(),
            "types": {type_url: t.to_json() for type_url, t in sorted(self.types.items())},
            "synced_version": self.synced_version,
            "synced_at": None if self.synced_at is None else self.synced_at.isoformat(),
        }
