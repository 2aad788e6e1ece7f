"""Warnings: what a valid policy set allows that its authors may not mean.

`turnout validate` prints them (and `--format github` as `::warning` annotations)
without failing: the set is served as it is.
"""

from __future__ import annotations

import ipaddress

from ._errors import Problem
from ._model import PolicySet

__all__ = ["policy_warnings"]


def policy_warnings(policies: PolicySet) -> list[Problem]:
    """Every warning about a valid set, sorted like problems."""
    found: list[Problem] = []
    gateways = {gateway.name: gateway for gateway in policies.gateways}
    for service in policies.services:
        if service.pin_header is None or service.pin_when is not None:
            continue
        public = [
            gateways[name]
            for name in service.gateways
            if name in gateways and not ipaddress.ip_address(gateways[name].address).is_loopback
        ]
        if not public:
            continue
        gateway = public[0]
        location = service.location
        found.append(
            Problem(
                location.file if location else "",
                location.line if location else 0,
                "pinHeader",
                f'anyone who reaches gateway "{gateway.name}" (listening on '
                f"{gateway.address}:{gateway.port}) can pin {service.name} to any deployed "
                f"version with the header {service.pin_header}: limit pinning with "
                f"pinHeader: {{name: {service.pin_header}, when: {{headers: {{...}}}}}} "
                "(a header only your auth filter sets), or turn it off with pinHeader: false",
            )
        )
    return sorted(found)
