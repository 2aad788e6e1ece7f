"""The little of protobuf's wire format turnout writes by hand: varints and
length-delimited fields (https://protobuf.dev/programming-guides/encoding/).

A message is the concatenation of its fields, and deterministic serialization writes
them in field-number order, so bytes that are already serialized (a resource, a
virtual host) are framed into a larger message by prefixing a key and a length,
never re-encoded. translate (route configurations from cached virtual hosts), cache
(an ``Any`` around a resource) and xds (a ``DiscoveryResponse`` around cached
``Any`` bytes) all frame this way; this module sits below all of them and imports
nothing of turnout's.
"""

from __future__ import annotations

__all__ = ["LENGTH_DELIMITED", "length_delimited", "varint"]

LENGTH_DELIMITED = 2
"""The wire type of bytes, strings and embedded messages (a key is number << 3 | type)."""

_ONE_BYTE = tuple(bytes((value,)) for value in range(0x80))


def varint(value: int) -> bytes:
    """A non-negative integer as a base-128 varint: seven bits a byte, least
    significant group first, the high bit set on every byte but the last."""
    if value < 0x80:
        if value < 0:
            raise ValueError(f"a varint here is never negative, got {value}")
        return _ONE_BYTE[value]  # keys and most lengths: no loop, no new bytes object
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def length_delimited(number: int, payload: bytes) -> bytes:
    """Field ``number`` holding ``payload``: its key, the payload's length, the payload."""
    return varint((number << 3) | LENGTH_DELIMITED) + varint(len(payload)) + payload
