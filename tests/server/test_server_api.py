"""The public surface of turnout.server."""

from __future__ import annotations

import turnout.server


def test_public_surface() -> None:
    """turnout.server exports exactly its documented names, all importable."""
    assert sorted(turnout.server.__all__) == sorted(
        [
            "ACTIONS",
            "ActionError",
            "ActionResult",
            "Actions",
            "AdminServer",
            "App",
            "CertificateError",
            "Comparing",
            "Controller",
            "Dashboard",
            "ConfigRollout",
            "ControllerView",
            "RolloutError",
            "RolloutState",
            "only_safer",
            "Driving",
            "DrivingError",
            "FanOut",
            "HeapKeeper",
            "Metrics",
            "Notifier",
            "NotifyConfigError",
            "Webhook",
            "load_webhooks",
            "sign",
            "PolicyChange",
            "PolicyHistory",
            "RETENTION",
            "RETENTION_MARGIN",
            "Rejection",
            "ReleaseOptions",
            "ReleaseTransition",
            "SecurityCollector",
            "ServerCertificates",
            "Timer",
            "VersionClusters",
            "analysis_view",
            "channel_credentials",
            "collector_paused",
            "compare_targets",
            "configure_logging",
            "dark_view",
            "link_parents",
            "load_identity_map",
            "metrics_node",
            "read_token_file",
            "rejection_summary",
            "service_view",
            "split_address",
            "version_clusters",
            "watch_policies",
        ]
    )
    for name in turnout.server.__all__:
        assert hasattr(turnout.server, name)
