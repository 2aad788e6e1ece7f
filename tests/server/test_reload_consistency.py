"""The reload path never serves an inconsistent set: not on a retry of the same files,
not after an unrelated edit, and not to a proxy given only some of the gateways."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from turnout.cache import SnapshotCache
from turnout.server import Controller

VALID = Path(__file__).parents[1] / "policy" / "fixtures" / "valid"
"""Gateways public, internal and admin; checkout on public, billing on internal and
admin, search on all three."""
PROXIES = ("public-1", "internal-1", "ops", "edge")
"""Envoys given public; internal; internal and admin; admin (and every gateway's search)."""


def _served(cache: SnapshotCache) -> dict[str, str]:
    snapshots = {proxy: cache.snapshot_for(proxy) for proxy in PROXIES}
    return {proxy: s.group_version for proxy, s in snapshots.items() if s is not None}


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def test_an_inconsistent_set_stays_rejected_on_retry_and_after_an_unrelated_edit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, inject_route: Callable[[str, str], None]
) -> None:
    """With translation broken for one service (a route to ghost-cluster), its edit is
    rejected, a reload of the same files is rejected again, and so is an edit that
    only moves another service's endpoint: the served version and every proxy's
    snapshot stay the last good ones, until a good set is accepted."""
    policies = tmp_path / "policies"
    shutil.copytree(VALID, policies)
    cache = SnapshotCache()
    controller = Controller(policies, cache)
    assert controller.reload()
    good, served = cache.policy_version, _served(cache)
    assert len(served) == len(PROXIES)

    inject_route("checkout", "ghost-cluster")
    _edit(policies / "services" / "checkout.yaml", "{v1: 95, v2: 5}", "{v1: 90, v2: 10}")
    assert not controller.reload()
    assert not controller.reload()
    _edit(policies / "services" / "search.yml", "10.0.0.7:8080", "10.0.0.8:8080")
    assert not controller.reload()
    assert controller.reloads == {"accepted": 1, "rejected": 3}
    assert cache.policy_version == good
    assert _served(cache) == served
    assert controller.current is not None
    assert controller.current.policy_version == good
    assert controller.rejected is not None
    assert any("no cluster 'ghost-cluster'" in e for e in controller.rejected.errors)

    monkeypatch.undo()
    _edit(policies / "services" / "checkout.yaml", "{v1: 90, v2: 10}", "{v1: 80, v2: 20}")
    assert controller.reload()
    assert cache.policy_version != good
    assert controller.rejected is None


def test_a_set_inconsistent_for_some_proxies_only_is_rejected_whole(
    tmp_path: Path, inject_route: Callable[[str, str], None]
) -> None:
    """A set whose whole snapshot is consistent but whose internal and admin gateways,
    given alone, route to a cluster they do not get is rejected before publishing:
    no proxy, of any gateway, is moved to it."""
    policies = tmp_path / "policies"
    shutil.copytree(VALID, policies)
    cache = SnapshotCache()
    controller = Controller(policies, cache)
    assert controller.reload()
    good, served = cache.policy_version, _served(cache)

    inject_route("billing", "checkout_v1")
    _edit(policies / "services" / "billing.yaml", "interval: 30s", "interval: 45s")
    _edit(policies / "services" / "checkout.yaml", "{v1: 95, v2: 5}", "{v1: 90, v2: 10}")
    assert not controller.reload()
    assert not controller.reload()
    assert cache.policy_version == good
    assert _served(cache) == served
