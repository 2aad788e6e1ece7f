"""`turnout diff` names a change of a mirror's `compare:`."""

from __future__ import annotations

from turnout.diff import diff
from turnout.policy import parse_policies

GATEWAY = "kind: Gateway\nname: public\nport: 10000\n"
SERVICE = """\
kind: Service
name: checkout
versions:
  v1: {{endpoints: ["127.0.0.1:9101"]}}
  v3: {{endpoints: ["127.0.0.1:9301"]}}
stable: v1
traffic: {{v1: 100}}
mirror: {{to: v3, percent: 10{compare}}}
"""


def lines(before: str, after: str) -> list[str]:
    old = parse_policies({"p/gw.yaml": GATEWAY, "p/s.yaml": SERVICE.format(compare=before)})
    new = parse_policies({"p/gw.yaml": GATEWAY, "p/s.yaml": SERVICE.format(compare=after)})
    return [change.text for change in diff(old, new).changes]


def test_compare_turned_on_changed_and_off() -> None:
    """Turning compare on, changing it and turning it off are each one line."""
    assert lines("", ", compare: {}") == [
        "checkout mirror to v3: compare off -> maxDiffRate 0.01, methods GET HEAD"
    ]
    assert lines(", compare: {}", ", compare: {maxDiffRate: 0.05, ignore: [status]}") == [
        "checkout mirror to v3: compare maxDiffRate 0.01, methods GET HEAD -> "
        "maxDiffRate 0.05, methods GET HEAD, ignore status"
    ]
    assert lines(", compare: {}", "") == [
        "checkout mirror to v3: compare maxDiffRate 0.01, methods GET HEAD -> off"
    ]
    assert lines(", compare: {}", ", compare: {}") == []
