"""`turnout set-traffic | promote | rollback | pause | resume`, run as a user or CI would:
edits keep every byte outside the changed values, refused edits write nothing."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from turnout.cli import main
from turnout.policy import load_policies

GATEWAYS = """\
# the one listener
kind: Gateway
name: public
port: 10000
"""

# Two services in one file: `cart` (flow style, first document) and `shop` (block style,
# comments everywhere, an incremental release running).
SERVICES = """\
# cart: the small one
kind: Service
name: cart
hosts: ['cart.example.com']
versions: {v1: {endpoints: ["127.0.0.1:9001"]}, v2: {endpoints: ["127.0.0.1:9002"]}}
stable: v1
traffic: {v1: 95, v2: 5}   # CI raises v2
---
kind: Service   # shop
name: shop
hosts: [shop.example.com]

versions:
  v1:
    endpoints: ["127.0.0.1:9101"]   # old
  v2:
    endpoints: ["127.0.0.1:9201"]
  v3:
    endpoints: ["127.0.0.1:9301"]
stable: "v1"    # known good
traffic:
  v1: 50    # half
  # the other half
  v2: 50
rules:
  - name: dogfood            # employees
    match: {headers: {x-employee: "true"}}
    traffic: {v1: 20, v2: 80}
  - name: beta
    match:
      cookies: {beta: "on"}
    traffic:
      v2: 100
mirror: {to: v3, percent: 10}   # dark
incremental:
  to: v2
  steps: [5, 25, 50, 100]
  interval: 1m
  state:
    phase: running
    step: 2
    since: "2020-01-01T00:00:00Z"
# the end
"""


@pytest.fixture
def policies(tmp_path: Path) -> Path:
    directory = tmp_path / "policies"
    directory.mkdir()
    (directory / "gateways.yaml").write_text(GATEWAYS)
    (directory / "services.yaml").write_text(SERVICES)
    return directory


def run(policies: Path, *args: str) -> Result:
    return CliRunner().invoke(main, [*args, "--policies", str(policies)])


def services_text(policies: Path) -> str:
    return (policies / "services.yaml").read_text()


def assert_unchanged(policies: Path) -> None:
    assert services_text(policies) == SERVICES
    assert (policies / "gateways.yaml").read_text() == GATEWAYS


def since_is_now(text: str, started: datetime) -> None:
    """The state's `since` is a quoted UTC time between `started` and now."""
    line = next(line for line in text.splitlines() if "since:" in line and "2020-01-01" not in line)
    when = datetime.fromisoformat(line.split('"')[1].replace("Z", "+00:00"))
    assert started - timedelta(seconds=1) <= when <= datetime.now(UTC)


# -- set-traffic ------------------------------------------------------------------------------


def test_set_traffic_changes_only_the_shares_of_a_flow_mapping(policies: Path) -> None:
    """set-traffic on a flow mapping rewrites just the numbers: every other byte of the
    file (comments, quoting, the other document) and every other file stays."""
    result = run(policies, "set-traffic", "cart", "v1=90", "v2=10")
    assert result.exit_code == 0, result.output
    assert services_text(policies) == SERVICES.replace(
        "traffic: {v1: 95, v2: 5}   # CI raises v2", "traffic: {v1: 90, v2: 10}   # CI raises v2"
    )
    assert (policies / "gateways.yaml").read_text() == GATEWAYS
    assert result.stdout.splitlines() == [
        "cart traffic v1=90 v2=10 (was v1=95 v2=5)",
        f"wrote {policies}/services.yaml",
    ]


def test_set_traffic_keeps_a_block_mapping_block(policies: Path) -> None:
    """On a block mapping, values change in place, a dropped version's line goes, a new
    one is added at the mapping's indentation; comments stay where they were."""
    result = run(policies, "set-traffic", "shop", "v1=70", "v3=30")
    assert result.exit_code == 0, result.output
    assert services_text(policies) == SERVICES.replace(
        "  v1: 50    # half\n  # the other half\n  v2: 50\n",
        "  v1: 70    # half\n  # the other half\n  v3: 30\n",
    )
    service = load_policies(policies).service("shop")
    assert [(v, int(s)) for v, s in service.traffic] == [("v1", 70), ("v3", 30)]


def test_set_traffic_of_a_rule(policies: Path) -> None:
    """--rule NAME edits that rule's traffic only."""
    result = run(policies, "set-traffic", "shop", "v1=100", "--rule", "beta")
    assert result.exit_code == 0, result.output
    assert services_text(policies) == SERVICES.replace(
        "    traffic:\n      v2: 100\n", "    traffic:\n      v1: 100\n"
    )
    assert result.stdout.startswith("shop rule beta traffic v1=100 (was v2=100)\n")


def test_invalid_edit_writes_nothing_and_prints_the_errors(policies: Path) -> None:
    """Shares that do not sum to 100 are refused with the loader's FILE:LINE error,
    exit 1, and no file is touched."""
    before = (policies / "services.yaml").stat().st_mtime_ns
    result = run(policies, "set-traffic", "cart", "v1=90", "v2=20")
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "error: the edit would make the policy set invalid; nothing was written:",
        f"{policies}/services.yaml:7: traffic: shares sum to 110, not 100",
    ]
    assert_unchanged(policies)
    assert (policies / "services.yaml").stat().st_mtime_ns == before


def test_unknown_version_in_shares_is_refused(policies: Path) -> None:
    """A share for a version that is not deployed is refused, naming the versions."""
    result = run(policies, "set-traffic", "cart", "v1=90", "v9=10")
    assert result.exit_code == 1
    assert 'traffic.v9: unknown version "v9" (versions: v1, v2)' in result.stderr
    assert_unchanged(policies)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["set-traffic", "shopp", "v1=100"],
            'error: no service "shopp" in {dir}; did you mean "shop"? (services: cart, shop)',
        ),
        (
            ["set-traffic", "shop", "v1=100", "--rule", "dogfod"],
            'error: shop has no rule "dogfod"; did you mean "dogfood"? (rules: dogfood, beta)',
        ),
        (
            ["set-traffic", "shop", "v1"],
            'error: "v1": write a share as VERSION=PERCENT, e.g. v2=10',
        ),
        (["set-traffic", "shop", "v1=x"], 'error: "v1=x": "x" is not a number'),
        (["promote", "shop", "v4"], 'error: shop has no version "v4" (versions: v1, v2, v3)'),
        (["rollback", "cart", "--rule", "x"], 'error: cart has no rule "x" (rules: none)'),
    ],
)
def test_names_not_found_are_listed(policies: Path, args: list[str], message: str) -> None:
    """An unknown service, rule or version (or a malformed share) is refused with a
    message listing what exists, and nothing is written."""
    result = run(policies, *args)
    assert result.exit_code == 1
    assert result.stderr.strip() == message.format(dir=policies)
    assert_unchanged(policies)


def test_invalid_set_before_the_edit_is_reported(policies: Path) -> None:
    """An edit on a set that is already invalid is refused, saying so, with its errors."""
    (policies / "broken.yaml").write_text("kind: Gateway\nname: public\nport: 1\n")
    result = run(policies, "rollback", "cart")
    assert result.exit_code == 1
    assert "the policy set is invalid before any edit; fix it first:" in result.stderr
    assert 'gateway "public" is already defined' in result.stderr
    assert_unchanged(policies)


def test_dry_run_prints_a_unified_diff_and_writes_nothing(policies: Path) -> None:
    """--dry-run prints the unified diff of the change and leaves every file as it was."""
    result = run(policies, "set-traffic", "cart", "v1=90", "v2=10", "--dry-run")
    assert result.exit_code == 0, result.output
    path = str(policies / "services.yaml").lstrip("/")
    lines = result.stdout.splitlines()
    assert lines[:2] == [f"--- a/{path}", f"+++ b/{path}"]
    assert "-traffic: {v1: 95, v2: 5}   # CI raises v2" in lines
    assert "+traffic: {v1: 90, v2: 10}   # CI raises v2" in lines
    assert sum(1 for line in lines if line[:1] in "+-" and line[:3] not in ("---", "+++")) == 2
    assert "dry run, nothing written: cart traffic v1=90 v2=10 (was v1=95 v2=5)" in result.stderr
    assert_unchanged(policies)


def test_write_is_atomic_and_keeps_the_mode(policies: Path) -> None:
    """The file is replaced by a rename (a new inode), keeps its permission bits, and no
    temporary file is left behind."""
    path = policies / "services.yaml"
    path.chmod(0o640)
    inode = path.stat().st_ino
    result = run(policies, "set-traffic", "cart", "v1=80", "v2=20")
    assert result.exit_code == 0, result.output
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert path.stat().st_ino != inode
    assert sorted(p.name for p in policies.iterdir()) == ["gateways.yaml", "services.yaml"]


def test_nothing_to_change_writes_nothing(policies: Path) -> None:
    """Asking for the traffic a segment already has says so, exits 0 and writes nothing."""
    before = (policies / "services.yaml").stat().st_mtime_ns
    result = run(policies, "set-traffic", "cart", "v1=95", "v2=5")
    assert result.exit_code == 0, result.output
    assert result.stdout == "nothing to change: cart traffic is already v1=95 v2=5\n"
    assert (policies / "services.yaml").stat().st_mtime_ns == before


# -- promote ----------------------------------------------------------------------------------


def test_promote_switches_traffic_and_stable_and_marks_the_release(policies: Path) -> None:
    """promote sends the default route to VERSION, makes it stable (keeping the value's
    quotes) and marks the incremental release to it promoted at its last step."""
    started = datetime.now(UTC)
    result = run(policies, "promote", "shop", "v2")
    assert result.exit_code == 0, result.output
    text = services_text(policies)
    expected = SERVICES.replace('stable: "v1"    # known good', 'stable: "v2"    # known good')
    expected = expected.replace(
        "  v1: 50    # half\n  # the other half\n  v2: 50\n", "  # the other half\n  v2: 100\n"
    )
    head, _, _ = expected.partition("  state:\n")
    assert text.startswith(head + "  state:\n    phase: promoted\n    step: 3\n    since: ")
    assert text.endswith('    reason: "promoted by turnout promote"\n# the end\n')
    since_is_now(text, started)
    shop = load_policies(policies).service("shop")
    assert shop.stable == "v2"
    assert shop.incremental is not None
    assert shop.incremental.state is not None
    assert shop.incremental.state.phase == "promoted"
    assert result.stdout.splitlines()[0] == (
        "promote shop to v2: traffic v2=100 (was v1=50 v2=50), stable v2 (was v1), "
        "incremental release to v2 promoted"
    )
    assert "note: rule dogfood keeps its own traffic: v1=20 v2=80" in result.stderr


def test_promote_another_version_during_a_release_is_refused(policies: Path) -> None:
    """Promoting a version other than the one being released, while that release runs,
    is refused and says what to do."""
    result = run(policies, "promote", "shop", "v3")
    assert result.exit_code == 1
    assert "shop has an incremental release to v2 under way (running)" in result.stderr
    assert_unchanged(policies)


def test_promote_blue_green(policies: Path) -> None:
    """On a service without a release, promote is the blue/green switch."""
    result = run(policies, "promote", "cart", "v2")
    assert result.exit_code == 0, result.output
    assert services_text(policies) == SERVICES.replace(
        "stable: v1\ntraffic: {v1: 95, v2: 5}", "stable: v2\ntraffic: {v2: 100}"
    )


# -- rollback ---------------------------------------------------------------------------------


def test_rollback_sends_traffic_to_stable_and_marks_the_release_rolled_back(
    policies: Path,
) -> None:
    """rollback puts the default route back to {stable: 100}, marks the running release
    rolled-back (same step, reason given), and leaves rules and the mirror alone."""
    started = datetime.now(UTC)
    result = run(policies, "rollback", "shop")
    assert result.exit_code == 0, result.output
    text = services_text(policies)
    head, _, _ = SERVICES.partition("  state:\n")
    assert text.startswith(
        head.replace(
            "  v1: 50    # half\n  # the other half\n  v2: 50\n",
            "  v1: 100    # half\n  # the other half\n",
        )
    )
    assert "mirror: {to: v3, percent: 10}   # dark\n" in text
    assert "    traffic: {v1: 20, v2: 80}\n" in text
    assert text.endswith(
        '    phase: rolled-back\n    step: 2\n    since: "'
        + text.split('since: "')[1].split('"')[0]
        + '"\n    reason: "rolled back by turnout rollback"\n# the end\n'
    )
    since_is_now(text, started)
    state = load_policies(policies).service("shop").incremental
    assert state is not None
    assert state.state is not None
    assert (state.state.phase, state.state.step) == ("rolled-back", 2)
    assert result.stdout.splitlines()[0] == (
        "roll back shop to v1: traffic v1=100 (was v1=50 v2=50), "
        "incremental release to v2 rolled back"
    )


def test_rollback_of_a_rule_leaves_the_release_alone(policies: Path) -> None:
    """rollback --rule resets that rule only; the incremental release keeps running."""
    result = run(policies, "rollback", "shop", "--rule", "dogfood")
    assert result.exit_code == 0, result.output
    assert services_text(policies) == SERVICES.replace(
        "    traffic: {v1: 20, v2: 80}\n", "    traffic: {v1: 100}\n"
    )


def test_rollback_twice_is_a_no_op(policies: Path) -> None:
    """A second rollback finds nothing to change: it is not restarted or re-stamped."""
    assert run(policies, "rollback", "shop").exit_code == 0
    text = services_text(policies)
    result = run(policies, "rollback", "shop")
    assert result.exit_code == 0, result.output
    assert result.stdout == "nothing to change: shop is already at v1=100\n"
    assert services_text(policies) == text


# -- pause / resume ---------------------------------------------------------------------------


def test_pause_and_resume_flip_the_phase(policies: Path) -> None:
    """pause turns running into paused, resume paused into running; each keeps the
    step and stamps since and reason; nothing else in the file changes."""
    result = run(policies, "pause", "shop")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0] == (
        "pause shop: incremental release to v2 paused at step 3 of 4 (50%)"
    )
    text = services_text(policies)
    head, _, _ = SERVICES.partition("    phase: running\n")
    assert text.startswith(head + '    phase: paused\n    step: 2\n    since: "')
    assert text.endswith('"\n    reason: "paused by turnout pause"\n# the end\n')

    result = run(policies, "resume", "shop")
    assert result.exit_code == 0, result.output
    text = services_text(policies)
    assert text.startswith(head + "    phase: running\n    step: 2\n")
    assert text.endswith('"\n    reason: "resumed by turnout resume"\n# the end\n')


@pytest.mark.parametrize(
    ("command", "service", "message"),
    [
        (
            "resume",
            "shop",
            "error: cannot resume shop: its incremental release to v2 is running; "
            "resume applies to a paused release only",
        ),
        ("pause", "cart", "error: cart has no incremental release to pause"),
    ],
)
def test_pause_and_resume_refuse_other_phases(
    policies: Path, command: str, service: str, message: str
) -> None:
    """pause and resume apply to running and paused releases only; anything else is a
    clear error and nothing is written."""
    result = run(policies, command, service)
    assert result.exit_code == 1
    assert result.stderr.strip() == message
    assert_unchanged(policies)


def test_pause_of_a_release_not_started_is_refused(policies: Path) -> None:
    """A release without a state has not started: there is nothing to pause."""
    text = SERVICES.replace(
        '  state:\n    phase: running\n    step: 2\n    since: "2020-01-01T00:00:00Z"\n', ""
    )
    (policies / "services.yaml").write_text(text)
    result = run(policies, "pause", "shop")
    assert result.exit_code == 1
    assert "has not started (no incremental.state)" in result.stderr


# -- --commit ---------------------------------------------------------------------------------


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout


@pytest.fixture
def repo(policies: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The policies in a fresh git repository (with its own identity), all committed."""
    for key in ("GIT_AUTHOR_NAME", "GIT_COMMITTER_NAME"):
        monkeypatch.setenv(key, "turnout tests")
    for key in ("GIT_AUTHOR_EMAIL", "GIT_COMMITTER_EMAIL"):
        monkeypatch.setenv(key, "tests@turnout.invalid")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    root = policies.parent
    git(root, "init", "--quiet", "--initial-branch=main")
    (root / "README").write_text("not a policy\n")
    git(root, "add", ".")
    git(root, "commit", "--quiet", "-m", "initial")
    return root


def test_commit_commits_exactly_the_changed_file(policies: Path, repo: Path) -> None:
    """--commit makes one commit of exactly the edited file, its message naming the
    change; another staged change stays staged and uncommitted."""
    (repo / "README").write_text("staged, not ours\n")
    git(repo, "add", "README")
    result = run(policies, "set-traffic", "cart", "v1=90", "v2=10", "--commit")
    assert result.exit_code == 0, result.output
    assert git(repo, "log", "-1", "--format=%s").strip() == (
        "turnout: cart traffic v1=90 v2=10 (was v1=95 v2=5)"
    )
    assert git(repo, "show", "--name-only", "--format=", "HEAD").split() == [
        "policies/services.yaml"
    ]
    assert git(repo, "diff", "--cached", "--name-only").split() == ["README"]
    short = git(repo, "rev-parse", "--short", "HEAD").strip()
    assert f"committed {short}: turnout: cart traffic v1=90 v2=10 (was v1=95 v2=5)" in (
        result.stdout
    )


def test_commit_message_of_a_rollback(policies: Path, repo: Path) -> None:
    """A rollback's commit message names the service, the stable version and the release."""
    result = run(policies, "rollback", "shop", "--commit")
    assert result.exit_code == 0, result.output
    assert git(repo, "log", "-1", "--format=%s").strip() == (
        "turnout: roll back shop to v1: traffic v1=100 (was v1=50 v2=50), "
        "incremental release to v2 rolled back"
    )


def test_commit_outside_a_git_repository_is_refused_before_writing(policies: Path) -> None:
    """--commit outside a git repository is a clear error and nothing is written."""
    env = {"GIT_CEILING_DIRECTORIES": str(policies.parent)}
    result = CliRunner(env=env).invoke(
        main, ["rollback", "shop", "--commit", "--policies", str(policies)]
    )
    assert result.exit_code == 1
    assert "--commit needs a git repository" in result.stderr
    assert_unchanged(policies)


def test_commands_run_as_a_process(policies: Path) -> None:
    """`python -m turnout set-traffic ...` works as the installed command does."""
    proc = subprocess.run(
        [sys.executable, "-m", "turnout", "set-traffic", "cart", "v1=0", "v2=100"],
        cwd=policies,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        "cart traffic v1=0 v2=100 (was v1=95 v2=5)",
        "wrote services.yaml",
    ]
    assert "traffic: {v1: 0, v2: 100}   # CI raises v2" in services_text(policies)
