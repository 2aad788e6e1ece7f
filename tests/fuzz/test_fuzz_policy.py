"""Fuzzing the policy loader: 10,000 generated policy sets, built from the POLICY.md
schema and then damaged (wrong types, unknown fields, bad shares, bad regexes,
duplicate names, garbage YAML). The loader never crashes: a set is either accepted
or rejected with PolicySetError, and every problem reads `FILE:LINE: path: message`
on one line, naming a file of the set and a line inside it."""

from __future__ import annotations

import copy
import json
import random
import re
import time
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from turnout.policy import PolicySet, PolicySetError, parse_policies

EXAMPLES = 10_000
PROBLEM = re.compile(r"^([^:\n]+):(\d+): [^\n]+$")
NO_DOCUMENTS = "<policies>: no policy documents found (*.yaml, *.yml)"

# -- a valid-looking policy set, by the POLICY.md schema ---------------------------
# Plain `random` driven by one seed that hypothesis draws: a policy set takes a
# hundred or so choices, and hypothesis's per-draw bookkeeping would make 10,000
# sets take minutes. A failure reports the seed and the sources, which reproduce it.

NAMES = ["public", "internal", "edge", "checkout", "web", "search", "a-b"]
VERSIONS = ["v1", "v2", "v3", "blue", "green", "canary"]
HOSTS = ["checkout.example.com", "checkout.example.com:*", "*", "web.test"]
ADDRESSES = ["127.0.0.1", "10.0.0.7", "svc.ns.svc.cluster.local", "::1"]
REGEXES = ["^a.*", "[0-9]+", "(?=x)", "([", "a{2,1}", "\\", "[z-a]"]
JUNK: list[Any] = [
    None,
    True,
    False,
    0,
    -1,
    101,
    10**12,
    33.333,
    0.001,
    1e300,
    float("nan"),
    float("inf"),
    "",
    "x",
    "100%",
    "instances",
    "1e400",
    "-0",
    "0x10",
    "~",
    "yes",
    "no",
    "1m",
    "??",
    [],
    [1, 2],
    ["v1"],
    {},
    {"a": 1},
    {"v1": "fifty"},
]
"""Values of every type: what a typo or a wrong paste puts in a field."""
GARBAGE = [
    ":",
    "- ",
    "{",
    "}",
    "[",
    "]",
    "\t",
    "&a ",
    "*a",
    "!!python/object:os.system ",
    "%YAML 1.1",
    "---",
    "...",
    "'",
    '"',
    "#",
    "\n",
    "  ",
    "@",
    "`",
    "|",
    ">",
    "? ",
    "<<: *a",
    "é",
    "\u2028",
    "\x00",
    "\x1f",
    "\x85",
    "\r",
]


def shares(rng: random.Random, versions: list[str]) -> Any:
    if rng.random() < 0.1:
        return "instances"
    chosen = rng.sample(versions, rng.randint(1, len(versions)))
    cuts = sorted(rng.randint(0, 100) for _ in range(len(chosen) - 1))
    bounds = [0, *cuts, 100]
    return {v: bounds[i + 1] - bounds[i] for i, v in enumerate(chosen)}


def string_match(rng: random.Random) -> Any:
    return rng.choice(
        [
            rng.choice(["true", "on", "1"]),
            {"prefix": rng.choice(["/api", "x"])},
            {"suffix": ".com"},
            {"regex": rng.choice(REGEXES)},
            {"present": rng.random() < 0.5},
        ]
    )


def gateway(rng: random.Random) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "kind": "Gateway",
        "name": rng.choice(NAMES),
        "port": rng.randint(1, 65535),
    }
    if rng.random() < 0.5:
        doc["address"] = rng.choice(["0.0.0.0", "127.0.0.1", "::", "localhost"])
    if rng.random() < 0.5:
        doc["proxies"] = rng.sample(["*", "edge", "edge-*", "[ab]*"], rng.randint(0, 2))
    return doc


def service(rng: random.Random) -> dict[str, Any]:
    versions = rng.sample(VERSIONS, rng.randint(1, 3))
    doc: dict[str, Any] = {
        "kind": "Service",
        "name": rng.choice(NAMES),
        "versions": {
            v: {
                "endpoints": [
                    f"{rng.choice(ADDRESSES)}:{rng.randint(1, 65535)}"
                    for _ in range(rng.randint(1, 3))
                ]
            }
            for v in versions
        },
        "stable": rng.choice(versions),
        "traffic": shares(rng, versions),
    }
    if rng.random() < 0.5:
        doc["hosts"] = rng.sample(HOSTS, rng.randint(1, 2))
    if rng.random() < 0.3:
        doc["gateways"] = rng.sample(NAMES, rng.randint(0, 2))
    if rng.random() < 0.25:
        doc["healthCheck"] = {"path": "/healthz", "interval": rng.choice(["2s", "1m", "0s"])}
    if rng.random() < 0.25:
        doc["sticky"] = rng.choice([{"header": "x-user-id"}, {"cookie": "cohort", "ttl": "24h"}])
    if rng.random() < 0.25:
        doc["mirror"] = {"to": rng.choice(versions), "percent": rng.randint(0, 100)}
    if rng.random() < 0.15:
        doc["pinHeader"] = rng.choice([False, "x-turnout-version", "x-pin"])
    if rng.random() < 0.5:
        rules = []
        for index in range(rng.randint(1, 2)):
            kind = rng.choice(["headers", "cookies", "query", "path"])
            if kind == "path":
                match: dict[str, Any] = {
                    "path": rng.choice(
                        [{"prefix": "/api"}, {"exact": "/"}, {"regex": rng.choice(REGEXES)}]
                    )
                }
            else:
                match = {kind: {rng.choice(["x-employee", "beta", "preview"]): string_match(rng)}}
            rules.append({"name": f"rule{index}", "match": match, "traffic": shares(rng, versions)})
        doc["rules"] = rules
    if rng.random() < 0.15:
        doc["incremental"] = {
            "to": rng.choice(versions),
            "steps": [rng.randint(0, 100) for _ in range(rng.randint(1, 5))],
            "interval": rng.choice(["1m", "30s", "0s", "x"]),
        }
    return doc


# -- damage -----------------------------------------------------------------------


def _containers(value: Any, out: list[Any]) -> list[Any]:
    """Every dict and list inside ``value`` (including itself)."""
    if isinstance(value, dict | list):
        out.append(value)
        for child in value.values() if isinstance(value, dict) else value:
            _containers(child, out)
    return out


def damage(rng: random.Random, docs: list[Any]) -> None:
    """1 to 4 structural mutations: wrong types, unknown fields, deleted or duplicated
    entries (duplicate names), bad shares, bad regexes."""
    for _ in range(rng.randint(1, 4)):
        target = rng.choice(_containers(docs, []))
        op = rng.choice(["type", "unknown", "delete", "duplicate", "shares", "regex"])
        if isinstance(target, list):
            if not target:
                target.append(copy.deepcopy(rng.choice(JUNK)))
            elif op == "duplicate":
                target.append(copy.deepcopy(rng.choice(target)))
            elif op == "delete":
                target.pop(rng.randrange(len(target)))
            else:
                target[rng.randrange(len(target))] = copy.deepcopy(rng.choice(JUNK))
            continue
        keys = list(target)
        if op == "unknown" or not keys:
            target[rng.choice(["trafic", "versoins", "extra", "Kind", "", "rules "])] = rng.choice(
                JUNK
            )
        elif op == "delete":
            del target[rng.choice(keys)]
        elif op == "shares":
            target[rng.choice(keys)] = rng.choice([-5, 101, 33.333, 0.001, 1e300, "50", None, 12.5])
        elif op == "regex":
            target[rng.choice(keys)] = {"regex": rng.choice(REGEXES)}
        else:
            target[rng.choice(keys)] = copy.deepcopy(rng.choice(JUNK))


def _yaml(value: Any, indent: int = 0) -> str:
    """Block-style YAML; scalars as JSON (valid YAML flow scalars)."""
    pad = "  " * indent
    if isinstance(value, dict):
        if not value:
            return "{}"
        lines = []
        for key, child in value.items():
            rendered = _yaml(child, indent + 1)
            sep = "\n" if isinstance(child, dict | list) and child else " "
            lines.append(f"{pad}{json.dumps(str(key))}:{sep}{rendered}")
        return "\n".join(lines)
    if isinstance(value, list):
        if not value:
            return "[]"
        return "\n".join(f"{pad}- " + _yaml(child, indent + 1).lstrip() for child in value)
    if isinstance(value, float) and value != value:
        return ".nan"
    if isinstance(value, float) and value in (float("inf"), float("-inf")):
        return ".inf" if value > 0 else "-.inf"
    return json.dumps(value)


def printable(rng: random.Random, size: int) -> str:
    """Random text, control characters and odd line breaks included."""
    alphabet = "abcxyz:-{}[],'\"#&*!|>%@` \n\t0123456789é✓\x07\x1f\r\u2028"
    return "".join(rng.choice(alphabet) for _ in range(size))


def policy_set(seed: int) -> dict[str, str]:
    """One generated policy set (file name -> text), damaged more often than not."""
    rng = random.Random(seed)
    docs: list[Any] = [gateway(rng) for _ in range(rng.randint(0, 2))]
    docs += [service(rng) for _ in range(rng.randint(0, 2))]
    if rng.random() < 0.6:
        damage(rng, docs)
    files: dict[str, list[str]] = {}
    for doc in docs:
        name = rng.choice(["gateway.yaml", "services/web.yaml", "b.yml"])
        files.setdefault(name, []).append(_yaml(doc))
    texts = {name: "\n---\n".join(parts) + "\n" for name, parts in files.items()}
    if texts and rng.random() < 0.25:  # text-level damage: garbage YAML
        name = rng.choice(sorted(texts))
        text = texts[name]
        at = rng.randint(0, len(text))
        how = rng.choice(["truncate", "insert", "replace"])
        if how == "truncate":
            text = text[:at]
        elif how == "insert":
            text = text[:at] + rng.choice(GARBAGE) + text[at:]
        else:
            text = printable(rng, rng.randint(0, 60))
        texts[name] = text
    return texts


# -- the property -----------------------------------------------------------------


def parse(sources: dict[str, str]) -> PolicySet | PolicySetError:
    """The loader's answer: a set, or the rejection (anything else propagates)."""
    try:
        return parse_policies(sources)
    except PolicySetError as exc:
        return exc


def lines(text: str) -> int:
    """The lines of ``text`` as YAML and editors count them: LF, CRLF or a lone CR."""
    return text.count("\n") + text.count("\r") - text.count("\r\n") + 1


def check(sources: dict[str, str]) -> PolicySet | PolicySetError:
    """Parse; assert the outcome is an accepted set or well-formed problems."""
    result = parse(sources)
    if isinstance(result, PolicySet):
        return result
    texts = [str(problem) for problem in result.problems]
    assert texts, "a rejection without problems"
    if texts == [NO_DOCUMENTS]:
        return result  # nothing but empty files: the set, not a file, is at fault
    for text in texts:
        match = PROBLEM.match(text)
        assert match, f"badly formed problem {text!r} for {sources!r}"
        file, line = match.group(1), int(match.group(2))
        assert file in sources, f"problem names {file!r}, not a file of the set: {text!r}"
        assert 1 <= line <= lines(sources[file]), f"line out of the file: {text!r}"
    return result


def test_policy_loader_fuzz() -> None:
    """10,000 generated, damaged policy sets: parse_policies accepts each or raises
    PolicySetError whose every problem is `FILE:LINE: path: message` on one line, in a
    file of the set, within its lines (nothing else is ever raised)."""
    outcomes = {"accepted": 0, "rejected": 0}

    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(st.integers(min_value=0, max_value=2**63))
    def run(seed: int) -> None:
        result = check(policy_set(seed))
        outcomes["accepted" if isinstance(result, PolicySet) else "rejected"] += 1

    started = time.perf_counter()
    run()
    seconds = time.perf_counter() - started
    print(f"\n[fuzz] policy sets in {seconds:.0f}s: {outcomes}")
    assert sum(outcomes.values()) >= EXAMPLES * 0.95
    assert outcomes["accepted"] >= 100, "the generator makes too few valid sets to be useful"
    assert outcomes["rejected"] >= 1000


def test_an_empty_set_is_rejected_with_one_set_level_problem() -> None:
    """A set without documents is rejected with one problem naming the set, not a file."""
    for sources in ({}, {"a.yaml": ""}, {"a.yaml": "---\n---\n"}, {"a.yaml": "# nothing\n"}):
        result = parse(sources)
        assert isinstance(result, PolicySetError), sources
        assert [str(p) for p in result.problems] == [NO_DOCUMENTS]


def test_a_control_character_is_reported_at_its_line() -> None:
    """A control character is reported as `FILE:LINE: invalid YAML: ...` on one line."""
    for text, line in (("kind: Gateway\nname: \x1f\n", 2), ("\x07", 1), ("a: 1\n\nb: \x00", 3)):
        result = parse({"a.yaml": text})
        assert isinstance(result, PolicySetError)
        (problem,) = result.problems
        assert re.fullmatch(
            rf"a\.yaml:{line}: invalid YAML: unacceptable character #x00[0-9a-f]{{2}}: [^\n]+",
            str(problem),
        ), str(problem)


def test_a_multi_line_value_is_quoted_on_one_line() -> None:
    """A problem quoting a string value escapes its line breaks and control
    characters (and then its backslashes) as a Python repr would, on one line."""
    result = parse({"a.yaml": '"a\n\nb"\n'})
    assert isinstance(result, PolicySetError)
    assert [str(p) for p in result.problems] == [
        'a.yaml:1: a policy document must be a mapping, got the string "a\\nb"'
    ]
    result = parse({"a.yaml": 'kind: Gateway\nname: "x\\\\y\\tz\\u2028"\nport: 1\n'})
    assert isinstance(result, PolicySetError)
    (problem,) = result.problems
    assert str(problem).startswith('a.yaml:2: name: invalid name "x\\\\y\\tz\\u2028": ')


def test_the_c_parser_reads_every_set_as_the_pure_parser_does(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """On 3,000 generated, damaged sets, libyaml (the fast path) and ruamel's pure
    parser give the same outcome: the same set, or the same problems at the same lines."""
    from turnout.policy import _loader

    assert _loader._C_YAML is not None, "ruamel.yaml.clib is a dependency: the fast path must run"
    rng = random.Random(20261206)
    sets = [policy_set(rng.randrange(2**63)) for _ in range(3000)]
    fast = [_outcome(sources) for sources in sets]
    _loader._read_file.cache_clear()
    monkeypatch.setattr(_loader, "_C_YAML", None)
    pure = [_outcome(sources) for sources in sets]
    _loader._read_file.cache_clear()
    for sources, a, b in zip(sets, fast, pure, strict=True):
        assert a == b, f"{sources!r}"


def _outcome(sources: dict[str, str]) -> object:
    result = parse(sources)
    return [str(p) for p in result.problems] if isinstance(result, PolicySetError) else result
