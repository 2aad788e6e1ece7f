"""The virtual hosts translation writes as bytes are the messages' own serialization."""

from __future__ import annotations

import pytest

from turnout.translate._routes import virtual_host, virtual_host_bytes

from ._policies import comprehensive
from .test_served_bytes import variety


@pytest.mark.parametrize("comparing", [False, True])
def test_virtual_host_bytes_are_the_messages_serialization(comparing: bool) -> None:
    """For every service of the representative sets (sticky, instances, pins with and
    without `when`, every match kind, zero shares, compare mirrors), the written bytes
    equal virtual_host's message serialized deterministically."""
    services = [*comprehensive().services, *variety().services]
    for service in services:
        expected = virtual_host(service, comparing=comparing).SerializeToString(deterministic=True)
        assert virtual_host_bytes(service, comparing=comparing) == expected, service.name
