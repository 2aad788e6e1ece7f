"""Incremental compilation in the reload path: a one-service change serializes and
hashes only what it touches, and its snapshot is byte-identical to a fresh compile."""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from typing import Any

import pytest

import turnout.translate._translation as translation_module
from turnout.cache import CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ORDER, ROUTE_TYPE, Snapshot
from turnout.compile import Compiler, compile_policies
from turnout.policy import Endpoint, Gateway, PolicySet, Service, Version
from turnout.translate import Assignment, ServiceResources, WrittenCluster


def _policies(services: int, *, changed_share: int = 5) -> PolicySet:
    built = []
    for i in range(services):
        share = changed_share if i == 3 else 5
        built.append(
            Service(
                name=f"svc{i:03d}",
                gateways=("public",),
                hosts=(f"svc{i:03d}.example.com",),
                versions=tuple(
                    Version(f"v{v}", (Endpoint("127.0.0.1", 20000 + 10 * i + v),))
                    for v in (1, 2, 3)
                ),
                stable="v1",
                traffic=(("v1", Decimal(100 - share)), ("v2", Decimal(share))),
            )
        )
    return PolicySet(gateways=(Gateway("public", 10000),), services=tuple(built))


def _wire(snapshot: Snapshot) -> dict[str, dict[str, bytes]]:
    return {t: {name: r.serialized for name, r in snapshot.resources(t).items()} for t in ORDER}


def test_one_service_change_is_byte_identical_to_a_fresh_compile() -> None:
    """Compiling a changed set after the original gives exactly the snapshot (bytes,
    resource versions, type versions, policy version) a fresh compile gives."""
    compiler = Compiler()
    compiler.compile(_policies(20))
    incremental = compiler.compile(_policies(20, changed_share=30))
    fresh = compile_policies(_policies(20, changed_share=30))
    assert _wire(incremental.snapshot) == _wire(fresh.snapshot)
    assert incremental.policy_version == fresh.policy_version
    for type_url in ORDER:
        assert incremental.snapshot.type_version(type_url) == fresh.snapshot.type_version(type_url)


def test_a_traffic_change_rebuilds_only_the_route_configuration() -> None:
    """A traffic share change translates one service, builds one new cached resource
    (the route configuration) and keeps every other type's mapping and hash."""
    compiler = Compiler()
    first = compiler.compile(_policies(20))
    services, built = compiler.translator.translated_services, compiler.pool.built
    second = compiler.compile(_policies(20, changed_share=30))
    assert compiler.translator.translated_services == services + 1
    assert compiler.pool.built == built + 1
    for type_url in (CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE):
        assert second.snapshot.resources(type_url) is first.snapshot.resources(type_url)
    assert second.snapshot.type_version(ROUTE_TYPE) != first.snapshot.type_version(ROUTE_TYPE)


def test_an_endpoint_change_rebuilds_that_assignment_only() -> None:
    """Moving one version's endpoint rebuilds that version's assignment and nothing
    else: its cluster and its service's routes are unchanged, so they are reused."""
    compiler = Compiler()
    before = _policies(10)
    first = compiler.compile(before)
    built = compiler.pool.built
    target = before.services[4]
    moved = dataclasses.replace(
        target,
        versions=(
            Version("v1", (Endpoint("127.0.0.1", 29999),)),
            *target.versions[1:],
        ),
    )
    after = dataclasses.replace(
        before, services=tuple(moved if s is target else s for s in before.services)
    )
    second = compiler.compile(after)
    assert compiler.pool.built - built == 1
    untouched = first.snapshot.resources(ENDPOINT_TYPE)["svc000_v1"]
    assert second.snapshot.resources(ENDPOINT_TYPE)["svc000_v1"] is untouched
    for type_url in (CLUSTER_TYPE, LISTENER_TYPE, ROUTE_TYPE):
        assert second.snapshot.resources(type_url) is first.snapshot.resources(type_url)
    assert _wire(second.snapshot) == _wire(compile_policies(after).snapshot)


def test_an_unchanged_set_rebuilds_nothing() -> None:
    """Compiling the same set again builds no resource and gives the same version."""
    compiler = Compiler()
    first = compiler.compile(_policies(5))
    built = compiler.pool.built
    second = compiler.compile(_policies(5))
    assert compiler.pool.built == built
    assert second.policy_version == first.policy_version


def _moved(policies: PolicySet, index: int, port: int) -> PolicySet:
    """``policies`` with the v1 endpoint of service ``index`` moved to ``port``."""
    target = policies.services[index]
    moved = dataclasses.replace(
        target, versions=(Version("v1", (Endpoint("127.0.0.1", port),)), *target.versions[1:])
    )
    return dataclasses.replace(
        policies, services=tuple(moved if s is target else s for s in policies.services)
    )


def test_a_one_service_change_patches_and_serializes_that_service_only() -> None:
    """The identity contract: translation hands back the very same (clusters,
    assignments) tuple and messages for every unchanged service, so a one-service
    change patches one service into the snapshot and serializes one resource. An
    innocent copy in translate (a new tuple, or equal messages) breaks one of these."""
    compiler = Compiler()
    before = _policies(20)
    compiler.compile(before)
    patched, built = compiler.patched_services, compiler.pool.built
    compiler.compile(_moved(before, 4, 29999))
    assert compiler.patched_services - patched == 1
    assert compiler.pool.built - built == 1


@pytest.mark.parametrize("copy", ["tuple", "resources"])
def test_a_copying_translation_fails_the_identity_contract(
    monkeypatch: pytest.MonkeyPatch, copy: str
) -> None:
    """The counts above catch a translation that copies: with every service's tuple
    (or its resources' bytes) copied on the way out, a one-service change patches (or
    serializes) every service again, though the snapshot is still right."""

    original = translation_module._ServicePart.resources

    def copied(part: Any) -> ServiceResources:
        resources: ServiceResources = original.__get__(part)
        if copy == "tuple":  # equal tuples, new objects
            return ServiceResources((*resources.clusters,), (*resources.assignments,))
        return ServiceResources(  # equal bytes, new objects
            tuple(WrittenCluster(c.name, _copy(c.serialized)) for c in resources.clusters),
            tuple(Assignment(a.name, _copy(a.serialized)) for a in resources.assignments),
        )

    monkeypatch.setattr(translation_module._ServicePart, "resources", property(copied))
    compiler = Compiler()
    before = _policies(20)
    compiler.compile(before)
    patched, built = compiler.patched_services, compiler.pool.built
    after = _moved(before, 4, 29999)
    second = compiler.compile(after)
    if copy == "tuple":
        assert compiler.patched_services - patched == 20
    else:
        assert compiler.pool.built - built == 20 * 3 * 2  # every cluster and assignment
    assert _wire(second.snapshot) == _wire(compile_policies(after).snapshot)


def _copy(serialized: bytes) -> bytes:
    return bytes(bytearray(serialized))
