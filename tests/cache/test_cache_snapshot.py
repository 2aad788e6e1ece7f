"""Snapshot hashing and the consistency check."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
from envoy.config.cluster.v3.cluster_pb2 import Cluster
from envoy.config.route.v3.route_pb2 import RouteConfiguration
from envoy.config.route.v3.scoped_route_pb2 import ScopedRouteConfiguration

from turnout.cache import (
    CLUSTER_TYPE,
    ENDPOINT_TYPE,
    LISTENER_TYPE,
    ORDER,
    ROUTE_TYPE,
    CachedResource,
    InconsistentSnapshotError,
    Snapshot,
    content_version,
    pairs_version,
)
from turnout.testing import (
    assignment,
    eds_cluster,
    make_snapshot,
    rds_listener,
    weighted_routes,
)


def _tagged_cluster(name: str, tags: dict[str, str]) -> Cluster:
    cluster = eds_cluster(name)
    cluster.metadata.filter_metadata["turnout"].update(tags)
    for key, value in tags.items():
        cluster.metadata.typed_filter_metadata[key].value = value.encode()
    return cluster


def test_same_messages_give_same_versions() -> None:
    """Building twice from equal messages gives equal resource, type and whole versions."""
    one = make_snapshot({"a": 90, "b": 10}, mirror="c")
    two = make_snapshot({"a": 90, "b": 10}, mirror="c")
    assert one.group_version == two.group_version
    for type_url in ORDER:
        assert one.type_version(type_url) == two.type_version(type_url)
        assert {n: r.version for n, r in one.resources(type_url).items()} == {
            n: r.version for n, r in two.resources(type_url).items()
        }


def test_map_insertion_order_does_not_change_the_hash() -> None:
    """Map fields filled in different orders hash the same (deterministic serialization)."""
    tags = {f"k{i}": f"v{i}" for i in range(50)}
    forward = CachedResource.of(CLUSTER_TYPE, _tagged_cluster("a", tags))
    backward = CachedResource.of(
        CLUSTER_TYPE, _tagged_cluster("a", dict(reversed(list(tags.items()))))
    )
    assert forward.serialized == backward.serialized
    assert forward.version == backward.version


def test_versions_are_identical_across_processes() -> None:
    """Another interpreter, with another hash seed, computes the same snapshot version."""
    code = textwrap.dedent(
        """
        from turnout.testing import make_snapshot
        print(make_snapshot({"a": 90, "b": 10}, mirror="c").group_version)
        """
    )
    versions = set()
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        out = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
        )
        versions.add(out.stdout.strip())
    assert versions == {make_snapshot({"a": 90, "b": 10}, mirror="c").group_version}


def test_a_change_moves_only_its_resource_and_type() -> None:
    """Changing one assignment changes its version, the EDS type version and the whole
    version, and nothing else."""
    before = make_snapshot({"a": 50, "b": 50})
    after = make_snapshot({"a": 50, "b": 50}, endpoints={"a": [("10.0.0.1", 80)]})
    assert before.group_version != after.group_version
    for type_url in (CLUSTER_TYPE, LISTENER_TYPE, ROUTE_TYPE):
        assert before.type_version(type_url) == after.type_version(type_url)
    assert before.type_version(ENDPOINT_TYPE) != after.type_version(ENDPOINT_TYPE)
    eds_before, eds_after = before.resources(ENDPOINT_TYPE), after.resources(ENDPOINT_TYPE)
    assert eds_before["b"].version == eds_after["b"].version
    assert eds_before["a"].version != eds_after["a"].version


def test_type_version_is_content_version_of_its_resources() -> None:
    """A type version equals content_version over that type's resources, in any order."""
    snapshot = make_snapshot({"a": 50, "b": 50})
    resources = list(snapshot.resources(CLUSTER_TYPE).values())
    assert snapshot.type_version(CLUSTER_TYPE) == content_version(reversed(resources))
    assert len(snapshot.group_version) == 16
    int(snapshot.group_version, 16)


def test_pairs_version_is_content_version_of_the_same_pairs() -> None:
    """pairs_version over (name, version) pairs equals content_version of resources
    with those names and versions, and moves when any pair is added, dropped or changed."""
    resources = list(make_snapshot({"a": 50, "b": 50}).resources(CLUSTER_TYPE).values())
    pairs = [(r.name, r.version) for r in resources]
    assert pairs_version(reversed(pairs)) == content_version(resources)
    assert pairs_version(pairs[:1]) != content_version(resources)
    assert pairs_version([*pairs, ("c", "1")]) != content_version(resources)
    assert pairs_version([(pairs[0][0], "other"), pairs[1]]) != content_version(resources)
    assert pairs_version([]) != pairs_version([("", "")])


def test_check_with_previous_still_finds_a_renamed_assignment() -> None:
    """check(previous) skips the cluster/assignment pairing only when the clusters are
    the very same and the assignment names too: an assignment renamed under unchanged
    clusters is still reported, and an assignment whose endpoints moved passes."""
    before = make_snapshot({"a": 50, "b": 50})
    moved = Snapshot(
        {
            **{t: before.resources(t) for t in ORDER},
            ENDPOINT_TYPE: {
                "a": CachedResource.of(ENDPOINT_TYPE, assignment("a", [("10.0.0.9", 80)])),
                "b": before.resources(ENDPOINT_TYPE)["b"],
            },
        },
        previous=before,
    )
    moved.check(before)
    renamed = Snapshot(
        {
            **{t: before.resources(t) for t in ORDER},
            ENDPOINT_TYPE: {
                "a": before.resources(ENDPOINT_TYPE)["a"],
                "c": CachedResource.of(ENDPOINT_TYPE, assignment("c")),
            },
        },
        previous=before,
    )
    with pytest.raises(InconsistentSnapshotError) as raised:
        renamed.check(before)
    assert raised.value.problems == (
        "cluster b: no assignment 'b'",
        "assignment 'c': no EDS cluster uses it",
    )


def test_resource_is_serialized_once_as_an_any() -> None:
    """A cached resource holds the Any's bytes, which unpack to the original message."""
    cluster = eds_cluster("a")
    cached = CachedResource.of(CLUSTER_TYPE, cluster)
    packed = cached.to_any()
    assert packed.type_url == CLUSTER_TYPE
    assert type(cluster).FromString(packed.value) == cluster


def test_build_rejects_duplicates_and_wrong_types() -> None:
    """Duplicate names, messages of the wrong type and unknown type URLs are errors."""
    with pytest.raises(ValueError, match="duplicate"):
        Snapshot.of(clusters=[eds_cluster("a"), eds_cluster("a")])
    with pytest.raises(TypeError):
        Snapshot.build({CLUSTER_TYPE: [assignment("a")]})
    with pytest.raises(ValueError, match="unknown"):
        Snapshot.build({"type.googleapis.com/envoy.config.core.v3.Node": []})


def test_check_accepts_a_consistent_snapshot() -> None:
    """A snapshot whose names all resolve passes check()."""
    make_snapshot({"a": 90, "b": 10}, mirror="dark").check()
    Snapshot.of().check()


def test_check_lists_every_problem() -> None:
    """check() reports every dangling or unused name at once."""
    snapshot = Snapshot.of(
        clusters=[eds_cluster("a"), eds_cluster("no-endpoints")],
        endpoints=[assignment("a"), assignment("orphan")],
        listeners=[rds_listener("public", "public"), rds_listener("admin", "missing-routes")],
        routes=[
            weighted_routes("public", {"a": 50, "gone": 50}, mirror="dark"),
            weighted_routes("unused", {"a": 100}),
        ],
    )
    with pytest.raises(InconsistentSnapshotError) as raised:
        snapshot.check()
    problems = raised.value.problems
    assert problems == (
        "cluster no-endpoints: no assignment 'no-endpoints'",
        "assignment 'orphan': no EDS cluster uses it",
        "listener admin: no route configuration 'missing-routes'",
        "route configuration 'unused': no listener uses it",
        "route configuration 'public': no cluster 'dark'",
        "route configuration 'public': no cluster 'gone'",
    )
    assert "no cluster 'gone'" in str(raised.value)


def test_check_skips_nothing_against_a_snapshot_that_did_not_pass() -> None:
    """check(previous) skips what it shares with ``previous`` only when ``previous``
    passed its own check: a retry of a rejected snapshot (the very same resources) is
    rejected again, and so is one against a snapshot never checked."""
    broken = Snapshot.of(
        clusters=[eds_cluster("a")],
        endpoints=[assignment("a")],
        listeners=[rds_listener("public", "public")],
        routes=[weighted_routes("public", {"a": 50, "ghost": 50})],
    )
    with pytest.raises(InconsistentSnapshotError):
        broken.check()
    retry = Snapshot({t: broken.resources(t) for t in ORDER}, previous=broken)
    with pytest.raises(InconsistentSnapshotError) as raised:
        retry.check(broken)
    assert raised.value.problems == ("route configuration 'public': no cluster 'ghost'",)
    assert not broken.checked
    assert not retry.checked
    unchecked = Snapshot({t: broken.resources(t) for t in ORDER})
    with pytest.raises(InconsistentSnapshotError):
        Snapshot({t: broken.resources(t) for t in ORDER}, previous=unchecked).check(unchecked)
    good = make_snapshot({"a": 100})
    assert good.checked


def test_a_scope_fetches_its_route_configuration() -> None:
    """A route configuration fetched by a scope (of a listener routing by scoped RDS) is
    in use, and a scope naming a route configuration the snapshot lacks is a problem."""
    scope = ScopedRouteConfiguration(name="public/a", route_configuration_name="public/a")
    routes = RouteConfiguration(name="public/a")
    Snapshot.of(routes=[routes], scoped_routes=[scope]).check()
    with pytest.raises(InconsistentSnapshotError) as raised:
        Snapshot.of(scoped_routes=[scope]).check()
    assert raised.value.problems == ("scope public/a: no route configuration 'public/a'",)


def test_check_with_previous_still_finds_an_unfetched_route_configuration() -> None:
    """check(previous) skips which route configurations are fetched only while the
    listeners, scopes and configuration names are all unchanged: a configuration added
    under the very same listeners is still reported as fetched by none."""
    before = make_snapshot({"a": 100})
    added = Snapshot(
        {
            **{t: before.resources(t) for t in ORDER},
            ROUTE_TYPE: {
                **before.resources(ROUTE_TYPE),
                "extra": CachedResource.of(ROUTE_TYPE, weighted_routes("extra", {"a": 100})),
            },
        },
        previous=before,
    )
    with pytest.raises(InconsistentSnapshotError) as raised:
        added.check(before)
    assert raised.value.problems == ("route configuration 'extra': no listener uses it",)
