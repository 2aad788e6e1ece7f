"""The public surface of turnout.testing."""

from __future__ import annotations

import turnout.testing


def test_public_surface() -> None:
    """turnout.testing exports exactly its documented names, all importable."""
    assert sorted(turnout.testing.__all__) == sorted(
        [
            "AdsClient",
            "DeltaClient",
            "RunningXds",
            "assignment",
            "decode",
            "decode_delta",
            "eds_cluster",
            "eventually",
            "make_snapshot",
            "rds_listener",
            "resource_names",
            "running_xds",
            "wait_until",
            "weighted_routes",
        ]
    )
    for name in turnout.testing.__all__:
        assert hasattr(turnout.testing, name)
