"""App's wiring: each reload is compiled, published and told once, and a write by the
release driver is reloaded once (its echo through the policy watcher changes nothing)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import turnout.server._controller as controller_module
from turnout.compile import Compiled
from turnout.policy import PolicySet
from turnout.server import App, ReleaseOptions
from turnout.testing import eventually

GATEWAY = "kind: Gateway\nname: public\nport: 10000\n"
PROBE = "kind: Gateway\nname: probe\nport: 20000\nproxies: [nobody]\n"
CHECKOUT = """kind: Service
name: checkout
gateways: [public]
versions:
  v1: {endpoints: ["127.0.0.1:9101"]}
  v2: {endpoints: ["127.0.0.1:9201"]}
stable: v1
traffic: {v1: 100}
"""
RELEASE = """incremental:
  to: v2
  steps: [10, 50, 100]
  interval: 1h
"""


def _phase(policies: PolicySet | None) -> str | None:
    """checkout's release phase in ``policies`` (None: no release, or not started)."""
    if policies is None:
        return None
    release = policies.service("checkout").incremental
    return release.state.phase if release is not None and release.state is not None else None


async def test_a_driver_step_is_reloaded_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The step the release driver writes is loaded by its own reload and once more by
    the watcher that sees the write, but compiled, published and told to WatchStatus
    (policy_changed) once: the watcher finds the files as they were loaded."""
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "gateway.yaml").write_text(GATEWAY)
    (policies / "checkout.yaml").write_text(CHECKOUT)
    app = App(
        policies,
        "127.0.0.1:0",
        "127.0.0.1:0",
        debounce_ms=20,
        releases=ReleaseOptions(tick=0.05, dark_tick=3600.0),
    )
    loaded: list[str | None] = []
    compiled: list[str | None] = []
    told: list[str | None] = []
    load, compile_, changed = (
        controller_module.load_policies,
        app.controller.compiler.compile,
        app.release.policy_changed,
    )

    def loading(directory: Path) -> PolicySet:
        result = load(directory)
        loaded.append(_phase(result))
        return result

    def compiling(policies: PolicySet) -> Compiled:
        compiled.append(_phase(policies))
        return compile_(policies)

    def telling() -> None:
        current = app.controller.current
        told.append(_phase(current.policies if current is not None else None))
        changed()

    monkeypatch.setattr(controller_module, "load_policies", loading)
    monkeypatch.setattr(app.controller.compiler, "compile", compiling)
    monkeypatch.setattr(app.release, "policy_changed", telling)

    run = asyncio.create_task(app.run())
    try:
        await eventually(lambda: app.admin_port != 0 or run.done(), timeout=10)
        assert not run.done(), run

        # The watcher is up once a write of ours is served (written again until then:
        # the watch starts with run(); the same text each time, so what is served is
        # what the files say and a late event of it changes nothing).
        def served_probe() -> bool:
            current = app.controller.current
            if current is not None and len(current.policies.gateways) == 2:
                return True
            (policies / "probe.yaml").write_text(PROBE)
            return False

        await eventually(served_probe, timeout=10, interval=0.2, what="the watcher to reload")
        (policies / "checkout.yaml").write_text(CHECKOUT + RELEASE)
        await eventually(
            lambda: loaded.count("running") >= 2,
            timeout=10,
            what="the driver's step, loaded by its reload and by the watcher's",
        )
    finally:
        app.stop()
        await run
    assert compiled.count("running") == 1, compiled
    assert told.count("running") == 1, told
    assert _phase(app.controller.current.policies if app.controller.current else None) == (
        "running"
    )


def test_each_accepted_reload_is_told_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """One accepted reload tells WatchStatus once, a rejected one once, and a reload of
    files unchanged since the last not at all (nothing changed)."""
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "gateway.yaml").write_text(GATEWAY)
    (policies / "checkout.yaml").write_text(CHECKOUT)
    app = App(policies, "127.0.0.1:0", "127.0.0.1:0")
    told: list[Any] = []
    changed: Callable[[], None] = app.release.policy_changed
    monkeypatch.setattr(app.release, "policy_changed", lambda: (told.append(1), changed()))
    assert app.reload()
    assert len(told) == 1
    assert app.reload()
    assert len(told) == 1
    (policies / "checkout.yaml").write_text(CHECKOUT.replace("{v1: 100}", "{v1: 90}"))
    assert not app.reload()
    assert len(told) == 2
    (policies / "checkout.yaml").write_text(CHECKOUT.replace("{v1: 100}", "{v1: 90, v2: 10}"))
    assert app.reload()
    assert len(told) == 3
