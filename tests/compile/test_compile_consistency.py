"""The consistency check never fails open: a compile that fails leaves nothing for the
next to skip against, and every snapshot a proxy can be given is checked."""

from __future__ import annotations

import gc
from collections.abc import Callable
from pathlib import Path

import pytest

from turnout.cache import InconsistentSnapshotError
from turnout.compile import Compiler
from turnout.policy import load_policies

VALID = Path(__file__).parents[1] / "policy" / "fixtures" / "valid"
"""Gateways public, internal and admin; checkout on public, billing on internal and
admin, search on all three."""


def test_a_rejected_set_is_rejected_again_on_every_retry(
    inject_route: Callable[[str, str], None],
) -> None:
    """An inconsistent translation is rejected on the first compile and on every retry
    of the same set: the rejected snapshot never becomes what the next check skips
    against."""
    inject_route("checkout", "ghost-cluster")
    compiler = Compiler()
    policies = load_policies(VALID)
    for _ in range(3):
        with pytest.raises(InconsistentSnapshotError) as raised:
            compiler.compile(policies)
        # checkout's virtual host is in public's one route table and in the standby
        # scope of its exact host name (public also has a wildcard host).
        assert raised.value.problems == (
            "route configuration 'public': no cluster 'ghost-cluster'",
            "route configuration 'public/checkout.example.com': no cluster 'ghost-cluster'",
        )


def test_a_gateway_given_alone_is_checked_at_compile(
    inject_route: Callable[[str, str], None],
) -> None:
    """A route that resolves only in the whole set (billing, on internal and admin,
    routing to checkout's cluster, on public) is rejected at compile for the Envoys
    given internal or admin alone, before anything could be published."""
    inject_route("billing", "checkout_v1")
    with pytest.raises(InconsistentSnapshotError) as raised:
        Compiler().compile(load_policies(VALID))
    assert raised.value.problems == (
        "gateway admin alone: route configuration 'admin': no cluster 'checkout_v1'",
        "gateway internal alone: route configuration 'internal': no cluster 'checkout_v1'",
    )


def test_every_snapshot_a_proxy_gets_is_checked() -> None:
    """The whole set, each gateway alone and any union of gateways come out checked,
    once per compiled set, each with exactly its gateways' listeners."""
    compiled = Compiler().compile(load_policies(VALID))
    policies = compiled.policies
    for node_cluster in ("public-1", "internal-1", "ops", "edge", "nobody-matches-but-*"):
        gateways = policies.gateways_for(node_cluster)
        snapshot = compiled.for_gateways(gateways)
        assert snapshot.checked, node_cluster
        assert compiled.for_gateways(gateways) is snapshot
        listeners = snapshot.resources("type.googleapis.com/envoy.config.listener.v3.Listener")
        assert sorted(listeners) == sorted(gateways)
    assert compiled.for_gateways(("admin", "internal", "public")) is compiled.snapshot
    assert compiled.for_gateways(()).checked


def test_a_compile_leaves_the_garbage_collector_alone(collector_seen: list[bool]) -> None:
    """The compile layer has no process-wide side effects: the cyclic collector stays
    on while it compiles, and nothing is frozen (that tuning is the server's)."""
    frozen = gc.get_freeze_count()
    Compiler().compile(load_policies(VALID))
    assert collector_seen
    assert all(collector_seen)
    assert gc.isenabled()
    assert gc.get_freeze_count() == frozen
