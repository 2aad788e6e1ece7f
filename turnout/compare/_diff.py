"""Comparing two answers to the same request, field by field. Pure: no I/O.

Fields are named as `mirror.compare.ignore` names them (turnout.policy): `status`,
`header:NAME` for each compared response header, and the body: a JSON body (both
sides' content type says JSON and both parse) structurally, `body:$.items[*].price`
(every list element is `[*]`: a list of a different length differs at the list's own
path, its common elements element by element), any other body as bytes (`body`).
When the statuses differ only `status` is reported: the rest follows from it.

Each difference keeps the two values, shown compactly (JSON, truncated) or as
`<redacted>` for a redacted header, for the examples.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from turnout.policy import field_under, path_key

__all__ = ["ABSENT", "MORE_FIELDS", "Answer", "Settings", "differences", "show"]

#: How a value missing on one side is shown.
ABSENT = "<absent>"
#: Where differences go past `Settings.max_fields` in one comparison.
MORE_FIELDS = "(more fields)"

_SHOWN = 160  # characters of a value kept for an example
_MAX_DEPTH = 64  # JSON nesting compared structurally; deeper compared whole


@dataclass(frozen=True, slots=True)
class Answer:
    """One answer: its status (None: no answer, `error` says why), response headers
    (lower-cased names, repeated headers joined with ", "), body (decoded from its
    content encoding) and whether the body was cut at the size cap."""

    status: int | None
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""
    error: str = ""
    truncated: bool = False

    @property
    def status_text(self) -> str:
        return str(self.status) if self.status is not None else f"no answer: {self.error}"

    @property
    def json(self) -> bool:
        return "json" in self.headers.get("content-type", "")


@dataclass(frozen=True, slots=True)
class Settings:
    """What one mirror target compares (from its policy's `compare:`)."""

    ignore: tuple[str, ...] = ()
    headers: tuple[str, ...] = ()
    redact: frozenset[str] = frozenset({"authorization", "cookie", "set-cookie"})
    max_fields: int = 100


def show(value: Any) -> str:
    """A value as compact JSON (text as itself), cut to a readable length."""
    if value is _MISSING:
        return ABSENT
    if isinstance(value, bytes):
        text = value[:_SHOWN].decode("utf-8", "backslashreplace")
        return f"{text}{'...' if len(value) > _SHOWN else ''} ({len(value)} bytes)"
    text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
    return text if len(text) <= _SHOWN else text[:_SHOWN] + "..."


_MISSING = object()


class _Found:
    """Differences of one comparison: field -> (light value, other value), first kept."""

    __slots__ = ("fields", "settings")

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.fields: dict[str, tuple[str, str]] = {}

    def ignored(self, name: str) -> bool:
        return any(field_under(name, ignored) for ignored in self.settings.ignore)

    def add(self, name: str, light: Any, other: Any) -> None:
        if name in self.fields:
            return
        if len(self.fields) >= self.settings.max_fields:
            self.fields.setdefault(MORE_FIELDS, ("", ""))
            return
        self.fields[name] = (show(light), show(other))


def differences(light: Answer, other: Answer, settings: Settings) -> dict[str, tuple[str, str]]:
    """Every field (not ignored) in which `other` differs from `light`, with both values."""
    found = _Found(settings)
    if light.status != other.status and not found.ignored("status"):
        found.add("status", light.status_text, other.status_text)
        return found.fields
    for name in settings.headers:
        header = f"header:{name}"
        mine, theirs = light.headers.get(name), other.headers.get(name)
        if mine != theirs and not found.ignored(header):
            if name in settings.redact:
                found.add(header, "<redacted>", "<redacted>")
            else:
                found.add(
                    header,
                    _MISSING if mine is None else mine,
                    _MISSING if theirs is None else theirs,
                )
    if light.body == other.body or found.ignored("body"):
        return found.fields
    if light.json and other.json:
        try:
            mine_json, theirs_json = json.loads(light.body), json.loads(other.body)
        except (ValueError, RecursionError):
            pass
        else:
            _walk(mine_json, theirs_json, "$", found, 0)
            return found.fields
    found.add("body", light.body, other.body)
    return found.fields


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    return type(value).__name__


def _walk(mine: Any, theirs: Any, path: str, found: _Found, depth: int) -> None:
    name = f"body:{path}"
    if found.ignored(name):
        return
    kind = _kind(mine)
    if kind != _kind(theirs):  # true != 1 here, unlike in Python
        found.add(name, mine, theirs)
        return
    if depth >= _MAX_DEPTH:
        if mine != theirs:
            found.add(name, mine, theirs)
        return
    if kind == "object":
        for key in [*mine, *(k for k in theirs if k not in mine)]:
            below = path + path_key(key)
            if key not in mine or key not in theirs:
                if not found.ignored(f"body:{below}"):
                    found.add(f"body:{below}", mine.get(key, _MISSING), theirs.get(key, _MISSING))
                continue
            _walk(mine[key], theirs[key], below, found, depth + 1)
    elif kind == "array":
        if len(mine) != len(theirs):
            found.add(name, mine, theirs)
        for a, b in zip(mine, theirs, strict=False):
            _walk(a, b, path + "[*]", found, depth + 1)
    elif mine != theirs:
        found.add(name, mine, theirs)
