"""`turnout schema` agrees with the loader: generated from the loader's own field
tables, it accepts every example and fixture the loader accepts and rejects the
structural errors the loader rejects (checked with the `jsonschema` library)."""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from ruamel.yaml import YAML

from turnout.policy import PolicySetError, load_policies, parse_policies, policy_schema
from turnout.policy._schema import missing_schemas

ROOT = Path(__file__).resolve().parents[2]
ACCEPTED_SETS = [ROOT / "examples" / "policies", ROOT / "tests" / "policy" / "fixtures" / "valid"]

GATEWAY = "kind: Gateway\nname: public\nport: 10000\n"

#: A service using every field of the second round (approve, window, queries,
#: approvals, pinHeader {name, when}).
EVERYTHING = """\
kind: Service
name: checkout
hosts: [checkout.example.com]
versions:
  v1: {endpoints: ["127.0.0.1:9101", "[::1]:9102"]}
  v2: {endpoints: ["app.internal:80"]}
healthCheck: {path: /healthz, interval: 2s, timeout: 1s, unhealthyThreshold: 2, healthyThreshold: 1}
stable: v1
traffic: {v1: 95, v2: 5}
sticky: {cookie: turnout-cohort, ttl: 24h}
rules:
  - name: dogfood
    match:
      headers: {x-employee: "true", x-team: {prefix: ops}}
      cookies: {beta: {present: true}}
      query: {preview: "1"}
      path: {regex: "^/api/.*"}
    traffic: {v1: 50, v2: 50}
    mirror: {to: v2, percent: 100}
mirror: {to: v2, percent: 12.5}
pinHeader:
  name: x-turnout-version
  when: {headers: {x-employee: "true"}}
incremental:
  to: v2
  steps: [5, 25, approve, 50, 100]
  window: {days: Mon-Fri, hours: "09:00-17:00", timezone: Europe/Berlin}
  interval: 5m
  progressDeadline: 20m
  analysis:
    minRequests: 200
    maxErrorRate: 0.01
    maxErrorRateIncrease: 0.005
    maxLatencyP99: 500ms
    maxLatencyP99Increase: 1.2
    minLatencyIncrease: 10ms
    queries:
      - name: payment-failures
        query: 'sum(rate(payment_failed_total{version="$version"}[1m]))'
        max: 0.5
      - {name: p50, query: 'p50{version="$version"}', maxIncrease: 0.1}
  onFailure: hold
  state:
    phase: waiting
    step: 1
    since: 2026-11-28T08:00:00Z
    reason: "waiting for approval"
    approvals: [{step: 2, by: alice, at: "2026-11-28T09:00:00Z"}]
"""

PIN_STRING = EVERYTHING.replace(
    'pinHeader:\n  name: x-turnout-version\n  when: {headers: {x-employee: "true"}}\n',
    "pinHeader: x-pin\n",
)
PIN_OFF = PIN_STRING.replace("pinHeader: x-pin\n", "pinHeader: false\n")


def _documents(text: str) -> list[Any]:
    """The YAML documents as JSON values (YAML timestamps become strings, as a
    language server reading the file sees them)."""

    def plain(value: Any) -> Any:
        if isinstance(value, datetime | date):
            return value.isoformat().replace("+00:00", "Z")
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        if isinstance(value, list):
            return [plain(v) for v in value]
        return value

    return [plain(doc) for doc in YAML(typ="safe").load_all(text) if doc is not None]


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    schema = policy_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def _errors(validator: jsonschema.Draft202012Validator, document: Any) -> list[str]:
    return [error.message for error in validator.iter_errors(json.loads(json.dumps(document)))]


def test_every_field_the_loader_reads_has_a_schema() -> None:
    """No field of any table is left without a schema (one source of truth)."""
    assert missing_schemas() == []


def test_schema_is_valid_draft_2020_12() -> None:
    """The schema itself is a valid JSON Schema of draft 2020-12."""
    schema = policy_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(schema)


@pytest.mark.parametrize("directory", ACCEPTED_SETS, ids=lambda p: p.name)
def test_schema_accepts_every_accepted_example_and_fixture(
    validator: jsonschema.Draft202012Validator, directory: Path
) -> None:
    """Every document of a policy set the loader accepts is valid against the schema."""
    load_policies(directory)  # the loader accepts the set
    files = [p for p in directory.rglob("*.y*ml") if not any(s.startswith(".") for s in p.parts)]
    assert files
    for path in files:
        for document in _documents(path.read_text()):
            assert _errors(validator, document) == [], path


@pytest.mark.parametrize("text", [EVERYTHING, PIN_STRING, PIN_OFF], ids=["all", "pin", "nopin"])
def test_schema_accepts_every_field(validator: jsonschema.Draft202012Validator, text: str) -> None:
    """A service using every field (approval gates, window, queries, approvals, the
    three forms of pinHeader) is accepted by both."""
    parse_policies({"g.yaml": GATEWAY, "s.yaml": text})
    for document in _documents(text):
        assert _errors(validator, document) == []


#: Structural mistakes: (what, original text, mistaken text) on EVERYTHING.
STRUCTURAL = [
    ("unknown field", "stable: v1\n", "stable: v1\nstabel: v1\n"),
    ("missing required field", "stable: v1\n", ""),
    ("wrong type", "port: 10000", "port: ten"),
    ("unknown phase", "phase: waiting", "phase: wating"),
    ("unknown step word", "approve, 50", "approval, 50"),
    ("negative share", "[5, 25,", "[-5, 25,"),
    ("bad duration", "interval: 5m", "interval: 5"),
    ("bad hours", '"09:00-17:00"', '"9-17"'),
    ("query without a name", "      - name: payment-failures\n        query:", "      - query:"),
    ("query field misspelt", "maxIncrease: 0.1}", "maxIncrese: 0.1}"),
    ("approval without by", "by: alice, ", ""),
    ("pinHeader a number", "pinHeader:\n  name: x-turnout-version\n", "pinHeader: 5\nx:\n"),
    ("pin when misspelt", "when: {headers", "wen: {headers"),
    ("string match misspelt", "{prefix: ops}", "{prefx: ops}"),
    ("rule name not a DNS label", "name: dogfood", "name: Dog_Food"),
    ("mirror without percent", "mirror: {to: v2, percent: 12.5}", "mirror: {to: v2}"),
    ("fraction above 1", "maxErrorRate: 0.01", "maxErrorRate: 2"),
    ("onFailure unknown", "onFailure: hold", "onFailure: retry"),
    ("since not a time", "since: 2026-11-28T08:00:00Z", 'since: "at 2026-11-28T08:00:00Z"'),
    ("kind unknown", "kind: Service", "kind: Servise"),
]


@pytest.mark.parametrize(("what", "old", "new"), STRUCTURAL, ids=[s[0] for s in STRUCTURAL])
def test_schema_rejects_what_the_loader_rejects(
    validator: jsonschema.Draft202012Validator, what: str, old: str, new: str
) -> None:
    """A structural mistake the loader reports is also invalid against the schema."""
    gateway, service = GATEWAY, EVERYTHING
    if old in gateway:
        gateway = gateway.replace(old, new, 1)
    else:
        assert old in service, what
        service = service.replace(old, new, 1)
    with pytest.raises(PolicySetError):
        parse_policies({"g.yaml": gateway, "s.yaml": service})
    documents = _documents(gateway) + _documents(service)
    assert any(_errors(validator, document) for document in documents), what
