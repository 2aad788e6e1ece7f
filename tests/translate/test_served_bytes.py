"""The bytes turnout serves, pinned: every serialized resource of representative policy
sets hashes to what the straightforward message-by-message translation produced
(issue 10's faster translation must not change one byte Envoy receives)."""

from __future__ import annotations

import dataclasses
import hashlib
from decimal import Decimal

import pytest

from turnout.cache import ORDER, Snapshot
from turnout.compile import Compiler
from turnout.policy import (
    INSTANCES,
    Compare,
    Endpoint,
    Gateway,
    HealthCheck,
    Match,
    Mirror,
    PathMatch,
    PolicySet,
    Rule,
    Service,
    StringMatch,
)

from ._policies import comprehensive, split, version


def variety() -> PolicySet:
    """Services shaped like a big gateway's, each with one twist the fast paths must
    get right: zero endpoints, a zero share, one version, IPv6, host ports, pin `when`,
    compare mirrors, a health check, no pin header, an instances rule."""
    plain = Service(
        name="plain",
        gateways=("public",),
        hosts=("plain.example.com",),
        versions=(
            version("v1", "10.1.0.1:8080"),
            version("v2", "10.2.0.1:8080", "10.2.0.2:0"),
            version("v3", "10.3.0.1:65535"),
        ),
        stable="v1",
        traffic=split(("v1", "95"), ("v2", "5")),
        rules=(
            Rule(
                name="dogfood",
                match=Match(headers=(("x-employee", StringMatch("exact", "true")),)),
                traffic=split(("v1", "50"), ("v2", "50")),
            ),
        ),
        mirror=Mirror("v3", Decimal(10)),
    )
    services = [
        plain,
        dataclasses.replace(
            plain,
            name="empty",
            hosts=("empty.example.com:8443", "Empty.example.com:*"),
            versions=(version("v1"), version("v2", "10.2.1.1:80")),
            traffic=split(("v1", "100"), ("v2", "0")),
            mirror=Mirror("v2", Decimal(0)),
        ),
        dataclasses.replace(
            plain,
            name="single",
            hosts=("single.example.com",),
            versions=(version("v1", "::1:9000", "fe80::1:9001"),),
            traffic=split(("v1", "100")),
            rules=(),
            mirror=None,
            pin_when=Match(
                headers=(("x-tester", StringMatch("present")),), path=PathMatch("prefix", "/t")
            ),
        ),
        dataclasses.replace(
            plain,
            name="compared",
            hosts=("compared.example.com",),
            mirror=Mirror("v3", Decimal("12.5"), compare=Compare()),
            rules=(
                Rule(
                    name="beta",
                    match=Match(query=(("beta", StringMatch("exact", "1")),)),
                    traffic=INSTANCES,
                    mirror=Mirror("v3", Decimal(5), compare=Compare()),
                ),
            ),
            health_check=HealthCheck(),
            pin_header=None,
        ),
        dataclasses.replace(
            plain,
            name="named",
            hosts=("named.example.com",),
            versions=(version("v1", "backend.internal:8080"), version("v2", "10.9.0.1:80")),
            traffic=split(("v1", "99.99"), ("v2", "0.01")),
            mirror=Mirror("v2", Decimal("0.5")),
        ),
    ]
    for i in range(20):
        services.append(
            dataclasses.replace(
                plain,
                name=f"svc{i:05d}",
                hosts=(f"svc{i:05d}.example.com",),
                versions=tuple(
                    version(f"v{v}", f"10.{v}.{i // 250}.{i % 250 + 1}:{8000 + i}")
                    for v in (1, 2, 3)
                ),
            )
        )
    return PolicySet(
        gateways=(Gateway("public", 10000),),
        services=tuple(sorted(services, key=lambda s: s.name)),
    )


def _digest(snapshot: Snapshot) -> str:
    whole = hashlib.sha256()
    for type_url in ORDER:
        for name, resource in sorted(snapshot.resources(type_url).items()):
            whole.update(f"{type_url}\x00{name}\x00{resource.version}\x00".encode())
            whole.update(resource.serialized)
    return whole.hexdigest()


# Per gateway set checked at compile, a hash of its snapshot's resources: computed by
# the message-by-message translation (commit 4faaed6, before issue 10's byte templates).
PINNED = {
    "comprehensive": (
        "internal:2b1268ec0ac600b5/internal,public:10ae93d6e37fe542/public:1ee08ebf03b3cccf"
    ),
    "comprehensive+comparators": (
        "internal:2b1268ec0ac600b5/internal,public:10ae93d6e37fe542/public:1ee08ebf03b3cccf"
    ),
    "variety": "public:91d66fdd9c53b8a0",
    "variety+comparators": "public:f4a4529e5eb4c4cd",
}


@pytest.mark.parametrize("case", sorted(PINNED))
def test_served_bytes_are_pinned(case: str) -> None:
    """Every resource's serialized Any (and so every version Envoy sees) of the set is
    byte for byte what the straightforward translation produced."""
    name, _, comparing = case.partition("+")
    policies = comprehensive() if name == "comprehensive" else variety()
    comparators = [Endpoint("127.0.0.1", 7070)] if comparing else []
    compiled = Compiler(comparators).compile(policies)
    groups = sorted(compiled.groups.items())
    found = "/".join(f"{','.join(key)}:{_digest(snapshot)[:16]}" for key, snapshot in groups)
    assert found == PINNED[case]


def _changes(policies: PolicySet) -> list[PolicySet]:
    """One after another: each service's traffic, then its endpoints, then its hosts
    changed, then the first service removed and put back."""
    sets = []
    current = policies
    for index, service in enumerate(policies.services):
        versions = [v.name for v in service.versions]
        for changed in (
            dataclasses.replace(service, traffic=split((versions[0], "100"))),
            dataclasses.replace(
                service,
                versions=(version(versions[0], f"10.77.0.{index + 1}:81"), *service.versions[1:]),
            ),
            dataclasses.replace(service, hosts=(*service.hosts, f"extra{index}.example.com")),
        ):
            services = tuple(changed if s.name == service.name else s for s in current.services)
            current = dataclasses.replace(current, services=services)
            sets.append(current)
    sets.append(dataclasses.replace(current, services=current.services[1:]))
    sets.append(current)
    return sets


@pytest.mark.parametrize("name", ["comprehensive", "variety"])
def test_incremental_compiles_serve_what_fresh_ones_do(name: str) -> None:
    """Through a sequence of one-service changes (traffic, endpoints, hosts, removal),
    every gateway set's incremental snapshot is byte for byte a fresh compile's, on
    scoped gateways and on one with a wildcard host."""
    policies = comprehensive() if name == "comprehensive" else variety()
    compiler = Compiler()
    compiler.compile(policies)
    for changed in _changes(policies):
        incremental = compiler.compile(changed)
        fresh = Compiler().compile(changed)
        assert sorted(incremental.groups) == sorted(fresh.groups)
        for key, snapshot in fresh.groups.items():
            assert _digest(incremental.groups[key]) == _digest(snapshot), key
            assert incremental.groups[key].group_version == snapshot.group_version
