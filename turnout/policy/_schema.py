"""The policy format as a JSON Schema (draft 2020-12), for editors and CI.

Generated from the tables the loader reads documents by (`_documents`): each field's
`Field.value_schema()` (a reader's `described` fragment, or the table of fields of a
nested mapping), so an editor checks a file against exactly the fields the loader
knows. The schema is structural: field names, types, enums, ranges and name patterns.
What needs more than one field (shares summing to 100, references to declared
versions, a dark run needing a mirror) stays the loader's to say, with file and line.

    turnout schema > policy.schema.json
    # yaml-language-server: $schema=./policy.schema.json     (first line of a policy file)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ._documents import GATEWAY_FIELDS, SERVICE_FIELDS
from ._read import Field, schema_of

__all__ = ["SCHEMA_ID", "missing_schemas", "policy_schema"]

SCHEMA_ID = "urn:turnout:policy:v1"  # an identifier, not a place: the schema is `turnout schema`


def policy_schema() -> dict[str, Any]:
    """One policy document: a Gateway or a Service, told apart by `kind`."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "turnout release policy (one YAML document: a Gateway or a Service)",
        "type": "object",
        "required": ["kind"],
        "properties": {"kind": {"enum": ["Gateway", "Service"]}},
        "oneOf": [
            {"title": "Gateway", **_resolve(GATEWAY_FIELDS)},
            {"title": "Service", **_resolve(SERVICE_FIELDS)},
        ],
    }


def _is_table(value: object) -> bool:
    return (
        isinstance(value, Mapping)
        and bool(value)
        and all(isinstance(v, Field) for v in value.values())
    )


def _object(table: Mapping[str, Field]) -> dict[str, Any]:
    required = [name for name, spec in table.items() if spec.required]
    return {
        "type": "object",
        "properties": {name: _resolve(spec.value_schema() or {}) for name, spec in table.items()},
        **({"required": required} if required else {}),
        "additionalProperties": False,
    }


def _resolve(value: Any) -> Any:
    """A schema fragment with readers replaced by their schemas and tables by objects."""
    if _is_table(value):
        return _object(value)
    if callable(value):
        return _resolve(schema_of(value) or {})
    if isinstance(value, Mapping):
        return {key: _resolve(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_resolve(item) for item in value]
    return value


def missing_schemas() -> list[str]:
    """Field paths whose reader declares no schema (a test keeps this empty)."""
    missing: list[str] = []

    def walk(path: str, value: Any) -> None:
        if _is_table(value):
            for name, spec in value.items():
                schema = spec.value_schema()
                if schema is None:
                    missing.append(f"{path}.{name}".lstrip("."))
                else:
                    walk(f"{path}.{name}", schema)
        elif isinstance(value, Mapping):
            for item in value.values():
                walk(path, item)
        elif isinstance(value, list | tuple):
            for item in value:
                walk(path, item)
        elif callable(value):
            walk(path, _schema_or_empty(value))

    walk("Gateway", GATEWAY_FIELDS)
    walk("Service", SERVICE_FIELDS)
    return missing


def _schema_or_empty(read: Callable[..., Any]) -> Any:
    return schema_of(read) or {}
