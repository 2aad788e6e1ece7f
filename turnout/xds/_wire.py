"""Framing DiscoveryResponses from already serialized resources.

A protobuf message is a concatenation of fields, and a parser accepts them in any
order, so a response is built by concatenating length-delimited fields: the
resources' cached ``Any`` bytes are copied, never re-encoded, and the per-stream
nonce is just one more field at the end.

Every stream sending a (type, version) sends the same resources, so the server frames
that body once (:func:`frame_body`) and appends each stream's nonce
(:func:`frame_nonce`): per stream, one copy of the body and nothing re-encoded.
"""

from __future__ import annotations

from collections.abc import Iterable

from turnout._protowire import length_delimited
from turnout.cache import CachedResource

__all__ = ["frame_body", "frame_nonce", "frame_response"]

_VERSION_INFO = 1
_RESOURCES = 2
_TYPE_URL = 4
_NONCE = 5


def frame_response(
    version: str, type_url: str, resources: Iterable[CachedResource], nonce: str
) -> bytes:
    """The wire bytes of a ``DiscoveryResponse`` with these fields."""
    return frame_body(version, type_url, resources) + frame_nonce(nonce)


def frame_body(version: str, type_url: str, resources: Iterable[CachedResource]) -> bytes:
    """A ``DiscoveryResponse`` without its nonce: shared by every stream sending it."""
    parts = [length_delimited(_VERSION_INFO, version.encode())]
    parts.extend(length_delimited(_RESOURCES, r.serialized) for r in resources)
    parts.append(length_delimited(_TYPE_URL, type_url.encode()))
    return b"".join(parts)


def frame_nonce(nonce: str) -> bytes:
    """The ``nonce`` field, appended to a :func:`frame_body` to make one stream's response."""
    return length_delimited(_NONCE, nonce.encode())
