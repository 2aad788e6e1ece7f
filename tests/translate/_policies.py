"""Policy sets built directly from the model, for the translation tests."""

from __future__ import annotations

from decimal import Decimal

from turnout.policy import (
    INSTANCES,
    Endpoint,
    Gateway,
    HealthCheck,
    Match,
    Mirror,
    PathMatch,
    PolicySet,
    Rule,
    Service,
    Sticky,
    StringMatch,
    Version,
)


def split(*shares: tuple[str, str]) -> tuple[tuple[str, Decimal], ...]:
    """A traffic split from (version, "percent") pairs."""
    return tuple((version, Decimal(share)) for version, share in shares)


def version(name: str, *endpoints: str) -> Version:
    """A version from "host:port" strings."""
    return Version(
        name,
        tuple(Endpoint(e.rsplit(":", 1)[0], int(e.rsplit(":", 1)[1])) for e in endpoints),
    )


def comprehensive() -> PolicySet:
    """Two gateways, three services: every technique and every match kind at least once."""
    checkout = Service(
        name="checkout",
        gateways=("public",),
        hosts=("checkout.example.com", "checkout.example.com:*"),
        versions=(
            version("v1", "127.0.0.1:9101", "127.0.0.1:9102"),
            version("v2", "127.0.0.1:9201"),
            version("v3", "127.0.0.1:9301"),
        ),
        health_check=HealthCheck(
            path="/healthz",
            interval_seconds=2.0,
            timeout_seconds=0.5,
            unhealthy_threshold=3,
            healthy_threshold=1,
        ),
        stable="v1",
        traffic=split(("v1", "33.33"), ("v2", "66.67")),
        sticky=Sticky(header="x-user-id"),
        rules=(
            Rule(
                name="dogfood",
                match=Match(
                    headers=(("x-employee", StringMatch("exact", "true")),),
                    cookies=(("beta", StringMatch("exact", "on")),),
                    path=PathMatch("prefix", "/api"),
                ),
                traffic=split(("v1", "50"), ("v2", "50")),
                mirror=Mirror("v3", Decimal(100)),
            ),
            Rule(
                name="preview",
                match=Match(
                    headers=(("x-debug", StringMatch("present")),),
                    query=(("preview", StringMatch("exact", "1")),),
                    path=PathMatch("exact", "/cart"),
                ),
                traffic=split(("v3", "100")),
            ),
            Rule(
                name="mobile",
                match=Match(
                    headers=(
                        ("user-agent", StringMatch("suffix", "Mobile")),
                        ("x-region", StringMatch("regex", "eu-[a-z]+")),
                    ),
                    cookies=(("variant", StringMatch("regex", "^(a|b)$")),),
                    query=(
                        ("lang", StringMatch("prefix", "en")),
                        ("debug", StringMatch("present")),
                    ),
                    path=PathMatch("regex", "/items/[0-9]+"),
                ),
                traffic=split(("v1", "0.01"), ("v2", "99.99")),
            ),
        ),
        mirror=Mirror("v3", Decimal(10)),
    )
    catalog = Service(
        name="catalog",
        gateways=("internal", "public"),
        hosts=("catalog.example.com",),
        versions=(
            version("a", "127.0.0.1:9401", "127.0.0.1:9402"),
            version("b", "127.0.0.1:9501"),
        ),
        stable="a",
        traffic=INSTANCES,
        sticky=Sticky(cookie="turnout-cohort", ttl_seconds=86400.0),
        rules=(
            Rule(
                name="testers",
                match=Match(
                    cookies=(
                        ("team", StringMatch("prefix", "qa-")),
                        ("session", StringMatch("present")),
                        ("tier", StringMatch("suffix", ".gold")),
                    )
                ),
                traffic=split(("b", "100")),
                mirror=Mirror("a", Decimal(0)),
            ),
        ),
        mirror=Mirror("b", Decimal("0.5")),
        pin_header=None,
    )
    search = Service(
        name="search",
        gateways=("internal",),
        hosts=("*",),
        versions=(
            version("blue", "search-blue.internal:8080", "127.0.0.1:9601"),
            version("green"),
        ),
        health_check=HealthCheck(),
        stable="blue",
        traffic=split(("blue", "100")),
        rules=(
            Rule(
                name="ops",
                match=Match(headers=(("x-ops", StringMatch("prefix", "team-")),)),
                traffic=INSTANCES,
            ),
        ),
    )
    return PolicySet(
        gateways=(
            Gateway("internal", 10001, "127.0.0.1", ("internal-*",)),
            Gateway("public", 10000),
        ),
        services=(catalog, checkout, search),
    )
