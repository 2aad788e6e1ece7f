"""Fixtures every test directory may use, and the suite-wide rule that a skip is a
failure.

turnout's tests skip nothing: a test that cannot run because a tool or package is
missing fails, saying what is missing (tests/system_tools.py names the package and the
install command). Any skip that slips through anyway (pytest.skip, importorskip, a skip
mark) is reported as a failure with its reason, so a run with missing tools never
passes.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Generator
from typing import Any

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
    original: Callable[..., bytes] = translation_module.virtual_host_bytes
    broken: dict[str, str] = {}

    def virtual_host_bytes(service: Service, *, comparing: bool = False) -> bytes:
        serialized = original(service, comparing=comparing)
        if service.name not in broken:
            return serialized
        vhost = VirtualHost.FromString(serialized)
        route = vhost.routes.add()
        route.match.prefix = "/injected"
        route.route.cluster = broken[service.name]
        return vhost.SerializeToString(deterministic=True)

    def inject(service: str, cluster: str) -> None:
        broken[service] = cluster
        monkeypatch.setattr(translation_module, "virtual_host_bytes", virtual_host_bytes)

    return inject


@pytest.fixture
def collector_seen(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Whether the cyclic garbage collector was enabled, recorded each time translation
    builds a virtual host (that is, from inside a compile)."""
    original: Callable[..., bytes] = translation_module.virtual_host_bytes
    seen: list[bool] = []

    def virtual_host_bytes(service: Service, *, comparing: bool = False) -> bytes:
        seen.append(gc.isenabled())
        return original(service, comparing=comparing)

    monkeypatch.setattr(translation_module, "virtual_host_bytes", virtual_host_bytes)
    return seen


# -- a skip is a failure ------------------------------------------------------------

_NEVER = "skipped, and turnout's tests never skip (a skip passes nothing)"


def _reason(longrepr: Any) -> str:
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2])
    return str(longrepr)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None]:
    """A skipped test (not an expected failure) is reported as failed, with its reason."""
    outcome: Any = yield
    report = outcome.get_result()
    if report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"{_reason(report.longrepr)}\n{_NEVER}"


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Generator[None]:
    """A module skipped whole (importorskip, allow_module_level) fails its collection."""
    outcome: Any = yield
    report = outcome.get_result()
    if report.skipped:
        report.outcome = "failed"
        report.longrepr = f"{_reason(report.longrepr)}\n{_NEVER}"
