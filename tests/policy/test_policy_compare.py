"""`mirror.compare`: dark response diffing settings, and the field names they use."""

from __future__ import annotations

import pytest

from turnout.policy import Compare, PolicySetError, field_under, json_path, parse_policies

GATEWAY = "kind: Gateway\nname: public\nport: 10000\n"

SERVICE = """\
kind: Service
name: shop
versions:
  v1: {{endpoints: ["127.0.0.1:9101"]}}
  v3: {{endpoints: ["127.0.0.1:9301"]}}
stable: v1
traffic: {{v1: 100}}
rules:
  - name: beta
    match: {{headers: {{x-beta: "1"}}}}
    traffic: {{v1: 100}}
    mirror:
      to: v3
      percent: 5
      compare: {{}}
mirror:
  to: v3
  percent: 20
{compare}"""


def load(compare: str) -> tuple[Compare | None, Compare | None]:
    text = SERVICE.format(compare=compare)
    service = parse_policies({"p/gw.yaml": GATEWAY, "p/svc.yaml": text}).service("shop")
    assert service.mirror is not None
    assert service.rules[0].mirror is not None
    return service.mirror.compare, service.rules[0].mirror.compare


def problems(compare: str) -> list[str]:
    text = SERVICE.format(compare=compare)
    with pytest.raises(PolicySetError) as caught:
        parse_policies({"p/gw.yaml": GATEWAY, "p/svc.yaml": text})
    return [str(p) for p in caught.value.problems]


def test_the_contract_example_is_read() -> None:
    """The contract's example reads as written, fields normalized."""
    compare, _rule = load(
        "  compare:\n"
        "    methods: [GET, HEAD]\n"
        '    ignore: ["header:Date", "body:$.meta.generatedAt"]\n'
        "    maxDiffRate: 0.01\n"
    )
    assert compare is not None
    assert compare.methods == ("GET", "HEAD")
    assert compare.ignore == ("header:date", "body:$.meta.generatedAt")
    assert compare.max_diff_rate == 0.01


def test_defaults_and_no_compare() -> None:
    """An empty `compare: {}` compares GET and HEAD with the defaults; a mirror without
    `compare` has none."""
    compare, rule = load("")
    assert compare is None
    assert rule == Compare()
    assert rule.methods == ("GET", "HEAD")
    assert "content-type" in rule.headers
    assert set(rule.redact) >= {"authorization", "cookie", "set-cookie"}


def test_headers_and_redact() -> None:
    """`headers` replaces the compared set; `redact` adds to the headers never shown."""
    compare, _rule = load(
        "  compare:\n    headers: [Content-Type, x-price]\n    redact: [x-api-key]\n"
    )
    assert compare is not None
    assert compare.headers == ("content-type", "x-price")
    assert compare.redact == ("authorization", "cookie", "set-cookie", "x-api-key")


def test_bad_settings_are_reported_at_their_lines() -> None:
    """Every bad method, field and rate is reported with its line and path."""
    found = problems(
        "  compare:\n"
        "    methods: [get, GET, GET]\n"
        '    ignore: ["hdr:x", "body:items", "body:$.a[", "header:"]\n'
        "    maxDiffRate: 2\n"
        "    mthods: [GET]\n"
    )
    text = "\n".join(found)
    assert 'p/svc.yaml:20: mirror.compare.methods[0]: invalid method "get"' in text
    assert 'p/svc.yaml:21: mirror.compare.ignore[0]: invalid field "hdr:x"' in text
    assert 'mirror.compare.ignore[1]: invalid JSON path "items"' in text
    assert 'mirror.compare.ignore[2]: invalid JSON path "$.a["' in text
    assert 'mirror.compare.ignore[3]: invalid header name ""' in text
    assert "p/svc.yaml:22: mirror.compare.maxDiffRate" in text
    assert 'p/svc.yaml:23: mirror.compare.mthods: unknown field "mthods"' in text
    twice = problems("  compare: {methods: [GET, POST, GET]}\n")
    assert twice == ['p/svc.yaml:19: mirror.compare.methods[2]: method "GET" is listed twice']


def test_json_paths_are_normalized() -> None:
    """Paths read `[N]` as `[*]` and quote keys that are not identifiers, one way."""
    assert json_path("$") == "$"
    assert json_path("$.items[3].price") == "$.items[*].price"
    assert json_path("$['a b'][\"c\"].d_1") == "$['a b'].c.d_1"
    assert json_path("$['it\\'s']") == "$['it\\'s']"
    assert json_path("items") is None
    assert json_path("$.") is None


def test_field_under() -> None:
    """An ignored field covers itself and what lies below it, and nothing else."""
    assert field_under("body:$.meta", "body:$.meta")
    assert field_under("body:$.meta.at", "body:$.meta")
    assert field_under("body:$.meta[*]", "body:$.meta")
    assert not field_under("body:$.metadata", "body:$.meta")
    assert field_under("body:$.a", "body")
    assert field_under("body", "body")
    assert not field_under("header:date", "body")
