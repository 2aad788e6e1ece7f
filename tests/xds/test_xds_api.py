"""The public surface of turnout.xds and the JSON form of its status."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import turnout.xds
from turnout.cache import CLUSTER_TYPE
from turnout.xds import NackRecord, ProxyStatus, TypeStatus


def test_public_surface() -> None:
    """turnout.xds exports exactly its documented names."""
    assert sorted(turnout.xds.__all__) == sorted(
        [
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
    )


def test_proxy_status_json_is_json_safe() -> None:
    """ProxyStatus.to_json() survives json.dumps, with times as ISO strings."""
    at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    status = ProxyStatus(
        stream_id=3,
        node_id="envoy-1",
        node_cluster="edge",
        kind="ads",
        connected_at=at,
        types={
            CLUSTER_TYPE: TypeStatus(
                type_url=CLUSTER_TYPE,
                sent_version="b",
                acked_version="a",
                last_nack=NackRecord(version="b", message="bad", at=at),
                behind_since=at,
            )
        },
    )
    decoded = json.loads(json.dumps(status.to_json()))
    assert decoded["types"][CLUSTER_TYPE] == {
        "sent_version": "b",
        "acked_version": "a",
        "last_nack": {"version": "b", "message": "bad", "at": "2026-01-02T03:04:05+00:00"},
        "behind_since": "2026-01-02T03:04:05+00:00",
    }
    assert decoded["connected_at"] == "2026-01-02T03:04:05+00:00"
