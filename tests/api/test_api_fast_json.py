"""The fast status document is the status document: fast_to_json == MessageToDict's
mapping (proto field names, defaults written) for every turnout.v1 message shape."""

from __future__ import annotations

import math
from datetime import UTC, datetime

from google.protobuf.json_format import MessageToDict

from turnout._proto.v1 import release_pb2 as pb
from turnout.api import (
    EndpointsView,
    IncrementalView,
    MirrorView,
    PolicyChangeView,
    PolicyView,
    RejectionView,
    ReleaseStateView,
    ReleaseTransitionView,
    SegmentView,
    ServiceView,
    ShareView,
    fast_to_json,
    status_message,
)
from turnout.cache import CLUSTER_TYPE, ROUTE_TYPE
from turnout.xds import NackRecord, ProxyStatus, TypeStatus

AT = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)


def _reference(message: pb.Status | pb.StatusEvent) -> dict[str, object]:
    return MessageToDict(
        message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )


def _rich_status() -> pb.Status:
    service = ServiceView(
        name="web",
        stable="v1",
        versions=("v1", "v2"),
        segments=(
            SegmentView("default", False, (ShareView("v1", "87.5"), ShareView("v2", "12.5"))),
            SegmentView("all", True, instances=True, mirror=MirrorView("v2", "10")),
        ),
        incremental=IncrementalView(
            "v2", ("12.5", "50"), 60.0, "rollback", ReleaseStateView("running", 0, AT)
        ),
        endpoints=(EndpointsView("v1", 2, 1), EndpointsView("v2", 1)),
        pin_header="x-turnout-version",
    )
    change = PolicyChangeView(
        AT, True, "p2", "web traffic", "abc123", (ReleaseTransitionView("web", "running", 0),)
    )
    policy = PolicyView(
        policy_version="p2",
        accepted_at=AT,
        policies="/srv",
        rejected=RejectionView(AT, ("web.yaml:8: traffic: shares sum to 95, not 100",)),
        services=(service,),
        reloads_accepted=2**40,
        history=(change,),
    )
    nack = NackRecord(version="r2", message="unknown cluster", at=AT)
    proxy = ProxyStatus(
        stream_id=2**53 + 1,
        node_id="envoy-1",
        node_cluster="edge",
        kind="ads",
        connected_at=AT,
        types={
            ROUTE_TYPE: TypeStatus(ROUTE_TYPE, "r2", "r1", nack, AT),
            CLUSTER_TYPE: TypeStatus(CLUSTER_TYPE, "c1", "c1", None, None),
        },
        synced_version="p1",
        synced_at=AT,
    )
    status = status_message(policy, [proxy], now=AT)
    # the driver's analysis and a dark judgement, as the release view fills them
    analysis = status.services[0].incremental.analysis
    analysis.at.FromDatetime(AT)
    analysis.kind, analysis.outcome, analysis.action = "canary", "pass", "observe"
    analysis.reasons.append("within thresholds")
    analysis.canary.version, analysis.canary.requests, analysis.canary.error_rate = "v2", 120, 0.025
    analysis.baseline.version, analysis.baseline.p99_seconds = "v1", 0.02
    analysis.checks.add(name="maxErrorRate", value=0.025, limit=0.05, p_value=0.9)
    analysis.confidence = 0.95
    dark = status.services[0].dark.add(to="v2", light=["v1"], outcome="hold")
    dark.window_seconds = 300.0
    dark.dark.requests = 7
    dark.comparison.compared = 2**40
    dark.comparison.skipped["busy"] = 3  # a map field, 64-bit values
    dark.comparison.skipped["method"] = 2**53 + 1
    return status


def test_a_rich_status_converts_exactly_as_json_format_does() -> None:
    """Every field kind of a full status (services, releases, dark, history, proxies,
    64-bit integers, optional doubles, timestamps) comes out as json_format's mapping."""
    status = _rich_status()
    assert fast_to_json(status) == _reference(status)


def test_defaults_events_and_special_floats_convert_alike() -> None:
    """An empty status writes its defaults; an event names its kind; timestamps carry 0,
    3, 6 or 9 fractional digits as protobuf writes them; NaN and infinities are the
    mapping's strings."""
    empty = pb.Status()
    assert fast_to_json(empty) == _reference(empty)
    event = pb.StatusEvent(kind=pb.StatusEvent.PROXY_ACKED, sequence=7, served_version="p")
    event.at.FromDatetime(AT)
    event.proxy.CopyFrom(_rich_status().proxies[0])
    assert fast_to_json(event) == _reference(event)
    for seconds, nanos in ((0, 0), (1, 123_000_000), (2, 123_456_000), (3, 123_456_789)):
        event.at.seconds, event.at.nanos = 1_767_225_600 + seconds, nanos
        assert fast_to_json(event)["at"] == event.at.ToJsonString()
    weird = pb.Status()
    figures = weird.services.add(name="s").incremental.analysis.canary
    figures.error_rate, figures.p50_seconds, figures.p99_seconds = math.nan, math.inf, -math.inf
    assert fast_to_json(weird) == _reference(weird)
