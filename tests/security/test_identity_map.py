"""The identity map: parsing, what `*` matches in identities and in node.cluster globs,
and the peer address a stream budget is counted by."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from ruamel.yaml.error import YAMLError

from turnout.server import load_identity_map
from turnout.xds import IdentityMap, IdentityMapError, Limits, PeerIdentity
from turnout.xds._security import peer_host


def spiffe(value: str) -> PeerIdentity:
    return PeerIdentity(address="10.0.0.1", transport="ssl", spiffe_id=value)


def dns(*names: str) -> PeerIdentity:
    return PeerIdentity(address="10.0.0.1", transport="ssl", dns_names=names)


MAP = IdentityMap.from_config(
    {
        "proxies": {
            "spiffe://example.org/ns/edge/sa/envoy": ["edge", "edge-*"],
            "spiffe://example.org/ns/*/sa/gateway": ["gateways"],
            "*.mesh.example.org": ["mesh"],
        }
    }
)


def test_spiffe_rules_allow_exactly_their_cluster_globs() -> None:
    """An exact SPIFFE ID may claim its listed globs (`edge-*` matches any suffix),
    nothing else."""
    envoy = spiffe("spiffe://example.org/ns/edge/sa/envoy")
    assert MAP.allows(envoy, "edge")
    assert MAP.allows(envoy, "edge-eu-west-1")
    assert not MAP.allows(envoy, "edges")
    assert not MAP.allows(envoy, "gateways")
    assert not MAP.allows(envoy, "")


def test_a_star_in_an_identity_stays_within_one_segment() -> None:
    """`ns/*/sa/gateway` matches any one namespace, never a deeper path or a prefix,
    and never a similar ID of another trust domain."""
    assert MAP.allows(spiffe("spiffe://example.org/ns/prod/sa/gateway"), "gateways")
    assert not MAP.allows(spiffe("spiffe://example.org/ns/a/b/sa/gateway"), "gateways")
    assert not MAP.allows(spiffe("spiffe://example.org/ns/prod/sa/gateway-2"), "gateways")
    assert not MAP.allows(spiffe("spiffe://evil.org/ns/prod/sa/gateway"), "gateways")


def test_dns_rules_match_one_label_case_insensitively() -> None:
    """`*.mesh.example.org` matches gw-1.mesh.example.org (any case), not a name two
    labels deep nor the bare domain; a SPIFFE ID never matches a DNS rule."""
    assert MAP.allows(dns("GW-1.Mesh.Example.org"), "mesh")
    assert MAP.allows(dns("other.example.com", "gw-2.mesh.example.org"), "mesh")
    assert not MAP.allows(dns("a.b.mesh.example.org"), "mesh")
    assert not MAP.allows(dns("mesh.example.org"), "mesh")
    assert not MAP.allows(spiffe("spiffe://gw-1.mesh.example.org/x"), "mesh")


def test_glob_characters_other_than_star_are_literal() -> None:
    """Only `*` is special: `?`, `[`, `.` in a glob or an identity are themselves."""
    identities = IdentityMap.from_config({"proxies": {"a.example.org": ["edge.[1]?"]}})
    assert identities.allows(dns("a.example.org"), "edge.[1]?")
    assert not identities.allows(dns("a.example.org"), "edgex[1]x")
    assert not identities.allows(dns("aXexample.org"), "edge.[1]?")


def test_without_a_certificate_nothing_is_allowed() -> None:
    """A peer with no SPIFFE ID or DNS SAN (only a CN, or no certificate) matches no
    rule, even a catch-all one."""
    catch_all = IdentityMap.from_config({"proxies": {"*.example.org": ["*"]}})
    cn_only = PeerIdentity(address="10.0.0.1", transport="ssl", common_name="a.example.org")
    assert not cn_only.authenticated
    assert not catch_all.allows(cn_only, "x")
    assert not catch_all.allows(PeerIdentity(address="10.0.0.1"), "x")


def test_api_access_defaults_to_any_certificate_and_can_be_narrowed() -> None:
    """Without `api:` any verified client certificate may read the ReleaseService;
    with it, only the listed identities."""
    assert MAP.allows_api(dns("anyone.example.org"))
    assert not MAP.allows_api(PeerIdentity(address="10.0.0.1", transport="ssl"))
    narrowed = IdentityMap.from_config(
        {"proxies": {"a.example.org": ["x"]}, "api": ["spiffe://example.org/ns/ops/sa/*"]}
    )
    assert narrowed.allows_api(spiffe("spiffe://example.org/ns/ops/sa/bot"))
    assert not narrowed.allows_api(dns("a.example.org"))


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ([], "a mapping"),
        ({"proxies": {}}, "`proxies:` must map"),
        ({"proxies": {"a.example.org": []}}, "give a list"),
        ({"proxies": {"a.example.org": [""]}}, "is not a node.cluster glob"),
        ({"proxies": {"https://a.example.org/x": ["x"]}}, "neither a SPIFFE ID"),
        ({"proxies": {"a.example.org": ["x"]}, "api": "spiffe://x/y"}, "`api:` must be a list"),
        ({"proxies": {"a.example.org": ["x"]}, "clusters": 1}, "unknown key(s) clusters"),
    ],
)
def test_bad_maps_are_refused_with_a_reason(config: object, message: str) -> None:
    """Every malformed identity map is refused with a message saying what is wrong."""
    with pytest.raises(IdentityMapError) as failure:
        IdentityMap.from_config(config)
    assert message in str(failure.value)


def test_the_map_file_is_yaml_and_errors_name_it(tmp_path: Path) -> None:
    """load_identity_map reads YAML, a single glob may be a string, and its errors
    start with the file's path, keeping the YAML or OS error as the cause."""
    good = tmp_path / "identities.yaml"
    good.write_text('proxies:\n  "spiffe://example.org/ns/edge/sa/envoy": edge-*\n')
    assert load_identity_map(good).allows(spiffe("spiffe://example.org/ns/edge/sa/envoy"), "edge-1")
    bad = tmp_path / "bad.yaml"
    bad.write_text("proxies: [unclosed\n")
    with pytest.raises(IdentityMapError, match="^" + re.escape(f"{bad}: not YAML")) as not_yaml:
        load_identity_map(bad)
    assert isinstance(not_yaml.value.__cause__, YAMLError)
    with pytest.raises(IdentityMapError, match=re.escape("missing.yaml")) as missing:
        load_identity_map(tmp_path / "missing.yaml")
    assert isinstance(missing.value.__cause__, FileNotFoundError)


@pytest.mark.parametrize(
    ("peer", "host"),
    [
        ("ipv4:10.1.2.3:5000", "10.1.2.3"),
        ("ipv6:[::1]:5000", "::1"),
        ("ipv6:%5B2001:db8::1%5D:443", "2001:db8::1"),
        ("unix:/run/turnout.sock", "unix:/run/turnout.sock"),
    ],
)
def test_stream_budgets_count_by_host_not_by_connection(peer: str, host: str) -> None:
    """The per-peer budget keys on the address without the port, so a client cannot
    escape it by opening more connections."""
    assert peer_host(peer) == host


def test_negative_limits_are_refused() -> None:
    """A negative limit is a configuration error, not "no limit"."""
    with pytest.raises(ValueError, match="max_streams_per_peer"):
        Limits(max_streams_per_peer=-1)
    with pytest.raises(ValueError, match="max_requests_per_second"):
        Limits(max_requests_per_second=-0.5)
