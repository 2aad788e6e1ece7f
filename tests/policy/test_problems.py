"""Rejected policy sets: every problem is reported as `FILE:LINE: field.path: message`."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from turnout.policy import PolicySetError, Problem, parse_policies

GATEWAY = "kind: Gateway\nname: public\nport: 10000\n"

# Lines 1-8; cases append from line 9 on, or replace a line.
SERVICE = """\
kind: Service
name: checkout
versions:
  v1:
    endpoints: ["127.0.0.1:9101"]
  v2:
    endpoints: ["127.0.0.1:9201"]
stable: v1
traffic: {v1: 100}
"""


def problems(files: Mapping[str, str]) -> list[str]:
    with pytest.raises(PolicySetError) as caught:
        parse_policies(files)
    return [str(p) for p in caught.value.problems]


def service(text: str = "", *, replace: tuple[str, str] | None = None) -> dict[str, str]:
    """The gateway and the base service, with `text` appended or one line replaced."""
    body = SERVICE.replace(*replace) if replace else SERVICE
    return {"p/gw.yaml": GATEWAY, "p/svc.yaml": body + text}


def gateway(text: str) -> dict[str, str]:
    return {"p/gw.yaml": text}


CASES = [
    # -- documents ---------------------------------------------------------------------
    pytest.param(
        gateway("kind: Gateway\nname: public\n  port: 1\n"),
        "p/gw.yaml:3: invalid YAML: mapping values are not allowed here",
        id="yaml-syntax-error",
    ),
    pytest.param(
        gateway("- kind: Gateway\n"),
        "p/gw.yaml:1: a policy document must be a mapping, got a list",
        id="document-not-a-mapping",
    ),
    pytest.param(
        gateway("kind: Gatway\nname: public\nport: 1\n"),
        'p/gw.yaml:1: kind: unknown kind "Gatway"; did you mean "Gateway"? '
        "(expected Gateway or Service)",
        id="unknown-kind",
    ),
    pytest.param(
        gateway("name: public\nport: 1\n"),
        "p/gw.yaml:1: kind: required field is missing (Gateway or Service)",
        id="missing-kind",
    ),
    pytest.param(
        gateway("# a gateway\nkind: Gateway\nname: public\n"),
        "p/gw.yaml:2: port: required field is missing",
        id="gateway-missing-port",
    ),
    pytest.param(
        service(replace=("stable: v1\n", "")),
        "p/svc.yaml:1: stable: required field is missing",
        id="service-missing-stable",
    ),
    pytest.param(
        service(replace=("traffic: {v1: 100}\n", "trafic: {v1: 100}\n")),
        'p/svc.yaml:9: trafic: unknown field "trafic"; did you mean "traffic"?',
        id="unknown-field-did-you-mean",
    ),
    pytest.param(
        service("healthCheck: {pth: /ready}\n"),
        'p/svc.yaml:10: healthCheck.pth: unknown field "pth"; did you mean "path"?',
        id="unknown-nested-field",
    ),
    pytest.param(
        service("colour: blue\n"),
        'p/svc.yaml:10: colour: unknown field "colour"',
        id="unknown-field-without-hint",
    ),
    pytest.param(
        service(replace=("  v2:\n", "  v1:\n")),
        'p/svc.yaml:6: versions.v1: duplicate key "v1" (first at line 4)',
        id="duplicate-yaml-key",
    ),
    # -- types -------------------------------------------------------------------------
    pytest.param(
        gateway("kind: Gateway\nname: public\nport: true\n"),
        "p/gw.yaml:3: port: expected an integer, got the boolean true",
        id="bool-is-not-an-int",
    ),
    pytest.param(
        gateway('kind: Gateway\nname: public\nport: "10000"\n'),
        'p/gw.yaml:3: port: expected an integer, got the string "10000"',
        id="quoted-number-is-not-an-int",
    ),
    pytest.param(
        gateway("kind: Gateway\nname: public\nport: 80.5\n"),
        "p/gw.yaml:3: port: expected an integer, got the number 80.5",
        id="float-is-not-an-int",
    ),
    pytest.param(
        gateway("kind: Gateway\nname: 42\nport: 80\n"),
        'p/gw.yaml:2: name: expected a string, got the number 42; quote it: "42"',
        id="number-where-a-string-is-expected",
    ),
    # -- gateways ----------------------------------------------------------------------
    pytest.param(
        gateway("kind: Gateway\nname: public\nport: 70000\n"),
        "p/gw.yaml:3: port: must be between 1 and 65535, got 70000",
        id="port-too-high",
    ),
    pytest.param(
        gateway("kind: Gateway\nname: public\nport: 0\n"),
        "p/gw.yaml:3: port: must be between 1 and 65535, got 0",
        id="port-zero",
    ),
    pytest.param(
        gateway("kind: Gateway\nname: public\nport: 80\naddress: localhost\n"),
        'p/gw.yaml:4: address: expected an IP address like "0.0.0.0" or "::", got "localhost"',
        id="address-not-an-ip",
    ),
    pytest.param(
        gateway("kind: Gateway\nname: public\nport: 80\nproxies: []\n"),
        'p/gw.yaml:4: proxies: needs at least one glob (leave "proxies" out for every Envoy)',
        id="proxies-empty",
    ),
    pytest.param(
        gateway('kind: Gateway\nname: public\nport: 80\nproxies: ["edge-*", ""]\n'),
        "p/gw.yaml:4: proxies[1]: must not be empty",
        id="proxies-empty-string",
    ),
    pytest.param(
        gateway("kind: Gateway\nname: Public_1\nport: 80\n"),
        'p/gw.yaml:2: name: invalid name "Public_1": use lowercase letters, digits and "-", '
        "starting and ending with a letter or digit, at most 63 characters",
        id="gateway-name-not-a-dns-label",
    ),
    pytest.param(
        {"p/a.yaml": GATEWAY, "p/b.yaml": "kind: Gateway\nname: public\nport: 10001\n"},
        'p/b.yaml:2: name: gateway "public" is already defined at p/a.yaml:2',
        id="duplicate-gateway-across-files",
    ),
    pytest.param(
        {
            "p/a.yaml": GATEWAY,
            "p/b.yaml": "kind: Gateway\nname: other\nport: 10000\nproxies: [edge]\n",
        },
        'p/b.yaml:3: port: gateways "other" and "public" (p/a.yaml:1) both listen on '
        '0.0.0.0:10000 and could be given to the same Envoy: the proxies of "public" '
        'include "*"',
        id="gateway-port-clash-star",
    ),
    pytest.param(
        {
            "p/a.yaml": "kind: Gateway\nname: a\nport: 80\nproxies: [edge-*]\n",
            "p/b.yaml": "kind: Gateway\nname: b\nport: 80\naddress: 10.0.0.1\nproxies: [edge-*]\n",
        },
        'p/b.yaml:3: port: gateways "b" and "a" (p/a.yaml:1) both listen on 10.0.0.1:80 and '
        'could be given to the same Envoy: both list "edge-*" in proxies',
        id="gateway-port-clash-shared-glob",
    ),
    pytest.param(
        {
            "p/a.yaml": "kind: Gateway\nname: a\nport: 80\nproxies: [edge-*]\n",
            "p/b.yaml": "kind: Gateway\nname: b\nport: 80\nproxies: [ops, edge-7]\n",
        },
        'p/b.yaml:3: port: gateways "b" and "a" (p/a.yaml:1) both listen on 0.0.0.0:80 and '
        'could be given to the same Envoy: "edge-*" of "a" matches "edge-7" of "b"',
        id="gateway-port-clash-glob-matches-literal",
    ),
    # -- services: names, gateways, hosts ----------------------------------------------
    pytest.param(
        service(replace=("name: checkout", "name: Check.out")),
        'p/svc.yaml:2: name: invalid name "Check.out": use lowercase letters, digits and "-", '
        "starting and ending with a letter or digit, at most 63 characters",
        id="service-name-not-a-dns-label",
    ),
    pytest.param(
        {**service(), "p/svc2.yaml": SERVICE.replace("v2", "v3")},
        'p/svc2.yaml:2: name: service "checkout" is already defined at p/svc.yaml:2',
        id="duplicate-service-across-files",
    ),
    pytest.param(
        service("gateways: [public, pubic]\n"),
        'p/svc.yaml:10: gateways[1]: unknown gateway "pubic"; did you mean "public"? '
        "(gateways: public)",
        id="unknown-gateway",
    ),
    pytest.param(
        service("gateways: []\n"),
        'p/svc.yaml:10: gateways: name at least one gateway (leave "gateways" out for every '
        "gateway)",
        id="gateways-empty",
    ),
    pytest.param(
        {"p/svc.yaml": SERVICE},
        "p/svc.yaml:1: gateways: no Gateway is defined, so this service would be served nowhere",
        id="no-gateway-at-all",
    ),
    pytest.param(
        service('hosts: [shop.example.com, ""]\n'),
        "p/svc.yaml:10: hosts[1]: must not be empty",
        id="host-empty",
    ),
    pytest.param(
        service("hosts: [shop.*.com]\n"),
        'p/svc.yaml:10: hosts[0]: invalid host "shop.*.com": a "*" is allowed only alone or '
        'once at the start or end, e.g. "*.example.com", "example.*", "example.com:*"',
        id="host-wildcard-in-the-middle",
    ),
    pytest.param(
        service('hosts: ["*.example.*"]\n'),
        'p/svc.yaml:10: hosts[0]: invalid host "*.example.*": a "*" is allowed only alone or '
        'once at the start or end, e.g. "*.example.com", "example.*", "example.com:*"',
        id="host-two-wildcards",
    ),
    pytest.param(
        service("hosts: [shop.example.com, Shop.Example.com]\n"),
        'p/svc.yaml:10: hosts[1]: host "Shop.Example.com" is listed twice',
        id="host-duplicate-within-service",
    ),
    pytest.param(
        {
            **service("hosts: [shop.example.com]\n"),
            "p/zz.yaml": SERVICE.replace("checkout", "cart") + "hosts: [SHOP.example.com]\n",
        },
        'p/zz.yaml:10: hosts[0]: host "SHOP.example.com" of service "cart" is also claimed by '
        'service "checkout" (p/svc.yaml:10) on gateway "public"',
        id="host-claimed-by-two-services",
    ),
    pytest.param(
        {**service(), "p/zz.yaml": SERVICE.replace("checkout", "cart")},
        'p/zz.yaml:1: hosts: host "*" of service "cart" is also claimed by service "checkout" '
        '(p/svc.yaml:1) on gateway "public"',
        id="default-host-claimed-by-two-services",
    ),
    # -- versions and endpoints --------------------------------------------------------
    pytest.param(
        service(replace=("  v2:\n", "  v_2:\n")),
        'p/svc.yaml:6: versions.v_2: invalid version name "v_2": use letters, digits and "-", '
        "starting with a letter or digit, at most 63 characters",
        id="version-name-invalid",
    ),
    pytest.param(
        service(replace=("  v2:\n", "  instances:\n")),
        'p/svc.yaml:6: versions.instances: "instances" is reserved (it is the traffic keyword), '
        "not a version name",
        id="version-name-reserved",
    ),
    pytest.param(
        service(replace=("127.0.0.1:9201", "127.0.0.1")),
        'p/svc.yaml:7: versions.v2.endpoints[0]: invalid endpoint "127.0.0.1": expected '
        'host:port, e.g. "10.0.0.5:8080", "app.internal:80" or "[::1]:8080"',
        id="endpoint-without-port",
    ),
    pytest.param(
        service(replace=('["127.0.0.1:9201"]', '["127.0.0.1:9201", "10.0.0.1:0"]')),
        'p/svc.yaml:7: versions.v2.endpoints[1]: invalid endpoint "10.0.0.1:0": port must be '
        "between 1 and 65535",
        id="endpoint-port-zero",
    ),
    pytest.param(
        service(replace=("127.0.0.1:9201", "999.0.0.1:80")),
        'p/svc.yaml:7: versions.v2.endpoints[0]: invalid endpoint "999.0.0.1:80": "999.0.0.1" '
        "is not a DNS name or IP address",
        id="endpoint-bad-ipv4",
    ),
    pytest.param(
        service(replace=("127.0.0.1:9201", "::1:80")),
        'p/svc.yaml:7: versions.v2.endpoints[0]: invalid endpoint "::1:80": "::1" is not a DNS '
        "name or IP address (write IPv6 addresses in brackets)",
        id="endpoint-ipv6-without-brackets",
    ),
    pytest.param(
        service(replace=("127.0.0.1:9201", "app_1.internal:80")),
        'p/svc.yaml:7: versions.v2.endpoints[0]: invalid endpoint "app_1.internal:80": '
        '"app_1.internal" is not a DNS name or IP address',
        id="endpoint-bad-dns-name",
    ),
    pytest.param(
        service(replace=('["127.0.0.1:9201"]', '["10.0.0.1:80", "10.0.0.1:80"]')),
        'p/svc.yaml:7: versions.v2.endpoints[1]: duplicate endpoint "10.0.0.1:80"',
        id="endpoint-duplicate",
    ),
    pytest.param(
        service(replace=("stable: v1", "stable: v9")),
        'p/svc.yaml:8: stable: unknown version "v9" (versions: v1, v2)',
        id="stable-not-declared",
    ),
    # -- traffic -----------------------------------------------------------------------
    pytest.param(
        service(replace=("traffic: {v1: 100}", "traffic: {v1: 80, v2: 10}")),
        "p/svc.yaml:9: traffic: shares sum to 90, not 100",
        id="traffic-sum-not-100",
    ),
    pytest.param(
        service(replace=("traffic: {v1: 100}", "traffic: {v1: 33.33, v2: 66.66}")),
        "p/svc.yaml:9: traffic: shares sum to 99.99, not 100",
        id="traffic-sum-decimal",
    ),
    pytest.param(
        service(replace=("traffic: {v1: 100}", "traffic:\n  v1: 90\n  v3: 10")),
        'p/svc.yaml:11: traffic.v3: unknown version "v3" (versions: v1, v2)',
        id="traffic-unknown-version",
    ),
    pytest.param(
        service(replace=("traffic: {v1: 100}", "traffic: {v1: 49.995, v2: 50}")),
        "p/svc.yaml:9: traffic.v1: at most two decimals are allowed, got 49.995",
        id="traffic-three-decimals",
    ),
    pytest.param(
        service(replace=("traffic: {v1: 100}", "traffic: {v1: 110}")),
        "p/svc.yaml:9: traffic.v1: must be between 0 and 100, got 110",
        id="traffic-share-out-of-range",
    ),
    pytest.param(
        service(replace=("traffic: {v1: 100}", 'traffic: {v1: "100"}')),
        'p/svc.yaml:9: traffic.v1: expected a number, got the string "100"',
        id="traffic-share-quoted",
    ),
    pytest.param(
        service(replace=("traffic: {v1: 100}", "traffic: everything")),
        'p/svc.yaml:9: traffic: expected "instances" or a mapping of version to share, got the '
        'string "everything"',
        id="traffic-wrong-word",
    ),
    pytest.param(
        service(replace=("traffic: {v1: 100}", "traffic: {}")),
        "p/svc.yaml:9: traffic: give at least one version a share",
        id="traffic-empty",
    ),
    pytest.param(
        {
            "p/gw.yaml": GATEWAY,
            "p/svc.yaml": "kind: Service\nname: checkout\nversions:\n  v1: {}\n"
            "  v2: {endpoints: []}\ntraffic: instances\nstable: v1\n",
        },
        'p/svc.yaml:6: traffic: "instances" needs at least one version with endpoints',
        id="traffic-instances-without-endpoints",
    ),
    # -- rules -------------------------------------------------------------------------
    pytest.param(
        service("rules:\n  - name: beta\n    match: {}\n    traffic: {v2: 100}\n"),
        "p/svc.yaml:12: rules[0].match: give at least one condition: headers, cookies, query "
        "or path",
        id="rule-match-without-conditions",
    ),
    pytest.param(
        service("rules:\n  - name: Beta\n    match: {path: {prefix: /}}\n    traffic: {v2: 100}\n"),
        'p/svc.yaml:11: rules[0].name: invalid name "Beta": use lowercase letters, digits and '
        '"-", starting and ending with a letter or digit, at most 63 characters',
        id="rule-name-invalid",
    ),
    pytest.param(
        service(
            "rules:\n"
            "  - {name: beta, match: {path: {prefix: /a}}, traffic: {v2: 100}}\n"
            "  - {name: beta, match: {path: {prefix: /b}}, traffic: {v2: 100}}\n"
        ),
        'p/svc.yaml:12: rules[1].name: rule "beta" is already defined at line 11',
        id="rule-name-duplicate",
    ),
    pytest.param(
        service("rules:\n  - name: beta\n    match: {path: {prefix: /}}\n"),
        "p/svc.yaml:11: rules[0].traffic: required field is missing",
        id="rule-missing-traffic",
    ),
    pytest.param(
        service(
            "rules:\n  - name: beta\n    match:\n      headers: {x-employee: true}\n"
            "    traffic: {v2: 100}\n"
        ),
        "p/svc.yaml:13: rules[0].match.headers.x-employee: expected a string or a mapping like "
        '{prefix: ...}, got the boolean true; quote it: "true"',
        id="header-value-bool",
    ),
    pytest.param(
        service(
            "rules:\n  - name: beta\n    match:\n      query: {page: 1}\n    traffic: {v2: 100}\n"
        ),
        "p/svc.yaml:13: rules[0].match.query.page: expected a string or a mapping like "
        '{prefix: ...}, got the number 1; quote it: "1"',
        id="query-value-number",
    ),
    pytest.param(
        service(
            "rules:\n  - name: beta\n    match:\n      headers: {x-a: {prefx: a}}\n"
            "    traffic: {v2: 100}\n"
        ),
        'p/svc.yaml:13: rules[0].match.headers.x-a.prefx: unknown field "prefx"; did you mean '
        '"prefix"?',
        id="string-match-unknown-kind",
    ),
    pytest.param(
        service(
            "rules:\n  - name: beta\n    match:\n      headers: {x-a: {prefix: a, suffix: b}}\n"
            "    traffic: {v2: 100}\n"
        ),
        "p/svc.yaml:13: rules[0].match.headers.x-a: give exactly one of exact, prefix, suffix, "
        "regex, present (got prefix and suffix)",
        id="string-match-two-kinds",
    ),
    pytest.param(
        service(
            "rules:\n  - name: beta\n    match:\n      headers: {x-a: {present: false}}\n"
            "    traffic: {v2: 100}\n"
        ),
        "p/svc.yaml:13: rules[0].match.headers.x-a.present: present can only be true (leave the "
        "condition out instead)",
        id="string-match-present-false",
    ),
    pytest.param(
        service(
            "rules:\n  - name: beta\n    match:\n      headers: {x a: yes}\n"
            "    traffic: {v2: 100}\n"
        ),
        'p/svc.yaml:13: rules[0].match.headers.x a: invalid header name "x a": use HTTP token '
        'characters (no spaces or ":")',
        id="header-name-invalid",
    ),
    pytest.param(
        service(
            "rules:\n  - name: beta\n    match:\n      headers: {X-A: a, x-a: b}\n"
            "    traffic: {v2: 100}\n"
        ),
        'p/svc.yaml:13: rules[0].match.headers.x-a: header "x-a" is given twice',
        id="header-name-twice-after-lowercasing",
    ),
    pytest.param(
        service(
            "rules:\n  - name: beta\n    match:\n      cookies: {'a=b': on}\n"
            "    traffic: {v2: 100}\n"
        ),
        'p/svc.yaml:13: rules[0].match.cookies.a=b: invalid cookie name "a=b": use token '
        'characters (no spaces, "=" or ";")',
        id="cookie-name-invalid",
    ),
    pytest.param(
        service(
            "rules:\n  - name: beta\n    match:\n      path: {prefix: api}\n"
            "    traffic: {v2: 100}\n"
        ),
        'p/svc.yaml:13: rules[0].match.path.prefix: must start with "/", got "api"',
        id="path-prefix-without-slash",
    ),
    pytest.param(
        service(
            "rules:\n  - name: beta\n    match:\n      path: {prefix: /a, exact: /b}\n"
            "    traffic: {v2: 100}\n"
        ),
        "p/svc.yaml:13: rules[0].match.path: give exactly one of prefix, exact, regex (got "
        "prefix and exact)",
        id="path-two-kinds",
    ),
    pytest.param(
        service(
            "rules:\n  - name: beta\n    match: {path: {prefix: /}}\n    traffic: {v2: 100}\n"
            "    mirror: {to: v4, percent: 10}\n"
        ),
        'p/svc.yaml:14: rules[0].mirror.to: unknown version "v4" (versions: v1, v2)',
        id="rule-mirror-unknown-version",
    ),
    # -- mirror, pinHeader, sticky, healthCheck ----------------------------------------
    pytest.param(
        service("mirror: {to: v2, percent: 100.5}\n"),
        "p/svc.yaml:10: mirror.percent: must be between 0 and 100, got 100.5",
        id="mirror-percent-out-of-range",
    ),
    pytest.param(
        service("mirror: {to: v2}\n"),
        "p/svc.yaml:10: mirror.percent: required field is missing",
        id="mirror-percent-missing",
    ),
    pytest.param(
        service("pinHeader: true\n"),
        "p/svc.yaml:10: pinHeader: expected a header name, or false to turn pinning off",
        id="pin-header-true",
    ),
    pytest.param(
        service("sticky: {header: x-user, cookie: cohort}\n"),
        "p/svc.yaml:10: sticky: give exactly one of header or cookie",
        id="sticky-header-and-cookie",
    ),
    pytest.param(
        service("sticky: {}\n"),
        "p/svc.yaml:10: sticky: give exactly one of header or cookie",
        id="sticky-empty",
    ),
    pytest.param(
        service("sticky: {header: x-user, ttl: 1h}\n"),
        "p/svc.yaml:10: sticky: ttl applies to a cookie only",
        id="sticky-ttl-with-header",
    ),
    pytest.param(
        service("healthCheck: {path: healthz}\n"),
        'p/svc.yaml:10: healthCheck.path: must start with "/", got "healthz"',
        id="health-check-path-without-slash",
    ),
    pytest.param(
        service("healthCheck: {healthyThreshold: 0}\n"),
        "p/svc.yaml:10: healthCheck.healthyThreshold: must be a positive integer, got 0",
        id="health-check-threshold-zero",
    ),
    pytest.param(
        service("healthCheck:\n  interval: 2\n"),
        'p/svc.yaml:11: healthCheck.interval: a duration needs a unit, e.g. "2s" '
        "(units: ms, s, m, h)",
        id="duration-without-unit",
    ),
    pytest.param(
        service("healthCheck:\n  timeout: 2 sec\n"),
        'p/svc.yaml:11: healthCheck.timeout: invalid duration "2 sec": e.g. "500ms", "2s", '
        '"1m30s" (units: ms, s, m, h)',
        id="duration-malformed",
    ),
    pytest.param(
        service("healthCheck:\n  timeout: 0s\n"),
        'p/svc.yaml:11: healthCheck.timeout: must be longer than 0, got "0s"',
        id="duration-zero",
    ),
    # -- incremental -------------------------------------------------------------------
    pytest.param(
        service("incremental: {to: v1, steps: [100], interval: 1m}\n"),
        'p/svc.yaml:10: incremental.to: "v1" is the stable version; name the version being '
        "released",
        id="incremental-to-stable",
    ),
    pytest.param(
        service("incremental: {to: v3, steps: [100], interval: 1m}\n"),
        'p/svc.yaml:10: incremental.to: unknown version "v3" (versions: v1, v2)',
        id="incremental-to-unknown",
    ),
    pytest.param(
        service("incremental: {to: v2, steps: [], interval: 1m}\n"),
        "p/svc.yaml:10: incremental.steps: give at least one step, ending at 100",
        id="incremental-steps-empty",
    ),
    pytest.param(
        service("incremental:\n  to: v2\n  steps:\n    - 10\n    - 5\n    - 100\n  interval: 1m\n"),
        "p/svc.yaml:14: incremental.steps[1]: steps must increase: 5 follows 10",
        id="incremental-steps-not-increasing",
    ),
    pytest.param(
        service("incremental: {to: v2, steps: [10, 50], interval: 1m}\n"),
        "p/svc.yaml:10: incremental.steps[1]: the last step must be 100, got 50",
        id="incremental-steps-not-ending-at-100",
    ),
    pytest.param(
        service("incremental: {to: v2, steps: [0, 100], interval: 1m}\n"),
        "p/svc.yaml:10: incremental.steps[0]: a step must be more than 0",
        id="incremental-step-zero",
    ),
    pytest.param(
        service("incremental: {to: v2, steps: [100]}\n"),
        "p/svc.yaml:10: incremental.interval: required field is missing",
        id="incremental-interval-missing",
    ),
    pytest.param(
        service(
            "incremental: {to: v2, steps: [100], interval: 1m, analysis: {maxErrorRate: 1.5}}\n"
        ),
        "p/svc.yaml:10: incremental.analysis.maxErrorRate: must be between 0 and 1, got 1.5",
        id="analysis-error-rate-above-1",
    ),
    pytest.param(
        service(
            "incremental: {to: v2, steps: [100], interval: 1m,\n"
            "  analysis: {maxLatencyP99Increase: 0.9}}\n"
        ),
        "p/svc.yaml:11: incremental.analysis.maxLatencyP99Increase: a ratio to stable's p99, "
        "at least 1, got 0.9",
        id="analysis-latency-increase-below-1",
    ),
    pytest.param(
        service("incremental: {to: v2, steps: [100], interval: 1m, analysis: {minRequests: -1}}\n"),
        "p/svc.yaml:10: incremental.analysis.minRequests: must be at least 0, got -1",
        id="analysis-min-requests-negative",
    ),
    pytest.param(
        service("incremental: {to: v2, steps: [100], interval: 1m, onFailure: rolback}\n"),
        'p/svc.yaml:10: incremental.onFailure: expected rollback or hold, got "rolback"; did '
        'you mean "rollback"?',
        id="incremental-on-failure-unknown",
    ),
]


@pytest.mark.parametrize(("files", "expected"), CASES)
def test_invalid_policy_is_reported_exactly(files: dict[str, str], expected: str) -> None:
    """Each invalid policy is rejected with exactly this one `FILE:LINE: path: message`."""
    assert problems(files) == [expected]


def test_every_problem_in_a_set_is_reported_at_once() -> None:
    """Problems in several files and fields are all reported together, sorted."""
    files = {
        "p/a.yaml": "kind: Gateway\nname: public\nport: 0\n",
        "p/b.yaml": SERVICE.replace("stable: v1", "stable: v7").replace("{v1: 100}", "{v1: 90}")
        + "trafic: x\n",
        "p/c.yaml": "kind: Nope\n",
    }
    assert problems(files) == [
        "p/a.yaml:3: port: must be between 1 and 65535, got 0",
        'p/b.yaml:8: stable: unknown version "v7" (versions: v1, v2)',
        "p/b.yaml:9: traffic: shares sum to 90, not 100",
        'p/b.yaml:10: trafic: unknown field "trafic"; did you mean "traffic"?',
        'p/c.yaml:1: kind: unknown kind "Nope" (expected Gateway or Service)',
    ]


def test_a_service_with_several_problems_reports_each() -> None:
    """Problems in different fields of one service do not hide one another."""
    body = SERVICE.replace("127.0.0.1:9101", "nope").replace("{v1: 100}", "{v1: 50, v9: 50}")
    body += (
        "healthCheck: {interval: 5}\nrules:\n  - name: r\n    match: {}\n    traffic: {v1: 100}\n"
    )
    assert problems({"p/gw.yaml": GATEWAY, "p/svc.yaml": body}) == [
        'p/svc.yaml:5: versions.v1.endpoints[0]: invalid endpoint "nope": expected host:port, '
        'e.g. "10.0.0.5:8080", "app.internal:80" or "[::1]:8080"',
        'p/svc.yaml:9: traffic.v9: unknown version "v9" (versions: v1, v2)',
        'p/svc.yaml:10: healthCheck.interval: a duration needs a unit, e.g. "5s" '
        "(units: ms, s, m, h)",
        "p/svc.yaml:13: rules[0].match: give at least one condition: headers, cookies, query "
        "or path",
    ]


def test_missing_required_fields_are_each_reported_at_the_document_start() -> None:
    """Every missing required field is its own problem, on the document's first line."""
    assert problems({"p/gw.yaml": GATEWAY, "p/svc.yaml": "\nkind: Service\n"}) == [
        "p/svc.yaml:2: name: required field is missing",
        "p/svc.yaml:2: stable: required field is missing",
        "p/svc.yaml:2: traffic: required field is missing",
        "p/svc.yaml:2: versions: required field is missing",
    ]


def test_duplicate_keys_are_each_reported_with_their_line() -> None:
    """Every duplicate key is reported at its own line, and the document is still checked."""
    body = SERVICE.replace("traffic: {v1: 100}", "traffic: {v1: 100}\nstable: v2\nname: x\nport: 1")
    assert problems({"p/gw.yaml": GATEWAY, "p/svc.yaml": body}) == [
        'p/svc.yaml:10: stable: duplicate key "stable" (first at line 8)',
        'p/svc.yaml:11: name: duplicate key "name" (first at line 2)',
        'p/svc.yaml:12: port: unknown field "port"',
    ]


def test_yaml_error_in_one_document_keeps_the_others_checked() -> None:
    """A syntax error is reported with its line; documents before it are still checked."""
    text = "kind: Gateway\nname: public\nport: 0\n---\nkind: Gateway\nname: [x\n"
    found = problems({"p/gw.yaml": text})
    assert found[0] == "p/gw.yaml:3: port: must be between 1 and 65535, got 0"
    assert found[1].startswith("p/gw.yaml:7: invalid YAML: ")
    assert len(found) == 2


def test_re2_rejects_lookahead_without_noise_on_stderr(capfd: pytest.CaptureFixture[str]) -> None:
    """A lookahead is rejected as RE2 would reject it, and RE2's own log line stays off stderr."""
    rule = "rules:\n  - name: r\n    match:\n      headers: {x-a: {regex: '(?=x)'}}\n"
    assert problems(service(rule + "    traffic: {v1: 100}\n")) == [
        "p/svc.yaml:13: rules[0].match.headers.x-a.regex: invalid RE2 regex: invalid perl "
        "operator: (?="
    ]
    out, err = capfd.readouterr()
    assert (out, err) == ("", "")


def test_path_regex_is_checked_with_re2() -> None:
    """A path regex that RE2 cannot compile is reported at its line."""
    rule = "rules:\n  - name: r\n    match:\n      path: {regex: '^/a(?<!b)'}\n"
    [found] = problems(service(rule + "    traffic: {v1: 100}\n"))
    assert found.startswith("p/svc.yaml:13: rules[0].match.path.regex: invalid RE2 regex: ")


def test_invalid_gateways_still_count_as_defined() -> None:
    """A service naming a gateway whose document has problems gets no extra 'unknown' error."""
    files = {"p/gw.yaml": "kind: Gateway\nname: public\nport: 99999\n", **service()}
    files["p/gw.yaml"] = "kind: Gateway\nname: public\nport: 99999\n"
    assert problems(files) == ["p/gw.yaml:3: port: must be between 1 and 65535, got 99999"]


def test_problem_prints_file_line_path_and_message() -> None:
    """str(Problem) is `FILE:LINE: path: message`, without the path when there is none."""
    assert str(Problem("p/a.yaml", 14, "traffic", "shares sum to 90, not 100")) == (
        "p/a.yaml:14: traffic: shares sum to 90, not 100"
    )
    assert str(Problem("p/a.yaml", 3, "", "invalid YAML: x")) == "p/a.yaml:3: invalid YAML: x"


def test_gateways_on_the_same_port_but_different_addresses_are_fine() -> None:
    """Two gateways on one port do not clash when they listen on different, specific addresses."""
    files = {
        "p/a.yaml": "kind: Gateway\nname: a\nport: 80\naddress: 10.0.0.1\n",
        "p/b.yaml": "kind: Gateway\nname: b\nport: 80\naddress: 10.0.0.2\n",
    }
    assert [g.name for g in parse_policies(files).gateways] == ["a", "b"]


def test_empty_versions_is_one_problem() -> None:
    """`versions: {}` is reported once, without knock-on reports about `stable` or `traffic`."""
    body = SERVICE[: SERVICE.index("  v1:")].replace("versions:", "versions: {}")
    body += "stable: v1\ntraffic: {v1: 100}\n"
    assert problems({"p/gw.yaml": GATEWAY, "p/svc.yaml": body}) == [
        "p/svc.yaml:3: versions: declare at least one version"
    ]


def test_badly_named_version_is_reported_once() -> None:
    """A version with an invalid name is not also called unknown where it is referenced."""
    body = SERVICE.replace("v2", "v_2").replace("{v1: 100}", "{v1: 50, v_2: 50}")
    assert problems({"p/gw.yaml": GATEWAY, "p/svc.yaml": body}) == [
        'p/svc.yaml:6: versions.v_2: invalid version name "v_2": use letters, digits and "-", '
        "starting with a letter or digit, at most 63 characters"
    ]


def test_an_edited_file_is_read_again() -> None:
    """Validating a set again after a file changed uses the new text, not a cached reading."""
    files = service()
    assert parse_policies(files).service("checkout").stable == "v1"
    files["p/svc.yaml"] = files["p/svc.yaml"].replace("stable: v1", "stable: v2")
    assert parse_policies(files).service("checkout").stable == "v2"


def test_reused_yaml_anchors_print_nothing(capfd: pytest.CaptureFixture[str]) -> None:
    """A reused anchor (valid YAML: the later one wins) causes no warning on stderr."""
    text = GATEWAY.replace("public", "&n public") + "---\nkind: Gateway\nname: &n admin\nport: 81\n"
    assert [g.name for g in parse_policies({"p/gw.yaml": text}).gateways] == ["admin", "public"]
    assert capfd.readouterr() == ("", "")
