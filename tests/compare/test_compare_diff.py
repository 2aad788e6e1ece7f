"""Comparing two answers field by field, and counting what a comparator found."""

from __future__ import annotations

import json

from turnout.compare import ABSENT, MORE_FIELDS, Answer, Settings, Tally, differences, shadow_host

JSON = {"content-type": "application/json"}


def answer(body: object, status: int = 200, headers: dict[str, str] | None = None) -> Answer:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return Answer(status, {**JSON, **(headers or {})}, raw)


def test_json_bodies_are_compared_structurally() -> None:
    """Each differing JSON field is named by its path, list elements as [*], with both
    values; equal fields and key order do not count."""
    light = answer({"total": 42, "items": [{"id": 1, "price": 5}, {"id": 2, "price": 7}]})
    dark = answer({"items": [{"price": 5, "id": 1}, {"id": 2, "price": 8}], "total": 43})
    assert differences(light, dark, Settings()) == {
        "body:$.total": ("42", "43"),
        "body:$.items[*].price": ("7", "8"),
    }


def test_missing_fields_lists_and_types() -> None:
    """A key on one side only, a list of another length, and a value of another type
    each differ at their own path."""
    light = answer({"a": 1, "items": [1, 2], "n": 1, "odd key": True})
    dark = answer({"b": 1, "items": [], "n": "1", "odd key": 1})
    found = differences(light, dark, Settings())
    assert found["body:$.a"] == ("1", ABSENT)
    assert found["body:$.b"] == (ABSENT, "1")
    assert found["body:$.items"] == ("[1,2]", "[]")
    assert found["body:$.n"] == ("1", "1")  # a number against a string
    assert found["body:$['odd key']"] == ("true", "1")


def test_ignore_covers_a_field_and_what_is_below_it() -> None:
    """Ignored fields (and everything below them) are never reported."""
    light = answer({"meta": {"at": 1, "id": "a"}, "x": 1}, headers={"date": "1"})
    dark = answer({"meta": {"at": 2, "id": "b"}, "x": 2}, headers={"date": "2"})
    settings = Settings(ignore=("body:$.meta", "header:date"), headers=("date",))
    assert differences(light, dark, settings) == {"body:$.x": ("1", "2")}


def test_status_headers_and_redaction() -> None:
    """A different status is the one difference reported; compared headers differ by
    value, redacted ones show no value."""
    assert differences(answer({}), answer({}, status=503), Settings()) == {"status": ("200", "503")}
    none = Answer(None, error="ClientConnectorError")
    assert differences(answer({}), none, Settings())["status"][1] == (
        "no answer: ClientConnectorError"
    )
    light = answer({}, headers={"set-cookie": "s=1", "cache-control": "no-store"})
    dark = answer({}, headers={"set-cookie": "s=2", "cache-control": "max-age=60"})
    settings = Settings(headers=("set-cookie", "cache-control", "vary"))
    assert differences(light, dark, settings) == {
        "header:set-cookie": ("<redacted>", "<redacted>"),
        "header:cache-control": ("no-store", "max-age=60"),
    }


def test_other_bodies_are_compared_as_bytes() -> None:
    """A body that is not JSON (or does not parse) differs as `body`."""
    light = Answer(200, {"content-type": "text/plain"}, b"hello")
    dark = Answer(200, {"content-type": "text/plain"}, b"hullo")
    assert differences(light, dark, Settings()) == {"body": ("hello (5 bytes)", "hullo (5 bytes)")}
    broken = Answer(200, JSON, b"{not json")
    assert "body" in differences(answer({}), broken, Settings())


def test_many_differences_are_capped() -> None:
    """Past max_fields differences in one comparison the rest are one `(more fields)`."""
    light = answer({f"k{i}": i for i in range(10)})
    dark = answer({f"k{i}": -i - 1 for i in range(10)})
    found = differences(light, dark, Settings(max_fields=3))
    assert len(found) == 4
    assert MORE_FIELDS in found


def test_tally_counts_requests_fields_and_sets() -> None:
    """A tally counts compared requests, per field and per set of fields differing
    together, keeps few examples per field, and starts over after drain()."""
    tally = Tally(examples=2)
    key = ("shop", "v3", "v1")
    request = ("GET", "/items", "page=2")
    for total in (1, 2, 3):
        tally.record(
            key,
            {"body:$.total": ("1", str(total)), "body:$.at": ("a", "b")},
            {"body:$.at": ("a", "c")},
            request,
        )
    tally.record(key, {}, {}, request)
    tally.skip(key, "method POST not listed")
    (figures,) = tally.drain()
    assert figures.compared == 4
    assert dict(figures.skipped) == {"method POST not listed": 1}
    counts = {f.field: (f.differing, f.noise) for f in figures.fields}
    assert counts == {"body:$.at": (3, 3), "body:$.total": (3, 0)}
    assert [(sorted(s.fields), s.count) for s in figures.differing] == [
        (["body:$.at", "body:$.total"], 3)
    ]
    assert [(list(s.fields), s.count) for s in figures.noise] == [(["body:$.at"], 3)]
    kinds = [(e.field, e.example.kind) for e in figures.examples]
    assert kinds.count(("body:$.total", "dark")) == 2  # capped
    assert kinds.count(("body:$.at", "noise")) == 1
    assert figures.examples[0].example.query == "page=2"
    assert tally.drain() == []


def test_tally_bounds_fields_and_sets() -> None:
    """Fields past max_fields, and field sets past max_sets, are folded into
    `(more fields)`."""
    tally = Tally(max_fields=2, max_sets=1)
    key = ("shop", "v3", "v1")
    for i in range(5):
        tally.record(key, {f"body:$.f{i}": ("1", "2")}, {}, ("GET", "/", ""))
    (figures,) = tally.drain()
    assert len(figures.fields) == 3
    assert {f.field for f in figures.fields} >= {MORE_FIELDS}
    assert sum(s.count for s in figures.differing) == 5
    assert len(figures.differing) == 2


def test_shadow_host() -> None:
    """Envoy's `-shadow` is taken off the host part, the port kept."""
    assert shadow_host("shop.example.com-shadow") == "shop.example.com"
    assert shadow_host("shop.example.com-shadow:8080") == "shop.example.com:8080"
    assert shadow_host("shop.example.com") == "shop.example.com"
