"""Small pieces shared by the translators."""

from __future__ import annotations

from envoy.config.core.v3 import config_source_pb2
from google.protobuf import duration_pb2

__all__ = ["ads", "duration"]


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
