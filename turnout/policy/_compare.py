"""`mirror.compare`: dark response diffing, and the names of what is compared.

A comparator (`turnout compare`) answers each mirrored request three times, from a
light instance (primary), a second light instance (secondary) and the dark version,
and compares the answers field by field. A field is named as `ignore` names it:

    status                      the status code
    header:content-type         a response header (lower-cased)
    body                        a body that is not JSON, compared as bytes
    body:$.items[*].price       a JSON body, structurally: keys as `.key` (or
                                `['odd key']`), every list element as `[*]`

`ignore: ["body:$.meta"]` ignores `$.meta` and everything below it; `[0]` in an
ignore is read as `[*]` (elements are not told apart).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = [
    "ALWAYS_REDACTED",
    "DEFAULT_COMPARE_HEADERS",
    "DEFAULT_COMPARE_METHODS",
    "DEFAULT_MAX_DIFF_RATE",
    "Compare",
    "field_under",
    "json_path",
    "path_key",
]

#: Methods compared when `methods` is not given: a request that changes nothing.
DEFAULT_COMPARE_METHODS: tuple[str, ...] = ("GET", "HEAD")

#: Response headers compared when `headers` is not given (`date`, `content-length`,
#: `x-request-id` and the like are left out: they differ, or the body says it).
DEFAULT_COMPARE_HEADERS: tuple[str, ...] = (
    "cache-control",
    "content-encoding",
    "content-language",
    "content-type",
    "location",
    "set-cookie",
    "vary",
    "www-authenticate",
)

#: `maxDiffRate` when not given.
DEFAULT_MAX_DIFF_RATE = 0.01

#: Header values never shown in examples, whatever `redact` says.
ALWAYS_REDACTED: tuple[str, ...] = ("authorization", "cookie", "set-cookie")


@dataclass(frozen=True, slots=True)
class Compare:
    """`mirror.compare`: what the comparator compares and how much may differ."""

    methods: tuple[str, ...] = DEFAULT_COMPARE_METHODS
    ignore: tuple[str, ...] = ()  # canonical field names (see the module docstring)
    max_diff_rate: float = DEFAULT_MAX_DIFF_RATE
    headers: tuple[str, ...] = DEFAULT_COMPARE_HEADERS  # response headers compared
    redact: tuple[str, ...] = ALWAYS_REDACTED  # header values never shown


_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SEGMENT = re.compile(
    r"\.(?P<name>[A-Za-z_][A-Za-z0-9_]*)"
    r"|\[(?P<star>\*|\d+)\]"
    r"|\[(?P<quote>['\"])(?P<key>(?:\\.|(?!(?P=quote)).)*)(?P=quote)\]"
)


def path_key(key: str) -> str:
    """The path segment naming an object key: `.total`, or `['odd key']`."""
    if _IDENTIFIER.fullmatch(key):
        return f".{key}"
    escaped = key.replace("\\", "\\\\").replace("'", "\\'")
    return f"['{escaped}']"


def field_under(field: str, ignored: str) -> bool:
    """Whether `field` is `ignored` or lies below it (`body:$.meta` covers
    `body:$.meta.at` and `body:$.meta['x']`; `body` covers every body field)."""
    if field == ignored:
        return True
    if not field.startswith(ignored):
        return False
    rest = field[len(ignored)]
    return rest in ".[" or (ignored == "body" and rest == ":")


def json_path(text: str) -> str | None:
    """`$.items[0]['a b']` -> `$.items[*]['a b']`; None when it is not a path."""
    if not text.startswith("$"):
        return None
    out, position = ["$"], 1
    while position < len(text):
        match = _SEGMENT.match(text, position)
        if match is None:
            return None
        if match.group("name") is not None:
            out.append(path_key(match.group("name")))
        elif match.group("star") is not None:
            out.append("[*]")
        else:
            key = re.sub(r"\\(.)", r"\1", match.group("key"))
            out.append(path_key(key))
        position = match.end()
    return "".join(out)
