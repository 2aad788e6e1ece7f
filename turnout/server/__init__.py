"""The server runtime: the process `turnout serve` runs.

It wires the layers below (compile, cache, xds, api, analysis, release) into one
process: the reload path (:class:`Controller`) fed by the policy watch, the admin
address, Prometheus metrics, TLS certificate reloading, the release driver and the
dark judgement, and the heap keeping a long-lived server wants. It imports no click:
`turnout.cli` parses options and calls :class:`App`.
"""

from __future__ import annotations

from turnout.server._actions import ACTIONS, ActionError, ActionResult, Actions
from turnout.server._admin import AdminServer
from turnout.server._analysis import VersionClusters, version_clusters
from turnout.server._app import RETENTION, RETENTION_MARGIN, App, split_address
from turnout.server._compare import Comparing, compare_targets
from turnout.server._controller import Controller, Rejection, rejection_summary
from turnout.server._dashboard import Dashboard, read_token_file
from turnout.server._driving import (
    Driving,
    DrivingError,
    ReleaseOptions,
    analysis_view,
    dark_view,
)
from turnout.server._fanout import FanOut
from turnout.server._heap import HeapKeeper, Timer, collector_paused
from turnout.server._history import PolicyChange, PolicyHistory, ReleaseTransition
from turnout.server._logging import configure_logging
from turnout.server._metrics import Metrics
from turnout.server._notify import Notifier, NotifyConfigError, Webhook, load_webhooks, sign
from turnout.server._release_view import ControllerView, service_view
from turnout.server._rollout import ConfigRollout, RolloutError, RolloutState, only_safer
from turnout.server._tls import (
    CertificateError,
    SecurityCollector,
    ServerCertificates,
    channel_credentials,
    load_identity_map,
    metrics_node,
)
from turnout.server._watch import link_parents, watch_policies

__all__ = [
    "ACTIONS",
    "RETENTION",
    "RETENTION_MARGIN",
    "ActionError",
    "ActionResult",
    "Actions",
    "AdminServer",
    "App",
    "CertificateError",
    "Comparing",
    "ConfigRollout",
    "Controller",
    "ControllerView",
    "Dashboard",
    "Driving",
    "DrivingError",
    "FanOut",
    "HeapKeeper",
    "Metrics",
    "Notifier",
    "NotifyConfigError",
    "PolicyChange",
    "PolicyHistory",
    "Rejection",
    "ReleaseOptions",
    "ReleaseTransition",
    "RolloutError",
    "RolloutState",
    "SecurityCollector",
    "ServerCertificates",
    "Timer",
    "VersionClusters",
    "Webhook",
    "analysis_view",
    "channel_credentials",
    "collector_paused",
    "compare_targets",
    "configure_logging",
    "dark_view",
    "link_parents",
    "load_identity_map",
    "load_webhooks",
    "metrics_node",
    "only_safer",
    "read_token_file",
    "rejection_summary",
    "service_view",
    "sign",
    "split_address",
    "version_clusters",
    "watch_policies",
]
