"""`turnout validate DIR [--format text|github|json]` and `turnout schema`.

validate exits 0 when the set is valid (warnings do not fail it), 1 otherwise, with
every problem: as `FILE:LINE: path: message` lines (text), as GitHub Actions workflow
commands that become annotations on the diff (github: `::error file=F,line=L::...`,
`::warning ...`), or as one JSON document (json).

schema prints the policy format's JSON Schema (draft 2020-12), generated from the
loader's own field tables, for editors (`# yaml-language-server: $schema=...`).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from turnout.compile import compile_policies
from turnout.policy import (
    PolicySetError,
    Problem,
    load_policies,
    policy_schema,
    policy_warnings,
)

__all__ = ["COMMANDS", "github_command"]


def _escape_data(text: str) -> str:
    """A workflow command's message: `%`, CR and LF escaped (GitHub's toolkit rules)."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    """A workflow command's property value: also `:` and `,` escaped."""
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def github_command(level: str, problem: Problem) -> str:
    """`::error file=F,line=L,title=turnout validate::path: message` (level: error,
    warning): GitHub Actions shows it as an annotation at that line of the diff."""
    properties = [f"file={_escape_property(problem.file)}"]
    if problem.line:
        properties.append(f"line={problem.line}")
    properties.append(f"title={_escape_property('turnout validate')}")
    message = f"{problem.path}: {problem.message}" if problem.path else problem.message
    return f"::{level} {','.join(properties)}::{_escape_data(message)}"


def _problem_json(problem: Problem) -> dict[str, Any]:
    return {
        "file": problem.file,
        "line": problem.line,
        "path": problem.path,
        "message": problem.message,
    }


@click.command()
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--format",
    "output",
    type=click.Choice(["text", "github", "json"]),
    default="text",
    show_default=True,
    help="text: FILE:LINE lines on stderr; github: workflow commands (annotations on the "
    "diff) on stdout; json: one document on stdout.",
)
def validate(directory: Path, output: str) -> None:
    """Check a policy directory: exit 0 when valid, else 1 with every error.

    Warnings (e.g. a public gateway that lets anyone pin a version) are printed but
    do not fail the check."""
    try:
        compiled = compile_policies(load_policies(directory))
    except PolicySetError as exc:
        _refused(exc.problems, output)
        sys.exit(1)
    policies = compiled.policies
    warnings = policy_warnings(policies)
    summary = (
        f"ok: {len(policies.gateways)} gateway(s), {len(policies.services)} service(s), "
        f"version {compiled.policy_version}"
    )
    if warnings:
        summary += f", {len(warnings)} warning(s)"
    if output == "json":
        document = {
            "ok": True,
            "version": compiled.policy_version,
            "gateways": len(policies.gateways),
            "services": len(policies.services),
            "errors": [],
            "warnings": [_problem_json(w) for w in warnings],
        }
        click.echo(json.dumps(document, indent=2))
        return
    _print(warnings, "warning", output)
    click.echo(summary)


def _print(problems: list[Problem], level: str, output: str) -> None:
    """Each problem as a workflow command (github, on stdout) or a line on stderr."""
    for problem in problems:
        if output == "github":
            click.echo(github_command(level, problem))
        elif level == "warning":
            where = f"{problem.file}:{problem.line}" if problem.line else problem.file
            click.echo(f"{where}: {problem.path}: warning: {problem.message}", err=True)
        else:
            click.echo(str(problem), err=True)


def _refused(problems: list[Problem], output: str) -> None:
    summary = f"{len(problems)} error(s); nothing would be served from this set"
    if output == "json":
        document = {"ok": False, "errors": [_problem_json(p) for p in problems], "warnings": []}
        click.echo(json.dumps(document, indent=2))
        return
    _print(problems, "error", output)
    click.echo(summary, err=True)


@click.command()
def schema() -> None:
    """Print the policy format's JSON Schema (draft 2020-12), for editors and CI.

    \b
    turnout schema > policy.schema.json
    # yaml-language-server: $schema=./policy.schema.json   (first line of a policy file)"""
    click.echo(json.dumps(policy_schema(), indent=2))


COMMANDS = (validate, schema)
