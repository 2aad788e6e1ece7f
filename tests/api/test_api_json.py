"""The one status document: GetStatus's answer in proto3's JSON mapping (api.to_json)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from google.protobuf.json_format import ParseDict

from turnout._proto.v1 import release_pb2 as pb
from turnout.api import PolicyView, RejectionView, status_message, to_json
from turnout.cache import CLUSTER_TYPE, ROUTE_TYPE
from turnout.xds import NackRecord, ProxyStatus, TypeStatus

AT = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def _status() -> pb.Status:
    nack = NackRecord(version="r2", message="route: unknown cluster", at=AT)
    proxy = ProxyStatus(
        stream_id=3,
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
    policy = PolicyView(
        policy_version="p2",
        accepted_at=AT,
        policies="/srv/policies",
        rejected=RejectionView(AT, ("web.yaml:8: traffic: shares sum to 95, not 100",)),
        reloads_accepted=2,
        reloads_rejected=1,
    )
    return status_message(policy, [proxy], now=AT)


def test_the_status_document_carries_what_status_showed() -> None:
    """The served version, the rejection's errors, the reloads, and per proxy its node,
    stream kind, per type the sent and ACKed versions (CDS first), its last NACK with
    Envoy's message, and whether and since when it is behind, all JSON-safe."""
    document = json.loads(json.dumps(to_json(_status())))
    assert document["served_version"] == "p2"
    assert document["rejected"]["errors"] == ["web.yaml:8: traffic: shares sum to 95, not 100"]
    assert (document["reloads_accepted"], document["reloads_rejected"]) == ("2", "1")
    assert "last_rejected" not in document  # an unset message is absent
    [proxy] = document["proxies"]
    assert (proxy["stream_id"], proxy["node_id"], proxy["node_cluster"]) == ("3", "envoy-1", "edge")
    assert (proxy["stream_kind"], proxy["synced_version"], proxy["behind"]) == ("ads", "p1", True)
    assert proxy["connected_at"] == "2026-01-02T03:04:05Z"
    cds, rds = proxy["types"]
    assert (cds["type"], cds["sent_version"], cds["acked_version"]) == ("CDS", "c1", "c1")
    assert "last_nack" not in cds
    assert "behind_since" not in cds
    assert (rds["type_url"], rds["sent_version"], rds["acked_version"]) == (ROUTE_TYPE, "r2", "r1")
    assert rds["last_nack"] == {
        "type_url": ROUTE_TYPE,
        "version": "r2",
        "message": "route: unknown cluster",
        "at": "2026-01-02T03:04:05Z",
    }
    assert proxy["last_nack"] == rds["last_nack"]
    assert proxy["behind_since"] == rds["behind_since"] == "2026-01-02T03:04:05Z"


def test_every_field_is_present_and_it_reads_back() -> None:
    """Fields at their defaults are written (an empty fleet is `proxies: []`, nothing
    served is `served_version: ""`), and the document parses back to the same message."""
    empty = to_json(status_message(PolicyView(policy_version=None), [], now=AT))
    assert (empty["served_version"], empty["proxies"], empty["services"]) == ("", [], [])
    status = _status()
    assert ParseDict(to_json(status), pb.Status()) == status
