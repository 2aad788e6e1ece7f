"""Loading valid policy sets: from a directory and from text, into the expected model."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

import turnout.policy
from turnout.policy import (
    INSTANCES,
    Analysis,
    Endpoint,
    Gateway,
    HealthCheck,
    Incremental,
    Location,
    Match,
    Mirror,
    PathMatch,
    PolicySet,
    PolicySetError,
    Rule,
    Service,
    Sticky,
    StringMatch,
    Version,
    load_policies,
    parse_policies,
)

FIXTURE = Path(__file__).parent / "fixtures" / "valid"

GATEWAYS = (
    Gateway("admin", 9000),
    Gateway("internal", 10000, "127.0.0.1", ("internal-*", "ops")),
    Gateway("public", 10000, proxies=("public-*",)),
)

BILLING = Service(
    name="billing",
    gateways=("internal", "admin"),
    hosts=("*",),
    versions=(
        Version("blue", (Endpoint("billing-blue", 80),)),
        Version("green", (Endpoint("billing-green", 80),)),
    ),
    stable="blue",
    traffic=(("blue", Decimal(100)),),
    health_check=HealthCheck(interval_seconds=90.0, timeout_seconds=1.5),
    pin_header="x-billing-version",
    incremental=Incremental(
        to="green",
        steps=(Decimal(10), Decimal(100)),
        interval_seconds=30.0,
        analysis=Analysis(),
        on_failure="hold",
    ),
)

CHECKOUT = Service(
    name="checkout",
    gateways=("public",),
    hosts=("checkout.example.com", "checkout.example.com:*"),
    versions=(
        Version("v1", (Endpoint("127.0.0.1", 9101), Endpoint("127.0.0.1", 9102))),
        Version("v2", (Endpoint("127.0.0.1", 9201),)),
        Version("v3", (Endpoint("127.0.0.1", 9301),)),
    ),
    stable="v1",
    traffic=(("v1", Decimal(95)), ("v2", Decimal(5))),
    health_check=HealthCheck("/healthz", 2.0, 1.0, 2, 1),
    sticky=Sticky(header="x-user-id"),
    rules=(
        Rule(
            name="dogfood",
            match=Match(
                headers=(("x-employee", StringMatch("exact", "true")),),
                cookies=(("beta", StringMatch("exact", "on")),),
                query=(("preview", StringMatch("exact", "1")),),
                path=PathMatch("prefix", "/api"),
            ),
            traffic=(("v1", Decimal(50)), ("v2", Decimal(50))),
            mirror=Mirror("v3", Decimal(100)),
        ),
    ),
    mirror=Mirror("v3", Decimal(10)),
    pin_header="x-turnout-version",
    incremental=Incremental(
        to="v2",
        steps=tuple(Decimal(s) for s in (1, 5, 25, 50, 100)),
        interval_seconds=60.0,
        analysis=Analysis(
            min_requests=100,
            max_error_rate=0.01,
            max_error_rate_increase=0.005,
            max_latency_p99_seconds=0.5,
            max_latency_p99_increase=1.2,
        ),
        on_failure="rollback",
    ),
)

SEARCH = Service(
    name="search",
    gateways=("admin", "internal", "public"),
    hosts=("search.example.com", "*.search.example.com", "search.*"),
    versions=(
        Version("blue", (Endpoint("search-blue.internal", 8080), Endpoint("::1", 8081))),
        Version("green", ()),
        Version("canary-3", (Endpoint("10.0.0.7", 8080),)),
    ),
    stable="blue",
    traffic=INSTANCES,
    sticky=Sticky(cookie="turnout-cohort", ttl_seconds=86400.0),
    pin_header=None,
    rules=(
        Rule(
            name="beta-testers",
            match=Match(
                headers=(
                    ("x-beta", StringMatch("present")),
                    ("x-tenant", StringMatch("prefix", "acme-")),
                    ("x-region", StringMatch("suffix", "-eu")),
                    ("user-agent", StringMatch("regex", "^curl/.*")),
                ),
                cookies=(
                    ("beta", StringMatch("exact", "on")),
                    ("cohort", StringMatch("regex", "[ab]")),
                ),
                query=(("preview", StringMatch("exact", "1")),),
                path=PathMatch("regex", "^/v[0-9]+/search$"),
            ),
            traffic=(
                ("blue", Decimal("33.33")),
                ("green", Decimal("33.33")),
                ("canary-3", Decimal("33.34")),
            ),
        ),
        Rule(
            name="exact-path",
            match=Match(path=PathMatch("exact", "/search")),
            traffic=(("canary-3", Decimal(100)),),
            mirror=Mirror("green", Decimal("0.5")),
        ),
    ),
)


def test_fixture_parses_into_the_expected_model() -> None:
    """Every form in POLICY.md (and the fixture's extra forms) lands in the model as written."""
    assert load_policies(FIXTURE) == PolicySet(GATEWAYS, (BILLING, CHECKOUT, SEARCH))


def test_decimal_shares_stay_exact() -> None:
    """Shares keep the digits written in the file: 33.33 is Decimal("33.33"), not a float."""
    split = load_policies(FIXTURE).service("search").rules[0].traffic
    assert split == (
        ("blue", Decimal("33.33")),
        ("green", Decimal("33.33")),
        ("canary-3", Decimal("33.34")),
    )
    assert sum(share for _, share in split) == 100


def test_locations_name_the_file_as_joined_from_the_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Locations (and problems) use the path joined from the directory given, e.g. policies/x."""
    (tmp_path / "policies" / "team").mkdir(parents=True)
    (tmp_path / "policies" / "team" / "gw.yaml").write_text(
        "# gateways\nkind: Gateway\nname: public\nport: 10000\n"
    )
    monkeypatch.chdir(tmp_path)
    policies = load_policies("policies")
    assert policies.gateways[0].location == Location("policies/team/gw.yaml", 2)


def test_rule_and_service_locations_are_their_first_lines() -> None:
    """A service's location is its document's first key, a rule's location its first key."""
    search = load_policies(FIXTURE).service("search")
    file = str(FIXTURE / "services" / "search.yml")
    assert search.location == Location(file, 3)
    assert [rule.location for rule in search.rules] == [Location(file, 18), Location(file, 29)]


def test_hidden_files_and_other_extensions_are_skipped() -> None:
    """Hidden files and directories (broken YAML here) and non-YAML files are not read."""
    files = {g.location.file for g in load_policies(FIXTURE).gateways if g.location}
    assert files == {str(FIXTURE / "gateways.yaml")}


def test_the_walk_enters_subdirectories_but_not_hidden_or_symlinked_ones(
    tmp_path: Path,
) -> None:
    """Files in nested directories and symlinked files are read; hidden files and
    directories, other extensions and directories reached through a symlink are not."""
    service = (
        "kind: Service\nname: {0}\nhosts: [{0}.test]\nversions: {{v1: {{}}}}\n"
        "stable: v1\ntraffic: {{v1: 100}}\n"
    )
    files = {
        "gw.yaml": "kind: Gateway\nname: gw\nport: 80\n",
        "a/b/deep.yml": service.format("deep"),
        "a/.hidden/x.yaml": "{broken",
        "a/.x.yaml": "{broken",
        "a/notes.txt": "{broken",
        "elsewhere/linked.yaml": service.format("linked"),
        "elsewhere.yaml/inside.yaml": service.format("inside"),
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    root = tmp_path / "policies"
    root.mkdir()
    for name in ("gw.yaml", "a", "elsewhere.yaml"):
        (tmp_path / name).rename(root / name)
    (root / "through-link").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    (root / "file-link.yaml").symlink_to(tmp_path / "elsewhere" / "linked.yaml")
    policies = load_policies(root)
    assert {s.name: s.location.file for s in policies.services if s.location} == {
        "deep": str(root / "a" / "b" / "deep.yml"),
        "inside": str(root / "elsewhere.yaml" / "inside.yaml"),
        "linked": str(root / "file-link.yaml"),
    }


def test_services_and_gateways_are_sorted_by_name() -> None:
    """Services and gateways come out sorted by name, whatever the file order."""
    policies = load_policies(FIXTURE)
    assert [g.name for g in policies.gateways] == ["admin", "internal", "public"]
    assert [s.name for s in policies.services] == ["billing", "checkout", "search"]


def test_versions_keep_declaration_order_and_split_follows_it() -> None:
    """Versions keep the order written; a split lists versions in that order, not its own."""
    text = """\
kind: Service
name: shop
versions:
  zeta: {endpoints: []}
  alpha: {endpoints: []}
stable: zeta
traffic: {alpha: 60, zeta: 40}
"""
    service = parse_policies({"gw.yaml": "kind: Gateway\nname: gw\nport: 80\n", "s.yaml": text})
    shop = service.service("shop")
    assert [v.name for v in shop.versions] == ["zeta", "alpha"]
    assert shop.traffic == (("zeta", Decimal(40)), ("alpha", Decimal(60)))


def test_zero_shares_are_left_out_of_the_split() -> None:
    """A version given a 0 share is deployed but absent from the split."""
    rule_traffic = load_policies(FIXTURE).service("search").rules[1].traffic
    assert rule_traffic == (("canary-3", Decimal(100)),)


def test_a_file_may_hold_several_documents() -> None:
    """Documents separated by `---` are each read; empty documents are ignored."""
    text = "kind: Gateway\nname: a\nport: 1\n---\n---\nkind: Gateway\nname: b\nport: 2\n---\n"
    policies = parse_policies({"gw.yaml": text})
    assert [(g.name, g.location) for g in policies.gateways] == [
        ("a", Location("gw.yaml", 1)),
        ("b", Location("gw.yaml", 6)),
    ]


def test_yaml_merge_keys_are_applied() -> None:
    """A `<<: *anchor` merge brings in the anchored fields; explicit fields win."""
    text = """\
kind: Service
name: shop
versions:
  v1: &base {endpoints: ["10.0.0.1:80"]}
  v2:
    <<: *base
stable: v1
traffic: {v1: 100}
"""
    policies = parse_policies({"gw.yaml": "kind: Gateway\nname: gw\nport: 80\n", "s.yaml": text})
    assert policies.service("shop").version("v2").endpoints == (Endpoint("10.0.0.1", 80),)


def test_empty_directory_is_rejected(tmp_path: Path) -> None:
    """A directory without any policy document is an error, not an empty set."""
    (tmp_path / "notes.txt").write_text("kind: Gateway\n")
    (tmp_path / "empty.yaml").write_text("# nothing yet\n")
    with pytest.raises(PolicySetError) as caught:
        load_policies(tmp_path)
    assert [str(p) for p in caught.value.problems] == [
        f"{tmp_path}: no policy documents found (*.yaml, *.yml)"
    ]


def test_missing_directory_is_rejected(tmp_path: Path) -> None:
    """A policy directory that does not exist is reported as such."""
    with pytest.raises(PolicySetError, match="not a directory"):
        load_policies(tmp_path / "missing")


def test_empty_source_mapping_is_rejected() -> None:
    """parse_policies of no files at all is rejected like an empty directory."""
    with pytest.raises(PolicySetError, match="no policy documents found"):
        parse_policies({})


def test_public_surface() -> None:
    """The package exports the loader, its errors, the model and its one wording (traffic,
    durations), and nothing private."""
    assert set(turnout.policy.__all__) == {
        "DEFAULT_DEADLINE_FACTOR", "INSTANCES", "PHASES", "Analysis", "DarkRun", "Endpoint",
        "Gateway", "HealthCheck", "Incremental",
        "IncrementalState", "Location", "Match", "Mirror", "PathMatch", "Phase", "PolicyError",
        "PolicySet",
        "PolicySetError", "Problem", "Rollout", "Rule", "Service", "Split", "Sticky", "StringMatch",
        "Traffic", "Version", "load_policies", "loaded_sources", "parse_policies",
        "AnalysisQuery", "Approval", "ReleaseWindow", "policy_schema", "policy_warnings",
        "DURATION_HELP", "INSTANCES_TEXT", "parse_duration", "percent", "shares_text",
        "summarize", "traffic_change", "traffic_text", "duration_text",
        "Compare", "field_under", "json_path", "path_key",
    }  # fmt: skip
    assert all(hasattr(turnout.policy, name) for name in turnout.policy.__all__)
