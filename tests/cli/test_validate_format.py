"""`turnout validate --format text|github|json` and its warnings, and `turnout schema`,
run as CI runs them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from turnout.cli import main

GATEWAY = "kind: Gateway\nname: public\nport: 10000\naddress: {address}\n"

SERVICE = """\
kind: Service
name: shop
versions:
  v1: {{endpoints: ["127.0.0.1:9101"]}}
  v2: {{endpoints: ["127.0.0.1:9201"]}}
stable: v1
traffic: {{v1: 90, v2: 20}}
{pin}"""


def _policies(tmp_path: Path, *, address: str = "127.0.0.1", pin: str = "") -> Path:
    directory = tmp_path / "policies"
    directory.mkdir(exist_ok=True)
    (directory / "gateway.yaml").write_text(GATEWAY.format(address=address))
    (directory / "shop.yaml").write_text(SERVICE.format(pin=pin))
    return directory


def test_github_format_prints_annotations(tmp_path: Path) -> None:
    """--format github prints one `::error file=F,line=L::` workflow command per problem
    on stdout (GitHub turns them into annotations on the diff) and exits 1."""
    directory = _policies(tmp_path)
    result = CliRunner().invoke(main, ["validate", "--format", "github", str(directory)])
    assert result.exit_code == 1
    assert result.stdout == (
        f"::error file={directory}/shop.yaml,line=7,title=turnout validate::"
        "traffic: shares sum to 110, not 100\n"
    )
    assert "1 error(s); nothing would be served from this set" in result.stderr


def test_github_format_escapes_what_would_break_a_command(tmp_path: Path) -> None:
    """A `%` in a message, or `,`/`:` in a file name, cannot end or garble the command:
    they are escaped as GitHub's toolkit escapes them (line breaks never reach it: a
    Problem is always one line)."""
    from turnout.cli._validate import github_command
    from turnout.policy import Problem

    line = github_command("error", Problem("a,b:c.yaml", 3, "x", "50% off"))
    assert line == "::error file=a%2Cb%3Ac.yaml,line=3,title=turnout validate::x: 50%25 off"


def test_json_format(tmp_path: Path) -> None:
    """--format json prints one document with every error's file, line, path and message."""
    directory = _policies(tmp_path)
    result = CliRunner().invoke(main, ["validate", "--format", "json", str(directory)])
    assert result.exit_code == 1
    document = json.loads(result.stdout)
    assert document == {
        "ok": False,
        "errors": [
            {
                "file": f"{directory}/shop.yaml",
                "line": 7,
                "path": "traffic",
                "message": "shares sum to 110, not 100",
            }
        ],
        "warnings": [],
    }


@pytest.mark.parametrize("output", ["text", "github", "json"])
def test_public_gateway_that_lets_anyone_pin_warns_without_failing(
    tmp_path: Path, output: str
) -> None:
    """A gateway listening beyond loopback with a pinHeader anyone may send is a warning
    (exit 0, in every format); `when` or `false` silences it."""
    directory = _policies(tmp_path, address="0.0.0.0")
    (directory / "shop.yaml").write_text(
        SERVICE.format(pin="").replace("v1: 90, v2: 20", "v1: 90, v2: 10")
    )
    result = CliRunner().invoke(main, ["validate", "--format", output, str(directory)])
    assert result.exit_code == 0, result.output
    text = result.stdout + result.stderr
    if output == "json":
        text = json.loads(result.stdout)["warnings"][0]["message"]
    assert 'anyone who reaches gateway "public" (listening on 0.0.0.0:10000) can pin shop' in text
    if output == "github":
        assert result.stdout.startswith(f"::warning file={directory}/shop.yaml,line=1,")
    if output == "json":
        assert json.loads(result.stdout)["warnings"][0]["path"] == "pinHeader"
    for pin in ('pinHeader: {when: {headers: {x-employee: "true"}}}\n', "pinHeader: false\n"):
        (directory / "shop.yaml").write_text(
            SERVICE.format(pin=pin).replace("v1: 90, v2: 20", "v1: 90, v2: 10")
        )
        quiet = CliRunner().invoke(main, ["validate", str(directory)])
        assert quiet.exit_code == 0
        assert "warning" not in quiet.stdout + quiet.stderr


def test_loopback_gateway_does_not_warn(tmp_path: Path) -> None:
    """Only a gateway reachable beyond the machine is warned about."""
    directory = _policies(tmp_path)
    (directory / "shop.yaml").write_text(
        SERVICE.format(pin="").replace("v1: 90, v2: 20", "v1: 90, v2: 10")
    )
    result = CliRunner().invoke(main, ["validate", str(directory)])
    assert result.exit_code == 0
    assert result.stdout.startswith("ok: 1 gateway(s), 1 service(s), version ")
    assert "warning" not in result.stdout + result.stderr


def test_schema_command_prints_the_schema() -> None:
    """`python -m turnout schema` prints a draft 2020-12 JSON Schema for the policy format."""
    done = subprocess.run(
        [sys.executable, "-m", "turnout", "schema"], capture_output=True, text=True, check=True
    )
    schema = json.loads(done.stdout)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert [branch["title"] for branch in schema["oneOf"]] == ["Gateway", "Service"]


def test_pre_commit_hook_runs_turnout_validate() -> None:
    """The repository's .pre-commit-hooks.yaml defines a hook running `turnout validate`."""
    from ruamel.yaml import YAML

    root = Path(__file__).resolve().parents[2]
    [hook] = YAML(typ="safe").load((root / ".pre-commit-hooks.yaml").read_text())
    assert hook["id"] == "turnout-validate"
    assert hook["entry"] == "turnout validate"
    assert hook["language"] == "python"
    assert hook["pass_filenames"] is False
