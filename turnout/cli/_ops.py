"""Release operations on policy files: set-traffic, promote, rollback, pause, resume,
approve, diff.

The edit commands change policy files in place through `turnout.edit` (the whole set
validated first, atomic writes, `--dry-run`, `--commit`); a running `turnout serve`
picks the change up like any other edit. Exit codes: 0 done (or nothing to change),
1 the edit was refused and nothing was written. `diff` compares two policy sets through
`turnout.diff`: 0, or with `--exit-code` 0 for no change and 1 for changes; 2 when
either side cannot be read or is invalid.
"""

from __future__ import annotations

import getpass
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import click

from turnout.diff import DiffSourceError, diff, revision_sources
from turnout.edit import (
    Edit,
    EditError,
    approve,
    commit,
    git_root,
    parse_shares,
    pause,
    promote,
    resume,
    rollback,
    set_traffic,
)
from turnout.policy import PolicySet, PolicySetError, load_policies, parse_policies

__all__ = ["COMMANDS"]

_policies = click.option(
    "--policies",
    "policies",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="Directory of release policy files.",
)
_dry_run = click.option(
    "--dry-run", is_flag=True, help="Print the change as a unified diff; write nothing."
)
_commit = click.option(
    "--commit",
    "commit_",
    is_flag=True,
    help="git add and commit exactly the changed file(s), with a message naming the change.",
)
_rule = click.option("--rule", default=None, metavar="NAME", help="Change this rule's traffic.")


def _refuse(exc: EditError) -> NoReturn:
    click.echo(f"error: {exc}", err=True)
    sys.exit(1)


def _apply(make: Callable[[], Edit], policies: Path, dry_run: bool, commit_: bool) -> None:
    """Make the edit, then show it (--dry-run), or write it (and commit it)."""
    try:
        if commit_ and not dry_run:
            git_root(policies)  # no repository: say so before writing anything
        edit = make()
    except EditError as exc:
        _refuse(exc)
    for note in edit.notes:
        click.echo(f"note: {note}", err=True)
    if not edit.changed:
        click.echo(edit.summary)
        return
    if dry_run:
        click.echo(edit.diff(), nl=False)
        click.echo(f"dry run, nothing written: {edit.summary}", err=True)
        return
    try:
        edit.write()
    except OSError as exc:
        _refuse(EditError(f"cannot write: {exc}"))
    click.echo(edit.summary)
    for path in edit.paths:
        click.echo(f"wrote {path}")
    if commit_:
        try:
            revision = commit(policies, edit.paths, edit.message)
        except EditError as exc:
            _refuse(EditError(f"written but not committed: {exc}"))
        click.echo(f"committed {revision}: {edit.message}")


@click.command("set-traffic")
@click.argument("service")
@click.argument("shares", nargs=-1, required=True, metavar="VERSION=PERCENT...")
@_rule
@_policies
@_dry_run
@_commit
def set_traffic_command(
    service: str,
    shares: tuple[str, ...],
    rule: str | None,
    policies: Path,
    dry_run: bool,
    commit_: bool,
) -> None:
    """Set SERVICE's traffic (or a rule's) to exactly the given shares, e.g. v1=90 v2=10."""

    def make() -> Edit:
        return set_traffic(policies, service, parse_shares(shares), rule=rule)

    _apply(make, policies, dry_run, commit_)


@click.command("promote")
@click.argument("service")
@click.argument("version")
@_policies
@_dry_run
@_commit
def promote_command(
    service: str, version: str, policies: Path, dry_run: bool, commit_: bool
) -> None:
    """All of SERVICE's default traffic to VERSION, and `stable: VERSION`.

    The blue/green switch, or the end of an incremental release (whose state is then
    marked promoted). Rules keep their own traffic."""
    _apply(lambda: promote(policies, service, version), policies, dry_run, commit_)


@click.command("rollback")
@click.argument("service")
@_rule
@_policies
@_dry_run
@_commit
def rollback_command(
    service: str, rule: str | None, policies: Path, dry_run: bool, commit_: bool
) -> None:
    """SERVICE's default traffic (or a rule's) back to {stable: 100}.

    An incremental release under way is marked rolled-back (not restarted); mirrors
    are left alone."""
    _apply(lambda: rollback(policies, service, rule=rule), policies, dry_run, commit_)


@click.command("pause")
@click.argument("service")
@_policies
@_dry_run
@_commit
def pause_command(service: str, policies: Path, dry_run: bool, commit_: bool) -> None:
    """Pause SERVICE's running incremental release (phase running -> paused)."""
    _apply(lambda: pause(policies, service), policies, dry_run, commit_)


@click.command("resume")
@click.argument("service")
@_policies
@_dry_run
@_commit
def resume_command(service: str, policies: Path, dry_run: bool, commit_: bool) -> None:
    """Resume SERVICE's paused incremental release (phase paused -> running)."""
    _apply(lambda: resume(policies, service), policies, dry_run, commit_)


def approver(policies: Path) -> str:
    """Who approves when --by is not given: the git author (GIT_AUTHOR_NAME, else
    `git config user.name` where the policies are), else the login name."""
    name = os.environ.get("GIT_AUTHOR_NAME", "").strip()
    if name:
        return name
    try:
        done = subprocess.run(
            ["git", "config", "user.name"],
            cwd=policies,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        if done.returncode == 0 and done.stdout.strip():
            return done.stdout.strip()
    except OSError:
        pass
    try:
        return os.environ.get("USER") or getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


@click.command("approve")
@click.argument("service")
@click.option(
    "--by", default=None, metavar="NAME", help="Who approves (default: git author, else $USER)."
)
@_policies
@_dry_run
@_commit
def approve_command(
    service: str, by: str | None, policies: Path, dry_run: bool, commit_: bool
) -> None:
    """Approve SERVICE's release past its next `approve` gate.

    Records who and when in incremental.state.approvals; a release waiting at the
    gate goes on at the driver's next tick (a rollback never waits for anyone)."""
    who = by or approver(policies)
    _apply(lambda: approve(policies, service, by=who), policies, dry_run, commit_)


# -- diff -------------------------------------------------------------------------------------


class _UnreadableError(Exception):
    """A side of the diff cannot be read or is invalid; `lines` say why."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__("\n".join(lines))
        self.lines = lines


def _load(directory: Path) -> PolicySet:
    try:
        return load_policies(directory)
    except PolicySetError as exc:
        raise _UnreadableError([str(p) for p in exc.problems]) from exc


def _load_revision(directory: Path, revision: str) -> PolicySet:
    try:
        sources = revision_sources(directory, revision)
    except DiffSourceError as exc:
        raise _UnreadableError([str(exc)]) from exc
    if not sources:
        raise _UnreadableError([f"{revision}: no policy files (*.yaml, *.yml) under {directory}"])
    try:
        return parse_policies(sources)
    except PolicySetError as exc:
        raise _UnreadableError([str(p) for p in exc.problems]) from exc


def _sides(args: tuple[str, ...], git: bool, policies: Path) -> tuple[PolicySet, PolicySet]:
    """Both sides, loaded; every problem of both raised at once as _UnreadableError."""
    if not git:
        if len(args) != 2:
            raise click.UsageError("give OLD_DIR and NEW_DIR, or --git REV [REV]")
        loaded = [_try(_load, Path(args[0])), _try(_load, Path(args[1]))]
    elif len(args) == 1:
        loaded = [_try(_load_revision, policies, args[0]), _try(_load, policies)]
    elif len(args) == 2:
        loaded = [_try(_load_revision, policies, args[0]), _try(_load_revision, policies, args[1])]
    else:
        raise click.UsageError("--git takes one revision (against the work tree) or two")
    errors = [line for side in loaded if isinstance(side, _UnreadableError) for line in side.lines]
    if errors:
        raise _UnreadableError(errors)
    old, new = loaded
    assert isinstance(old, PolicySet)
    assert isinstance(new, PolicySet)
    return old, new


def _try(load: Callable[..., PolicySet], *args: Any) -> PolicySet | _UnreadableError:
    """Load a side, keeping its problems so both sides' are reported at once."""
    try:
        return load(*args)
    except _UnreadableError as exc:
        return exc


@click.command("diff")
@click.argument("args", nargs=-1, metavar="OLD_DIR NEW_DIR | --git REV [REV]")
@click.option(
    "--git",
    "git",
    is_flag=True,
    help="Compare git revisions of the --policies directory: one REV against the work "
    "tree, or two.",
)
@_policies
@click.option("--envoy", is_flag=True, help="Also list the Envoy resources added/removed/changed.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for machines.")
@click.option(
    "--exit-code", is_flag=True, help="Exit 1 when there are changes, 0 when there are none."
)
def diff_command(
    args: tuple[str, ...],
    git: bool,
    policies: Path,
    envoy: bool,
    as_json: bool,
    exit_code: bool,
) -> None:
    """What a policy change does, in human terms.

    \b
    turnout diff OLD_DIR NEW_DIR
    turnout diff --git REV          # REV against the work tree (of --policies)
    turnout diff --git REV1 REV2

    Exit 2 when a side cannot be read or is invalid (its errors on stderr)."""
    try:
        old, new = _sides(args, git, policies)
    except _UnreadableError as exc:
        for line in exc.lines:
            click.echo(line, err=True)
        sys.exit(2)
    result = diff(old, new, envoy=envoy)
    if as_json:
        out: dict[str, Any] = result.to_json()
        click.echo(json.dumps(out, indent=2))
    else:
        click.echo(result.render())
    if exit_code and result.changed:
        sys.exit(1)


COMMANDS = (
    set_traffic_command,
    promote_command,
    rollback_command,
    pause_command,
    resume_command,
    approve_command,
    diff_command,
)
