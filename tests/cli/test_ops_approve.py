"""`turnout approve SERVICE [--by NAME] [--commit]`: the approval is recorded in the
file (who and when), the rest of the file is left byte for byte."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from turnout.cli import main
from turnout.policy import load_policies

SHOP = """\
kind: Gateway
name: public
port: 10000
---
kind: Service
name: shop
versions:
  v1: {endpoints: ["127.0.0.1:9101"]}
  v2: {endpoints: ["127.0.0.1:9201"]}
stable: v1
traffic: {v1: 75, v2: 25}   # step 2
incremental:
  to: v2
  steps: [5, 25, approve, 50, 100]   # a person looks at 25%
  interval: 1m
  state:
    phase: waiting
    step: 1
    since: "2026-01-01T00:00:00Z"
    reason: "waiting for approval"
"""


@pytest.fixture
def policies(tmp_path: Path) -> Path:
    directory = tmp_path / "policies"
    directory.mkdir()
    (directory / "shop.yaml").write_text(SHOP)
    return directory


def run(policies: Path, *args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner(env=env).invoke(main, ["approve", "shop", *args, "--policies", str(policies)])


def test_approve_records_who_and_when(policies: Path) -> None:
    """--by names the approver; the approval lands in state.approvals, nothing else moves."""
    result = run(policies, "--by", "alice")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0] == (
        "approve shop: step 3 of 4 (50%) of the release to v2, by alice (the release goes on)"
    )
    text = (policies / "shop.yaml").read_text()
    assert text.replace(text[text.index("    approvals:") :], "") == SHOP
    state = load_policies(policies).service("shop").incremental.state  # type: ignore[union-attr]
    assert state is not None
    assert state.phase == "waiting"
    [approval] = state.approvals
    assert (approval.step, approval.by) == (2, "alice")
    assert approval.at is not None
    again = run(policies, "--by", "bob")
    assert again.exit_code == 0
    assert again.stdout.startswith(
        "nothing to change: every approve gate ahead of shop is approved"
    )


def test_approver_defaults_to_the_git_author(policies: Path) -> None:
    """Without --by the approver is the git author (GIT_AUTHOR_NAME), else $USER."""
    result = run(policies, env={"GIT_AUTHOR_NAME": "Carol Example"})
    assert result.exit_code == 0, result.output
    assert 'by: "Carol Example"' in (policies / "shop.yaml").read_text()


def test_approve_commit(policies: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """--commit commits exactly the policy file with a message naming the approval."""
    for key, value in {
        "GIT_AUTHOR_NAME": "dave",
        "GIT_COMMITTER_NAME": "dave",
        "GIT_AUTHOR_EMAIL": "dave@turnout.invalid",
        "GIT_COMMITTER_EMAIL": "dave@turnout.invalid",
        "GIT_CONFIG_GLOBAL": os.devnull,
    }.items():
        monkeypatch.setenv(key, value)
    root = policies.parent

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, text=True)
        return done.stdout

    git("init", "--quiet", "--initial-branch=main")
    git("add", ".")
    git("commit", "--quiet", "-m", "initial")
    result = run(policies, "--commit")
    assert result.exit_code == 0, result.output
    assert git("log", "-1", "--format=%s").strip() == (
        "turnout: approve shop: step 3 of 4 (50%) of the release to v2, by dave "
        "(the release goes on)"
    )
