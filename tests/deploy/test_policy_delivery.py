"""The two ways deploy/ delivers policies to turnout, reproduced on disk: a git-sync
sidecar (a symlink renamed over to a fresh worktree per commit) and a ConfigMap
volume (a `..data` link swapped inside the mounted directory). `turnout serve` must
pick up every update of either, not only the first."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from turnout.compile import compile_policies
from turnout.policy import load_policies
from turnout.server import link_parents
from turnout.testing.control import TurnoutProcess
from turnout.testing.net import wait_until

GATEWAY = "kind: Gateway\nname: public\nport: 10000\n"
SERVICE = (
    "kind: Service\nname: web\nversions:\n  v1: {endpoints: ['127.0.0.1:9101']}\n"
    "  v2: {endpoints: ['127.0.0.1:9201']}\nstable: v1\ntraffic: {v1: %d, v2: %d}\n"
)


def _files(share: int) -> dict[str, str]:
    return {"gateway.yaml": GATEWAY, "web.yaml": SERVICE % (100 - share, share)}


def _swap_link(link: Path, target: str) -> None:
    """Point `link` at `target` in one rename, as git-sync and the kubelet do."""
    tmp = link.with_name(f".{link.name}.tmp")
    tmp.unlink(missing_ok=True)
    os.symlink(target, tmp)
    os.replace(tmp, link)


class GitSyncRoot:
    """git-sync v4's layout: ROOT/.worktrees/<hash>/ and ROOT/<link> -> .worktrees/<hash>."""

    def __init__(self, root: Path, link: str = "repo") -> None:
        self.root = root
        self.link = root / link
        self.current: Path | None = None
        self.commits = 0

    def publish(self, files: dict[str, str]) -> None:
        self.commits += 1
        worktree = self.root / ".worktrees" / f"{self.commits:040x}"
        (worktree / "policies").mkdir(parents=True)
        (worktree / ".git").write_text("gitdir: ../../.git/worktrees/x\n")
        for name, text in files.items():
            (worktree / "policies" / name).write_text(text)
        _swap_link(self.link, f".worktrees/{worktree.name}")
        if self.current is not None:
            shutil.rmtree(self.current)  # git-sync removes the old worktree
        self.current = worktree


class ConfigMapVolume:
    """The kubelet's ConfigMap layout: ..<timestamp>/ files, ..data -> it, name -> ..data/name."""

    def __init__(self, mount: Path) -> None:
        self.mount = mount
        self.current: Path | None = None
        self.updates = 0

    def publish(self, files: dict[str, str]) -> None:
        self.updates += 1
        payload = self.mount / f"..2026_11_28_08_00_{self.updates:02d}.000000001"
        payload.mkdir(parents=True)
        for name, text in files.items():
            (payload / name).write_text(text)
        _swap_link(self.mount / "..data", payload.name)
        for name in files:
            if not (self.mount / name).is_symlink():
                os.symlink(f"..data/{name}", self.mount / name)
        if self.current is not None:
            shutil.rmtree(self.current)
        self.current = payload


def _served_after_each_update(
    turnout: TurnoutProcess, publish: object, policy_dir: Path, shares: list[int]
) -> None:
    for share in shares:
        publish(_files(share))  # type: ignore[operator]
        expected = compile_policies(load_policies(policy_dir)).policy_version
        wait_until(
            lambda expected=expected: turnout.status()["served_version"] == expected,
            10.0,
            what=f"turnout to serve the update to {share}%",
        )


def test_every_git_sync_commit_is_served(tmp_path: Path) -> None:
    """turnout serving ROOT/repo/policies picks up each of several git-sync swaps,
    though each one deletes the directory the previous watch resolved to."""
    root = GitSyncRoot(tmp_path / "git")
    root.publish(_files(0))
    policy_dir = root.link / "policies"
    with TurnoutProcess(policy_dir, log_path=tmp_path / "turnout.log") as turnout:
        assert turnout.status()["served_version"]
        _served_after_each_update(turnout, root.publish, policy_dir, [5, 25, 50, 100])


def test_every_configmap_update_is_served(tmp_path: Path) -> None:
    """turnout serving a ConfigMap mount picks up each swap of its `..data` link and
    reads only the visible names (the payload directories are dot-names)."""
    volume = ConfigMapVolume(tmp_path / "policies")
    volume.publish(_files(0))
    with TurnoutProcess(volume.mount, log_path=tmp_path / "turnout.log") as turnout:
        assert turnout.status()["served_version"]
        _served_after_each_update(turnout, volume.publish, volume.mount, [10, 20, 30])
        assert "rejected" not in turnout.status()


@pytest.mark.parametrize(
    ("links", "policies", "expected"),
    [
        ([], "a/b", []),
        ([("git/repo", ".worktrees/x")], "git/repo/policies", ["git"]),
        ([("git/repo", ".worktrees/x"), ("link", "git")], "link/repo/policies", [".", "link"]),
    ],
)
def test_link_parents(
    tmp_path: Path, links: list[tuple[str, str]], policies: str, expected: list[str]
) -> None:
    """The directories holding a symlink on the policy path are found, outermost first."""
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "git" / ".worktrees" / "x" / "policies").mkdir(parents=True)
    for link, target in links:
        os.symlink(target, tmp_path / link)
    found = link_parents(tmp_path / policies)
    assert found == [(tmp_path / e).absolute() if e != "." else tmp_path for e in expected]
