"""The `turnout` command: click commands, their options and renderers; `serve` hands its
options to the server runtime (turnout.server.App)."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import click

from turnout.cli._compare_cmd import COMMANDS as COMPARE_COMMANDS
from turnout.cli._compare_cmd import comparator_option
from turnout.cli._ops import COMMANDS as OPS_COMMANDS
from turnout.cli._release_options import pop_release_options, release_options
from turnout.cli._rollout_cmd import COMMANDS as ROLLOUT_COMMANDS
from turnout.cli._status_cmd import COMMANDS as STATUS_COMMANDS
from turnout.cli._tls_options import security_from_options, security_options
from turnout.cli._validate import COMMANDS as VALIDATE_COMMANDS
from turnout.compile import compile_policies
from turnout.policy import PolicySetError, load_policies
from turnout.release import LeaseError
from turnout.server import configure_logging
from turnout.translate import to_json

__all__ = ["main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="turnout")
def main() -> None:
    """turnout: release control plane for Envoy."""


@main.command()
@click.option(
    "--policies",
    "policies",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="Directory of release policy files.",
)
@click.option("--xds-address", default="127.0.0.1:18000", show_default=True)
@click.option("--admin-address", default="127.0.0.1:18080", show_default=True)
@click.option("--log-format", type=click.Choice(["console", "json"]), default="console")
@click.option("--log-level", default="info", show_default=True)
@click.option(
    "--debounce-ms",
    type=int,
    default=100,
    show_default=True,
    help="Coalesce policy file changes arriving within this time.",
)
@click.option(
    "--grace",
    type=float,
    default=5.0,
    show_default=True,
    help="Seconds to let streams finish on SIGTERM.",
)
@comparator_option  # --comparator HOST:PORT (turnout/cli/_compare_cmd.py)
@click.option(
    "--admin-token-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Turn on the dashboard's release actions (rollback, pause, resume, promote, "
    "approve, set-traffic): they need this file's token as a bearer token. Without it "
    "the dashboard is read-only.",
)
@security_options  # --tls-*, --identity-map, --max-* (turnout/cli/_tls_options.py)
@release_options  # --[no-]drive-releases, --metrics-source... (_release_options.py)
def serve(
    policies: Path,
    xds_address: str,
    admin_address: str,
    log_format: str,
    log_level: str,
    debounce_ms: int,
    grace: float,
    admin_token_file: Path | None,
    **security: Any,
) -> None:
    """Serve the policies in DIR to Envoy over xDS, reloading on change."""
    from turnout.server import App, DrivingError, HeapKeeper, read_token_file

    configure_logging("json" if log_format == "json" else "console", log_level)
    if not policies.is_dir():
        raise click.BadParameter(f"{policies} is not a directory", param_hint="--policies")
    releases = pop_release_options(security)
    comparators = security.pop("comparators", ())
    tls, guard = security_from_options(**security)
    token = None
    if admin_token_file is not None:
        try:
            token = read_token_file(admin_token_file)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--admin-token-file") from None
    try:
        app = App(
            policies,
            xds_address,
            admin_address,
            debounce_ms,
            grace,
            tls=tls,
            guard=guard,
            releases=releases,
            admin_token=token,
            comparators=comparators,
            heap=HeapKeeper(),  # this process runs long: tune its garbage collection
        )
    except (LeaseError, DrivingError) as exc:
        raise click.UsageError(str(exc)) from exc
    asyncio.run(app.run())


@main.command()
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--proxy-cluster", default=None, help="Render only what an Envoy with this node.cluster gets."
)
def render(directory: Path, proxy_cluster: str | None) -> None:
    """Print the Envoy resources that DIR translates to, as JSON."""
    try:
        compiled = compile_policies(load_policies(directory))
    except PolicySetError as exc:
        for problem in exc.problems:
            click.echo(str(problem), err=True)
        sys.exit(1)
    resources = compiled.translation.all
    if proxy_cluster is not None:
        resources = compiled.translation.select(compiled.policies.gateways_for(proxy_cluster))
    out: dict[str, object] = {"version": compiled.policy_version, **to_json(resources)}
    click.echo(json.dumps(out, indent=2, sort_keys=True))


for _command in OPS_COMMANDS:  # set-traffic, promote, rollback, pause, resume, diff
    main.add_command(_command)

for _command in STATUS_COMMANDS:  # status, wait
    main.add_command(_command)

for _command in ROLLOUT_COMMANDS:  # rollout abort
    main.add_command(_command)

for _command in VALIDATE_COMMANDS:  # validate, schema
    main.add_command(_command)

for _command in COMPARE_COMMANDS:  # compare (the comparator)
    main.add_command(_command)
