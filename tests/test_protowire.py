"""turnout._protowire writes what protobuf's own serializer writes."""

from __future__ import annotations

import pytest
from google.protobuf.wrappers_pb2 import BytesValue, UInt64Value

from turnout._protowire import length_delimited, varint


@pytest.mark.parametrize("value", [0, 1, 127, 128, 300, 16_383, 16_384, 2**32, 2**64 - 1])
def test_varint_is_protobufs(value: int) -> None:
    """A varint equals the bytes protobuf writes for a uint64 field (after its key)."""
    serialized = UInt64Value(value=value).SerializeToString()
    expected = serialized[1:] if value else b""  # proto3 leaves a zero out
    assert (varint(value) if value else b"") == expected


@pytest.mark.parametrize("size", [0, 1, 127, 128, 70_000])
def test_length_delimited_is_protobufs(size: int) -> None:
    """A length-delimited field equals protobuf's serialization of a bytes field."""
    payload = bytes(range(256)) * (size // 256) + bytes(size % 256)
    expected = BytesValue(value=payload).SerializeToString() if size else b"\x0a\x00"
    assert length_delimited(1, payload) == expected


def test_negative_varint_is_refused() -> None:
    """A negative value is an error, not a wrong byte or an endless loop."""
    with pytest.raises(ValueError, match="never negative"):
        varint(-1)
