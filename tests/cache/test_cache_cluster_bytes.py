"""A cluster cached from its bytes is what caching its message gives: name, bytes,
version and, for the consistency check, the EDS name the message references."""

from __future__ import annotations

import pytest
from envoy.config.cluster.v3.cluster_pb2 import Cluster
from envoy.config.core.v3.config_source_pb2 import AggregatedConfigSource, ConfigSource

from turnout.cache import CLUSTER_TYPE, CachedResource


def _eds(name: str, service_name: str = "") -> Cluster:
    cluster = Cluster(name=name, type=Cluster.EDS)
    cluster.eds_cluster_config.eds_config.CopyFrom(ConfigSource(ads=AggregatedConfigSource()))
    cluster.eds_cluster_config.service_name = service_name
    return cluster


def _cases() -> dict[str, bytes]:
    rest_with_name = Cluster(name="second", type=Cluster.STRICT_DNS).SerializeToString()
    type_first = Cluster(type=Cluster.EDS).SerializeToString() + b"\n\x05first"
    return {
        "eds": _eds("shop_v1").SerializeToString(deterministic=True),
        "eds, long name": _eds("s" * 300).SerializeToString(deterministic=True),
        "eds with a service name": _eds("shop_v2", "shared").SerializeToString(deterministic=True),
        "strict dns": Cluster(name="dns", type=Cluster.STRICT_DNS).SerializeToString(
            deterministic=True
        ),
        "no discovery type set": Cluster(name="plain").SerializeToString(deterministic=True),
        "custom cluster type": Cluster(
            name="custom", cluster_type=Cluster.CustomClusterType(name="x")
        ).SerializeToString(deterministic=True),
        "name given twice": b"\n\x05first" + rest_with_name,
        "name not first": type_first,
        "eds, then its name again": b"\n\x05first" + _eds("second").SerializeToString(),
    }


@pytest.mark.parametrize("case", sorted(_cases()))
def test_of_cluster_reads_what_the_message_says(case: str) -> None:
    """Read from the bytes (a memo of the rest shared across calls), a cluster's name,
    references (EDS name or none), bytes and version equal those of the parsed message."""
    serialized = _cases()[case]
    # bytes given are trusted to be the serialization (as by of), so the odd cases
    # below, not in field order, keep theirs
    expected = CachedResource.of(
        CLUSTER_TYPE, Cluster.FromString(serialized), serialized=serialized
    )
    rests: dict[bytes, frozenset[str] | None] = {}
    for _ in range(2):  # the second time from the memo
        found = CachedResource.of_cluster(serialized, rests)
        assert (found.name, found.references) == (expected.name, expected.references)
        assert (found.serialized, found.version) == (expected.serialized, expected.version)
        assert found.message == Cluster.FromString(serialized)


def test_of_cluster_shares_a_rest_between_names() -> None:
    """Two clusters with the same rest get each their own name as EDS name."""
    rests: dict[bytes, frozenset[str] | None] = {}
    first = CachedResource.of_cluster(_eds("a_v1").SerializeToString(deterministic=True), rests)
    second = CachedResource.of_cluster(_eds("b_v1").SerializeToString(deterministic=True), rests)
    assert (first.references, second.references) == ({"a_v1"}, {"b_v1"})
    assert len(rests) == 1
