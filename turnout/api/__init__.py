"""turnout's own gRPC API: ``turnout.v1.ReleaseService`` (see protos/turnout/v1/).

It reads the xDS server's proxy states and the cache, never the policies: the
composition root hands it a :data:`PolicySource` returning a :class:`PolicyView`.
"""

from __future__ import annotations

from turnout.api._compare import CompareView, comparison_message
from turnout.api._convert import (
    proxy_message,
    rollout_message,
    service_message,
    status_message,
)
from turnout.api._fast_json import fast_to_json
from turnout.api._json import to_json
from turnout.api._model import (
    ApprovalView,
    DarkView,
    EndpointsView,
    IncrementalView,
    MirrorView,
    PolicyChangeView,
    PolicySource,
    PolicyView,
    RejectionView,
    ReleaseAnalysisView,
    ReleaseStateView,
    ReleaseTransitionView,
    RolloutAbortError,
    RolloutView,
    SegmentView,
    ServiceView,
    ShareView,
)
from turnout.api._service import SERVICE_NAME, ProxySource, ReleaseService

__all__ = [
    "SERVICE_NAME",
    "ApprovalView",
    "CompareView",
    "DarkView",
    "EndpointsView",
    "IncrementalView",
    "MirrorView",
    "PolicyChangeView",
    "PolicySource",
    "PolicyView",
    "ProxySource",
    "RejectionView",
    "ReleaseAnalysisView",
    "ReleaseService",
    "ReleaseStateView",
    "ReleaseTransitionView",
    "RolloutAbortError",
    "RolloutView",
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
