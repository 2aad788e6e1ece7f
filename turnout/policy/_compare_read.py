"""Reading `mirror.compare` (the model and the field names are in `_compare`)."""

from __future__ import annotations

import re
from collections.abc import Callable

from ._compare import (
    ALWAYS_REDACTED,
    DEFAULT_COMPARE_HEADERS,
    DEFAULT_COMPARE_METHODS,
    DEFAULT_MAX_DIFF_RATE,
    Compare,
    json_path,
)
from ._read import (
    At,
    Ctx,
    Field,
    described,
    each,
    fraction,
    items,
    read_mapping,
    string,
    valid,
)
from ._values import header_name

__all__ = ["read_compare"]

_METHOD = re.compile(r"[A-Z][A-Z0-9-]*")

_FIELD_HELP = (
    'expected "status", "body", "header:NAME" or "body:$.path" '
    '(e.g. "header:date", "body:$.meta.generatedAt", "body:$.items[*].id")'
)


def _field(ctx: Ctx, at: At) -> str:
    text = string(ctx, at).strip()
    if text in ("status", "body"):
        return text
    kind, sep, rest = text.partition(":")
    if sep and kind == "header":
        return _header_field(ctx, at, rest)
    if not (sep and kind == "body"):
        ctx.fail(at, f'invalid field "{text}": {_FIELD_HELP}')
    path = json_path(rest.strip())
    if path is None:
        ctx.fail(at, f'invalid JSON path "{rest}": {_FIELD_HELP}')
    return f"body:{path}"


def _header_field(ctx: Ctx, at: At, name: str) -> str:
    name = name.strip().lower()
    if not name or not re.fullmatch(r"[!#$%&'*+.^_`|~0-9a-z-]+", name):
        ctx.fail(at, f'invalid header name "{name}" in "header:{name}"')
    return f"header:{name}"


def _method(ctx: Ctx, at: At) -> str:
    method = string(ctx, at)
    if not _METHOD.fullmatch(method):
        ctx.fail(at, f'invalid method "{method}": write it in capitals, e.g. GET, HEAD, POST')
    return method


def _unique(ctx: Ctx, at: At, read: Callable[[Ctx, At], str], what: str) -> tuple[str, ...]:
    ats = items(ctx, at)
    found = each(ctx, ats, read)
    seen: set[str] = set()
    for item_at, value in zip(ats, found, strict=True):
        if value in seen:
            ctx.fail(item_at, f'{what} "{value}" is listed twice')
        seen.add(value)
    return tuple(found)


def _methods(ctx: Ctx, at: At) -> tuple[str, ...]:
    methods = _unique(ctx, at, _method, "method")
    if not methods:
        ctx.fail(at, "list at least one method (leave methods out for GET and HEAD)")
    return methods


#: The schemas of the lists (`turnout schema`; the loader checks the rest).
_HEADERS = {"type": "array", "items": header_name, "uniqueItems": True}
_FIELDS = {"type": "array", "items": {"type": "string"}, "uniqueItems": True}
_METHODS = {
    "type": "array",
    "items": {"type": "string", "pattern": f"^{_METHOD.pattern}$"},
    "minItems": 1,
    "uniqueItems": True,
}

_COMPARE = {
    "methods": Field(_methods, schema=_METHODS),
    "ignore": Field(lambda ctx, at: _unique(ctx, at, _field, "field"), schema=_FIELDS),
    "maxDiffRate": Field(fraction),
    "headers": Field(lambda ctx, at: _unique(ctx, at, header_name, "header"), schema=_HEADERS),
    "redact": Field(lambda ctx, at: _unique(ctx, at, header_name, "header"), schema=_HEADERS),
}


@described(_COMPARE)
def read_compare(ctx: Ctx, at: At) -> Compare:
    """`mirror.compare` (an empty mapping, `{}`, compares with every default)."""
    values = valid(read_mapping(ctx, at, _COMPARE))
    redact = tuple(dict.fromkeys((*ALWAYS_REDACTED, *values.get("redact", ()))))
    return Compare(
        methods=values.get("methods", DEFAULT_COMPARE_METHODS),
        ignore=values.get("ignore", ()),
        max_diff_rate=values.get("maxDiffRate", DEFAULT_MAX_DIFF_RATE),
        headers=values.get("headers", DEFAULT_COMPARE_HEADERS),
        redact=redact,
    )
