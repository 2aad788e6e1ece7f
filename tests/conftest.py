"""Fixtures every test directory may use."""

from __future__ import annotations

import gc
from collections.abc import Callable

import pytest
from envoy.config.route.v3.route_components_pb2 import VirtualHost

import turnout.translate._translation as translation_module
from turnout.policy import Service

RouteInjector = Callable[[str, str], None]


@pytest.fixture
def inject_route(monkeypatch: pytest.MonkeyPatch) -> RouteInjector:
    """``inject_route(service, cluster)`` makes translation add a route to ``cluster``
    to ``service``'s virtual host from then on (undone after the test, or by
    ``monkeypatch.undo()``): an inconsistent translation when no such cluster is
    served with it. Only services translated afterwards get it (a translator reuses
    what it translated before for an unchanged service)."""
    original: Callable[[Service], VirtualHost] = translation_module.virtual_host
    broken: dict[str, str] = {}

    def virtual_host(service: Service) -> VirtualHost:
        vhost = original(service)
        if service.name in broken:
            route = vhost.routes.add()
            route.match.prefix = "/injected"
            route.route.cluster = broken[service.name]
        return vhost

    def inject(service: str, cluster: str) -> None:
        broken[service] = cluster
        monkeypatch.setattr(translation_module, "virtual_host", virtual_host)

    return inject


@pytest.fixture
def collector_seen(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Whether the cyclic garbage collector was enabled, recorded each time translation
    builds a virtual host (that is, from inside a compile)."""
    original: Callable[[Service], VirtualHost] = translation_module.virtual_host
    seen: list[bool] = []

    def virtual_host(service: Service) -> VirtualHost:
        seen.append(gc.isenabled())
        return original(service)

    monkeypatch.setattr(translation_module, "virtual_host", virtual_host)
    return seen
