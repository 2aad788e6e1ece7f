"""Responses framed from cached bytes parse back as the DiscoveryResponse they stand for."""

from __future__ import annotations

from envoy.service.discovery.v3.discovery_pb2 import DiscoveryResponse

from turnout.cache import CLUSTER_TYPE, CachedResource
from turnout.testing import eds_cluster
from turnout.xds._wire import frame_response


def test_framed_response_parses_back() -> None:
    """Version, resources (in order), type URL and nonce survive framing byte for byte."""
    resources = [CachedResource.of(CLUSTER_TYPE, eds_cluster(n, padding=300)) for n in "ab"]
    framed = frame_response("v1", CLUSTER_TYPE, resources, "n-7")
    parsed = DiscoveryResponse.FromString(framed)
    assert parsed.version_info == "v1"
    assert parsed.type_url == CLUSTER_TYPE
    assert parsed.nonce == "n-7"
    assert [a.SerializeToString(deterministic=True) for a in parsed.resources] == [
        r.serialized for r in resources
    ]


def test_empty_response_frames() -> None:
    """A response with no resources still carries its version, type and nonce."""
    parsed = DiscoveryResponse.FromString(frame_response("", CLUSTER_TYPE, [], "x"))
    assert (parsed.version_info, len(parsed.resources), parsed.nonce) == ("", 0, "x")
