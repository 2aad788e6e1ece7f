"""The public surface of turnout.api."""

from __future__ import annotations

import turnout.api
from turnout._proto.v1 import release_pb2


def test_public_names() -> None:
    """turnout.api exports exactly the service, its source types and the converters."""
    assert sorted(turnout.api.__all__) == sorted(
        [
            "SERVICE_NAME",
            "CompareView",
            "DarkView",
            "EndpointsView",
            "IncrementalView",
            "MirrorView",
            "PolicySource",
            "PolicyChangeView",
            "PolicyView",
            "ProxySource",
            "RejectionView",
            "ReleaseAnalysisView",
            "ReleaseService",
            "ReleaseStateView",
            "RolloutAbortError",
            "RolloutView",
            "ApprovalView",
            "ReleaseTransitionView",
            "SegmentView",
            "ServiceView",
            "ShareView",
            "comparison_message",
            "fast_to_json",
            "proxy_message",
            "rollout_message",
            "service_message",
            "status_message",
            "to_json",
        ]
    )
    for name in turnout.api.__all__:
        assert hasattr(turnout.api, name)


def test_service_name_is_the_proto_package() -> None:
    """The service is served as turnout.v1.ReleaseService, the name the proto gives it."""
    assert turnout.api.SERVICE_NAME == "turnout.v1.ReleaseService"
    assert release_pb2.DESCRIPTOR.package == "turnout.v1"
