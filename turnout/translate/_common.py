"""Small pieces shared by the translators."""

from __future__ import annotations

from envoy.config.core.v3 import config_source_pb2
from google.protobuf import duration_pb2

from turnout._protowire import LENGTH_DELIMITED, varint

__all__ = ["ads", "duration", "framed", "key"]


def ads() -> config_source_pb2.ConfigSource:
    """Where CDS/EDS/LDS/RDS resources come from: the one ADS stream, v3 resources."""
    return config_source_pb2.ConfigSource(
        ads=config_source_pb2.AggregatedConfigSource(),
        resource_api_version=config_source_pb2.V3,
    )


def duration(seconds: float) -> duration_pb2.Duration:
    """A protobuf Duration, exact to the nanosecond."""
    nanos = round(seconds * 1_000_000_000)
    return duration_pb2.Duration(seconds=nanos // 1_000_000_000, nanos=nanos % 1_000_000_000)


def key(number: int) -> bytes:
    """The key of length-delimited field ``number`` (for :func:`framed`)."""
    return varint(number << 3 | LENGTH_DELIMITED)


_LENGTHS = tuple(varint(n) for n in range(0x80))


def framed(key: bytes, payload: bytes) -> bytes:
    """A length-delimited field given its :func:`key`: turnout._protowire's
    ``length_delimited`` for the hot paths that write a service's resources as bytes
    (the key computed once, a short length looked up)."""
    n = len(payload)
    return key + (_LENGTHS[n] if n < 0x80 else varint(n)) + payload
