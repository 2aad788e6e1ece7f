"""`turnout diff`, run as a reviewer or CI would: directories or git revisions, text or
JSON, exit codes 0 (no change), 1 (changes, with --exit-code) and 2 (errors)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from turnout.cli import main

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "policies"


def run(*args: str) -> Result:
    return CliRunner().invoke(main, ["diff", *args])


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


@pytest.fixture
def sides(tmp_path: Path) -> tuple[Path, Path]:
    """Two copies of the examples: `old` as shipped, `new` with a release step taken
    (checkout v2 5% -> 25%, the dark copies stopped, the beta rule removed)."""
    old, new = tmp_path / "old", tmp_path / "new"
    shutil.copytree(EXAMPLES, old)
    shutil.copytree(EXAMPLES, new)
    checkout = new / "checkout.yaml"
    edit(checkout, "traffic: {v1: 95, v2: 5}", "traffic: {v1: 75, v2: 25}")
    edit(checkout, "  percent: 10", "  percent: 0")
    edit(
        checkout,
        "  # beta testers opted in with a cookie get v2 only\n  - name: beta\n    match:\n"
        '      cookies: {beta: "on"}\n    traffic: {v2: 100}\n',
        "",
    )
    return old, new


CHANGES = [
    "checkout default: v1 95% -> 75%, v2 5% -> 25%",
    "checkout mirror to v3: 10% -> 0%",
    "checkout rule beta: removed (its requests take the next rule or default)",
]


def test_diff_of_two_directories_in_human_terms(sides: tuple[Path, Path]) -> None:
    """The change reads per service and segment; without --exit-code the exit is 0."""
    old, new = sides
    result = run(str(old), str(new))
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == CHANGES


def test_exit_code_says_whether_anything_changed(sides: tuple[Path, Path]) -> None:
    """--exit-code gives 1 for changes and 0 for none."""
    old, new = sides
    assert run(str(old), str(new), "--exit-code").exit_code == 1
    same = run(str(old), str(old), "--exit-code")
    assert same.exit_code == 0
    assert same.stdout == "no changes\n"


def test_envoy_lists_the_resources(sides: tuple[Path, Path]) -> None:
    """--envoy adds the Envoy resources changed, by type and name, after the policy lines."""
    old, new = sides
    result = run(str(old), str(new), "--envoy")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        *CHANGES,
        "",
        "Envoy resources:",
        "  ~ route public/checkout.example.com (-checkout/rule/beta, ~checkout/default)",
    ]


def test_json_for_machines(sides: tuple[Path, Path]) -> None:
    """--json prints the changes and Envoy resources as one JSON document."""
    old, new = sides
    result = run(str(old), str(new), "--json", "--envoy", "--exit-code")
    assert result.exit_code == 1
    out = json.loads(result.stdout)
    assert out["changed"] is True
    assert [c["text"] for c in out["changes"]] == CHANGES
    assert out["changes"][0]["old"] == {"v1": 95, "v2": 5}
    assert out["changes"][0]["new"] == {"v1": 75, "v2": 25}
    assert out["changes"][1]["kind"] == "mirror"
    assert out["changes"][2]["segment"] == "rule beta"
    assert out["envoy"] == [
        {
            "action": "changed",
            "type": "route",
            "name": "public/checkout.example.com",
            "details": ["-checkout/rule/beta", "~checkout/default"],
        }
    ]


def test_invalid_sides_exit_2_with_every_error(sides: tuple[Path, Path]) -> None:
    """An invalid set on either side prints the errors of both, exit 2 (even with
    --exit-code), and no diff."""
    old, new = sides
    edit(old / "search.yaml", "traffic: {blue: 100}", "traffic: {blue: 90}")
    edit(new / "checkout.yaml", "stable: v1", "stable: v9")
    result = run(str(old), str(new), "--exit-code")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"{old}/search.yaml:16: traffic: shares sum to 90, not 100",
        f'{new}/checkout.yaml:17: stable: unknown version "v9" (versions: v1, v2, v3)',
    ]


def test_wrong_number_of_directories_is_a_usage_error(sides: tuple[Path, Path]) -> None:
    """One directory without --git is a usage error (exit 2)."""
    result = run(str(sides[0]))
    assert result.exit_code == 2
    assert "give OLD_DIR and NEW_DIR, or --git REV [REV]" in result.stderr


# -- --git ------------------------------------------------------------------------------------


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A repository whose `policies/` holds the examples (commit 1), then the release
    step (commit 2, tagged `step`); the work tree then rolls checkout back (uncommitted)."""
    for key in ("GIT_AUTHOR_NAME", "GIT_COMMITTER_NAME"):
        monkeypatch.setenv(key, "turnout tests")
    for key in ("GIT_AUTHOR_EMAIL", "GIT_COMMITTER_EMAIL"):
        monkeypatch.setenv(key, "tests@turnout.invalid")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    root = tmp_path / "repo"
    policies = root / "policies"
    shutil.copytree(EXAMPLES, policies)
    (root / "deploy.yaml").write_text("not: a policy\n")  # outside the policy directory
    git(root, "init", "--quiet", "--initial-branch=main")
    git(root, "add", ".")
    git(root, "commit", "--quiet", "-m", "examples")
    edit(policies / "checkout.yaml", "traffic: {v1: 95, v2: 5}", "traffic: {v1: 75, v2: 25}")
    git(root, "commit", "--quiet", "-am", "step")
    git(root, "tag", "step")
    edit(policies / "checkout.yaml", "traffic: {v1: 75, v2: 25}", "traffic: {v1: 100}")
    return root


def test_git_two_revisions(repo: Path) -> None:
    """--git REV1 REV2 compares the policy directory at both revisions."""
    result = run("--git", "HEAD~1", "HEAD", "--policies", str(repo / "policies"))
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == ["checkout default: v1 95% -> 75%, v2 5% -> 25%"]


def test_git_one_revision_against_the_work_tree(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--git REV compares that revision with the work tree (uncommitted edits included),
    and the policy directory defaults to the current directory."""
    monkeypatch.chdir(repo / "policies")
    result = run("--git", "step", "--exit-code")
    assert result.exit_code == 1
    assert result.stdout.splitlines() == ["checkout default: v1 75% -> 100%, v2 25% -> 0%"]


def test_git_errors_exit_2(repo: Path, tmp_path: Path) -> None:
    """An unknown revision, or a directory outside any repository, is an error (exit 2)."""
    unknown = run("--git", "nope", "--policies", str(repo / "policies"))
    assert unknown.exit_code == 2
    assert unknown.stderr.strip() == 'unknown git revision "nope"'
    outside = tmp_path / "outside"
    shutil.copytree(EXAMPLES, outside)
    env = {"GIT_CEILING_DIRECTORIES": str(tmp_path)}
    result = CliRunner(env=env).invoke(main, ["diff", "--git", "HEAD", "--policies", str(outside)])
    assert result.exit_code == 2
    assert "is not in a git repository" in result.stderr


def test_git_errors_name_the_revision(repo: Path) -> None:
    """Problems in a revision's files are named REV:path:line."""
    edit(repo / "policies" / "search.yaml", "traffic: {blue: 100}", "traffic: {blue: 90}")
    git(repo, "commit", "--quiet", "-am", "broken")
    result = run("--git", "HEAD", "step", "--policies", str(repo / "policies"))
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "HEAD:policies/search.yaml:16: traffic: shares sum to 90, not 100"
    ]


def test_diff_runs_as_a_process(repo: Path) -> None:
    """`python -m turnout diff --git REV --exit-code` works as CI would call it."""
    proc = subprocess.run(
        [sys.executable, "-m", "turnout", "diff", "--git", "HEAD", "--exit-code"],
        cwd=repo / "policies",
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 1, proc.stderr
    assert proc.stdout == "checkout default: v1 75% -> 100%, v2 25% -> 0%\n"
