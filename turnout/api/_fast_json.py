"""`to_json`, fast: the status document without json_format's generic printer.

``fast_to_json(m) == to_json(m)`` for every turnout.v1 message (tests/api/
test_api_fast_json.py holds it to that): proto field names, every field without
presence written even at its default, a message or ``optional`` field only when set,
64-bit integers as strings, enums by name, Timestamps as RFC 3339 strings.
json_format's printer asks a dozen questions of every field of every message; this
reads each message's fields through a plan made once per message type. A status of
1,000 proxies and 500 services converts several times faster, which is what the
dashboard's first paint and its live updates wait on.
"""

from __future__ import annotations

import base64
import math
import time
from collections.abc import Callable
from typing import Any

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

__all__ = ["fast_to_json"]

_Convert = Callable[[Any], Any]
_Plan = tuple[tuple[str, int, bool, "_Convert | None"], ...]
"""Per field: name, shape (_SINGLE, _REPEATED or _MAP), has presence, converter of one
value (of a map: of one map value; None: as is)."""

_SINGLE, _REPEATED, _MAP = 0, 1, 2

_plans: dict[str, _Plan] = {}

_INT64 = {
    FieldDescriptor.TYPE_INT64,
    FieldDescriptor.TYPE_UINT64,
    FieldDescriptor.TYPE_SINT64,
    FieldDescriptor.TYPE_FIXED64,
    FieldDescriptor.TYPE_SFIXED64,
}
_FLOATS = {FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT}
_MIN_SECONDS = -62_135_596_800  # 0001-01-01T00:00:00Z, the mapping's range
_MAX_SECONDS = 253_402_300_799  # 9999-12-31T23:59:59Z


def _float(value: float) -> Any:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def _timestamp(value: Any) -> str:
    """Timestamp.ToJsonString(), without its datetime round trip: UTC, "Z", and 0, 3,
    6 or 9 fractional digits as the nanoseconds need."""
    seconds, nanos = value.seconds, value.nanos
    if not _MIN_SECONDS <= seconds <= _MAX_SECONDS or not 0 <= nanos < 1_000_000_000:
        text: str = value.ToJsonString()  # out of range: let protobuf say so
        return text
    base = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
    if nanos == 0:
        return base + "Z"
    if nanos % 1_000_000 == 0:
        return f"{base}.{nanos // 1_000_000:03d}Z"
    if nanos % 1_000 == 0:
        return f"{base}.{nanos // 1_000:06d}Z"
    return f"{base}.{nanos:09d}Z"


def _bytes(value: bytes) -> str:
    return base64.b64encode(value).decode("ascii")


def _one(field: FieldDescriptor) -> _Convert | None:
    kind = field.type
    if kind == FieldDescriptor.TYPE_MESSAGE:
        message_type: Any = field.message_type
        if message_type.full_name == "google.protobuf.Timestamp":
            return _timestamp
        if message_type.GetOptions().map_entry:
            return _one(message_type.fields_by_name["value"])
        return fast_to_json
    if kind == FieldDescriptor.TYPE_ENUM:
        enum_type: Any = field.enum_type
        values = enum_type.values_by_number

        def name(number: int) -> Any:
            found = values.get(number)
            return found.name if found is not None else number

        return name
    if kind in _INT64:
        return str
    if kind in _FLOATS:
        return _float
    if kind == FieldDescriptor.TYPE_BYTES:
        return _bytes
    return None


def _plan(descriptor: Any) -> _Plan:
    plan = _plans.get(descriptor.full_name)
    if plan is None:
        plan = tuple((f.name, _shape(f), f.has_presence, _one(f)) for f in descriptor.fields)
        _plans[descriptor.full_name] = plan
    return plan


def _shape(field: FieldDescriptor) -> int:
    if not field.is_repeated:
        return _SINGLE
    message_type: Any = field.message_type
    if message_type is not None and message_type.GetOptions().map_entry:
        return _MAP
    return _REPEATED


def _key(key: Any) -> str:
    """A map key as the JSON mapping writes it: always a string, booleans lower case."""
    if isinstance(key, bool):
        return "true" if key else "false"
    return str(key)


def fast_to_json(message: Message) -> dict[str, Any]:
    """``message`` exactly as :func:`~turnout.api.to_json` gives it, faster."""
    result: dict[str, Any] = {}
    for name, shape, presence, convert in _plan(message.DESCRIPTOR):
        if shape == _REPEATED:
            values = getattr(message, name)
            result[name] = [convert(v) for v in values] if convert else list(values)
        elif shape == _MAP:
            entries = getattr(message, name)
            result[name] = {_key(k): convert(v) if convert else v for k, v in entries.items()}
        elif presence:
            if message.HasField(name):
                value = getattr(message, name)
                result[name] = convert(value) if convert else value
        else:
            value = getattr(message, name)
            result[name] = convert(value) if convert else value
    return result
