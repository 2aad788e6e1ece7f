"""The public surface of turnout.xds."""

from __future__ import annotations

import turnout.xds


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
