"""`turnout.diff`: each kind of policy change, as the line a reviewer reads and as JSON."""

from __future__ import annotations

import pytest

from turnout.diff import diff
from turnout.policy import PolicySet, parse_policies

GATEWAYS = """\
kind: Gateway
name: public
port: 10000
---
kind: Gateway
name: internal
port: 10001
proxies: ["internal-*"]
"""

CHECKOUT = """\
kind: Service
name: checkout
gateways: [public]
hosts: [checkout.example.com]
versions:
  v1: {endpoints: ["127.0.0.1:9101", "127.0.0.1:9102"]}
  v2: {endpoints: ["127.0.0.1:9201"]}
  v3: {endpoints: ["127.0.0.1:9301"]}
stable: v1
traffic: {v1: 95, v2: 5}
rules:
  - name: dogfood
    match: {headers: {x-employee: "true"}}
    traffic: {v1: 50, v2: 50}
  - name: beta
    match: {cookies: {beta: "on"}}
    traffic: {v2: 100}
mirror: {to: v3, percent: 10}
"""


def policies(checkout: str = CHECKOUT, gateways: str = GATEWAYS) -> PolicySet:
    return parse_policies({"gw.yaml": gateways, "checkout.yaml": checkout})


def lines(new: str, old: str = CHECKOUT, *, gateways: str = GATEWAYS) -> list[str]:
    """The diff's lines from the base set to one with checkout's document changed."""
    result = diff(policies(old, gateways), policies(new, gateways))
    return [change.text for change in result.changes]


def test_no_change() -> None:
    """Identical sets (even with different comments) have no changes and render so."""
    result = diff(policies(), policies("# a comment\n" + CHECKOUT))
    assert not result.changed
    assert result.render() == "no changes"
    assert result.to_json() == {"changed": False, "changes": []}


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        pytest.param(
            "traffic: {v1: 95, v2: 5}",
            "traffic: {v1: 75, v2: 25}",
            ["checkout default: v1 95% -> 75%, v2 5% -> 25%"],
            id="default-traffic",
        ),
        pytest.param(
            "traffic: {v1: 95, v2: 5}",
            "traffic: {v1: 95, v3: 5}",
            ["checkout default: v2 5% -> 0%, v3 0% -> 5%"],
            id="default-traffic-version-swapped",
        ),
        pytest.param(
            "traffic: {v1: 95, v2: 5}",
            "traffic: instances",
            ["checkout default: v1 95%, v2 5% -> instances (by healthy instances)"],
            id="default-to-instances",
        ),
        pytest.param(
            "    traffic: {v1: 50, v2: 50}",
            "    traffic: {v2: 100}",
            ["checkout rule dogfood: v1 50% -> 0%, v2 50% -> 100%"],
            id="rule-traffic",
        ),
        pytest.param(
            "mirror: {to: v3, percent: 10}",
            "mirror: {to: v3, percent: 0}",
            ["checkout mirror to v3: 10% -> 0%"],
            id="mirror-percent",
        ),
        pytest.param(
            "mirror: {to: v3, percent: 10}",
            "mirror: {to: v2, percent: 10}",
            ["checkout mirror to v3: 10% -> 0%", "checkout mirror to v2: 0% -> 10%"],
            id="mirror-target",
        ),
        pytest.param(
            "mirror: {to: v3, percent: 10}\n",
            "",
            ["checkout mirror to v3: 10% -> 0%"],
            id="mirror-removed",
        ),
        pytest.param(
            "    traffic: {v2: 100}\n",
            "    traffic: {v2: 100}\n    mirror: {to: v3, percent: 100}\n",
            ["checkout rule beta mirror to v3: 0% -> 100%"],
            id="rule-mirror-added",
        ),
        pytest.param(
            "stable: v1",
            "stable: v2",
            ["checkout stable: v1 -> v2"],
            id="stable",
        ),
        pytest.param(
            '  v3: {endpoints: ["127.0.0.1:9301"]}\n',
            '  v3: {endpoints: ["127.0.0.1:9301"]}\n  v4: {endpoints: ["127.0.0.1:9401"]}\n',
            ["checkout version v4: deployed (127.0.0.1:9401)"],
            id="version-deployed",
        ),
        pytest.param(
            '  v1: {endpoints: ["127.0.0.1:9101", "127.0.0.1:9102"]}',
            '  v1: {endpoints: ["127.0.0.1:9101", "127.0.0.1:9103"]}',
            ["checkout version v1 endpoints: +127.0.0.1:9103, -127.0.0.1:9102"],
            id="endpoints",
        ),
        pytest.param(
            "hosts: [checkout.example.com]",
            "hosts: [checkout.example.com, shop.example.com]",
            ["checkout hosts: +shop.example.com"],
            id="hosts",
        ),
        pytest.param(
            "gateways: [public]",
            "gateways: [public, internal]",
            ["checkout gateways: +internal"],
            id="gateways",
        ),
        pytest.param(
            "stable: v1\n",
            "stable: v1\npinHeader: false\n",
            ["checkout pin header: x-turnout-version -> off"],
            id="pin-header",
        ),
        pytest.param(
            "stable: v1\n",
            "stable: v1\nsticky: {cookie: cohort, ttl: 24h}\n",
            ["checkout sticky: off -> cookie cohort (ttl 24h)"],
            id="sticky",
        ),
        pytest.param(
            "stable: v1\n",
            "stable: v1\nhealthCheck: {path: /healthz, interval: 2s}\n",
            [
                "checkout health check: off -> /healthz every 2s (timeout 1s, unhealthy after 2, "
                "healthy after 1)"
            ],
            id="health-check",
        ),
        pytest.param(
            '    match: {headers: {x-employee: "true"}}',
            "    match: {headers: {x-employee: {prefix: t}}, path: {prefix: /api}}",
            [
                'checkout rule dogfood match: header x-employee="true" -> header x-employee '
                'prefix "t" and path prefix "/api"'
            ],
            id="rule-match",
        ),
    ],
)
def test_each_kind_of_change(old: str, new: str, expected: list[str]) -> None:
    """Each field's change reads as one line naming the service, segment and values."""
    assert old in CHECKOUT
    assert lines(CHECKOUT.replace(old, new)) == expected


def test_rules_added_removed_and_reordered() -> None:
    """A new rule, a removed rule and a new order (first match wins) are each a line."""
    dogfood = (
        '  - name: dogfood\n    match: {headers: {x-employee: "true"}}\n'
        "    traffic: {v1: 50, v2: 50}\n"
    )
    beta = '  - name: beta\n    match: {cookies: {beta: "on"}}\n    traffic: {v2: 100}\n'
    api = "  - name: api\n    match: {path: {prefix: /api}}\n    traffic: {v2: 100}\n"
    assert dogfood + beta in CHECKOUT
    assert lines(CHECKOUT.replace(dogfood + beta, beta + api)) == [
        'checkout rule api: added (path prefix "/api": v2 100%)',
        "checkout rule dogfood: removed (its requests take the next rule or default)",
    ]
    assert lines(CHECKOUT.replace(dogfood + beta, beta + dogfood)) == [
        "checkout rules order: dogfood, beta -> beta, dogfood"
    ]


def test_incremental_added_and_state_changes() -> None:
    """An incremental release added, and its state moving, read in release terms."""
    release = "incremental:\n  to: v2\n  steps: [5, 25, 100]\n  interval: 1m\n"
    running = release + "  state: {phase: running, step: 1}\n"
    rolled = release + '  state: {phase: rolled-back, step: 1, reason: "error rate 0.2"}\n'
    assert lines(CHECKOUT + release) == [
        "checkout incremental: added (to v2, steps 5%, 25%, 100%, every 1m; not started)"
    ]
    assert lines(CHECKOUT + rolled, CHECKOUT + running) == [
        "checkout incremental: running at step 2 of 3 (25%) -> rolled-back at step 2 of 3 "
        '(25%): "error rate 0.2"'
    ]
    assert lines(CHECKOUT, CHECKOUT + running) == ["checkout incremental: removed"]


def test_services_and_gateways_added_and_removed() -> None:
    """Whole services and gateways coming and going are one line each."""
    old = policies()
    other = "kind: Service\nname: search\nhosts: [search.test]\nversions: {blue: {endpoints: []}}\n"
    new = parse_policies(
        {
            "gw.yaml": GATEWAYS.replace("port: 10001", "port: 10002"),
            "checkout.yaml": CHECKOUT,
            "search.yaml": other + "stable: blue\ntraffic: {blue: 100}\n",
        }
    )
    assert [c.text for c in diff(old, new).changes] == [
        "gateway internal: listens on 0.0.0.0:10001 -> 0.0.0.0:10002",
        "search: added (default: blue 100%)",
    ]
    assert [c.text for c in diff(new, old).changes][-1] == "search: removed"


def test_json_carries_kind_segment_and_values() -> None:
    """--json gives each change's kind, service, segment and old/new values as numbers."""
    new = CHECKOUT.replace("traffic: {v1: 95, v2: 5}", "traffic: {v1: 74.5, v2: 25.5}")
    out = diff(policies(), policies(new)).to_json()
    assert out == {
        "changed": True,
        "changes": [
            {
                "kind": "traffic",
                "service": "checkout",
                "segment": "default",
                "old": {"v1": 95, "v2": 5},
                "new": {"v1": 74.5, "v2": 25.5},
                "text": "checkout default: v1 95% -> 74.5%, v2 5% -> 25.5%",
            }
        ],
    }
